"""Jobs belong to the server and every tab follows them: the sidebar lists the running jobs, and Open shows one on
this tab's Explore pages, live, as on the tab that started it. Steering a job (Stop, and any control a job has) is
for the tab that started it, or a tab that entered the server's teacher key in the sidebar
(vae/training/ownership.py); any other tab reads who may, in one sentence, where the control would be."""
from __future__ import annotations

import uuid

import streamlit as st

from pages.ui.current_model import ModelRef, use_source
from pages.ui.places import registry
from vae.training.jobs import TrainingJob
from vae.training.ownership import TEACHER_KEY_ENV, is_teacher_key, may_control, teacher_key_set, who_may_act

SESSION_KEY = "session_id"  # this tab's id, kept as the owner of every job it starts
TEACHER = "teacher"  # True once this tab entered the teacher key
KEY_INPUT = "teacher_key_input"
# The sidebar's list of running jobs looks this often for jobs another tab started or that ended: a student's
# tab learns of the teacher's job within that time, at one small rerun per tab.
JOBS_SECONDS = 10.0


def session_id() -> str:
    """This tab's id, for as long as its Streamlit session lives (a reload starts a new one)."""
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = uuid.uuid4().hex
    return st.session_state[SESSION_KEY]


def is_teacher() -> bool:
    return bool(st.session_state.get(TEACHER)) and teacher_key_set()


def controls(job: TrainingJob) -> bool:
    """Whether this tab may stop or steer the job: it started it, or it entered the teacher key."""
    return may_control(job.owner, session_id(), is_teacher())


def stop_button(job: TrainingJob, where, key: str) -> None:
    """Stop in `where` for a tab that controls the job (pressed: the job stops, saving what it learned, and the
    app reruns); for any other tab, the sentence that says who may stop it, below."""
    if not controls(job):
        st.caption(f":material/lock: {who_may_act(job.name)}")
        return
    if where.button("Stop", key=key, icon=":material/stop:", width="stretch"):
        job.stop()
        job.join(timeout=5.0)
        st.rerun()


# --- the sidebar -----------------------------------------------------------------------------------

def running_jobs() -> None:
    """Every job the server trains now (a group's members one by one), each a button that opens it here."""
    st.fragment(_running_jobs_body, run_every=JOBS_SECONDS)()


def _running_jobs_body() -> None:
    jobs = [m for job in registry().running() for m in getattr(job, "members", [job]) if m.state().active]
    if not jobs:
        return
    source = st.session_state.get("model_source")
    with st.container(border=True, key="running_jobs"):
        st.markdown(f"**Training now** ({len(jobs)})", help="Open one to watch it on every Explore page, live. "
                    "Only the tab that started a job can stop it.")
        for job in jobs:
            state, here = job.state(), source is not None and tuple(source) == ("job", job.job_id)
            label = f"{state.name} · epoch {min(int(state.epoch) + 1, state.epochs)}/{state.epochs}"
            if st.button(label, key=f"open_job_{job.job_id}", width="stretch", disabled=here,
                         icon=":material/check:" if here else ":material/visibility:",
                         help="Shown on this tab's Explore pages" if here else
                         "Show it on this tab's Explore pages, live"):
                use_source(ModelRef("job", job.job_id))
                st.rerun()  # the whole app: the page and the model card follow the job


def teacher_key_box() -> None:
    """On a server started with a teacher key: the box to enter it, or, entered, what it allows and a way out."""
    if not teacher_key_set():
        return
    with st.expander("Teacher", icon=":material/key:", expanded=is_teacher()):
        if is_teacher():
            st.caption("This tab can stop every job, whoever started it.")
            st.button("Leave teacher mode", key="teacher_leave", on_click=st.session_state.pop, args=(TEACHER, None))
            return
        st.text_input("Teacher key", type="password", key=KEY_INPUT, on_change=_check_key,
                      help=f"The key the server was started with (${TEACHER_KEY_ENV}): this tab then controls "
                           "every job.")
        if st.session_state.get("teacher_problem"):
            st.error(st.session_state["teacher_problem"])


def _check_key() -> None:
    """The key's callback: the key is compared and forgotten (the box is emptied), never shown or kept."""
    entered = st.session_state.get(KEY_INPUT) or ""
    st.session_state[KEY_INPUT] = ""
    st.session_state[TEACHER] = is_teacher_key(entered)
    st.session_state["teacher_problem"] = "" if st.session_state[TEACHER] or not entered else (
        "That is not this server's teacher key; ask whoever started the server for it.")
