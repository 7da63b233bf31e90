"""Disk caches of decoded images (the shapes' renderings, CelebA's crops, a folder's images): numpy .npz
files written atomically and read back without pickle. A cache is optional: a folder that cannot be
written is skipped, and a file that cannot be read is treated as absent."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes arrays to path atomically (temp file, then rename); does nothing where that fails."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except (OSError, ValueError):  # read-only or full disk, or a name numpy cannot store
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def read_npz(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays named by keys from an .npz file, or None when it is missing, unreadable or lacks one."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except Exception:  # missing, truncated, or written by something else: the caller rebuilds it
        return None
