"""Checkpoints a user can trust: a plain dict written atomically, read back with
`torch.load(weights_only=True)` and checked key by key, so no file can run code and any
fault is one readable sentence in a CheckpointError."""
from __future__ import annotations

import contextlib
import io
import math
import os
import pickle
import re
import stat
import tempfile
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .config import EPOCHS_RANGE, ConfigError, ModelConfig, TrainConfig
from .model import VAE
from .replay import REPLAY_KEY, ReplayError, check_replay, pack_replay
from .stored_codes import CODES_KEY, StoredCodesError, check_stored_codes

FORMAT = "latent-explorer-checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 100 * 1024 * 1024  # far above any model this app trains; refuses giant uploads
MAX_HISTORY = 200_000
TEMP_SUFFIX = ".tmp"  # a save in progress: .<name>-<random>.tmp beside the checkpoint
STALE_TEMP_SECONDS = 600  # a temp file this old belongs to a save that was killed
MAX_ARCHIVE_ENTRIES = 4096  # a checkpoint's zip holds one entry per tensor: a few hundred at most
MAX_EPOCH, MAX_STEP = EPOCHS_RANGE[1], 10**9  # counters: the most epochs a run may have, and far more steps
MAX_EXTRAS_DEPTH, MAX_EXTRAS_ITEMS = 16, 200_000
DATASET_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")  # ours, or any other shown as a plain label
HISTORY_KEYS = {"step": {"epoch", "step", "recon", "kl", "total"}, "epoch": {"epoch", "step"}}  # what the pages read
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
REQUIRED_KEYS = ("format", "format_version", "model_config", "state_dict", "dataset", "class_names", "history")


class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded; the message is one sentence for a person."""


@dataclass
class Checkpoint:
    """A validated checkpoint: the model, ready in eval mode on the CPU, and its metadata."""

    model: VAE
    model_config: ModelConfig
    train_config: TrainConfig | None
    dataset: str
    class_names: list[str]
    history: list[dict]
    test_metrics: dict[str, float]
    epoch: int = 0
    step: int = 0
    created: str = ""
    notes: str = ""
    path: str = ""
    optimizer_state: dict | None = None
    rng_state: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "uploaded model"

    @property
    def resumable(self) -> bool:
        """A run that stopped before its planned epochs and kept Adam's state (the Train page offers Resume)."""
        return self.optimizer_state is not None and self.train_config is not None and self.epoch < self.train_config.epochs


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
    payload = _unpickle_safely(raw, label)
    ckpt = _validate(payload, label)
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


def _validate(payload: Any, label: str) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{label} is a PyTorch file but not a Latent Explorer checkpoint; train or export one with this app.")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{label} is missing the {missing[0]!r} entry; it may be damaged or from another tool.")
    version = payload["format_version"]
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"{label} has format version {version!r}, which this version of the app cannot read; update the app.")
    try:
        model_cfg = ModelConfig.from_dict(payload["model_config"])
        train_cfg = None if payload.get("train_config") is None else TrainConfig.from_dict(payload["train_config"])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{label} has settings this app cannot use: {e}") from None
    model = _model_from_state(model_cfg, payload["state_dict"], label)
    return Checkpoint(
        model=model,
        model_config=model_cfg,
        train_config=train_cfg,
        dataset=_check_dataset(payload["dataset"], label),
        class_names=_check_str_list(payload["class_names"], label),
        history=_check_history(payload["history"], label),
        test_metrics=_check_metrics(payload.get("test_metrics", {}), label),
        epoch=_check_count(payload.get("epoch", 0), "epoch", label, MAX_EPOCH),
        step=_check_count(payload.get("step", 0), "step", label, MAX_STEP),
        created=_check_str(payload.get("created", ""), "created", label),
        notes=_check_str(payload.get("notes", ""), "notes", label),
        optimizer_state=_check_optimizer(payload.get("optimizer_state"), model, label),
        rng_state=_check_rng(payload.get("rng_state"), label),
        extras=_check_extras(payload.get("extras"), model_cfg, payload["class_names"], label),
    )


def _model_from_state(model_cfg: ModelConfig, state: Any, label: str) -> VAE:
    model = VAE(model_cfg)
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise CheckpointError(f"{label} holds weights for a different architecture than its settings describe; it cannot be loaded.")
    for key, ref in expected.items():
        t = state[key]
        if not isinstance(t, torch.Tensor) or t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(f"{label} has a weight {key!r} of the wrong shape or type for its architecture; it cannot be loaded.")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{label} has NaN or infinite values in {key!r}; the training that wrote it had diverged.")
    model.load_state_dict(state)
    return model.eval()


def _pack_extras(extras: dict[str, Any] | None) -> dict[str, Any]:
    """Extras as stored: a training replay's manifolds zlib-packed (about a fifth of their size)."""
    out = dict(extras or {})
    if isinstance(out.get(REPLAY_KEY), dict):
        out[REPLAY_KEY] = pack_replay(out[REPLAY_KEY])
    return out


