"""A class on one server: jobs belong to the server and every tab follows them (the sidebar lists the running
jobs, Open shows one on the Explore pages); only the tab that started a job, or one that entered the teacher key,
stops it, and any other reads who may in one sentence. The Train page's Interrupted runs lists every run that no
job trains, a Compare group as one run, which resumes as one job."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st

from tests.conftest import app_test, assert_no_exception, assert_one_sentence
from vae import checkpoint as ckpt_io
from vae.analysis.teaching import beta_sweep_variants
from vae.checkpoint.listing import CheckpointInfo
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.training.interrupted import interrupted_runs
from vae.training.jobs import VariantsJob
from vae.training.ownership import TEACHER_KEY_ENV, is_teacher_key, may_control, who_may_act
from vae.training.trainer import Trainer

KEY = "chalk-and-talk-42"
SMALL = dict(dataset="shapes", train_limit=512, batch_size=64, device="cpu")  # 8 steps an epoch


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def env(tmp_path, monkeypatch, shapes_dir):
    """An empty checkpoints folder, the module's shapes, no teacher key; caches and jobs cleared around each test."""
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(shapes_dir))
    monkeypatch.delenv(TEACHER_KEY_ENV, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path / "checkpoints"
    from pages.ui.places import registry

    registry().stop_all()
    st.cache_resource.clear()


def _registry():
    from pages.ui.places import registry

    return registry()


def _buttons(at, key_start: str) -> list:
    return [b for b in at.button if b.key and b.key.startswith(key_start)]


def _texts(at) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "error", "info", "success", "warning")
                    for e in getattr(at, kind))


