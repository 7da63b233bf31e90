"""What every page shares: the process-wide job registry, the tab's current model, cached
loads and encodings, and the sidebar card. Layout glue only; numbers come from vae/."""
from __future__ import annotations

import gc
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import streamlit as st

from vae import checkpoint as ckpt_io
from vae.config import TrainConfig
from vae.data import (DATASET_NAMES, DataFolderRefused, DatasetUnavailable, InMemoryDataset, check_data_dir,
                      dataset_available, describe_shape, load_dataset, load_for, resolve_data_dir)
from vae.jobs import JobRegistry
from vae.stored_codes import CODES_KEY, stored_codes_from_extras
from vae.view import ModelView
from vae.latent import encode_dataset

# A full gc.collect() walks the hundreds of thousands of objects torch, plotly and streamlit create at
# import, with the GIL held, while the training thread stalls. Streamlit's own collection after every
# rerun is off (.streamlit/config.toml, runner.postScriptGC); Python's automatic full collections
# remain, so move everything alive at import (this module is imported once per server process) into
# the permanent generation, and those collections walk only what the pages create since.
import plotly.graph_objects  # noqa: E402,F401  (imported here so its objects are frozen too)

gc.collect()
gc.freeze()

ROOT = Path(__file__).resolve().parents[2]  # the repository: pages/ui/common.py
DEFAULT_MODELS = {"mnist": "default-mnist-2d.pt", "shapes": "default-shapes-2d.pt"}  # in checkpoint_dir(), in order
MAX_UPLOAD_MB = 50  # MB of 10^6 bytes: also server.maxUploadSize in .streamlit/config.toml, which the browser enforces
POLL_SECONDS = 1.0  # the live progress line
# While a job trains, the loss curves get new data every CURVES_SECONDS; the progress line above them
# moves every POLL_SECONDS. Each new set of curves is laid out and drawn again by plotly in the browser
# (updated in place, pages/ui/live_plot.py), CPU that a 2-core laptop's training threads lose
# (docs/benchmarks.md, "Reading the browser figures"); every few seconds, the curves still move often.
CURVES_SECONDS = 5.0
# The sidebar card refreshes this often while a job trains: its epoch count and test ELBO change once an
# epoch, and each fragment rerun costs the browser CPU that, on a 2-core laptop, training loses.
CARD_SECONDS = 5.0

# Streamlit's progress bar slides to each new value (a CSS transform transition). Redrawn every second
# by the live view, that animation was much of what a software-rendered browser spent on a polling page
# (docs/benchmarks.md), CPU the training threads share on a laptop. The bar jumps to its new value instead.
PAGE_STYLE = "<style>[data-testid='stProgress'] * { transition: none !important; }</style>"


def page_style() -> None:
    """The app's few CSS rules; a style-only st.html goes to Streamlit's event container, taking no space."""
    st.html(PAGE_STYLE)


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


def describe_view(view: ModelView) -> dict[str, str]:
    """The sidebar card's rows."""
    elbo = view.test_metrics.get("elbo", math.nan)
    return {
        "Dataset": view.dataset,
        "Images": describe_shape(view.model_config.image_shape),
        "Latent dim": str(view.model_config.latent_dim),
        "Architecture": f"{view.model_config.arch} {'-'.join(map(str, view.model_config.hidden))}",
        "Epochs": str(view.epochs),
        "Test −ELBO": "—" if math.isnan(elbo) else f"{elbo:.1f} {view.model_config.elbo_unit}",
    }


def sidebar_card() -> None:
    """The current model, on every page; refreshes itself while a job trains."""
    view = current_view()
    with st.sidebar:
        if (view is not None and view.live) or _starting_job() is not None:
            st.fragment(run_every=CARD_SECONDS)(_card_body)()
        else:
            _card_body()


def _card_body() -> None:
    view = current_view()
    with st.container(border=True, key="model_card"):
        starting = _starting_job() if view is None else None
        if starting is not None:
            st.markdown(f"**{starting.name}** :green-badge[● starting]")
            st.caption("Loading data and building the model…")
            return
        if view is None:
            st.markdown("**No model loaded**")
            st.caption("Load or train one on the Home page.")
            return
        badge = ":green-badge[● training live]" if view.live else ":gray-badge[checkpoint]"
        st.markdown(f"**{view.name}** {badge}")
        rows = describe_view(view)
        if view.train_config is not None and (view.train_config.beta != 1 or view.train_config.recon_weight != 1):
            rows["β / recon weight"] = f"{view.train_config.beta:g} / {view.train_config.recon_weight:g}"
        if view.train_config is not None and view.train_config.warmup_epochs > 0:
            rows["β warm-up"] = f"{view.train_config.warmup_epochs:g} epochs"
        st.markdown("\n".join(f"- {k}: **{v}**" for k, v in rows.items()))


