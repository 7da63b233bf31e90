"""The disk cache of a decoded image folder (vae/data/folders.py): one .npz per folder and settings, named by
the sha256 of everything its arrays depend on, and read back only when they are what that folder makes."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from vae.data.cachefile import read_npz, write_npz

_TENSORS = ("train_images", "train_labels", "test_images", "test_labels")


def cached_path(cache_dir: str | os.PathLike, depends_on: list) -> Path:
    """cache_dir/<sha256 of depends_on as JSON>.npz; depends_on: settings, limits, every file's stamp."""
    payload = json.dumps(depends_on)  # ensure_ascii keeps undecodable file names hashable
    return Path(cache_dir) / f"{hashlib.sha256(payload.encode('ascii')).hexdigest()}.npz"


def read_cached(path: Path, class_names: list[str], size: int, channels: int) -> dict | None:
    """The FolderImages fields stored at path, or None when missing, unreadable, or not what this folder makes."""
    arrays = read_npz(path, (*_TENSORS, "class_names", "skipped", "skipped_examples"))
    if arrays is None or not _consistent(arrays, class_names, size, channels):
        return None
    return dict(
        **{key: torch.from_numpy(arrays[key]) for key in _TENSORS},
        class_names=list(class_names), skipped=int(arrays["skipped"]),
        skipped_examples=[str(name) for name in arrays["skipped_examples"]],
    )


def _consistent(arrays: dict, class_names: list[str], size: int, channels: int) -> bool:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (channels, size, size):
            return False
        if labels.dtype != np.int64 or labels.shape != (len(images),):
            return False
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            return False
    return ([str(name) for name in arrays["class_names"]] == list(class_names)
            and arrays["skipped"].shape == () and arrays["skipped_examples"].ndim == 1)


def write_cached(path: Path, fields: dict) -> None:
    """The FolderImages fields into path (atomically; nothing where the folder cannot be written)."""
    write_npz(path, {**{key: fields[key].numpy() for key in _TENSORS},
                     "class_names": np.array(fields["class_names"], dtype=str), "skipped": np.int64(fields["skipped"]),
                     "skipped_examples": np.array(fields["skipped_examples"], dtype=str)})
