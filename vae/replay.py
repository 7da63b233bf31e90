"""Training replay: how the latent space organised itself, epoch by epoch.

A ReplayRecorder subscribes to the Trainer's `on_epoch_end` and keeps, for every epoch (and the
untrained model, epoch 0), the posterior means of a fixed test subset in the plane (z1, z2) and a
small decoded manifold over that plane. The frames live in `trainer.extras["replay"]`, so every
checkpoint the trainer writes carries them; they are stored compactly (codes float16, images
uint8, zlib-packed on disk by `pack_replay`) as a plain dict of
tensors, read back with `torch.load(weights_only=True)` and checked (and unpacked) by
`check_replay`. vae/pictures.py draws them (`replay_gif`: decoded manifold beside the scatter).
"""
from __future__ import annotations

import functools
import math
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .latent import grid_axis, grid_codes, plane_of, sample_indices, tile_images, to_pictures

REPLAY_KEY = "replay"  # in trainer.extras and the checkpoint's extras
REPLAY_VERSION = 1  # in memory, and on disk before manifolds were packed
PACKED_VERSION = 2  # on disk: "manifolds" is the zlib stream of the uint8 (T, H, W[, 3]) array
REPLAY_CODES = 500  # test images followed through training
REPLAY_GRID = 8  # manifold tiles per side: 224 x 224 px of uint8 (x 3 in colour), 50-150 kB a frame
REPLAY_RADIUS = 3.0  # the manifold covers [-3, 3] on z1 and z2: the prior's 3-sigma square
MAX_FRAMES = 50  # longer runs keep a log-even choice of epochs (planned_epochs)
MAX_REPLAY_CODES = 10_000
MAX_REPLAY_GRID = 32
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


class ReplayRecorder:
    """Captures one frame per finished epoch. Attach it before autosave callbacks, so each saved
    checkpoint already holds its own epoch's frame:

        ReplayRecorder().attach(trainer); trainer.add_callback("on_epoch_end", autosave)

    Uses no random numbers (posterior means, a fixed grid), so training is the same with or without it.
    """

    def __init__(self, n_codes: int = REPLAY_CODES, grid: int = REPLAY_GRID, radius: float = REPLAY_RADIUS,
                 seed: int = 0, max_frames: int = MAX_FRAMES):
        self.n_codes, self.grid, self.radius, self.seed, self.max_frames = n_codes, grid, radius, seed, max_frames
        self.seconds = 0.0  # time spent capturing, for the cost check

    def attach(self, trainer) -> "ReplayRecorder":
        """Subscribes to trainer's epoch ends; captures epoch 0 now unless the trainer resumes a replay."""
        data = trainer.test_data if trainer.test_data is not None else trainer.train_data
        x_all = trainer.x_test if trainer.x_test is not None else trainer.x_train
        previous = trainer.extras.get(REPLAY_KEY)
        if previous is not None and len(previous["indices"]) and int(previous["indices"].max()) < len(data):
            indices = previous["indices"].clone()  # a resumed run keeps following the same images
        else:
            previous = None
            indices = torch.from_numpy(sample_indices(len(data), self.n_codes, self.seed)).long()
        self._x = x_all.index_select(0, indices.to(x_all.device))  # (n, C, H, W)
        self._indices, self._labels = indices, data.labels.index_select(0, indices).long()
        if previous is None:
            trainer.extras.pop(REPLAY_KEY, None)
            if trainer.epoch == 0:
                self.capture(trainer, None)
        trainer.add_callback("on_epoch_end", self.capture)
        trainer.add_callback("on_train_end", self._last_frame)
        return self

    def _last_frame(self, trainer, _record) -> None:
        """A run that stopped after an epoch without a planned frame still ends on a frame of its own."""
        raw = trainer.extras.get(REPLAY_KEY)
        if raw is not None and int(raw["epochs"][-1]) < trainer.epoch:
            last = next((r for r in reversed(trainer.history) if r.get("kind") == "epoch"), {})
            self.capture(trainer, None, last)

    @torch.no_grad()
    def capture(self, trainer, record: dict | None, metrics_from: dict | None = None) -> None:
        if record is not None and not self._wanted(trainer):
            return
        t0 = time.perf_counter()
        model, d = trainer.model, trainer.model_cfg.latent_dim
        was_training = model.training
        model.eval()
        mu, _ = model.encode(self._x)
        codes = mu[:, :2].to("cpu", torch.float16)  # (n, P)
        xs = grid_axis(self.grid, self.radius)
        z = grid_codes(xs, xs, d) if d >= 2 else xs[:, None]  # (g * g, D), or one row over z1
        tile = replay_tile(trainer.model_cfg.image_shape)
        decoded = model.decode(torch.from_numpy(z).to(mu.device))  # (g * g, C, H, W)
        if tuple(decoded.shape[2:]) != tile:
            decoded = torch.nn.functional.interpolate(decoded, size=tile, mode="area")
        pictures = to_pictures(decoded)
        tiles = pictures.reshape(-1, len(xs), *pictures.shape[1:])  # (rows, g, th, tw[, 3])
        model.train(was_training)
        record = record or metrics_from or {}
        metrics = [record.get("test_recon", float("nan")), record.get("test_kl", float("nan"))]
        frame = {"epochs": torch.tensor([trainer.epoch], dtype=torch.int64), "codes": codes[None],
                 "manifolds": torch.from_numpy(tile_images(tiles))[None],
                 "metrics": torch.tensor([metrics], dtype=torch.float32)}
        trainer.extras[REPLAY_KEY] = self._append(trainer.extras.get(REPLAY_KEY), frame, xs)
        self.seconds += time.perf_counter() - t0

    def _wanted(self, trainer) -> bool:
        """Whether this epoch's end gets a frame: a planned epoch (planned_epochs) or the run's last one
        (a stopped run's last frame comes from _last_frame)."""
        total = int(trainer.cfg.epochs)
        return trainer.epoch in planned_epochs(total, self.max_frames) or trainer.epoch >= total

    def _append(self, old: dict | None, frame: dict, xs: np.ndarray) -> dict:
        """A new dict (never mutated: readers in other threads may hold the old one)."""
        if old is None:
            out = {"version": REPLAY_VERSION, "indices": self._indices.clone(), "labels": self._labels.clone(),
                   "grid": torch.from_numpy(xs.copy()), **frame}
        else:
            out = {**old, **{k: torch.cat([old[k], v]) for k, v in frame.items()}}
        while len(out["epochs"]) > self.max_frames:
            keep = torch.ones(len(out["epochs"]), dtype=torch.bool)
            keep[crowded_frame(out["epochs"].numpy())] = False
            out.update({k: out[k][keep] for k in frame})
        return out