@dataclass
class Encoded:
    """A test subset and its posterior codes under one model version: encoded from the data here, or the
    codes stored with the model (vae/stored_codes.py) when the data is not on this machine."""

    mu: np.ndarray  # (N, D)
    logvar: np.ndarray  # (N, D)
    labels: np.ndarray  # (N,)
    factors: dict[str, np.ndarray]
    class_names: list[str]
    images: "object"  # torch float tensor (N, C, H, W); None for stored codes
    missing: str = ""  # for stored codes: one sentence, where the images would be read from

    @property
    def stored(self) -> bool:
        return self.images is None


def data_source(view: ModelView) -> tuple[str, str, int, int]:
    """(dataset, folder, image size, channels) of the model's images here: the session's data folder, or, for
    a model of the user's own image folder, that folder when the server allows it (never a path a file
    names blindly). DatasetUnavailable (one sentence) for an unknown dataset or a folder not allowed."""
    cfg = view.train_config or TrainConfig(dataset=view.dataset if view.dataset in DATASET_NAMES else "shapes")
    if view.dataset not in DATASET_NAMES:
        load_dataset(view.dataset)  # an unknown name: its one sentence
    if cfg.dataset != "folder":
        return cfg.dataset, str(data_dir()), cfg.image_size, cfg.channels
    try:
        return cfg.dataset, str(check_data_dir(cfg.data_dir or "")), cfg.image_size, cfg.channels
    except DataFolderRefused as e:
        raise DatasetUnavailable(f"This model's images were in {cfg.data_dir}: {e}") from None


def _load(view: ModelView, split: str, source: tuple[str, str, int, int]) -> InMemoryDataset:
    """A split of the model's data from data_source's answer; DatasetUnavailable when it is not here or its
    images are not the model's shape."""
    dataset, folder, size, channels = source
    cfg = TrainConfig(dataset=dataset, image_size=size, channels=channels)
    return load_for(cfg, split, folder, image_shape=view.model_config.image_shape)


@st.cache_resource(max_entries=8, show_spinner=False)
def _encoded(_view: ModelView, key: str, source: tuple, n: int) -> Encoded:
    data = _load(_view, "test", source).subset(n)
    x = data.float_images()
    mu, logvar = encode_dataset(_view.model, x)
    factors = {k: v.numpy() for k, v in data.factors.items()}
    return Encoded(mu, logvar, data.labels.numpy(), factors, data.class_names, x)


def test_set_size(view: ModelView) -> int | None:
    """How many test images the model's dataset has here, else how many codes it stores (None: neither)."""
    try:
        return len(_load(view, "test", data_source(view)))
    except DatasetUnavailable:
        stored = stored_codes_from_extras(view.extras)
        return None if stored is None else len(stored)


def _stored_encoded(view: ModelView, n: int, missing: str) -> Encoded | None:
    """The first n codes the model stores, as Encoded (no images), or None when it stores none."""
    stored = stored_codes_from_extras(view.extras)
    if stored is None:
        return None
    return Encoded(stored.mu[:n], stored.logvar[:n], stored.labels[:n], {k: v[:n] for k, v in stored.factors.items()},
                   view.class_names, None, missing)


def encoded_test_set(view: ModelView, n: int = 5000) -> Encoded | None:
    """Test codes for the current model version, cached: re-encodes only when the weights change. Without
    the dataset on this machine, the codes the model stores; without those either, one readable sentence
    and None.
    """
    try:
        return _encoded(view, view.key, data_source(view), n)
    except DatasetUnavailable as e:
        first = str(e).split(". ")[0] + "."
        encoded = _stored_encoded(view, n, first)
        if encoded is None:
            st.warning(first + " The decoded views still work; the scatter needs the test images.")
        return encoded


def stored_caption(encoded: Encoded) -> None:
    """The one line a page shows under what it drew from stored codes (nothing for codes of the data here)."""
    if encoded.stored:
        st.caption(f"Codes stored with the model, with their labels: {encoded.missing} The original images need "
                   f"those files; what you see is decoded from the codes.")


