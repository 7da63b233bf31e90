"""Arrays to pictures: float images in [0, 1] to uint8, tiled grids, nearest-neighbour enlargement, PNG
bytes. Pictures are (H, W) grey or (H, W, 3) colour everywhere."""
from __future__ import annotations

import io
import math

import numpy as np
import torch


def to_pictures(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B, C, H, W) images -> pictures as they are drawn: (B, H, W) grey or (B, H, W, 3) colour, float32
    (uint8 stays uint8). Every picture function here takes and gives these."""
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.shape[1] == 1:
        return images[:, 0]
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))


def tile_images(images: np.ndarray, gap: int = 0, gap_value: float = 1.0) -> np.ndarray:
    """Pictures in a grid -> one uint8 picture. images: a grid (ny, nx, h, w[, 3]) float in [0, 1], or a flat
    stack (B, h, w[, 3]) as decode_codes gives, laid out near-square (columns = ceil(sqrt(B)), the last row
    filled with gap_value). Out: (ny*h + (ny-1)*gap, nx*w + (nx-1)*gap[, 3]).

    gap: pixels of `gap_value` between neighbouring tiles (0 for the manifold, whose cells must
    stay exactly h x w so axis positions map to cells).
    """
    images = np.asarray(images)
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3 and images.shape[-2] != 3):
        images = _as_grid(images, gap_value)  # a flat stack: (B, h, w, 3) is colour, as no grey tile is 3 px wide
    ny, nx, h, w = images.shape[:4]
    colour = images.shape[4:]  # () grey, (3,) RGB
    if gap <= 0:
        return to_uint8(np.swapaxes(images, 1, 2).reshape(ny * h, nx * w, *colour))
    out = np.full((ny * h + (ny - 1) * gap, nx * w + (nx - 1) * gap, *colour), gap_value, np.float32)
    for row in range(ny):
        for col in range(nx):
            top, left = row * (h + gap), col * (w + gap)
            out[top:top + h, left:left + w] = images[row, col]
    return to_uint8(out)


def _as_grid(stack: np.ndarray, fill: float) -> np.ndarray:
    """(B, h, w[, 3]) -> (rows, cols, h, w[, 3]), cols = ceil(sqrt(B)), the missing tiles `fill`."""
    b = max(len(stack), 1)
    cols = math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    grid = np.full((rows * cols, *stack.shape[1:]), fill, np.float32)
    grid[:len(stack)] = stack
    return grid.reshape(rows, cols, *stack.shape[1:])


def tile_rows(rows: list[np.ndarray] | tuple[np.ndarray, ...], gap: int = 0, gap_value: float = 1.0) -> np.ndarray:
    """Equal-length rows of (B, h, w[, 3]) pictures, stacked top to bottom -> one uint8 picture (see tile_images)."""
    return tile_images(np.stack([np.asarray(r, np.float32) for r in rows]), gap, gap_value)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], rounding."""
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """(H, W[, 3]) -> (H * factor, W * factor[, 3]): blocky nearest-neighbour enlargement, so a small
    picture stays crisp on a projector."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def upscale_factor(width_px: int, target_px: int, max_factor: int = 12) -> int:
    """The largest whole enlargement (1..max_factor) that keeps width_px * factor within target_px."""
    return int(max(1, min(max_factor, target_px // max(width_px, 1))))


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 (H, W) grayscale or (H, W, 3) RGB -> PNG file bytes (lossless)."""
    from PIL import Image  # PIL ships with torchvision and streamlit; imported here to keep import light

    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"PNG encoding wants uint8 pixels, got {image.dtype}; convert with to_uint8 first.")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