@functools.lru_cache(maxsize=64)
def planned_epochs(total: int, frames: int) -> frozenset[int]:
    """The epochs (0 and total among them) whose frames a run of `total` epochs keeps when it may keep
    `frames`: every epoch when they fit, else about evenly spread in log(1 + epoch), since a latent space
    organises itself mostly in its first epochs (6 of 20: 0, 1, 2, 5, 10, 20)."""
    if total + 1 <= frames:
        return frozenset(range(total + 1))
    for k in range(frames, 4 * frames + 8):
        chosen = np.unique(np.rint(np.expm1(np.linspace(0.0, np.log1p(total), k))).astype(int))
        if len(chosen) >= frames:
            break
    while len(chosen) > frames:
        chosen = np.delete(chosen, crowded_frame(chosen))
    return frozenset(int(e) for e in chosen)


def crowded_frame(epochs: np.ndarray) -> int:
    """The inner frame whose removal leaves the most even spacing in log(1 + epoch): the one with the
    smallest such span between its two neighbours (the first and last frames are always kept). A latent
    space organises itself mostly in the first epochs, so a thinned replay keeps more of them."""
    position = np.log1p(np.maximum(np.asarray(epochs, np.float64), 0.0))
    spans = position[2:] - position[:-2]  # (T - 2,)
    return int(np.argmin(spans)) + 1


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
                1 <= len(epochs) <= 10 * MAX_FRAMES and 1 <= len(grid) <= MAX_REPLAY_GRID):
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
        epochs.dim() == 1 and 1 <= t <= 10 * MAX_FRAMES and indices.dim() == 1 and 1 <= n <= MAX_REPLAY_CODES
        and labels.shape == (n,) and codes.shape == (t, n, p) and grid.dim() == 1 and 1 <= g <= MAX_REPLAY_GRID
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