@st.cache_resource(max_entries=4, show_spinner=False)
def _train_codes(_view: ModelView, key: str, source: tuple, n: int) -> tuple[np.ndarray, np.ndarray]:
    data = _load(_view, "train", source).subset(n)
    return encode_dataset(_view.model, data.float_images())[0], data.labels.numpy()


def encoded_train_codes(view: ModelView, n: int = 5000) -> tuple[np.ndarray, np.ndarray] | None:
    """Posterior means (n, D) and labels of the first n training images, cached per model version
    (for the label map), else the ones the model stores; None, after one sentence, when neither is here."""
    try:
        return _train_codes(view, view.key, data_source(view), n)
    except DatasetUnavailable as e:
        stored = stored_codes_from_extras(view.extras)
        if stored is not None and len(stored.train_mu):
            return stored.train_mu[:n], stored.train_labels[:n]
        st.warning(str(e).split(". ")[0] + ". The label map needs the training images.")
        return None


def require_model() -> ModelView | None:
    """The current model, or a hint to get one (returns None, and the page stops drawing).

    A job still loading its data has no weights yet: the page says so and reruns by itself
    when the first snapshot is out, instead of asking for a model that is on its way.
    """
    view = current_view()
    if view is None:
        job = _starting_job()
        if job is not None:
            st.info(f"{job.name} is starting: the model appears here with its first snapshot, in a moment.")
            st.fragment(_wait_for_snapshot, run_every=POLL_SECONDS)(job.job_id)
            return None
        st.info("No model yet: train one on the Train page or load one on the Home page.")
        if st.button("Go to Home", key="go_home"):
            st.switch_page("pages/home.py")
    return view


def _starting_job():
    """The tab's job when it runs but has published no weights yet, else None."""
    source = st.session_state.get("model_source")
    job = registry().get(source[1]) if source and source[0] == "job" else None
    return job if job is not None and job.state().active else None


def _wait_for_snapshot(job_id: str) -> None:
    job = registry().get(job_id)
    if job is None or not job.state().active or job.view() is not None:
        st.rerun()  # weights are out (or the job ended): draw the page afresh


# --- shared by the Explore pages -------------------------------------------------------------------

EXPLORE_POLL_SECONDS = 3.0  # a live job publishes weights every epoch (and every few seconds mid-epoch)
EXPLORE_CODES = 5000  # test images encoded for the explore pages; one cache entry serves them all


def explore_page(title: str, caption: str) -> ModelView:
    """An Explore page's head: its title, the tab's model (without one the page says how to get one and
    stops here) and its caption."""
    st.title(title)
    view = require_model()
    if view is None:
        st.stop()
    st.caption(caption)
    return view


def live_fragment(draw: Callable, view: ModelView, *args) -> None:
    """draw(model, *args) in a fragment: while the model trains it polls, so the page follows each new
    snapshot, and one full rerun ends the polling when the job does; otherwise it reruns only when its
    own widgets change. A model that is gone in the meantime gets one sentence instead."""

    def body(was_live: bool, *args) -> None:
        current = current_view()
        if was_live and (current is None or not current.live):
            st.rerun()
        if current is None:
            st.info("The model is gone: load or train one on the Home page.")
            return
        draw(current, *args)

    st.fragment(body, run_every=EXPLORE_POLL_SECONDS if view.live else None)(view.live, *args)


def pick_dims(latent_dim: int, key: str, allow_pca: bool = False) -> tuple[int, int] | None | bool:
    """Which plane of a latent space > 2-D to show: two dimensions (0-based), or None for the PCA
    plane of the codes (when allow_pca). Returns False (after saying why) when both axes are the same."""
    if latent_dim <= 2:
        return (0, 1) if latent_dim == 2 else (0, 0)
    if allow_pca:
        plane = st.radio("Plane", ["two dimensions", "PCA of the codes"], horizontal=True, key=f"{key}_plane",
                         help="PCA shows the plane in which the test codes spread the most.")
        if plane != "two dimensions":
            return None
    options = list(range(latent_dim))
    c1, c2 = st.columns(2)
    dx = c1.selectbox("Horizontal axis", options, index=0, format_func=lambda d: f"z{d + 1}", key=f"{key}_dim_x")
    dy = c2.selectbox("Vertical axis", options, index=1, format_func=lambda d: f"z{d + 1}", key=f"{key}_dim_y")
    if dx == dy:
        st.warning("Pick two different dimensions for the two axes.")
        return False
    return (dx, dy)
