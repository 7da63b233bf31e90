"""A running job's teaching controls (vae/training/control.py), on the Train page and in the sidebar beside the
model a tab follows: Pause / Resume, Step one batch or one epoch, the speed (full, or slow motion), and β, the
reconstruction weight and the learning rate changed from the next batch, each with the Train form's declared
range. Only a tab that may steer the job (pages/ui/job_access.py) gets them; another reads who may."""
from __future__ import annotations

import streamlit as st

from pages.ui.job_access import controls
from vae.config import ConfigError, live_settings
from vae.training.ownership import who_may_act

# Slow motion's paces, ms from one batch to the next: slow enough to watch the codes drift on the pad.
SPEEDS = {0: "full speed", 100: "slow: 10 batches/s", 250: "slower: 4 batches/s", 1000: "1 batch/s"}


def job_controls(job, key: str) -> None:
    """The controls of a running job (a TrainingJob or a Compare group: its members move together)."""
    if not job.state().active:
        return
    if not controls(job):  # the Stop's place already says, in one sentence, who may act (job_access.stop_button)
        return
    control = job.control
    with st.container(key=f"{key}_controls"):
        pause, step, epoch, speed = st.columns([1, 1, 1.2, 1.6], vertical_alignment="bottom")
        # Callbacks run before the rerun the press starts, so the buttons are drawn for the state they made.
        if control.paused:
            pause.button("Resume", key=f"{key}_resume", icon=":material/play_arrow:", width="stretch",
                         on_click=job.resume, help="Back to the chosen speed.")
        else:
            pause.button("Pause", key=f"{key}_pause", icon=":material/pause:", width="stretch", on_click=job.pause,
                         help="The job holds its thread (no CPU) and keeps its state; Step moves it on.")
        step.button("Step", key=f"{key}_step", icon=":material/skip_next:", width="stretch", on_click=job.step,
                    help="One batch, then hold: every Explore page shows the model after it.")
        epoch.button("Step epoch", key=f"{key}_epoch", icon=":material/fast_forward:", width="stretch",
                     on_click=job.step_epoch, help="The rest of this epoch (a whole one at an epoch's start), then hold.")
        speed.selectbox("Speed", list(SPEEDS), index=list(SPEEDS).index(control.slow_ms) if control.slow_ms in SPEEDS
                        else 0, format_func=SPEEDS.get, key=f"{key}_speed",
                        on_change=lambda: job.set_slow(st.session_state[f"{key}_speed"]),
                        help="Slow motion: one batch every so many ms, each shown on the Explore pages.")
        if not hasattr(job, "members"):  # a Compare group's models differ in β and weight by design: no one value
            changes(job, key)


def changes(job, key: str) -> None:
    """β, the reconstruction weight and the learning rate, from the next batch (the Train form's ranges)."""
    live, cfg = live_settings(), job.train_config
    with st.form(key=f"{key}_change", border=False, enter_to_submit=True):
        cols = st.columns(len(live) + 1, vertical_alignment="bottom")
        values = {}
        for col, (name, setting) in zip(cols, live.items()):
            values[name] = col.number_input(
                setting.label, value=float(getattr(cfg, name)), min_value=float(setting.lo),
                max_value=float(setting.hi), step=setting.step or None, format="%g" if name == "lr" else "%.2f",
                help=f"{setting.describe()} Applies from the next batch, marked on the curves.", key=f"{key}_{name}")
        if cols[-1].form_submit_button("Apply", width="stretch"):
            try:
                applied = [name for name, value in values.items() if job.change(name, value)]
            except ConfigError as e:
                st.error(str(e))
                return
            if applied:
                st.toast("Changed from the next batch: " + ", ".join(live[n].label for n in applied) + ".")


def card_controls(job) -> None:
    """Pause / Resume, Step and Step epoch in the sidebar's model card, on every page: a press reruns the whole
    page, so the Explore page shows the model as the step left it."""
    if not job.state().active:
        return
    if not controls(job):
        st.caption(f":material/lock: {who_may_act(job.name, 'pause or step it')}")
        return
    paused = job.control.paused
    pause, step, epoch = st.columns(3, gap="small")
    pressed = None
    if pause.button("", key="card_pause", icon=":material/play_arrow:" if paused else ":material/pause:",
                    help="Resume" if paused else "Pause: the job holds, keeping its state", width="stretch"):
        pressed = job.resume if paused else job.pause
    if step.button("", key="card_step", icon=":material/skip_next:", help="Step one batch", width="stretch"):
        pressed = job.step
    if epoch.button("", key="card_epoch", icon=":material/fast_forward:", help="Step to the epoch's end",
                    width="stretch"):
        pressed = job.step_epoch
    if pressed is not None:
        pressed()
        st.rerun(scope="app")  # the card lives in a fragment: the page below must follow the step too
    if paused:
        st.caption(f"Paused at step {job.state().step}.")
