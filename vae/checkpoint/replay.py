"""The training replay's format: the frames a checkpoint keeps (codes of a fixed test subset and a small
decoded manifold per epoch), packed for disk, checked on load, and read back as arrays."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from vae.analysis.geometry import plane_of

REPLAY_KEY = "replay"  # in trainer.extras and the checkpoint's extras
REPLAY_VERSION = 1  # in memory, and on disk before manifolds were packed
PACKED_VERSION = 2  # on disk: "manifolds" is the zlib stream of the uint8 (T, H, W[, 3]) array
MAX_FRAMES = 50  # longer runs keep a log-even choice of epochs (planned_epochs)
REPLAY_CODES = 500  # test images the recorder follows through training: the most a replay holds
REPLAY_GRID = 8  # manifold tiles per side, at most: 224 x 224 px of uint8 (x 3 in colour), 50-150 kB a frame
TILE = 28  # a replay tile's longest side, pixels: larger images are shrunk (area average) to fit


class ReplayError(ValueError):
    """Replay data that is not what a recorder writes; the message says what is wrong."""


@dataclass
class Replay:
    """Frames of one training run, as numpy arrays (T frames, n test images, g x g manifold)."""

    epochs: np.ndarray  # (T,) int64, completed epochs at each frame (0: before training)
    indices: np.ndarray  # (n,) int64, which test images
    labels: np.ndarray  # (n,) int64
    codes: np.ndarray  # (T, n, P) float32 posterior means in (z1, z2); P = 1 for a 1-D space
    manifolds: np.ndarray  # (T, rows * th, g * tw[, 3]) uint8 decoded tiles (replay_tile), top row = largest z2
    grid: np.ndarray  # (g,) z values of the manifold's cell centres on both axes
    metrics: np.ndarray  # (T, 2) float32 test (recon, kl) in nats at each frame; NaN when unknown

    def __len__(self) -> int:
        return len(self.epochs)


def pack_replay(raw: dict) -> dict:
    """The replay as written to disk: its manifolds zlib-packed into one uint8 tensor (a new dict)."""
    if raw.get("version") != REPLAY_VERSION:
        return raw
    stream = zlib.compress(raw["manifolds"].contiguous().numpy().tobytes(), 6)
    return {**raw, "version": PACKED_VERSION, "manifolds": torch.frombuffer(bytearray(stream), dtype=torch.uint8)}


def _unpack_manifolds(stream, shape: tuple[int, ...]) -> torch.Tensor:
    """The (T, H, W[, 3]) uint8 manifolds from a packed replay's zlib stream; never inflates past their size."""
    if not isinstance(stream, torch.Tensor) or stream.dtype != torch.uint8 or stream.dim() != 1:
        raise ReplayError("its packed 'manifolds' entry is not a uint8 byte string")
    size = math.prod(shape)
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(stream.numpy().tobytes(), size)
    except zlib.error:
        raise ReplayError("its packed manifolds are not a zlib stream") from None
    if len(data) != size or inflate.unconsumed_tail or inflate.unused_data or not inflate.eof:
        raise ReplayError("its packed manifolds do not hold exactly its frames")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(shape)


