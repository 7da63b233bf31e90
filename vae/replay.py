"""Training replay: how the latent space organised itself, epoch by epoch.

A ReplayRecorder subscribes to the Trainer's `on_epoch_end` and keeps, for every epoch (and the
untrained model, epoch 0), the posterior means of a fixed test subset in the plane (z1, z2) and a
small decoded manifold over that plane. The frames live in `trainer.extras["replay"]`, so every
checkpoint the trainer writes carries them; they are stored compactly (codes float16, images
uint8, zlib-packed on disk by `pack_replay`) as a plain dict of
tensors, read back with `torch.load(weights_only=True)` and checked (and unpacked) by
`check_replay`. `replay_gif` turns them into an animated GIF: decoded manifold beside the scatter.
"""
from __future__ import annotations

import functools
import io
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .latent import decode_grid, grid_axis, sample_indices, tile_images, upscale_nearest

REPLAY_KEY = "replay"  # in trainer.extras and the checkpoint's extras
REPLAY_VERSION = 1  # in memory, and on disk before manifolds were packed
PACKED_VERSION = 2  # on disk: "manifolds" is the zlib stream of the uint8 (T, H, W) array
REPLAY_CODES = 500  # test images followed through training
REPLAY_GRID = 8  # manifold tiles per side: 224 x 224 px of uint8, about 50 kB a frame
REPLAY_RADIUS = 3.0  # the manifold covers [-3, 3] on z1 and z2: the prior's 3-sigma square
MAX_FRAMES = 50  # longer runs keep a log-even choice of epochs (planned_epochs)
MAX_REPLAY_CODES = 10_000
MAX_REPLAY_GRID = 32
TILE = 28


class ReplayError(ValueError):
    """Replay data that is not what a recorder writes; the message says what is wrong."""


@dataclass
class Replay:
    """Frames of one training run, as numpy arrays (T frames, n test images, g x g manifold)."""

    epochs: np.ndarray  # (T,) int64, completed epochs at each frame (0: before training)
    indices: np.ndarray  # (n,) int64, which test images
    labels: np.ndarray  # (n,) int64
    codes: np.ndarray  # (T, n, P) float32 posterior means in (z1, z2); P = 1 for a 1-D space
    manifolds: np.ndarray  # (T, rows * 28, g * 28) uint8 decoded tiles, top row = largest z2
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
        self._x = x_all.index_select(0, indices.to(x_all.device))  # (n, 1, 28, 28)
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
        if d >= 2:
            tiles = decode_grid(model, xs, xs)  # (g, g, 28, 28)
        else:  # one row over z1
            tiles = model.decode(torch.from_numpy(xs[:, None]).to(mu.device))[:, 0].cpu().numpy()[None]
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


def _unpack_manifolds(stream, shape: tuple[int, int, int]) -> torch.Tensor:
    """The (T, H, W) uint8 manifolds from a packed replay's zlib stream; never inflates past their size."""
    if not isinstance(stream, torch.Tensor) or stream.dtype != torch.uint8 or stream.dim() != 1:
        raise ReplayError("its packed 'manifolds' entry is not a uint8 byte string")
    size = shape[0] * shape[1] * shape[2]
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(stream.numpy().tobytes(), size)
    except zlib.error:
        raise ReplayError("its packed manifolds are not a zlib stream") from None
    if len(data) != size or inflate.unconsumed_tail or inflate.unused_data or not inflate.eof:
        raise ReplayError("its packed manifolds do not hold exactly its frames")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(shape)