def _until(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def _start_from_train_page(at, name: str = "room"):
    """A tab starts a shapes job of many epochs on the Train page; returns the job."""
    at = at.switch_page("pages/train.py").run()
    at.selectbox(key="f_dataset").set_value("shapes")
    at.number_input(key="f_epochs").set_value(1000)
    at.text_input(key="f_hidden").set_value("32")
    at.number_input(key="f_batch_size").set_value(64)
    at.number_input(key="f_train_limit").set_value(512)
    at.text_input(key="f_name").set_value(name)
    at.button(key="start").click().run()
    assert_no_exception(at, "start")
    return _registry().get(at.session_state["job_id"])


# --- who may act -------------------------------------------------------------------------------------

def test_only_the_owner_or_a_teacher_controls_a_job():
    assert may_control("tab-a", "tab-a", teacher=False)
    assert not may_control("tab-a", "tab-b", teacher=False)
    assert may_control("tab-a", "tab-b", teacher=True)
    assert may_control(None, "tab-b", teacher=False)  # a job started outside the app (a test, the CLI's)


def test_the_teacher_key_matches_only_the_servers_key():
    assert is_teacher_key(KEY, {TEACHER_KEY_ENV: KEY}) and is_teacher_key(f" {KEY} ", {TEACHER_KEY_ENV: KEY})
    for entered in ("", "chalk", KEY.upper(), KEY + "x"):
        assert not is_teacher_key(entered, {TEACHER_KEY_ENV: KEY}), entered
    for environ in ({}, {TEACHER_KEY_ENV: ""}, {TEACHER_KEY_ENV: "   "}):  # no key: nobody is a teacher
        assert not is_teacher_key("", environ) and not is_teacher_key(" ", environ)


@pytest.mark.parametrize("environ", [{}, {TEACHER_KEY_ENV: KEY}])
def test_a_refusal_says_who_may_act_in_one_sentence(environ):
    sentence = who_may_act("room", environ=environ)
    assert_one_sentence(sentence, capital=True)
    assert "the tab that started room" in sentence
    assert ("teacher key" in sentence) == bool(environ) and KEY not in sentence


# --- tabs that follow a job ----------------------------------------------------------------------------

def test_a_second_tab_follows_a_job_live_but_cannot_stop_it(env):
    a = app_test()
    job = _start_from_train_page(a)
    assert job.owner == a.session_state["session_id"]
    assert _buttons(a.run(), "stop"), "the tab that started the job has no Stop"
    _until(lambda: job.view() is not None)

    b = app_test()  # a student's tab: the sidebar lists the job, Open makes it the tab's model
    b.button(key=f"open_job_{job.job_id}").click().run()
    assert_no_exception(b, "open")
    assert tuple(b.session_state["model_source"]) == ("job", job.job_id)
    assert b.button(key=f"open_job_{job.job_id}").disabled
    assert "training live" in " ".join(m.value for m in b.sidebar.markdown)
    for page in ("pages/sliders.py", "pages/scatter.py", "pages/manifold.py"):
        b.switch_page(page).run()
        assert_no_exception(b, page)
        assert not b.info, (page, [i.value for i in b.info])  # the job's model, not a hint to get one

    b.switch_page("pages/train.py").run()  # the Train page shows the running job, read-only
    assert not _buttons(b, "stop")
    assert who_may_act("room") in _texts(b)
    assert job.state().active


def test_the_teacher_key_lets_any_tab_stop_any_job(env, monkeypatch):
    monkeypatch.setenv(TEACHER_KEY_ENV, KEY)
    job = _start_from_train_page(app_test())
    b = app_test().switch_page("pages/train.py").run()
    assert not _buttons(b, "stop") and who_may_act("room") in _texts(b)
    assert "teacher key" in who_may_act("room")

    b.text_input(key="teacher_key_input").set_value("guess").run()
    assert_no_exception(b, "wrong key")
    assert [e.value for e in b.error] == ["That is not this server's teacher key; ask whoever started the server "
                                          "for it."]
    assert not _buttons(b, "stop")

    b.text_input(key="teacher_key_input").set_value(KEY).run()
    assert_no_exception(b, "teacher key")
    assert b.session_state["teacher"] is True and b.session_state["teacher_key_input"] == ""  # compared, forgotten
    assert KEY not in _texts(b) and not b.error
    b.button(key="stop").click().run()
    assert_no_exception(b, "teacher's stop")
    job.join(30)
    assert job.state().status == "stopped", job.state().message

    b.button(key="teacher_leave").click().run()  # out of teacher mode, the box is back
    assert "teacher" not in b.session_state and b.text_input(key="teacher_key_input")


def test_compare_offers_stop_only_to_the_tab_that_started_the_group(env):
    base = TrainConfig(epochs=1000, **SMALL)
    group = _registry().start_variants(ModelConfig(hidden=(32,), latent_dim=10), beta_sweep_variants(base), "sweep",
                                       owner="the-teachers-tab")
    at = app_test()
    at.session_state["cmp_models"] = [f"job:{m.job_id}" for m in group.members]  # another tab follows the group
    at.switch_page("pages/compare.py").run()
    assert_no_exception(at, "compare")
    assert not _buttons(at, "cmp_stop") and who_may_act("sweep") in _texts(at)
    at.session_state["session_id"] = "the-teachers-tab"  # the same tab as the one that pressed Train all three
    assert _buttons(at.run(), "cmp_stop")
    at.button(key="cmp_stop").click().run()
    group.join(30)
    assert group.state().status == "stopped", group.state().message


# --- interrupted runs --------------------------------------------------------------------------------

def _one_epoch_of(train_cfg: TrainConfig, shapes_dir: Path, latent_dim: int = 2) -> Trainer:
    train, test = load_dataset("shapes", "train", shapes_dir), load_dataset("shapes", "test", shapes_dir)
    trainer = Trainer(ModelConfig(hidden=(32,), latent_dim=latent_dim), train_cfg, train, test)
    trainer.run_epoch()
    return trainer


def test_interrupted_runs_gather_a_group_and_leave_out_what_trains():
    def info(name, planned=5, resumable=True, folder="/ck"):
        return CheckpointInfo(path=f"{folder}/{name}.pt", name=name, dataset="shapes", latent_dim=10, arch="mlp",
                              epochs=1, planned_epochs=planned, resumable=resumable)

    infos = [info("lecture-shapes-recon-only"), info("solo"), info("lecture-shapes-elbo"),
             info("lecture-shapes-kl-only", resumable=False),  # it finished: not interrupted
             info("sweep-beta-1"), info("sweep-beta-4", planned=9),  # not one schedule: two runs
             info("busy"), info("x-beta-8")]
    runs = interrupted_runs(infos, training={"/ck/busy.pt"})
    assert [(r.name, [m.name for m in r.members]) for r in runs] == [
        ("lecture-shapes", ["lecture-shapes-recon-only", "lecture-shapes-elbo"]), ("solo", ["solo"]),
        ("sweep-beta-1", ["sweep-beta-1"]), ("sweep-beta-4", ["sweep-beta-4"]), ("x-beta-8", ["x-beta-8"])]
    assert runs[0].is_group and not runs[1].is_group


def test_interrupted_runs_lists_all_of_them_and_no_run_a_job_trains(env, shapes_dir):
    env.mkdir(parents=True)
    payload = _one_epoch_of(TrainConfig(epochs=3, **SMALL), shapes_dir).checkpoint_payload()
    for i in range(7):
        ckpt_io.save(payload, env / f"cut-{i}.pt")
    base = TrainConfig(epochs=1000, **SMALL)  # a β sweep that trains now, each member saved once
    sweep = _registry().start_variants(ModelConfig(hidden=(32,), latent_dim=10), beta_sweep_variants(base), "sweep")
    _until(lambda: all(Path(m.checkpoint_path).exists() for m in sweep.members))
    assert all(ckpt_io.load(m.checkpoint_path).resumable for m in sweep.members)  # it would look interrupted

    at = app_test().switch_page("pages/train.py").run()
    assert_no_exception(at, "train")
    text = " ".join(m.value for m in at.markdown)
    assert "**Interrupted runs** (7)" in text and "sweep" not in text, text
    assert sorted(b.key for b in _buttons(at, "resume_")) == [f"resume_cut-{i}" for i in range(7)]
    assert sweep.state().active
    sweep.stop()
    sweep.join(30)


def test_an_interrupted_group_resumes_as_one_job(env, shapes_dir):
    """The three models of a β sweep that its server lost after one epoch of two: one row, one Resume, one job
    that trains all three to their planned epochs, each into its own file, its history continued."""
    env.mkdir(parents=True)
    base = TrainConfig(epochs=2, **SMALL)
    for suffix, cfg in beta_sweep_variants(base):
        ckpt_io.save(_one_epoch_of(cfg, shapes_dir, latent_dim=10).checkpoint_payload(), env / f"sweep-{suffix}.pt")
    ckpt_io.save(_one_epoch_of(base, shapes_dir).checkpoint_payload(), env / "alone.pt")
    first = {p.stem: ckpt_io.load(p).history for p in env.glob("sweep-*.pt")}

    at = app_test().switch_page("pages/train.py").run()
    rows = [m.value for m in at.markdown if "models trained together (" in m.value]
    assert rows == ["sweep · 3 models trained together (beta-1, beta-4, beta-8) · shapes · epoch 1 of 2"], rows
    assert "**Interrupted runs** (2)" in " ".join(m.value for m in at.markdown)
    at.button(key="resume_group_sweep").click().run()
    assert_no_exception(at, "resume the group")
    group = _registry().get(at.session_state["job_id"])
    assert isinstance(group, VariantsJob) and len(_registry().running()) == 1
    assert group.owner == at.session_state["session_id"]
    assert [m.name for m in group.members] == ["sweep-beta-1", "sweep-beta-4", "sweep-beta-8"]
    group.join(120)
    assert group.state().status == "finished", group.state().message
    for stem, history in first.items():
        resumed = ckpt_io.load(env / f"{stem}.pt")
        assert resumed.epoch == 2 and not resumed.resumable and resumed.history[:len(history)] == history, stem
    at.run()
    assert [b.key for b in _buttons(at, "resume_")] == ["resume_alone"]
