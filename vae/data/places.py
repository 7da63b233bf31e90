"""Where data is read from: the configured data folder, the folders a browser may choose (an allow-list
the server's operator sets), and the folders this project writes below it."""
from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "VAE_DATA_DIR"
ALLOWED_DATA_DIRS_ENV = "VAE_DATA_DIRS"  # more folders a browser may point the server at, os.pathsep-separated
FOLDER_CACHE = ".folder-cache"  # under the configured data folder: decoded image folders (vae/data/folders.py)
UPLOADS = "uploads"  # under the configured data folder: where uploaded .zip files of images are unpacked


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
