"""Checkpoint files: a payload written atomically (a temp file renamed into place), and a file read back\nsafely: its size and zip directory checked first, then `torch.load(weights_only=True)` under a guard, then\nevery entry checked (format.validate)."""
from __future__ import annotations

import contextlib
import io
import os
import pickle
import stat
import tempfile
import time
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import torch

from vae.checkpoint.budget import fresh_copy
from vae.checkpoint.format import FORMAT, FORMAT_VERSION, Checkpoint, CheckpointError, validate
from vae.checkpoint.replay import REPLAY_KEY, pack_replay
from vae.config import TrainConfig
from vae.nets.model import VAE

MAX_CHECKPOINT_BYTES = 100 * 1024 * 1024  # far above any model this app trains; refuses giant uploads
TEMP_SUFFIX = ".tmp"  # a save in progress: .<name>-<random>.tmp beside the checkpoint
STALE_TEMP_SECONDS = 600  # a temp file this old belongs to a save that was killed
MAX_ARCHIVE_ENTRIES = 4096  # a checkpoint's zip holds one entry per tensor: a few hundred at most


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_payload(
    model: VAE,
    *,
    train_config: TrainConfig | None,
    dataset: str,
    class_names: list[str],
    history: list[dict],
    test_metrics: dict[str, float] | None = None,
    epoch: int = 0,
    step: int = 0,
    notes: str = "",
    optimizer_state: dict | None = None,
    rng_state: torch.Tensor | None = None,
    extras: dict[str, Any] | None = None,
) -> dict:
    """The plain dict stored on disk: only str, numbers, lists, dicts and tensors."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "train_config": None if train_config is None else train_config.to_dict(),
        "dataset": dataset,
        "class_names": list(class_names),
        "history": [dict(r) for r in history],
        "test_metrics": dict(test_metrics or {}),
        "epoch": int(epoch),
        "step": int(step),
        "created": _now(),
        "notes": notes,
        "extras": _pack_extras(extras),
    }
    if optimizer_state is not None:
        payload["optimizer_state"] = optimizer_state
    if rng_state is not None:
        payload["rng_state"] = rng_state
    return payload


def payload_bytes(payload: dict) -> bytes:
    """A payload as the bytes `save` would write, for a download: what `load` reads back."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save(payload: dict, path: str | os.PathLike) -> Path:
    """Writes atomically: a temp file in the same folder, fsync, then os.replace. A failed write (disk full,
    no permission, a quota) is one CheckpointError and leaves no temp file; the old checkpoint stays."""
    path = Path(path)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp_name, path)
        return path
    except (OSError, RuntimeError) as e:  # torch's zip writer reports a full disk as a RuntimeError
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        reason = (e.strerror or str(e)) if isinstance(e, OSError) else "the disk is full or the file could not be written"
        raise CheckpointError(
            f"Could not save the checkpoint to {path} ({reason}); free some disk space or pick a folder you can write to."
        ) from e


def remove_stale_temp_files(directory: Path, older_than_s: float = STALE_TEMP_SECONDS) -> int:
    """Deletes the temp files of saves that were killed before they finished (older than a save takes);
    returns how many."""
    removed, now = 0, time.time()
    for tmp in directory.glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
    return removed


def load(source: str | os.PathLike | bytes | BinaryIO, label: str | None = None) -> Checkpoint:
    """Reads and validates a checkpoint from a path, bytes or a binary file object."""
    if label is None and isinstance(source, (str, os.PathLike)):
        label = Path(source).name or f"The path {str(source)!r}"  # '' or '/' have no file name
    label = label or "The uploaded file"
    raw = _read_raw(source, label)
    payload = fresh_copy(_unpickle_safely(raw, label), label)  # bounded, and no tensor as the file laid it out
    ckpt = validate(payload, label)
    if isinstance(source, (str, os.PathLike)):
        ckpt.path = str(source)
    return ckpt


