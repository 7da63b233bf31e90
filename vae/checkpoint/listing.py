"""Checkpoints by name and by folder: the path a typed name may have (never outside the folder), a name
reserved for a new run (vae/checkpoint/reservation.py), and the folder's listing with what each file holds
(cached per file version)."""
from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vae.checkpoint.files import load, remove_stale_temp_files
from vae.checkpoint.format import Checkpoint, CheckpointError, changes_of
from vae.checkpoint.reservation import CheckpointExists, CheckpointInUse, Reservation, already_exists, reserve

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def checkpoint_path(name: str, directory: str | os.PathLike, overwrite: bool = False) -> Path:
    """checkpoints/<name>.pt for a user-given name, refusing anything that could escape the folder."""
    stem = name.strip()
    if stem.lower().endswith(".pt"):
        stem = stem[:-3]
    if not NAME_PATTERN.fullmatch(stem):  # fullmatch: '$' would let a trailing newline through
        raise CheckpointError(
            "Use a checkpoint name of 1-64 letters, digits, '-' or '_' that starts with a letter or digit, like mnist-2d."
        )
    directory = Path(directory).resolve()
    path = (directory / f"{stem}.pt").resolve()
    if path.parent != directory:  # belt and braces: the pattern already forbids separators and dots
        raise CheckpointError("That checkpoint name points outside the checkpoints folder; choose a plain name.")
    if path.exists() and not overwrite:
        raise already_exists(stem)
    return path


def reserve_checkpoint(name: str, directory: str | os.PathLike) -> Reservation:
    """checkpoints/<name>.pt for a new run, reserved: refused in one sentence when the file exists or another
    run is writing it."""
    return reserve(checkpoint_path(name, directory), new=True)


def unique_checkpoint_path(base: str, directory: str | os.PathLike) -> Reservation:
    """The first checkpoints/<base>[-N].pt that is neither on disk nor reserved by another run, reserved as it
    is found (two runs starting at once get two names); never an existing file."""
    directory = Path(directory)
    for i in range(1, 10_000):
        stem = base if i == 1 else f"{base}-{i}"
        if (directory / f"{stem}.pt").exists():
            continue
        try:
            return reserve_checkpoint(stem, directory)
        except (CheckpointExists, CheckpointInUse):
            continue
    raise CheckpointError(f"Too many checkpoints named {base!r}; delete some old ones from {directory}.")


@dataclass
class CheckpointInfo:
    path: str
    name: str
    dataset: str = ""
    latent_dim: int = 0
    arch: str = ""
    epochs: int = 0
    test_elbo: float = math.nan
    created: str = ""
    notes: str = ""
    planned_epochs: int = 0
    resumable: bool = False
    changes: list = field(default_factory=list)  # settings changed mid-run: the history's change records
    error: str = ""  # set when the file could not be read; the other fields are then empty


def describe(ckpt: Checkpoint) -> CheckpointInfo:
    return CheckpointInfo(
        path=ckpt.path,
        name=ckpt.name,
        dataset=ckpt.dataset,
        latent_dim=ckpt.model_config.latent_dim,
        arch=ckpt.model_config.arch,
        epochs=ckpt.epoch,
        test_elbo=ckpt.test_metrics.get("elbo", math.nan),
        created=ckpt.created,
        notes=ckpt.notes,
        planned_epochs=ckpt.train_config.epochs if ckpt.train_config else ckpt.epoch,
        resumable=ckpt.resumable,
        changes=changes_of(ckpt.history),
    )


_info_cache: dict[str, tuple[tuple[int, int], CheckpointInfo]] = {}  # path -> ((mtime_ns, size), info)
_info_lock = threading.Lock()  # every browser tab lists from its own thread


def list_checkpoints(directory: str | os.PathLike) -> list[CheckpointInfo]:
    """Metadata of every *.pt in directory, newest first; unreadable files carry an error.

    Cached per path, one entry each: a file rewritten every epoch replaces its entry instead of
    adding one, and a deleted file's entry goes with it."""
    directory = Path(directory)
    try:
        if not directory.is_dir():
            return []
    except (OSError, ValueError):  # a name too long for the system, or with a NUL byte in it
        return []
    remove_stale_temp_files(directory)
    infos = []
    for path in directory.glob("*.pt"):
        try:
            info = path.stat()
        except OSError:
            continue
        version = (info.st_mtime_ns, info.st_size)
        with _info_lock:
            cached = _info_cache.get(str(path))
        if cached is None or cached[0] != version:
            try:
                described = describe(load(path))
            except CheckpointError as e:
                described = CheckpointInfo(path=str(path), name=path.stem, error=str(e))
            cached = (version, described)
            with _info_lock:
                _info_cache[str(path)] = cached
        infos.append(cached[1])
    with _info_lock:  # files deleted from this folder leave the cache too
        listed = {i.path for i in infos}
        for gone in [k for k in _info_cache if Path(k).parent == directory and k not in listed]:
            del _info_cache[gone]
    return sorted(infos, key=lambda i: (i.created, i.name), reverse=True)