def replay_tile(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(th, tw): a replay tile's size for images of (C, H, W): the image's own, shrunk to at most TILE a side,
    so a frame stays about 50-150 kB whatever the image size."""
    _, h, w = image_shape
    scale = min(1.0, TILE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def manifold_shape(frames: int, grid: int, latent_dim: int, image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The replay's manifolds array for these frames: (T, rows * th, g * tw[, 3])."""
    th, tw = replay_tile(image_shape)
    rows = grid if latent_dim >= 2 else 1
    return (frames, rows * th, grid * tw) + ((3,) if image_shape[0] == 3 else ())


def check_replay(value, latent_dim: int, n_classes: int | None = None,
                 image_shape: tuple[int, int, int] = (1, 28, 28)) -> dict:
    """The replay dict, unpacked (see pack_replay), if it is well formed for a model of latent_dim whose
    images are image_shape (C, H, W), else ReplayError."""
    if not isinstance(value, dict):
        raise ReplayError("it is not a mapping")
    expected = {"version", "epochs", "indices", "labels", "codes", "manifolds", "grid", "metrics"}
    if set(value) != expected:
        raise ReplayError(f"its entries are {sorted(map(str, value))}, not {sorted(expected)}")
    if not isinstance(value["version"], int) or isinstance(value["version"], bool):
        raise ReplayError("its version is not a number")
    if value["version"] == PACKED_VERSION:
        epochs, grid = value["epochs"], value["grid"]
        if not all(isinstance(t, torch.Tensor) and t.dim() == 1 for t in (epochs, grid)) or not (
                1 <= len(epochs) <= MAX_FRAMES and 1 <= len(grid) <= REPLAY_GRID):
            raise ReplayError("its arrays have shapes that do not fit together or this model")
        manifolds = _unpack_manifolds(value["manifolds"], manifold_shape(len(epochs), len(grid), latent_dim, image_shape))
        value = {**value, "version": REPLAY_VERSION, "manifolds": manifolds}
    if value["version"] != REPLAY_VERSION:
        raise ReplayError(f"its version is {value['version']!r}")
    tensors = {k: value[k] for k in expected - {"version"}}
    dtypes = {"epochs": torch.int64, "indices": torch.int64, "labels": torch.int64, "codes": torch.float16,
              "manifolds": torch.uint8, "grid": torch.float32, "metrics": torch.float32}
    for key, dtype in dtypes.items():
        if not isinstance(tensors[key], torch.Tensor) or tensors[key].dtype != dtype:
            raise ReplayError(f"its {key!r} entry is not a {dtype} tensor")
    epochs, indices, labels, codes, manifolds, grid, metrics = (
        tensors[k] for k in ("epochs", "indices", "labels", "codes", "manifolds", "grid", "metrics"))
    t, n, p, g = len(epochs), len(indices), min(latent_dim, 2), len(grid)
    shapes_ok = (
        epochs.dim() == 1 and 1 <= t <= MAX_FRAMES and indices.dim() == 1 and 1 <= n <= REPLAY_CODES
        and labels.shape == (n,) and codes.shape == (t, n, p) and grid.dim() == 1 and 1 <= g <= REPLAY_GRID
        and manifolds.shape == manifold_shape(t, g, latent_dim, image_shape) and metrics.shape == (t, 2)
    )
    if not shapes_ok:
        raise ReplayError("its arrays have shapes that do not fit together or this model")
    if (epochs < 0).any() or (epochs[1:] < epochs[:-1]).any() or (indices < 0).any() or (labels < 0).any():
        raise ReplayError("it has negative or unordered epochs, indices or labels")
    if n_classes and (labels >= n_classes).any():
        raise ReplayError("it has labels beyond the model's classes")
    if not (torch.isfinite(codes).all() and torch.isfinite(grid).all()):
        raise ReplayError("it has NaN or infinite codes")
    return value


def replay_from_extras(extras: dict | None) -> Replay | None:
    """The replay of a model's extras (checked when it was loaded or recorded), or None."""
    raw = (extras or {}).get(REPLAY_KEY)
    if raw is None:
        return None
    return Replay(
        epochs=raw["epochs"].numpy(), indices=raw["indices"].numpy(), labels=raw["labels"].numpy(),
        codes=raw["codes"].float().numpy(), manifolds=raw["manifolds"].numpy(), grid=raw["grid"].numpy(),
        metrics=raw["metrics"].numpy(),
    )


def frame_plane(replay: Replay, frame: int) -> np.ndarray:
    """(n, 2) points of one frame in the plane (z1, z2), as plane_of draws codes."""
    return plane_of(replay.codes[frame])


def replay_extent(replay: Replay, quantile: float = 0.99) -> tuple[float, float]:
    """One symmetric axis range for every frame, so the replay does not rescale as it plays: it
    holds the manifold's cells and the given quantile of |code| over all frames (a few stray codes
    of an early epoch do not shrink the rest to a dot)."""
    step = float(replay.grid[1] - replay.grid[0]) if len(replay.grid) > 1 else 1.0
    half = float(np.abs(replay.grid).max()) + step / 2
    if replay.codes.size:
        half = max(half, float(np.quantile(np.abs(replay.codes), quantile)) * 1.05)
    return -half, half
