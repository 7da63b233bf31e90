"""Datasets held in memory as uint8 tensors: the MNIST family through torchvision, plus built-in shapes.

`load_dataset` loads each (name, split, folder) once per process and hands every caller the same
object, so callers must treat a dataset and its tensors as read-only (slice or copy, never write).
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist", "shapes")
SPLITS = ("train", "test")
DATA_DIR_ENV = "VAE_DATA_DIR"
ALLOWED_DATA_DIRS_ENV = "VAE_DATA_DIRS"  # more folders a browser may point the server at, os.pathsep-separated
IMAGE_SIZE = 28

# registry name -> (torchvision class, which is also its folder under the root; readable title; class names)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST", [str(d) for d in range(10)]),
    "fashion-mnist": ("FashionMNIST", "Fashion-MNIST", [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]),
    "kmnist": ("KMNIST", "KMNIST", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
}
# torchvision's MNIST._check_exists wants all four, whichever split is asked for.
_RAW_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)

SHAPE_NAMES = ("square", "circle", "triangle", "cross", "heart")
_SHAPES_SPLITS = {"train": (20_000, 0), "test": (4_000, 1)}  # split -> (size, seed)
_SHAPES_CACHE_VERSION = "v1"  # bump when the rendering changes, so old .npz files are ignored
_SCALE_RANGE = (4.0, 8.0)  # radius of the circle that holds the shape, pixels
_POS_RANGE = (9.0, 19.0)  # centre coordinate, pixels; 8 px radius + 1 px margin stays inside 28
_SUPERSAMPLE = 4  # render at 4x per axis, then average 4x4 blocks (anti-aliasing)
_CHUNK = 512  # images rendered at once: keeps the (chunk, 112, 112) temporaries near 25 MB each

_CACHE: dict[tuple[str, str, str | None], "InMemoryDataset"] = {}
_LOCK = threading.Lock()  # the app may load from several script threads at once


@dataclass(eq=False, repr=False)
class InMemoryDataset:
    """One split of one dataset, entirely in memory. Shared between callers: do not mutate."""

    name: str
    split: str
    images: torch.Tensor  # uint8 (N, 1, 28, 28)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    factors: dict[str, torch.Tensor]  # float32 (N,) each; {} when unknown
    source: str
    _float: torch.Tensor | None = field(default=None, init=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"InMemoryDataset({self.name!r}, {self.split!r}, n={len(self)}, source={self.source!r})"

    def float_images(self) -> torch.Tensor:
        """float32 (N, 1, 28, 28) in [0, 1], computed once and kept."""
        if self._float is None:
            self._float = self.images.to(torch.float32).div_(255.0)
        return self._float

    def subset(self, n: int) -> InMemoryDataset:
        """The first n items (all of them when n >= len); shares memory with this dataset."""
        if n < 0:
            raise ValueError(f"A subset needs a size of 0 or more, not {n}.")
        sub = InMemoryDataset(
            self.name, self.split, self.images[:n], self.labels[:n], list(self.class_names),
            {key: value[:n] for key, value in self.factors.items()}, self.source,
        )
        if self._float is not None:
            sub._float = self._float[:n]
        return sub


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on disk and could not be fetched; the message says what to do."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The argument, else $VAE_DATA_DIR, else ./data (relative to the working directory), made absolute."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or "data"
    try:
        return Path(data_dir).expanduser().resolve()
    except (OSError, ValueError):  # unresolvable (a NUL byte, a loop): keep it as typed, loading will say why
        return Path(os.path.abspath(data_dir))


class DataFolderRefused(ValueError):
    """A data folder typed in the browser that the server's operator did not allow; the message says which are."""


