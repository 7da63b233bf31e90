"""Where the app keeps things: the repository, the checkpoints folder and its job registry (one per server
process), the tab's data folder, and the upload limit."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from vae.data import resolve_data_dir
from vae.training.registry import JobRegistry

ROOT = Path(__file__).resolve().parents[2]  # the repository: pages/ui/places.py
MAX_UPLOAD_MB = 50  # MB of 10^6 bytes: also server.maxUploadSize in .streamlit/config.toml, which the browser enforces


def checkpoint_dir() -> Path:
    """checkpoints/ beside app.py, or $VAE_CHECKPOINT_DIR."""
    return Path(os.environ.get("VAE_CHECKPOINT_DIR") or ROOT / "checkpoints").resolve()


@st.cache_resource(max_entries=4)  # one per checkpoints folder; a server uses one, tests a few
def _registry(folder: str) -> JobRegistry:
    return JobRegistry(folder)


def registry() -> JobRegistry:
    """One registry per server process: every page and every browser tab sees the same jobs."""
    return _registry(str(checkpoint_dir()))


def data_dir() -> Path:
    """The folder torchvision datasets are read from: this tab's choice, else $VAE_DATA_DIR, else ./data."""
    return resolve_data_dir(st.session_state.get("data_dir") or None)
