"""Train page: a settings form, and a live view of the running job that polls once a second."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import math
import time
from pathlib import Path

import streamlit as st

from pages.ui.current_model import ModelRef, use_source
from pages.ui.explain import math_expander
from pages.ui.forms import build_configs, form_settings, settings_inputs
from pages.ui.job_access import session_id, stop_button
from pages.ui.job_controls import job_controls
from pages.ui.live_plot import live_plotly_chart, themed
from pages.ui.places import MAX_UPLOAD_MB, checkpoint_dir, data_dir, registry
from vae import checkpoint as ckpt_io
from vae.checkpoint.format import CheckpointError, changes_of, describe_change
from vae.config import ConfigError, ModelConfig, TrainConfig
from vae.data import (UPLOADS, DataFolderRefused, DatasetUnavailable, allowed_data_dirs, check_data_dir,
    class_counts, dataset_available, dataset_spec, load_dataset, resolve_data_dir)
from vae.data.archives import ArchiveRefused, extract_image_zip, free_upload_name
from vae.data.folders import find_image_folders
from vae.render.figures import loss_curves
from vae.training.registry import JobLimitReached
from vae.training import interrupted
from vae.training.jobs import TrainingJob, VariantsJob
from vae.render.pictures import class_samples

POLL_SECONDS = 1.0  # the live progress line
# While a job trains, the loss curves get new data every CURVES_SECONDS; the progress line above them
# moves every POLL_SECONDS. Each new set of curves is laid out and drawn again by plotly in the browser
# (updated in place, pages/ui/live_plot.py), CPU that a 2-core laptop's training threads lose
# (docs/benchmarks.md, "Reading the browser figures"); every few seconds, the curves still move often.
CURVES_SECONDS = 5.0
INTERRUPTED_ROWS, ROW_PX = 6, 52  # Interrupted runs: rows shown before the list scrolls, and each row's height

st.title("Train a VAE")


def _format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    s = int(round(s))
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"




def settings_form() -> tuple[ModelConfig, TrainConfig, str] | None:
    """The form: every setting the CLI takes (vae/config.py declares them), the rarer ones folded away;
    returns both configs and the checkpoint name when Start is pressed."""
    with st.form("train_form", border=True):
        columns = st.columns(4)
        main = form_settings(advanced=False)
        values = settings_inputs(main, columns)
        name = columns[len(main) % 4].text_input("Checkpoint name (optional)", "", key="f_name",
                                                          help="Letters, digits, - and _")
        with st.expander("More settings"):
            values.update(settings_inputs(form_settings(advanced=True), st.columns(3)))
        submitted = st.form_submit_button("Start training", type="primary", key="start", icon=":material/play_arrow:")
    if not submitted:
        return None
    own = {k: st.session_state.get(f"f_{k}") for k in ("image_size", "channels") if f"f_{k}" in st.session_state}
    folder = st.session_state.get("own_folder")
    if values["dataset"] == "folder" and not folder:
        st.error("Choose the folder of your images under \"Your own images\" below, then press Start.")
        return None
    configs = build_configs({**values, **own}, data_dir=folder if values["dataset"] == "folder" else str(data_dir()))
    return None if configs is None else (*configs, name.strip())


def own_images() -> None:
    """Your own images: a folder on this server (the data folder or one the operator allows) or an uploaded
    .zip of class folders, previewed (samples and class counts) before the form trains on it."""
    chosen = st.session_state.get("own_folder")
    with st.expander("Your own images", expanded=chosen is not None, icon=":material/photo_library:"):
        st.caption(f"A folder with one subfolder of images per class (cat/, dog/, …), in {data_dir()} or below it, "
                   "or a .zip of such folders. Each image is resized and centre-cropped to a square.")
        pick, upload = st.columns([3, 2])
        uploaded = st.session_state.pop("own_uploaded", None)  # a .zip just unpacked: it becomes the choice
        if uploaded:
            st.session_state["own_path"] = uploaded
        found = [str(p) for p in find_image_folders(allowed_data_dirs())]  # the same list keeps a typed choice
        typed = pick.selectbox("Image folder", found, index=None, key="own_path", accept_new_options=True,
                               placeholder="Choose a folder found here, or type a path",
                               help="Folders below the data folder that hold class subfolders of images.")
        zipped = upload.file_uploader(f"…or upload a .zip of class folders (≤ {MAX_UPLOAD_MB} MB)", type=["zip"],
                                      key="own_zip", max_upload_size=MAX_UPLOAD_MB)
        size_col, channels_col, _ = st.columns([1, 1, 2])
        size, channels = settings_inputs(["image_size", "channels"], [size_col, channels_col]).values()
        if zipped is not None and st.session_state.get("own_zip_seen") != zipped.file_id:
            st.session_state["own_zip_seen"] = zipped.file_id
            uploads = resolve_data_dir(None) / UPLOADS
            try:
                with st.spinner("Unpacking and reading the images…"):
                    folder = extract_image_zip(zipped.getvalue(), uploads, free_upload_name(zipped.name, uploads),
                                               check=lambda unpacked: _read_folder(str(unpacked), size, int(channels)))
            except (ArchiveRefused, DatasetUnavailable) as e:  # either way nothing of the upload stays on disk
                st.error(str(e))
                return
            st.session_state["own_uploaded"] = str(folder)
            st.rerun()
        st.session_state.pop("own_folder", None)
        if typed:
            try:
                st.session_state["own_folder"] = str(check_data_dir(typed))
            except DataFolderRefused as e:
                st.error(str(e))
                return
            preview_folder(st.session_state["own_folder"], size, int(channels))


def _read_folder(folder: str, size: int, channels: int) -> tuple:
    """Both splits of a folder as the preview shows them (loaded once per process); DatasetUnavailable."""
    return tuple(load_dataset("folder", split, folder, image_size=size, channels=channels) for split in ("train", "test"))


def preview_folder(folder: str, size: int, channels: int) -> None:
    """A few images of each class as the model will see them, the class counts, and a button that selects
    the folder in the form."""
    try:
        with st.spinner("Reading the images…"):
            train, test = _read_folder(folder, size, channels)
    except DatasetUnavailable as e:
        st.error(str(e))
        return
    root = resolve_data_dir(None)
    shown = Path(folder).relative_to(root) if Path(folder).is_relative_to(root) else folder  # the data folder is said above
    st.markdown(f"**{shown}**: {train.summary}")
    samples, counts = st.columns([3, 2])
    samples.image(class_samples(train), caption="Training images as the model sees them, one row per class "
                  "(at most 8 classes shown).", output_format="PNG")
    counts.dataframe(class_counts(train, test), hide_index=True, height=min(400, 38 + 35 * len(train.class_names)))
    st.button("Train on these images", key="use_folder", icon=":material/check:", on_click=_choose_folder)


def _choose_folder() -> None:
    st.session_state["f_dataset"] = "folder"  # a callback runs before the form's widgets exist
    st.session_state.pop("data_problem", None)


def ensure_data(train_cfg: TrainConfig) -> bool:
    """Downloads a missing dataset when possible; otherwise one sentence and a way out."""
    if dataset_available(train_cfg.dataset, train_cfg.data_dir):
        return True
    try:
        with st.spinner(f"Downloading {dataset_spec(train_cfg.dataset).title}…"):
            for split in ("train", "test"):
                load_dataset(train_cfg.dataset, split, train_cfg.data_dir, download=True)
        return True
    except DatasetUnavailable as e:
        st.session_state["data_problem"] = str(e)
        return False


def offer_shapes() -> None:
    problem = st.session_state.get("data_problem")
    if problem:
        st.error(problem, icon=":material/folder_off:")
        st.button("Use the built-in shapes dataset instead", key="use_shapes", on_click=_switch_to_shapes)


def _switch_to_shapes() -> None:
    st.session_state["f_dataset"] = "shapes"  # a callback runs before the form's widgets exist
    st.session_state.pop("data_problem", None)


def start_job(model_cfg: ModelConfig, train_cfg: TrainConfig, name: str) -> None:
    try:
        job = registry().start(model_cfg, train_cfg, name=name or None, owner=session_id())
    except (JobLimitReached, CheckpointError, ConfigError) as e:
        st.error(str(e))
        return
    st.session_state["job_id"] = job.job_id
    use_source(ModelRef("job", job.job_id))  # the explore pages follow the live snapshot
    st.rerun()  # the sidebar card, drawn before this page, now shows the job


def interrupted_runs() -> None:
    """Runs that stopped before their planned epochs and kept Adam's state (a server restart, a Stop), all of
    them, with their count, each with Resume: it continues the run where it stopped, into the same checkpoint;
    a group of models trained together (Compare's) resumes as one job. A file that a job of this server trains,
    or that any run holds the reservation of (another server, the CLI), is no interrupted run."""
    problem = st.session_state.pop("resume_problem", None)
    if problem:
        st.error(problem)
    training = {m.state().checkpoint_path for job in registry().running() for m in [job, *getattr(job, "members", ())]}
    runs = interrupted.interrupted_runs(ckpt_io.list_checkpoints(checkpoint_dir()), training)
    if not runs:
        return
    with st.container(border=True, key="interrupted_runs"):
        st.markdown(f"**Interrupted runs** ({len(runs)}): stopped before their planned epochs; Resume continues one "
                    "where it stopped" + (", a group of models trained together as one job." if any(
                        r.is_group for r in runs) else "."))
        scrolled = len(runs) > INTERRUPTED_ROWS
        with st.container(height=INTERRUPTED_ROWS * ROW_PX if scrolled else "content", border=False,
                          key="interrupted_list"):
            for run in runs:
                text, button = st.columns([5, 1], vertical_alignment="center")
                text.markdown(_run_label(run))
                button.button("Resume", key=f"resume_group_{run.name}" if run.is_group else f"resume_{run.name}",
                              icon=":material/play_arrow:", on_click=_resume, args=(run,))
        if scrolled:
            st.caption(f"Scroll the list for all {len(runs)}.")


def _run_label(run: interrupted.InterruptedRun) -> str:
    first = run.members[0]
    lo, hi = run.epochs
    epochs = f"epoch {lo}" if lo == hi else f"epochs {lo}–{hi}"
    if not run.is_group:
        return f"{run.name} · {first.dataset} · {epochs} of {first.planned_epochs}"
    names = ", ".join(m.name[len(run.name) + 1:] for m in run.members)
    return f"{run.name} · {len(run.members)} models trained together ({names}) · {first.dataset} · {epochs} of " \
           f"{first.planned_epochs}"


def _resume(run: interrupted.InterruptedRun) -> None:
    """Resume's callback: it runs before the page is drawn again, so a press on a run that another tab or
    process started meanwhile (no longer listed) still gets its sentence, and the sidebar shows a new job."""
    reg, folder = registry(), str(data_dir())
    try:
        job = (reg.resume_group(run.name, run.paths, data_dir=folder, owner=session_id()) if run.is_group
               else reg.resume(run.paths[0], data_dir=folder, owner=session_id()))
    except (JobLimitReached, CheckpointError, DataFolderRefused) as e:
        st.session_state["resume_problem"] = str(e)
        return
    st.session_state["job_id"] = job.job_id
    members = getattr(job, "members", [job])
    use_source(ModelRef("job", members[-1].job_id))
    if run.is_group:  # the Compare page shows the group's models side by side again
        st.session_state["cmp_models"] = [ModelRef("job", m.job_id).key for m in members]


def watched_job() -> TrainingJob | None:
    """The job this tab shows: its own while it runs, else the newest running one in the process (a
    second tab sees the same training), else the last one it showed. A job the tab has shown stays
    its own, so that when it is stopped or finishes, here or in another tab, its curves and final
    message stay on the page instead of giving way to the empty form."""
    reg = registry()
    job = reg.get(st.session_state.get("job_id"))
    if job is None or not job.state().active:
        running = reg.running()
        if running:
            job = running[-1]
            st.session_state["job_id"] = job.job_id
    return job


def curves_figure(job_id: str, history: list, active: bool) -> tuple[int, str]:
    """This tab's loss curves for the job, as (height, plotly JSON). While the job runs, the data are
    replaced at most every CURVES_SECONDS and the same JSON is sent in between, which the browser
    skips. One figure per tab: building and theming it costs more than replacing its data."""
    kept = st.session_state.get("_curves")
    now = time.monotonic()
    if kept is None or kept[0] != job_id or not active or now - kept[3] >= CURVES_SECONDS:
        reuse = kept[1] if kept and kept[0] == job_id else None
        marks = [(r["epoch"], describe_change(r, when=False)) for r in changes_of(history)]
        fig = loss_curves(history, reuse=reuse, marks=marks)
        if fig is not reuse:
            themed(fig)
        st.session_state["_curves"] = kept = (job_id, fig, fig.to_json(), now)
    return kept[1].layout.height, kept[2]


def live_view(job: TrainingJob) -> None:
    state = job.state()
    head, stop_col = st.columns([5, 1])
    head.subheader(f"{state.name}: {state.status}")
    if state.active:
        stop_button(job, stop_col, key="stop")  # or, for a tab that did not start it, who may stop it
    elif st.session_state.get("model_source") != ModelRef("job", job.job_id):
        if stop_col.button("Explore it", key="explore_job"):
            use_source(ModelRef("job", job.job_id))
            st.rerun()
    if state.status == "failed":
        st.error(state.message)
    elif state.message and not state.active:
        st.success(state.message)
    elif state.message:
        st.warning(state.message)
    st.progress(state.fraction, text=(
        f"epoch {min(int(state.epoch) + 1, state.epochs) if state.active else int(state.epoch)}/{state.epochs} · "
        f"step {state.step}/{state.total_steps} · "
        + ("paused · " if state.paused and state.active else "")
        + (f"slow motion, a batch every {state.slow_ms} ms · " if state.slow_ms and state.active else "")
        + f"{state.samples_per_sec:,.0f} samples/s · ETA {_format_seconds(state.eta_seconds) if state.active else 'done'}"
    ))
    if state.active:
        job_controls(job, key="train")
    history = job.history()
    if history:
        live_plotly_chart(*curves_figure(job.job_id, history, state.active), key="curves")
        if state.active:
            st.caption(f"The curves update every {CURVES_SECONDS:g} s while the job trains and keep any zoom "
                       f"(double-click a panel to reset it); the line above moves every {POLL_SECONDS:g} s.")
    else:
        st.caption("Loading data and building the model…")
    st.session_state["history_len"] = len(history)
    if isinstance(job, VariantsJob):
        st.page_link("pages/compare.py", label="These curves are the full ELBO's: see all three side by side on the "
                     "Compare page", icon=":material/view_column:")


def live_fragment(job: TrainingJob) -> None:
    """Redraws the live view once a second while the job runs, then one full rerun to stop polling."""

    @st.fragment(run_every=POLL_SECONDS)
    def poll():
        live_view(job)
        if not job.state().active:
            st.rerun()

    poll()


config = settings_form()
if config is not None:
    model_cfg, train_cfg, name = config
    st.session_state.pop("data_problem", None)
    if ensure_data(train_cfg):
        start_job(model_cfg, train_cfg, name)
offer_shapes()
own_images()
interrupted_runs()

job = watched_job()
if job is None:
    st.info("Pick settings and press Start. Training runs in the background: you can explore other pages meanwhile.")
elif job.state().active:
    live_fragment(job)
else:
    live_view(job)
if job is not None:
    # Outside the polling fragment: typeset equations redrawn every second cost the browser more than
    # the charts do (on a 2-core laptop, training throughput paid for it). Its numbers are those of
    # this page's last full run, and it says which epoch they come from.
    math_expander(job.history(), {}, job.train_cfg, job.model_cfg.latent_dim)