def allowed_data_dirs() -> list[Path]:
    """The folders (and those below them) a browser may choose: the configured data folder ($VAE_DATA_DIR,
    else ./data) and any listed in $VAE_DATA_DIRS."""
    listed = [p for p in os.environ.get(ALLOWED_DATA_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [resolve_data_dir(None), *(resolve_data_dir(p) for p in listed)]


def check_data_dir(typed: str) -> Path:
    """The folder typed, resolved, when it is an allowed one or below one; else DataFolderRefused. Nothing
    is created: the folder need not exist yet."""
    if "\0" in typed or not typed.strip():
        raise DataFolderRefused("Type a folder path (without control characters), e.g. " + str(resolve_data_dir(None)) + ".")
    folder = resolve_data_dir(typed.strip())
    allowed = allowed_data_dirs()
    if not any(folder == root or root in folder.parents for root in allowed):
        raise DataFolderRefused(f"{folder} is not a data folder this server allows; use {allowed[0]} or a folder below it "
                                f"(the server's operator can allow more with ${ALLOWED_DATA_DIRS_ENV}).")
    return folder


def clear_cache() -> None:
    """Forget every dataset loaded in this process (for tests; disk caches stay)."""
    with _LOCK:
        _CACHE.clear()


class UnknownDataset(DatasetUnavailable, ValueError):
    """A dataset name that is not one of ours (a checkpoint may carry any as a label): never a path."""


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise UnknownDataset(f"Unknown dataset {str(name)[:64]!r}: its images cannot be loaded here; the datasets this "
                             f"app knows are {', '.join(DATASET_NAMES)}.")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")


def _raw_folder(name: str, data_dir: str | os.PathLike | None) -> Path:
    return resolve_data_dir(data_dir) / _TORCHVISION[name][0] / "raw"


def expected_files(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The raw files torchvision reads for `name` (both splits); [] for the built-in shapes."""
    _check_name(name)
    if name == "shapes":
        return []
    folder = _raw_folder(name, data_dir)
    return [folder / file for file in _RAW_FILES]


def dataset_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """True when the files are already on disk (never downloads); always True for shapes."""
    try:
        return all(path.is_file() for path in expected_files(name, data_dir))
    except (OSError, ValueError):  # a folder name too long for the system, or with a NUL byte in it
        return False


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> InMemoryDataset:
    """Load one split, once per process; raises DatasetUnavailable when the files cannot be had."""
    _check_name(name)
    _check_split(split)
    root = resolve_data_dir(data_dir)
    # Shapes are the same whatever the folder (it only holds their disk cache), so one key serves all.
    key = (name, split, None if name == "shapes" else str(root))
    with _LOCK:
        dataset = _CACHE.get(key)
        if dataset is None:
            if name == "shapes":
                dataset = _load_shapes(split, root)
            else:
                dataset = _load_torchvision(name, split, root, download)
            _CACHE[key] = dataset
    return dataset


# --- torchvision datasets -------------------------------------------------------------------------


def _unavailable_message(name: str, root: Path, download: bool, error: BaseException | None) -> str:
    folder, title, _ = _TORCHVISION[name]
    raw = root / folder / "raw"
    files = ", ".join(_RAW_FILES)
    missing = not dataset_available(name, root)
    if missing and download:
        first = (f"{title} could not be downloaded into {raw} (is there a network connection?), "
                 f"so the files torchvision expects there are missing: {files}.")
    elif missing:
        first = f"{title} is not in {raw}: torchvision expects the files {files} there."
    else:
        reason = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "unknown error"
        first = (f"{title} files in {raw} could not be read ({type(error).__name__}: {reason}); "
                 f"torchvision expects intact {files} there.")
    return (f"{first} Point --data-dir or {DATA_DIR_ENV} at the folder that holds {folder}/raw, "
            f"or pick the built-in 'shapes' dataset, which needs no files.")


def _load_torchvision(name: str, split: str, root: Path, download: bool) -> InMemoryDataset:
    folder, _, class_names = _TORCHVISION[name]
    try:
        from torchvision import datasets  # imported here: slow, and shapes never needs it

        loaded = getattr(datasets, folder)(str(root), train=(split == "train"), download=download)
        images, labels = loaded.data, loaded.targets  # uint8 (N, 28, 28), int64 (N,)
    except Exception as error:  # missing files, no network, truncated files: all become one readable error
        raise DatasetUnavailable(_unavailable_message(name, root, download, error)) from error
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE) or len(labels) != len(images):
        bad = ValueError(f"images {tuple(images.shape)} {images.dtype}, {len(labels)} labels")
        raise DatasetUnavailable(_unavailable_message(name, root, download, bad))
    return InMemoryDataset(
        name=name, split=split, images=images.unsqueeze(1), labels=labels.to(torch.int64),
        class_names=list(class_names), factors={}, source=f"torchvision {folder} from {root / folder / 'raw'}",
    )


# --- built-in shapes ------------------------------------------------------------------------------
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
    ss, size = _SUPERSAMPLE, IMAGE_SIZE
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


def make_shapes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """n images uint8 (n,1,28,28), labels int64 (n,) and factors, all drawn uniformly from a seed."""
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
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        images[part] = _render(labels[part], *(factors[k][part] for k in ("scale", "rotation", "x", "y")))
    return (
        torch.from_numpy(images).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        {key: torch.from_numpy(value) for key, value in factors.items()},
    )


def _shapes_cache_path(split: str, root: Path) -> Path:
    return root / "shapes" / f"shapes-{_SHAPES_CACHE_VERSION}-{split}.npz"


def _read_shapes_cache(path: Path, n: int, seed: int):
    """(images, labels, factors) from a disk cache, or None if it is absent, unreadable or wrong."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
            factors = {key: npz[f"factor_{key}"] for key in ("shape", "scale", "rotation", "x", "y")}
            stored_seed = int(npz["seed"])
    except Exception:  # missing, truncated, or written by something else: regenerate instead
        return None
    ok = (
        stored_seed == seed
        and images.dtype == np.uint8 and images.shape == (n, 1, IMAGE_SIZE, IMAGE_SIZE)
        and labels.dtype == np.int64 and labels.shape == (n,)
        and all(f.dtype == np.float32 and f.shape == (n,) for f in factors.values())
    )
    if not ok:
        return None
    return torch.from_numpy(images), torch.from_numpy(labels), {k: torch.from_numpy(v) for k, v in factors.items()}


def _write_shapes_cache(path: Path, seed: int, images, labels, factors) -> None:
    """Write atomically (temp file + rename); skip silently where the folder is not writable."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, images=images.numpy(), labels=labels.numpy(), seed=np.int64(seed),
                     **{f"factor_{key}": value.numpy() for key, value in factors.items()})
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _load_shapes(split: str, root: Path) -> InMemoryDataset:
    n, seed = _SHAPES_SPLITS[split]
    path = _shapes_cache_path(split, root)
    arrays = _read_shapes_cache(path, n, seed)
    if arrays is None:
        arrays = make_shapes(n, seed)
        _write_shapes_cache(path, seed, *arrays)
    images, labels, factors = arrays
    return InMemoryDataset(
        name="shapes", split=split, images=images, labels=labels, class_names=list(SHAPE_NAMES),
        factors=factors, source=f"built-in shapes (generated, seed {seed})",
    )


# --- batching -------------------------------------------------------------------------------------


def batch_iterator(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One shuffled epoch of int64 index tensors; the last, smaller batch is kept."""
    if n < 0 or batch_size < 1:
        raise ValueError(f"Batches need n >= 0 and batch_size >= 1; got n={n}, batch_size={batch_size}.")
    order = torch.randperm(n, generator=generator)  # drawn now, so the generator advances at the call
    return (order[start:start + batch_size] for start in range(0, n, batch_size))
