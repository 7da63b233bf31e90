"""The tab's current model: which one (a ModelRef in the session), opening it (a job's latest snapshot, a
checkpoint loaded through the cache, or this tab's upload), the default a fresh session opens, and the
hint a page shows without one."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import streamlit as st

from pages.ui.places import checkpoint_dir, data_dir, registry
from vae import checkpoint as ckpt_io
from vae.checkpoint.codes import CODES_KEY
from vae.data import dataset_available
from vae.training.view import ModelView

DEFAULT_MODELS = {"mnist": "default-mnist-2d.pt", "shapes": "default-shapes-2d.pt"}  # in checkpoint_dir(), in order
# A page waiting for a starting job's first weights looks this often (the Train page's progress line's pace).
SNAPSHOT_POLL_SECONDS = 1.0


class ModelRef(NamedTuple):
    """Which model: ("path", a checkpoint file), ("job", a job id of this server's registry) or ("upload",
    this tab's uploaded file). `key` writes it as "kind:ref", as option lists hold it."""

    kind: str
    ref: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.ref}"

    @classmethod
    def parse(cls, key: str) -> "ModelRef":
        kind, _, ref = key.partition(":")
        return cls(kind, ref)


class ModelUnavailable(Exception):
    """A reference whose model cannot be shown now; the message says why, in one sentence."""


@st.cache_resource(max_entries=8, show_spinner=False)
def _load_checkpoint(path: str, mtime_ns: int, size: int) -> ckpt_io.Checkpoint:
    return ckpt_io.load(path)


def load_checkpoint(path: str | Path) -> ckpt_io.Checkpoint:
    """Loads through the safe loader, cached by path and modification time."""
    stat = Path(path).stat()
    return _load_checkpoint(str(path), stat.st_mtime_ns, stat.st_size)


def _default_source() -> ModelRef | None:
    """MNIST's default model when its data is here or it stores its codes (a shipped default does), else the
    shapes one; None if neither ships."""
    for name in DEFAULT_MODELS:
        path = checkpoint_dir() / DEFAULT_MODELS[name]
        if path.exists() and (name != "mnist" or dataset_available(name, data_dir()) or _stores_codes(path)):
            return ModelRef("path", str(path))
    return None


def _stores_codes(path: Path) -> bool:
    try:
        return CODES_KEY in load_checkpoint(path).extras
    except (ckpt_io.CheckpointError, OSError):
        return False


def open_model(ref: ModelRef) -> ModelView:
    """The model a reference stands for: a job's latest snapshot, a loaded checkpoint or the upload.
    Raises ModelUnavailable (a job forgotten or still loading, an upload gone) or CheckpointError."""
    if ref.kind == "job":
        job = registry().get(ref.ref)
        if job is None:
            raise ModelUnavailable("This job is no longer kept by the server; load its checkpoint instead.")
        view, state = job.view(), job.state()
        if view is None:
            raise ModelUnavailable(f"{state.name} is starting: loading the data and building the model…" if state.active
                                   else f"{state.name}: {state.message}")
        return view
    if ref.kind == "upload":
        ckpt = st.session_state.get("uploaded_checkpoint")
        if ckpt is None:
            raise ModelUnavailable("The upload is gone.")
        return ModelView.from_checkpoint(ckpt, key=f"upload:{ref.ref}")
    try:
        return ModelView.from_checkpoint(load_checkpoint(ref.ref))
    except OSError as e:
        raise ckpt_io.CheckpointError(f"{Path(ref.ref).name} could not be read ({e.strerror or e}).") from e


def use_source(source: ModelRef | None) -> None:
    st.session_state["model_source"] = source


def current_view() -> ModelView | None:
    """The model this tab looks at: a live job's snapshot, a loaded checkpoint, or an upload."""
    if "model_source" not in st.session_state:
        st.session_state["model_source"] = _default_source()
    source = st.session_state["model_source"]
    if source is None:
        return None
    try:
        return open_model(ModelRef(*source))
    except ModelUnavailable:
        return None
    except ckpt_io.CheckpointError as e:
        st.session_state["model_source"] = None
        st.session_state["model_error"] = f"The model could not be opened: {e}"
        return None


def following_job():
    """The job whose model this tab shows, while it runs (a Compare group's member is steered as its group), else
    None."""
    source = st.session_state.get("model_source")
    job = registry().get(source[1]) if source and source[0] == "job" else None
    return job if job is not None and job.state().active else None


def starting_job():
    """The tab's job when it runs but has published no weights yet (callers ask when they have no view), else
    None."""
    return following_job()


def require_model() -> ModelView | None:
    """The current model, or a hint to get one (returns None, and the page stops drawing).

    A job still loading its data has no weights yet: the page says so and reruns by itself
    when the first snapshot is out, instead of asking for a model that is on its way.
    """
    view = current_view()
    if view is None:
        job = starting_job()
        if job is not None:
            st.info(f"{job.name} is starting: the model appears here with its first snapshot, in a moment.")
            st.fragment(_wait_for_snapshot, run_every=SNAPSHOT_POLL_SECONDS)(job.job_id)
            return None
        st.info("No model yet: train one on the Train page or load one on the Home page.")
        if st.button("Go to Home", key="go_home"):
            st.switch_page("pages/home.py")
    return view


def _wait_for_snapshot(job_id: str) -> None:
    job = registry().get(job_id)
    if job is None or not job.state().active or job.view() is not None:
        st.rerun()  # weights are out (or the job ended): draw the page afresh
