"""A latent scatter drawn straight into pixels (numpy, no plotting library), for the Latent sliders
page: its small scatter changes with every slider move, and in a browser an image swaps in a few
milliseconds where a plotly chart takes 150-300 ms to redraw (docs/benchmarks.md, Explore latency).

The codes are drawn once per model (`ScatterCanvas`); a move only stamps the marker on a copy.
Pixel (row, col) covers z in [lo, hi] on both axes, z2 growing upwards, as on a plot.
"""
from __future__ import annotations

import numpy as np

BACKGROUND = (255, 255, 255)
GRID = (232, 232, 232)
AXIS = (180, 180, 180)
PRIOR = (51, 51, 51)
MARKER = (0, 0, 0)


def hex_rgb(color: str) -> tuple[int, int, int]:
    """'#0072B2' -> (0, 114, 178)."""
    c = color.lstrip("#")
    if len(c) != 6:
        raise ValueError(f"Colors are '#RRGGBB', not {color!r}.")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def to_pixels(xy: np.ndarray, size: int, lo: float, hi: float) -> np.ndarray:
    """(N, 2) codes -> (N, 2) float (col, row) pixel centres; z1 to the right, z2 upwards."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    scale = (size - 1) / (hi - lo)
    return np.stack([(xy[:, 0] - lo) * scale, (hi - xy[:, 1]) * scale], axis=1)


def _disc_offsets(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx * dx + dy * dy <= radius * radius
    return np.stack([dx[keep], dy[keep]], axis=1)  # (K, 2) (dcol, drow)


def _blend(canvas: np.ndarray, cols: np.ndarray, rows: np.ndarray, color, alpha: float) -> None:
    h, w = canvas.shape[:2]
    ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    cols, rows = cols[ok], rows[ok]
    canvas[rows, cols] = (1 - alpha) * canvas[rows, cols] + alpha * np.asarray(color, np.float32)


def stamp_discs(canvas: np.ndarray, centres: np.ndarray, radius: float, color, alpha: float = 1.0) -> None:
    """Filled discs at (col, row) centres, blended into a float32 (H, W, 3) canvas in place."""
    if len(centres) == 0:
        return
    off = _disc_offsets(radius)
    c = np.rint(centres).astype(np.int64)
    cols = (c[:, None, 0] + off[None, :, 0]).ravel()
    rows = (c[:, None, 1] + off[None, :, 1]).ravel()
    _blend(canvas, cols, rows, color, alpha)


def stamp_circle(canvas: np.ndarray, centre: tuple[float, float], radius: float, color, width: float = 1.5,
                 dash: int = 0) -> None:
    """A circle outline (optionally dashed: `dash` pixels on, `dash` off along the arc)."""
    n = max(int(2 * np.pi * radius * 2), 16)
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if dash:
        t = t[(np.arange(n) // (2 * dash)) % 2 == 0]  # two samples per pixel of arc
    pts = np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)
    stamp_discs(canvas, pts, width / 2, color)


class ScatterCanvas:
    """The test codes of one model on a square canvas over [lo, hi]^2, with grid lines at every
    integer z, the axes through 0 and the prior's 1 and 2 sigma circles (dashed). `with_marker`
    returns the (size, size, 3) uint8 picture with a point marked."""

    def __init__(self, xy: np.ndarray, labels: np.ndarray, colors: list[str], size: int = 360,
                 lo: float = -4.0, hi: float = 4.0, radius: float = 2.2, alpha: float = 0.55):
        if not hi > lo:
            raise ValueError("The canvas needs hi > lo.")
        self.size, self.lo, self.hi = int(size), float(lo), float(hi)
        canvas = np.empty((self.size, self.size, 3), np.float32)
        canvas[:] = BACKGROUND
        scale = (self.size - 1) / (self.hi - self.lo)
        for z in range(int(np.ceil(self.lo)), int(np.floor(self.hi)) + 1):
            p = (z - self.lo) * scale
            line = AXIS if z == 0 else GRID
            i = int(round(p))
            canvas[:, i] = line
            canvas[self.size - 1 - i, :] = line
        labels = np.asarray(labels).astype(int).reshape(-1)
        pix = to_pixels(xy, self.size, self.lo, self.hi)
        order = np.random.default_rng(0).permutation(len(pix))  # no class painted wholly over another
        for label in np.unique(labels):
            sel = order[labels[order] == label]
            stamp_discs(canvas, pix[sel], radius, hex_rgb(colors[label % len(colors)]), alpha)
        centre = tuple(to_pixels(np.zeros((1, 2)), self.size, self.lo, self.hi)[0])
        for sigma in (1.0, 2.0):
            stamp_circle(canvas, centre, sigma * scale, PRIOR, width=1.6, dash=4)
        self.base = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)

    def with_marker(self, point: tuple[float, float], radius: float = 7.0) -> np.ndarray:
        """The canvas with a black-ringed white disc and a black centre at `point` (clipped to the
        edge when outside the range, so it never disappears)."""
        z = np.clip(np.asarray(point, np.float64).reshape(1, 2), self.lo, self.hi)
        c = to_pixels(z, self.size, self.lo, self.hi)
        out = self.base.astype(np.float32)
        stamp_discs(out, c, radius + 1.5, MARKER)
        stamp_discs(out, c, radius, (255, 255, 255))
        stamp_discs(out, c, radius * 0.45, MARKER)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