def _read_raw(source, label: str) -> bytes:
    try:
        if isinstance(source, (str, os.PathLike)):
            info = os.stat(source)
            if not stat.S_ISREG(info.st_mode):  # a folder, /dev/zero or a pipe: never read it
                raise CheckpointError(f"{label} is not a regular file; choose a .pt checkpoint file.")
            if info.st_size > MAX_CHECKPOINT_BYTES:
                raise CheckpointError(f"{label} is {info.st_size / 2**20:.0f} MB, over the "
                                      f"{MAX_CHECKPOINT_BYTES // 2**20} MB limit for checkpoints.")
            with open(source, "rb") as f:
                raw = f.read(MAX_CHECKPOINT_BYTES + 1)  # bounded even if the file grows meanwhile
        elif isinstance(source, (bytes, bytearray, memoryview)):
            raw = bytes(source)
        else:
            raw = source.read(MAX_CHECKPOINT_BYTES + 1)
    except (OSError, ValueError) as e:  # ValueError: a path with a NUL byte in it
        reason = getattr(e, "strerror", None) or e
        raise CheckpointError(f"{label} could not be read ({reason}); check that the file exists.") from e
    if len(raw) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{label} is over the {MAX_CHECKPOINT_BYTES // 2**20} MB limit for checkpoints.")
    return raw


def _check_archive(raw: bytes, label: str) -> None:
    """The zip's directory, read before torch reads any entry. torch.save writes a zip whose entries are
    all stored uncompressed, so a compressed entry, entries larger than the file, or thousands of them
    mean a file that would inflate far beyond its own size (a zip bomb): refused in milliseconds."""
    if not raw.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{label} was refused because it is not the zip-format PyTorch file that every "
                              "checkpoint is; only load checkpoints saved by Latent Explorer.")
    try:
        entries = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise CheckpointError(f"{label} is corrupt or truncated and cannot be read; save or download it again.") from None
    sizes = [e.file_size for e in entries]
    if (len(entries) > MAX_ARCHIVE_ENTRIES or sum(sizes) > len(raw)
            or any(e.compress_type != zipfile.ZIP_STORED for e in entries)):
        raise CheckpointError(f"{label} was refused because its contents would unpack to far more than the file holds "
                              "(compressed or oversized entries); only load checkpoints saved by Latent Explorer.")


def _unpickle_safely(raw: bytes, label: str) -> Any:
    if not raw:
        raise CheckpointError(f"{label} is empty; choose a .pt checkpoint saved by Latent Explorer.")
    _check_archive(raw, label)
    try:
        # weights_only=True: a restricted unpickler that builds tensors and plain containers
        # only, so a malicious pickle is refused before any of its code can run.
        with warnings.catch_warnings():  # a foreign pickle protocol warns before it is refused
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).lower()
        if "global" in reason:  # it names a function or class to call: what a code-running pickle does
            raise CheckpointError(
                f"{label} was refused because it asks to run code or build objects a checkpoint never contains; "
                "only load checkpoints saved by Latent Explorer."
            ) from None
        if "weights only" in reason:  # an instruction the safe loader does not take: garbage, or a raw pickle
            raise CheckpointError(
                f"{label} was refused because it is not a file the safe loader can read (damaged, or more than "
                "weights); only load checkpoints saved by Latent Explorer."
            ) from None
        raise CheckpointError(f"{label} is corrupt or truncated and cannot be read; save or download it again.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, TypeError,
            IndexError, AttributeError, UnicodeDecodeError, MemoryError, OverflowError):
        raise CheckpointError(f"{label} is corrupt, truncated or not a PyTorch checkpoint; save or download it again.") from None


def _pack_extras(extras: dict[str, Any] | None) -> dict[str, Any]:
    """Extras as stored: a training replay's manifolds zlib-packed (about a fifth of their size)."""
    out = dict(extras or {})
    if isinstance(out.get(REPLAY_KEY), dict):
        out[REPLAY_KEY] = pack_replay(out[REPLAY_KEY])
    return out
