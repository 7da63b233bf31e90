"""Loading a dataset by name: each (name, split, folder, size) once per process, every caller handed the same
object, so a dataset and its tensors are read-only (slice or copy, never write). What a dataset is and how
it is read comes from its DatasetSpec (vae/data/registry.py, filled by vae/data/catalog.py)."""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

from vae.data.memory import InMemoryDataset, describe_shape
from vae.data.places import DATA_DIR_ENV, resolve_data_dir
from vae.data.registry import DatasetUnavailable, LoadRequest, dataset_spec

SPLITS = ("train", "test")
SIZED_KEPT = 3  # datasets made to a size (image folders: both splits at one size) held in memory at once
_CACHE: dict[tuple, InMemoryDataset] = {}
# The app loads from several script threads at once. _LOCK guards only the two dicts and is never held
# while a dataset loads; each dataset (name, folder, size) has its own lock while it loads, so a folder
# that takes a minute to decode holds up only the sessions that asked for that same folder.
_LOCK = threading.Lock()
_LOADING: dict[tuple, list] = {}  # key without its split -> [lock, threads using it]; gone when none is


def clear_cache() -> None:
    """Forget every dataset loaded in this process (for tests; disk caches stay)."""
    with _LOCK:
        _CACHE.clear()


@contextlib.contextmanager
def _loading(key: tuple) -> Iterator[None]:
    """Holds the lock of one dataset, made on first use and dropped when no thread wants it, so the dict
    stays as small as the loads in progress."""
    with _LOCK:
        entry = _LOADING.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _LOADING[key]


def _cached(key: tuple) -> InMemoryDataset | None:
    with _LOCK:
        return _CACHE.get(key)


def _keep(key: tuple, loaded) -> InMemoryDataset:
    """Caches every split a loader gave (a folder gives both at once); the one asked for."""
    with _LOCK:
        for part in loaded if isinstance(loaded, tuple) else (loaded,):
            _CACHE[key[:1] + (part.split,) + key[2:]] = part
        dataset = _CACHE[key]
        if key[3] is not None:  # a user previewing folder after folder: keep the newest
            sized = [k for k in _CACHE if k[3] is not None]
            for old in sized[:-len(SPLITS) * SIZED_KEPT]:
                del _CACHE[old]
    return dataset


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")


def dataset_shape(name: str, image_size: int = 32, channels: int = 3) -> tuple[int, int, int]:
    """(C, H, W) of a dataset's images, known without loading them; a folder's are the size and channels
    its images are made to."""
    return dataset_spec(name).image_shape(image_size, channels)


def expected_files(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The files (or folders) a dataset is read from; [] for a built-in one. A folder dataset's is the folder
    itself: data_dir holds one subfolder of images per class."""
    return dataset_spec(name).expected(resolve_data_dir(data_dir))


def dataset_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """True when the files are already on disk (never downloads); always True for a built-in dataset."""
    try:
        return dataset_spec(name).on_disk(resolve_data_dir(data_dir))
    except (OSError, ValueError):  # a folder name too long for the system, or with a NUL byte in it
        return False


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    image_size: int = 32,
    channels: int = 3,
) -> InMemoryDataset:
    """Load one split, once per process; raises DatasetUnavailable when the files cannot be had.
    image_size, channels: what a folder's images are made to (other datasets have their own shape)."""
    spec = dataset_spec(name)
    _check_split(split)
    root = resolve_data_dir(data_dir)
    size = (image_size, channels) if spec.shape is None else None
    key = (name, split, None if spec.built_in else str(root), size)  # a built-in dataset is the same anywhere
    dataset = _cached(key)
    if dataset is not None:
        return dataset
    with _loading(key[:1] + key[2:]):  # both splits under one lock: a folder loads them together
        dataset = _cached(key)  # another thread may have loaded it while this one waited
        if dataset is None:
            dataset = _keep(key, spec.load(LoadRequest(split, root, download, image_size, channels)))
    return dataset


def load_for(train_cfg, split: str, data_dir: str | os.PathLike | None = None, download: bool = False,
             image_shape: tuple[int, int, int] | None = None) -> InMemoryDataset:
    """One split of the data a TrainConfig names: its dataset, from data_dir (else the config's own folder),
    a folder's images made to its size and channels. image_shape: the model's (C, H, W), which the images
    must have (DatasetUnavailable, one sentence, when they do not)."""
    data = load_dataset(train_cfg.dataset, split, data_dir if data_dir is not None else train_cfg.data_dir, download,
                        train_cfg.image_size, train_cfg.channels)
    if image_shape is not None and data.image_shape != tuple(image_shape):
        raise DatasetUnavailable(f"The {train_cfg.dataset} images here are {describe_shape(data.image_shape)} but the model "
                                 f"was made for {describe_shape(image_shape)}; load the data it was trained on.")
    return data


def _special(path: Path) -> bool:
    """Whether something other than a file or folder (a pipe, a device, a dangling link) is at path: the data
    is there but unreadable, not missing."""
    return os.path.lexists(path) and not path.is_file() and not path.is_dir()


def unavailable_message(name: str, root: Path, download: bool, error: BaseException | None) -> str:
    """One sentence naming the folder and the files a dataset needs, and what to do instead."""
    spec = dataset_spec(name)
    paths = spec.expected(root)
    raw = paths[0].parent
    files = ", ".join(p.name for p in paths)
    missing = not dataset_available(name, root) and not any(_special(p) for p in paths)
    if missing and download:
        first = (f"{spec.title} could not be downloaded into {raw} (is there a network connection?), "
                 f"so the files it is read from are missing there: {files}.")
    elif missing:
        first = f"{spec.title} is not in {raw}: it is read from the files {files} there."
    else:
        reason = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "unknown error"
        first = (f"{spec.title} files in {raw} could not be read ({type(error).__name__}: {reason[:200]}); "
                 f"it needs intact {files} there.")
    holder = raw.relative_to(root) if raw != root and root in raw.parents else raw.name
    return (f"{first} Point --data-dir or {DATA_DIR_ENV} at the folder that holds {holder}, "
            f"or pick the built-in 'shapes' dataset, which needs no files.")
