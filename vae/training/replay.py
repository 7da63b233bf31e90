"""Recording the training replay as a run trains (one frame per epoch, a log-even choice of epochs for
long runs), and playing it back as an animated GIF."""
from __future__ import annotations

import functools
import io
import time

import numpy as np
import torch

from vae.analysis.encoding import grid_axis, grid_codes, sample_indices
from vae.checkpoint.replay import (
    MAX_FRAMES,
    REPLAY_CODES,
    REPLAY_GRID,
    REPLAY_KEY,
    REPLAY_VERSION,
    Replay,
    ReplayError,
    frame_plane,
    replay_extent,
    replay_tile,
)
from vae.render.images import tile_images, to_pictures, upscale_nearest
from vae.render.palette import PALETTE
from vae.render.pictures import FOOTER, HEADER, MARGIN, PANEL, font, gif_palette, hex_rgb, scatter_panel

REPLAY_RADIUS = 3.0  # the manifold covers [-3, 3] on z1 and z2: the prior's 3-sigma square


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


GIF_FRAME_MS = 700
GIF_LAST_FRAME_MS = 2500


def replay_frame_image(replay: Replay, frame: int, class_names: list[str], title: str = "",
                       extent: tuple[float, float] | None = None) -> np.ndarray:
    """(H, W, 3) uint8: one GIF frame, the decoded manifold left, the test codes right, a header
    with the epoch and test loss terms, and a legend of the classes."""
    from PIL import Image, ImageDraw


    extent = extent or replay_extent(replay)
    manifold = replay.manifolds[frame]
    step = float(replay.grid[1] - replay.grid[0]) if len(replay.grid) > 1 else 1.0
    factor = max(1, min(PANEL // manifold.shape[0], PANEL // manifold.shape[1]))
    manifold = upscale_nearest(manifold, factor)
    width = 2 * PANEL + 3 * MARGIN
    canvas = Image.new("RGB", (width, HEADER + PANEL + FOOTER), "white")
    top = HEADER + (PANEL - manifold.shape[0]) // 2
    canvas.paste(Image.fromarray(manifold).convert("RGB"), (MARGIN, top))
    two_d = replay.codes.shape[2] == 2  # a 1-D model's manifold is one row, not a square of the plane
    edges = (replay.grid[0] - step / 2, replay.grid[-1] + step / 2) if two_d else None
    canvas.paste(Image.fromarray(scatter_panel(frame_plane(replay, frame), replay.labels, extent, manifold_edges=edges)),
                 (2 * MARGIN + PANEL, HEADER))
    draw = ImageDraw.Draw(canvas)
    recon, kl = replay.metrics[frame]
    epoch = int(replay.epochs[frame])
    terms = "before training" if epoch == 0 else (
        f"test recon {recon:.1f}, KL {kl:.1f} nats" if np.isfinite(recon) else "")
    draw.text((MARGIN, 8), f"epoch {epoch}   {terms}", fill="black", font=font(20))
    if title:
        draw.text((width - MARGIN, 8), title, fill=(90, 90, 90), font=font(16), anchor="ra")
    foot = HEADER + PANEL + 8
    draw.text((MARGIN, foot), f"decoded at z1, z2 in [{replay.grid[0]:g}, {replay.grid[-1]:g}] (outlined on the right)",
              fill=(90, 90, 90), font=font(15))
    x = 2 * MARGIN + PANEL
    for label in np.unique(replay.labels):
        name = class_names[label] if label < len(class_names) else str(label)
        draw.ellipse([x, foot + 4, x + 10, foot + 14], fill=hex_rgb(PALETTE[int(label) % len(PALETTE)]))
        draw.text((x + 14, foot), name, fill="black", font=font(15))
        x += 22 + int(draw.textlength(name, font=font(15)))
    return np.asarray(canvas)


def replay_gif(replay: Replay, class_names: list[str], title: str = "", frame_ms: int = GIF_FRAME_MS,
               last_frame_ms: int = GIF_LAST_FRAME_MS) -> bytes:
    """An animated GIF (looping) of every frame, on one fixed scatter range; the last frame lingers."""
    from PIL import Image

    if len(replay) == 0:
        raise ReplayError("a replay needs at least one frame")
    extent = replay_extent(replay)
    colour = replay.manifolds.ndim == 4  # (T, H, W, 3)
    palette = gif_palette(colour)
    dither = Image.Dither.FLOYDSTEINBERG if colour else Image.Dither.NONE  # smooth hues; greys map exactly
    frames = [Image.fromarray(replay_frame_image(replay, i, class_names, title, extent)).quantize(
        palette=palette, dither=dither) for i in range(len(replay))]
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   optimize=True, disposal=1)
    return buffer.getvalue()