def _check_extras(value: Any, model_cfg: ModelConfig, class_names: Any, label: str) -> dict[str, Any]:
    """Extras are optional (a non-dict reads as none) and plain (bounded depth and size, walked without
    recursion); a training replay in them must be well formed (it comes back unpacked)."""
    if not isinstance(value, dict):
        return {}
    stack, seen = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if depth > MAX_EXTRAS_DEPTH or seen > MAX_EXTRAS_ITEMS:
            raise CheckpointError(f"{label} has extras nested deeper or larger than a checkpoint holds; it may be damaged.")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
        stack.extend((child, depth + 1) for child in children)
    n_classes = len(class_names) if isinstance(class_names, list) else None
    if REPLAY_KEY in value:
        try:
            value = {**value, REPLAY_KEY: check_replay(value[REPLAY_KEY], model_cfg.latent_dim, n_classes, model_cfg.image_shape)}
        except ReplayError as e:
            raise CheckpointError(f"{label} holds a training replay that cannot be used ({e}); it may be damaged: train or save the model again.") from None
    if CODES_KEY in value:
        try:
            check_stored_codes(value[CODES_KEY], model_cfg.latent_dim, n_classes)
        except StoredCodesError as e:
            raise CheckpointError(f"{label} holds stored codes that cannot be used ({e}); it may be damaged: train or save the model again.") from None
    return value


def _check_str(value: Any, key: str, label: str) -> str:
    if not isinstance(value, str) or len(value) > 10_000:
        raise CheckpointError(f"{label} has an invalid {key!r} entry; it may be damaged.")
    return value


def _check_count(value: Any, key: str, label: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise CheckpointError(f"{label} has an invalid {key!r} entry; it may be damaged.")
    return value


def _check_dataset(value: Any, label: str) -> str:
    """The dataset's name, a label only: one of ours loads its images, any other is shown as it is."""
    if not isinstance(value, str) or not DATASET_LABEL.fullmatch(value):
        raise CheckpointError(f"{label} has an invalid dataset name; it may be damaged.")
    return value


def _check_optimizer(value: Any, model: VAE, label: str) -> dict | None:
    """Adam's state as torch.optim.Adam.state_dict() writes it for this model's parameters, or None."""
    if value is None:
        return None
    params = list(model.parameters())
    try:
        (group,) = value["param_groups"] if isinstance(value, dict) else ()  # a tensor indexed by a str warns
        ok = (isinstance(value["state"], dict) and isinstance(group, dict) and group["params"] == list(range(len(params)))
              and all(_is_number(group.get(k)) and 0 <= group[k] < 1e3 for k in ("lr", "eps", "weight_decay"))
              and isinstance(group.get("betas"), (tuple, list)) and len(group["betas"]) == 2
              and all(_is_number(b) and 0 <= b < 1 for b in group["betas"]))
        for index, state in value["state"].items() if ok else ():
            shape = params[index].shape
            ok = ok and isinstance(state, dict) and isinstance(state.get("step"), torch.Tensor) and state["step"].numel() == 1 \
                and all(isinstance(state.get(k), torch.Tensor) and state[k].shape == shape and state[k].dtype == torch.float32
                        and bool(torch.isfinite(state[k]).all()) for k in ("exp_avg", "exp_avg_sq"))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        ok = False
    if not ok:
        raise CheckpointError(f"{label} has an optimizer state that does not fit its model; it may be damaged.")
    return value


def _check_rng(value: Any, label: str) -> torch.Tensor | None:
    """The CPU generator's state: a uint8 tensor of the length torch's generator keeps, or None."""
    if value is None:
        return None
    expected = torch.Generator().get_state()
    if not isinstance(value, torch.Tensor) or value.dtype != expected.dtype or value.shape != expected.shape:
        raise CheckpointError(f"{label} has a random-number state this version of torch cannot restore; it may be damaged.")
    return value


def _check_str_list(value: Any, label: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 1000 or not all(isinstance(v, str) and len(v) < 200 for v in value):
        raise CheckpointError(f"{label} has an invalid list of class names; it may be damaged.")
    return list(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_metrics(value: Any, label: str) -> dict[str, float]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in value.items()):
        raise CheckpointError(f"{label} has invalid test metrics; it may be damaged.")
    return {k: float(v) for k, v in value.items()}


def _history_record_ok(record: Any) -> bool:
    """A step record (epoch, step, recon, kl, total) or an epoch record (epoch, step; test_recon, test_kl
    and test_elbo together or not at all): its kind as text, every other value a finite number."""
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str) or record["kind"] not in HISTORY_KEYS:
        return False
    numbers = {k: v for k, v in record.items() if k != "kind"}
    test = {"test_recon", "test_kl", "test_elbo"} & set(numbers)
    return (all(isinstance(k, str) and _is_number(v) and math.isfinite(v) and abs(v) < 1e12 for k, v in numbers.items())
            and HISTORY_KEYS[record["kind"]] <= set(numbers) and len(test) in (0, 3)
            and 0 <= numbers["epoch"] <= MAX_EPOCH and 0 <= numbers["step"] <= MAX_STEP)


def _check_history(value: Any, label: str) -> list[dict]:
    if not isinstance(value, list) or len(value) > MAX_HISTORY:
        raise CheckpointError(f"{label} has an invalid training history; it may be damaged.")
    if not all(_history_record_ok(record) for record in value):
        raise CheckpointError(f"{label} has an invalid training history record; it may be damaged.")
    return value


# ---- names and listing -------------------------------------------------------------

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
        raise CheckpointError(f"A checkpoint named {stem!r} already exists; choose another name or delete the old one.")
    return path


def unique_checkpoint_path(base: str, directory: str | os.PathLike) -> Path:
    """A free checkpoints/<base>[-N].pt, never overwriting an existing file."""
    directory = Path(directory)
    for i in range(1, 10_000):
        stem = base if i == 1 else f"{base}-{i}"
        candidate = directory / f"{stem}.pt"
        if not candidate.exists():
            return checkpoint_path(stem, directory)
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
