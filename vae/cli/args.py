"""What the commands read from their arguments: the one-sentence UsageError, whole-number options, the folder a
checkpoint's data is read from, its test split, and a file written where the user asked."""
from __future__ import annotations

from pathlib import Path

from vae.config import TrainConfig
from vae.data import ALLOWED_DATA_DIRS_ENV, DataFolderRefused, check_data_dir, load_dataset, load_for, resolve_data_dir


class UsageError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def int_arg(name: str, value: str | None, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {value!r}.") from None
    if not lo <= n <= hi:
        raise UsageError(f"{name} must be from {lo} to {hi}; you gave {n}.")
    return n


def data_dir_of(args, cfg: TrainConfig) -> str:
    """Where a checkpoint's data is read: --data-dir when given; else the folder the file names when it passes
    the allow-list Home applies (a file may name any folder, '/' included); else the configured data folder,
    or, for the user's own images, which are nowhere else, one sentence."""
    if args.data_dir:
        return args.data_dir
    try:
        return str(check_data_dir(cfg.data_dir or ""))
    except DataFolderRefused:
        if cfg.dataset != "folder":
            return str(resolve_data_dir(None))  # not None: load_for would read the file's folder then
    where = resolve_data_dir(cfg.data_dir) if cfg.data_dir else "a folder it does not name"
    raise UsageError(f"This checkpoint's images were in {where}, which is not an allowed data folder; pass --data-dir "
                     f"with the folder of its images (or allow that one with ${ALLOWED_DATA_DIRS_ENV}).")


def test_split(args, ckpt):
    """The checkpoint's test split from this machine (DatasetUnavailable, one sentence, when it is not here)."""
    if ckpt.train_config is not None:
        return load_for(ckpt.train_config, "test", data_dir_of(args, ckpt.train_config),
                        image_shape=ckpt.model_config.image_shape)
    return load_dataset(ckpt.dataset, "test", args.data_dir)


def write_file(out: Path, data: bytes, option: str, suffix: str) -> None:
    """Writes data to out, making its folder; a folder given as out, or one that cannot take the file, is one
    sentence naming the option (--gif, --out, --png) and the kind of file (suffix) to give instead."""
    if out.is_dir():
        raise UsageError(f"{option} {out} is a folder; give a file name ending in {suffix}.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as e:
        raise UsageError(f"Could not write {out} ({e.strerror or e}); pick a folder you can write to.") from None
