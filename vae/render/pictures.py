"""Pictures drawn with PIL (plotly's figures are in figures.py): the scatter panel (codes as dots by label,
the prior's circles) and its marked point, a dataset's samples by class, the fixed GIF palette, and a
traversal as an animated GIF. vae/training/replay.py draws the replay's frames with these."""
from __future__ import annotations

import io

import numpy as np
import torch

from vae.render.images import tile_images, tile_rows, to_pictures, upscale_nearest
from vae.render.palette import PALETTE

PANEL = 448  # px per panel: the 224 px manifold doubled, and the scatter at the same size
HEADER, FOOTER, MARGIN = 40, 34, 12


def font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font: no system fonts needed
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def hex_rgb(color: str) -> tuple[int, int, int]:
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
        draw.ellipse([xi - dot, yi - dot, xi + dot, yi + dot], fill=hex_rgb(PALETTE[int(label) % len(PALETTE)]))
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


def class_samples(data, per_class: int = 8, max_classes: int = 8, min_px: int = 56) -> np.ndarray:
    """uint8 picture (H, W[, 3]): the first per_class images of each of the first max_classes classes of a
    dataset, one row per class, each enlarged to at least min_px a side (a 28 px image: 2x)."""
    rows = []
    for label in range(min(max_classes, len(data.class_names))):
        picks = torch.nonzero(data.labels == label)[:per_class, 0]
        row = to_pictures(data.images[picks].float().div(255))
        if len(row) < per_class:  # a small class: blank tiles
            row = np.concatenate([row, np.ones((per_class - len(row), *row.shape[1:]), np.float32)])
        rows.append(row)
    tiled = tile_rows(rows, gap=2)
    return upscale_nearest(tiled, max(1, -(-min_px // max(data.images.shape[2:]))))


def gif_palette(colour: bool = False):
    """One fixed 256-colour palette for every frame: the class colours exactly, the rest grays (the
    manifold, the text), so no class colour is merged with another and none flickers between frames;
    colour: 6 x 6 x 6 levels of RGB for a colour manifold, and fewer grays."""
    from PIL import Image


    colours = [hex_rgb(c) for c in PALETTE]
    if colour:
        levels = np.linspace(0, 255, 6).round().astype(int)
        colours += [(int(r), int(g), int(b)) for r in levels for g in levels for b in levels]
    colours += [(v, v, v) for v in np.linspace(0, 255, 256 - len(colours)).round().astype(int)]
    image = Image.new("P", (1, 1))
    image.putpalette([channel for rgb in colours for channel in rgb])
    return image


def traversal_gif(grid: np.ndarray, frame_ms: int = 90, min_px: int = 84) -> bytes:
    """An animated GIF (looping) of a traversal grid (R, S, H, W[, 3]) floats in [0, 1] (latent.decode_traversals):
    every row's picture side by side, each frame one step of the sweep, out and back."""
    from PIL import Image


    rows, steps = grid.shape[:2]
    colour = grid.ndim == 5
    factor = max(1, -(-min_px // max(grid.shape[2:4])))
    order = list(range(steps)) + list(range(steps - 2, 0, -1))  # there and back, without repeating the ends
    palette = gif_palette(colour)
    dither = Image.Dither.FLOYDSTEINBERG if colour else Image.Dither.NONE
    frames = [Image.fromarray(upscale_nearest(tile_images(grid[None, :, s], gap=2), factor)).convert("RGB").quantize(
        palette=palette, dither=dither) for s in order]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0,
                   optimize=True, disposal=1)
    return buffer.getvalue()