def check_replay(value, latent_dim: int, n_classes: int | None = None) -> dict:
    """The replay dict, unpacked (see pack_replay), if it is well formed for a model of latent_dim,
    else ReplayError."""
    if not isinstance(value, dict):
        raise ReplayError("it is not a mapping")
    expected = {"version", "epochs", "indices", "labels", "codes", "manifolds", "grid", "metrics"}
    if set(value) != expected:
        raise ReplayError(f"its entries are {sorted(map(str, value))}, not {sorted(expected)}")
    if value["version"] == PACKED_VERSION:
        epochs, grid = value["epochs"], value["grid"]
        if not all(isinstance(t, torch.Tensor) and t.dim() == 1 for t in (epochs, grid)) or not (
                1 <= len(epochs) <= 10 * MAX_FRAMES and 1 <= len(grid) <= MAX_REPLAY_GRID):
            raise ReplayError("its arrays have shapes that do not fit together or this model")
        rows = len(grid) if latent_dim >= 2 else 1
        manifolds = _unpack_manifolds(value["manifolds"], (len(epochs), rows * TILE, len(grid) * TILE))
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
    rows = g if latent_dim >= 2 else 1
    shapes_ok = (
        epochs.dim() == 1 and 1 <= t <= 10 * MAX_FRAMES and indices.dim() == 1 and 1 <= n <= MAX_REPLAY_CODES
        and labels.shape == (n,) and codes.shape == (t, n, p) and grid.dim() == 1 and 1 <= g <= MAX_REPLAY_GRID
        and manifolds.shape == (t, rows * TILE, g * TILE) and metrics.shape == (t, 2)
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
    """(n, 2) points of one frame in the plane (z1, z2); a 1-D space is drawn on z2 = 0."""
    codes = replay.codes[frame]
    return codes if codes.shape[1] == 2 else np.concatenate([codes, np.zeros_like(codes)], axis=1)


def replay_extent(replay: Replay, quantile: float = 0.99) -> tuple[float, float]:
    """One symmetric axis range for every frame, so the replay does not rescale as it plays: it
    holds the manifold's cells and the given quantile of |code| over all frames (a few stray codes
    of an early epoch do not shrink the rest to a dot)."""
    step = float(replay.grid[1] - replay.grid[0]) if len(replay.grid) > 1 else 1.0
    half = float(np.abs(replay.grid).max()) + step / 2
    if replay.codes.size:
        half = max(half, float(np.quantile(np.abs(replay.codes), quantile)) * 1.05)
    return -half, half


# --- GIF ----------------------------------------------------------------------------------------

PANEL = 448  # px per panel: the 224 px manifold doubled, and the scatter at the same size
HEADER, FOOTER, MARGIN = 40, 34, 12
GIF_FRAME_MS = 700
GIF_LAST_FRAME_MS = 2500


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font: no system fonts needed
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def _to_pixels(x, y, extent: tuple[float, float], size: int):
    """Latent (x, y) -> panel pixel (col, row) over extent on both axes, up being +z2."""
    lo, hi = extent
    scale = (size - 1) / (hi - lo)
    return (np.asarray(x) - lo) * scale, (hi - np.asarray(y)) * scale


def scatter_panel(xy: np.ndarray, labels: np.ndarray, extent: tuple[float, float], size: int = PANEL,
                  dot: int = 2, manifold_edges: tuple[float, float] | None = None) -> np.ndarray:
    """(size, size, 3) uint8: codes as dots coloured by label on a fixed range, with the prior's 1 and
    2 sigma circles dashed, the axes through 0 and a thin square where the manifold's tiles lie
    (manifold_edges, on both axes); up is +z2, as on the plots."""
    from PIL import Image, ImageDraw

    from .figures import PALETTE

    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def px(x, y):
        return _to_pixels(x, y, extent, size)

    ox, oy = px(0.0, 0.0)
    draw.line([(0, oy), (size, oy)], fill=(215, 215, 215))
    draw.line([(ox, 0), (ox, size)], fill=(215, 215, 215))
    if manifold_edges is not None:  # where the manifold panel's tiles lie
        (x0, x1), (y1, y0) = px(np.asarray(manifold_edges), np.asarray(manifold_edges))
        draw.rectangle([x0, y0, x1, y1], outline=(190, 190, 190))
    for n_sigma in (1, 2):
        theta = np.linspace(0, 2 * np.pi, 73)
        cx, cy = px(n_sigma * np.cos(theta), n_sigma * np.sin(theta))
        for i in range(0, 72, 2):  # every other segment: dashed
            draw.line([(cx[i], cy[i]), (cx[i + 1], cy[i + 1])], fill=(60, 60, 60), width=2)
    x, y = px(xy[:, 0], xy[:, 1])
    for xi, yi, label in zip(x, y, labels):
        draw.ellipse([xi - dot, yi - dot, xi + dot, yi + dot], fill=_hex_rgb(PALETTE[int(label) % len(PALETTE)]))
    draw.rectangle([0, 0, size - 1, size - 1], outline=(150, 150, 150))
    return np.asarray(img)


def _marker(point: tuple[float, float], extent: tuple[float, float], size: int, radius: float):
    """The slider point's marker on a size-px panel: discs (box, RGB fill) drawn in order, a
    black-ringed white disc with a black centre, held at the edge when the point lies outside extent."""
    lo, hi = extent
    x, y = (float(np.clip(v, lo, hi)) for v in point)
    cx, cy = (float(v) for v in _to_pixels(x, y, extent, size))
    return [([cx - r, cy - r, cx + r, cy + r], fill)
            for r, fill in ((radius + 1.5, (0, 0, 0)), (radius, (255, 255, 255)), (radius * 0.45, (0, 0, 0)))]


def mark_point(panel: np.ndarray, point: tuple[float, float], extent: tuple[float, float],
               radius: float = 7.0) -> np.ndarray:
    """A copy of a scatter_panel picture with `point` marked (see _marker); it never disappears."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(panel)
    draw = ImageDraw.Draw(img)
    for box, fill in _marker(point, extent, panel.shape[0], radius):
        draw.ellipse(box, fill=fill)
    return np.asarray(img)


class MarkablePanel:
    """A scatter_panel picture whose point is marked many times a second (the sliders page): `png(point)`
    is mark_point's picture as PNG bytes. It is held as a palette image (a panel has a dozen or so
    colours), which encodes many times faster than the RGB picture; a picture with more colours than a
    palette holds is kept as RGB."""

    def __init__(self, panel: np.ndarray, extent: tuple[float, float], radius: float = 7.0):
        from PIL import Image

        self.size, self.extent, self.radius = panel.shape[0], extent, radius
        rgb = panel.astype(np.uint32)
        packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        colors = np.unique(packed)
        colors = np.union1d(colors, [0x000000, 0xFFFFFF])  # the marker's black and white, sorted in
        if len(colors) <= 256:
            index = np.searchsorted(colors, packed)
            self.image = Image.fromarray(index.astype(np.uint8))
            palette = np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255], axis=1)
            self.image.putpalette(palette.astype(np.uint8).tobytes())  # "L" + a palette: a "P" image
            self.fills = {tuple(int(v) for v in c): i for i, c in enumerate(palette)}
        else:
            self.image, self.fills = Image.fromarray(panel), None

    def png(self, point: tuple[float, float]) -> bytes:
        from PIL import ImageDraw

        img = self.image.copy()
        draw = ImageDraw.Draw(img)
        for box, fill in _marker(point, self.extent, self.size, self.radius):
            draw.ellipse(box, fill=self.fills[fill] if self.fills else fill)
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=1)
        return out.getvalue()


def replay_frame_image(replay: Replay, frame: int, class_names: list[str], title: str = "",
                       extent: tuple[float, float] | None = None) -> np.ndarray:
    """(H, W, 3) uint8: one GIF frame, the decoded manifold left, the test codes right, a header
    with the epoch and test loss terms, and a legend of the classes."""
    from PIL import Image, ImageDraw

    from .figures import PALETTE

    extent = extent or replay_extent(replay)
    manifold = replay.manifolds[frame]
    step = float(replay.grid[1] - replay.grid[0]) if len(replay.grid) > 1 else 1.0
    factor = max(1, PANEL // manifold.shape[1])
    manifold = upscale_nearest(manifold, factor)
    width = 2 * PANEL + 3 * MARGIN
    canvas = Image.new("RGB", (width, HEADER + PANEL + FOOTER), "white")
    top = HEADER + (PANEL - manifold.shape[0]) // 2
    canvas.paste(Image.fromarray(manifold).convert("RGB"), (MARGIN, top))
    edges = (replay.grid[0] - step / 2, replay.grid[-1] + step / 2) if manifold.shape[0] == manifold.shape[1] else None
    canvas.paste(Image.fromarray(scatter_panel(frame_plane(replay, frame), replay.labels, extent, manifold_edges=edges)),
                 (2 * MARGIN + PANEL, HEADER))
    draw = ImageDraw.Draw(canvas)
    recon, kl = replay.metrics[frame]
    epoch = int(replay.epochs[frame])
    terms = "before training" if epoch == 0 else (
        f"test recon {recon:.1f}, KL {kl:.1f} nats" if np.isfinite(recon) else "")
    draw.text((MARGIN, 8), f"epoch {epoch}   {terms}", fill="black", font=_font(20))
    if title:
        draw.text((width - MARGIN, 8), title, fill=(90, 90, 90), font=_font(16), anchor="ra")
    foot = HEADER + PANEL + 8
    draw.text((MARGIN, foot), f"decoded at z1, z2 in [{replay.grid[0]:g}, {replay.grid[-1]:g}] (outlined on the right)",
              fill=(90, 90, 90), font=_font(15))
    x = 2 * MARGIN + PANEL
    for label in np.unique(replay.labels):
        name = class_names[label] if label < len(class_names) else str(label)
        draw.ellipse([x, foot + 4, x + 10, foot + 14], fill=_hex_rgb(PALETTE[int(label) % len(PALETTE)]))
        draw.text((x + 14, foot), name, fill="black", font=_font(15))
        x += 22 + int(draw.textlength(name, font=_font(15)))
    return np.asarray(canvas)


def _gif_palette():
    """One fixed 256-colour palette for every frame: the class colours exactly, the rest grays (the
    manifold, the text), so no class colour is merged with another and none flickers between frames."""
    from PIL import Image

    from .figures import PALETTE

    colours = [_hex_rgb(c) for c in PALETTE]
    colours += [(v, v, v) for v in np.linspace(0, 255, 256 - len(colours)).round().astype(int)]
    image = Image.new("P", (1, 1))
    image.putpalette([channel for rgb in colours for channel in rgb])
    return image


def replay_gif(replay: Replay, class_names: list[str], title: str = "", frame_ms: int = GIF_FRAME_MS,
               last_frame_ms: int = GIF_LAST_FRAME_MS) -> bytes:
    """An animated GIF (looping) of every frame, on one fixed scatter range; the last frame lingers."""
    from PIL import Image

    if len(replay) == 0:
        raise ReplayError("a replay needs at least one frame")
    extent = replay_extent(replay)
    palette = _gif_palette()
    frames = [Image.fromarray(replay_frame_image(replay, i, class_names, title, extent)).quantize(
        palette=palette, dither=Image.Dither.NONE) for i in range(len(replay))]
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=True, disposal=1)
    return buffer.getvalue()
