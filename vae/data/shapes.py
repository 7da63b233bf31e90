"""The built-in shapes: 28x28 anti-aliased squares, circles, triangles, crosses and hearts drawn from known
factors (shape, scale, rotation, x, y; and hue in the colour variant), generated from a seed in about two
seconds with no download, and kept as a cache under the data folder."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from vae.data.cachefile import read_npz, write_npz
from vae.data.memory import InMemoryDataset

SIZE = 28
SHAPE_NAMES = ("square", "circle", "triangle", "cross", "heart")
FACTORS = ("shape", "scale", "rotation", "x", "y", "hue")  # hue: the colour variant only
SPLITS = {"train": (20_000, 0), "test": (4_000, 1)}  # split -> (size, seed)
_CACHE_VERSION = "v1"  # bump when the rendering changes, so old .npz files are ignored
_SCALE_RANGE = (4.0, 8.0)  # radius of the circle that holds the shape, pixels
_POS_RANGE = (9.0, 19.0)  # centre coordinate, pixels; 8 px radius + 1 px margin stays inside 28
_SUPERSAMPLE = 4  # render at 4x per axis, then average 4x4 blocks (anti-aliasing)
_CHUNK = 512  # images rendered at once: keeps the (chunk, 112, 112) temporaries near 25 MB each
# Each shape is drawn in its own frame (u right, v up) inside the unit circle, with its area centroid
# at the origin, so the "x", "y" factors are the centre of mass and "scale" is the radius that holds it.
_HEART_CY = 0.2935  # area centroid of the curve (x²+y²-1)³ = x²y³ sits at y = 0.2935 ...
_HEART_R = 1.30  # ... and its farthest point (the tip, y = -1) is 1.2935 from there


def _inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.7  # corners at radius 0.99


def _inside_circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 0.8**2  # about the square's area


def _inside_triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, apex up, circumradius 1: below the two slanted edges and above v = -0.5.
    return (v >= -0.5) & (0.5 * v + (math.sqrt(3) / 2) * np.abs(u) <= 0.5)


def _inside_cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return (np.minimum(au, av) <= 0.3) & (np.maximum(au, av) <= 0.95)  # bar corners at radius 0.996


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = u * _HEART_R, v * _HEART_R + _HEART_CY
    r = x * x + y * y - 1.0
    return r * r * r <= x * x * y * y * y


_INSIDE = (_inside_square, _inside_circle, _inside_triangle, _inside_cross, _inside_heart)


def _render(labels: np.ndarray, scale: np.ndarray, rotation: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """uint8 (k, 28, 28) images, one shape each; all inputs are (k,) arrays."""
    ss, size = _SUPERSAMPLE, SIZE
    sub = ((np.arange(size * ss, dtype=np.float32) + 0.5) / ss)  # sub-pixel centres, in pixels
    out = np.zeros((len(labels), size, size), np.uint8)
    for shape_id, inside in enumerate(_INSIDE):
        idx = np.flatnonzero(labels == shape_id)
        if idx.size == 0:
            continue
        # Rotate the image frame by -rotation (counter-clockwise on screen) and divide by scale.
        cos = (np.cos(rotation[idx]) / scale[idx]).astype(np.float32)[:, None, None]
        sin = (np.sin(rotation[idx]) / scale[idx]).astype(np.float32)[:, None, None]
        dx = sub[None, None, :] - x[idx, None, None]  # (m, 1, 112)
        dy = y[idx, None, None] - sub[None, :, None]  # (m, 112, 1), pointing up
        hit = inside(cos * dx + sin * dy, cos * dy - sin * dx)  # bool (m, 112, 112)
        cover = hit.reshape(idx.size, size, ss, size, ss).sum(axis=(2, 4), dtype=np.uint16)  # 0..16
        out[idx] = (cover * 255 + ss * ss // 2) // (ss * ss)
    return out


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """(k,) hues in [0, 1) -> (k, 3) float32 RGB at full saturation and value (HSV's hexcone)."""
    h6 = (np.asarray(hue, np.float64) % 1.0) * 6.0
    channel = np.abs((h6[:, None] + np.array([0.0, 4.0, 2.0])) % 6.0 - 3.0) - 1.0  # (k, 3) R, G, B
    return np.clip(channel, 0.0, 1.0).astype(np.float32)


def make_shapes(n: int, seed: int, colour: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """n images uint8 (n, C, 28, 28), labels int64 (n,) and factors, all drawn uniformly from a seed.

    colour: C = 3, each shape painted in one hue on black, and "hue" (in [0, 1)) joins the factors;
    the hue is drawn after the rest, so the same seed draws the same shapes in both variants."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPE_NAMES), size=n)
    # float32 first, so the factors handed out are exactly the ones rendered.
    factors = {
        "shape": labels.astype(np.float32),
        "scale": rng.uniform(*_SCALE_RANGE, size=n).astype(np.float32),  # radius, pixels
        "rotation": rng.uniform(0.0, 2 * math.pi, size=n).astype(np.float32),  # radians, counter-clockwise
        "x": rng.uniform(*_POS_RANGE, size=n).astype(np.float32),  # column of the centre of mass, pixels
        "y": rng.uniform(*_POS_RANGE, size=n).astype(np.float32),  # row, pixels from the top edge
    }
    images = np.empty((n, SIZE, SIZE), np.uint8)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        images[part] = _render(labels[part], *(factors[k][part] for k in ("scale", "rotation", "x", "y")))
    if colour:
        factors["hue"] = rng.uniform(0.0, 1.0, size=n).astype(np.float32)
        rgb = hue_to_rgb(factors["hue"])  # (n, 3)
        painted = np.rint(images[:, None].astype(np.float32) * rgb[:, :, None, None]).astype(np.uint8)  # (n, 3, 28, 28)
    else:
        painted = images[:, None]
    return (
        torch.from_numpy(np.ascontiguousarray(painted)),
        torch.from_numpy(labels.astype(np.int64)),
        {key: torch.from_numpy(value) for key, value in factors.items()},
    )


def cache_path(split: str, root: Path, colour: bool = False) -> Path:
    """Where a split's rendering is kept under the data folder (a cache: regenerated when absent or wrong)."""
    return root / "shapes" / f"shapes{'-color' if colour else ''}-{_CACHE_VERSION}-{split}.npz"


def _read_cache(path: Path, n: int, seed: int, channels: int):
    """(images, labels, factors) from a disk cache, or None if it is absent, unreadable or wrong."""
    keys = FACTORS[: 5 + (channels == 3)]
    arrays = read_npz(path, ("images", "labels", "seed", *(f"factor_{key}" for key in keys)))
    if arrays is None:
        return None
    images, labels = arrays["images"], arrays["labels"]
    factors = {key: arrays[f"factor_{key}"] for key in keys}
    ok = (
        arrays["seed"].shape == () and int(arrays["seed"]) == seed
        and images.dtype == np.uint8 and images.shape == (n, channels, SIZE, SIZE)
        and labels.dtype == np.int64 and labels.shape == (n,)
        and all(f.dtype == np.float32 and f.shape == (n,) for f in factors.values())
    )
    if not ok:
        return None
    return torch.from_numpy(images), torch.from_numpy(labels), {k: torch.from_numpy(v) for k, v in factors.items()}


def _write_cache(path: Path, seed: int, images, labels, factors) -> None:
    write_npz(path, {"images": images.numpy(), "labels": labels.numpy(), "seed": np.int64(seed),
                     **{f"factor_{key}": value.numpy() for key, value in factors.items()}})


def load(split: str, root: Path, colour: bool = False) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], int]:
    """(images, labels, factors, seed) of one split, from the cache under root when it holds them."""
    n, seed = SPLITS[split]
    path = cache_path(split, root, colour)
    arrays = _read_cache(path, n, seed, 3 if colour else 1)
    if arrays is None:
        arrays = make_shapes(n, seed, colour)
        _write_cache(path, seed, *arrays)
    return (*arrays, seed)


def load_dataset(request, colour: bool = False):
    """One split of the built-in shapes as an InMemoryDataset (request: a vae.data.registry.LoadRequest; the
    data folder only holds their disk cache)."""
    images, labels, factors, seed = load(request.split, request.root, colour)
    return InMemoryDataset(
        name="shapes-color" if colour else "shapes", split=request.split, images=images, labels=labels,
        class_names=list(SHAPE_NAMES), factors=factors,
        source=f"built-in {'colour ' if colour else ''}shapes (generated, seed {seed})",
    )


def load_colour_dataset(request):
    """One split of the colour shapes: each shape painted in a hue, a sixth factor."""
    return load_dataset(request, colour=True)
