"""AppTest: app.py, Home and Train with no model, with a checkpoint, and while a job runs; the app's
caches and jobs stay bounded as sessions come and go; with no network and no data."""
import ast
import json
import os
import torch
import pickle
import socket
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pages.ui.sitemap import PAGES as SITE
from tests.conftest import ROOT, app_test, assert_no_exception, tiny_dataset
from vae import checkpoint as ckpt_io
from vae.checkpoint import listing
from vae.training import registry as registry_mod
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.training.trainer import Trainer

APP = Path(__file__).parents[1] / "app.py"
# The Model and Explore pages (the Teach pages have tests/test_teaching_pages.py).
PAGES = [p.script for p in SITE if p.section != "Teach"]


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    """A data folder for the shapes disk cache, shared by the session (generation takes seconds)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, shapes_dir):
    train = load_dataset("shapes", "train", shapes_dir)
    test = load_dataset("shapes", "test", shapes_dir)
    trainer = Trainer(ModelConfig(hidden=(64,)), TrainConfig(epochs=1, train_limit=2000, batch_size=128, device="cpu"),
                      train, test)
    trainer.run()
    folder = tmp_path_factory.mktemp("ckpt")
    return ckpt_io.save(trainer.checkpoint_payload(), folder / "default-shapes-2d.pt")


@pytest.fixture
def env(tmp_path, monkeypatch, shapes_dir):
    """An empty checkpoints folder and the shared data folder; caches and jobs cleared around each test."""
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(shapes_dir))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path / "checkpoints"
    from pages.ui.places import registry

    registry().stop_all()
    st.cache_resource.clear()


_app = app_test


def _on(at: AppTest, page: str) -> AppTest:
    return at.switch_page(page).run()


_no_exception = assert_no_exception


@pytest.mark.parametrize("page", PAGES)
def test_every_page_without_a_model(env, page):
    at = _app()
    _no_exception(at, "home")
    _on(at, page)
    _no_exception(at, page)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_with_a_loaded_checkpoint(env, small_checkpoint, page):
    at = _app(("path", str(small_checkpoint)))
    _on(at, page)
    _no_exception(at, page)
    card = " ".join(m.value for m in at.sidebar.markdown)
    assert "default-shapes-2d" in card and "Latent dim: **2**" in card


def test_fresh_session_opens_with_the_default_model(env, small_checkpoint):
    env.mkdir(parents=True)
    (env / "default-shapes-2d.pt").write_bytes(small_checkpoint.read_bytes())
    at = _app()
    assert at.session_state["model_source"] == ("path", str(env / "default-shapes-2d.pt"))
    assert "default-shapes-2d" in " ".join(m.value for m in at.sidebar.markdown)


def _start(at: AppTest, epochs: int, hidden: str = "64", batch: int = 256) -> AppTest:
    at = _on(at, "pages/train.py")
    at.selectbox(key="f_dataset").set_value("shapes")
    at.number_input(key="f_epochs").set_value(epochs)
    at.text_input(key="f_hidden").set_value(hidden)
    at.number_input(key="f_batch_size").set_value(batch)
    at.button(key="start").click()
    return at.run()


def _job(at):
    from pages.ui.places import registry

    return registry().get(at.session_state["job_id"])


def test_training_from_the_page_grows_history_across_reruns_and_autosaves(env):
    at = _start(_app(), epochs=3, hidden="256,128", batch=64)
    _no_exception(at, "start")
    job = _job(at)
    lengths = []
    for _ in range(40):
        at.run()
        _no_exception(at, "poll")
        lengths.append(at.session_state["history_len"])
        if not job.state().active:
            break
        time.sleep(0.5)
    assert max(lengths) > min(lengths), f"history did not grow: {lengths}"
    job.join(60)
    state = job.state()
    assert state.status == "finished", state.message
    ckpt = ckpt_io.load(state.checkpoint_path)
    assert ckpt.epoch == 3 and ckpt.dataset == "shapes"
    at.run()
    assert any("finished" in s.value for s in at.success)
    # The live curves (pages/ui/live_plot.py) carry the finished run: a test point per epoch, and the
    # smoothed training curve up to the last step.
    fig = _curves_figure(at)
    train, test = fig["data"][0], fig["data"][1]
    assert test["x"] == [1, 2, 3] and len(test["y"]) == 3
    assert len(train["x"]) >= 2 and train["x"][-1] == pytest.approx(3.0)


def _curves_figure(at: AppTest) -> dict:
    """The plotly figure the Train page's live curves component was last given."""
    charts = [e for e in at.get("bidi_component") if e.proto.component_name == "latent_explorer.live_plot"]
    assert len(charts) == 1, f"{len(charts)} live curve charts on the page"
    return json.loads(json.loads(charts[0].proto.json)["figure"])


def test_stop_stops_within_a_second_and_keeps_what_was_learned(env):
    at = _start(_app(), epochs=200)
    job = _job(at)
    deadline = time.time() + 30
    while job.state().step < 5 and time.time() < deadline:
        time.sleep(0.1)
    at.run()
    t0 = time.perf_counter()
    at.button(key="stop").click().run()
    job.join(5)
    elapsed = time.perf_counter() - t0
    state = job.state()
    assert state.status == "stopped", state.message
    assert elapsed < 5, elapsed  # AppTest overhead included; the job itself stops between two steps
    ckpt = ckpt_io.load(state.checkpoint_path)
    assert ckpt.step == state.step > 0
    assert "elbo" in ckpt.test_metrics


def test_second_job_is_refused_while_one_runs(env):
    at = _start(_app(), epochs=200)
    first = _job(at)
    at2 = _start(_app(), epochs=1)
    assert any("already running" in e.value for e in at2.error)
    assert at2.session_state["job_id"] if "job_id" in at2.session_state else True
    first.stop()


def test_bad_setting_shows_a_readable_error(env):
    at = _on(_app(), "pages/train.py")
    at.text_input(key="f_lr").set_value("fast")
    at.button(key="start").click().run()
    assert [e.value for e in at.error] == ["Learning rate must be a number like 1e-3, not 'fast'."]
    at.text_input(key="f_lr").set_value("5")
    at.button(key="start").click().run()
    assert "Learning rate must be above 0 and at most 1" in at.error[0].value


def test_missing_dataset_offers_shapes(env, tmp_path, monkeypatch):
    at = _on(_app(), "pages/train.py")
    at.session_state["data_dir"] = str(tmp_path / "empty")
    at.selectbox(key="f_dataset").set_value("mnist")
    at.button(key="start").click().run()
    _no_exception(at, "missing data")
    assert "MNIST" in at.error[0].value and str(tmp_path / "empty") in at.error[0].value
    at.button(key="use_shapes").click().run()
    assert at.selectbox(key="f_dataset").value == "shapes"


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload").upload(name, data, "application/octet-stream")
    return at.run()


def test_uploading_a_corrupt_file_shows_an_error_and_keeps_the_model(env, small_checkpoint):
    at = _app(("path", str(small_checkpoint)))
    before = at.session_state["model_source"]
    at = _upload(at, "broken.pt", b"definitely not a checkpoint")
    _no_exception(at, "upload")
    assert at.error and "broken.pt" in at.error[0].value
    assert at.session_state["model_source"] == before


def test_uploading_a_malicious_pickle_is_refused_and_never_runs(env, small_checkpoint, tmp_path):
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    at = _upload(_app(("path", str(small_checkpoint))), "evil.pt", pickle.dumps(Payload()))
    assert "refused" in at.error[0].value
    assert not marker.exists()


def test_uploading_a_good_checkpoint_makes_it_current(env, small_checkpoint):
    at = _upload(_app(), "mine.pt", small_checkpoint.read_bytes())
    _no_exception(at, "upload")
    assert at.session_state["model_source"][0] == "upload"
    assert "default-shapes-2d" not in at.session_state["model_source"][1]


def test_a_second_tab_keeps_showing_the_job_once_it_is_stopped(env):
    """A tab that did not start the job (a second browser tab) sees it, without Stop (tests/test_shared_jobs.py),
    and once the first tab stops it the stopped job's status and curves stay, rather than the page falling back
    to the empty form."""
    at = _start(_app(), epochs=200)
    job = _job(at)
    deadline = time.time() + 30
    while job.state().step < 5 and time.time() < deadline:
        time.sleep(0.1)
    other = _on(_app(), "pages/train.py")  # a new session: it never pressed Start
    _no_exception(other, "second tab")
    assert other.session_state["job_id"] == job.job_id
    assert not [b for b in other.button if b.key == "stop"]
    at.run().button(key="stop").click().run()
    job.join(5)
    assert job.state().status == "stopped"
    other.run()
    _no_exception(other, "after stop")
    assert any(f"{job.state().name}: stopped" in h.value for h in other.subheader)
    assert not any("Pick settings and press Start" in i.value for i in other.info)


def test_home_lists_saved_checkpoints_full_width_with_their_metrics(env, small_checkpoint):
    import shutil

    env.mkdir(parents=True)
    shutil.copy(small_checkpoint, env / "lecture-a.pt")
    at = _app()
    _no_exception(at, "home")
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert list(table.columns) == ["checkpoint", "dataset", "latent dim", "epochs", "test −ELBO (nats)", "saved (UTC)"]
    row = table[table["checkpoint"] == "lecture-a"].iloc[0]
    info = ckpt_io.load(env / "lecture-a.pt")
    assert row["dataset"] == "shapes" and row["latent dim"] == 2 and row["epochs"] == info.epoch
    assert abs(row["test −ELBO (nats)"] - info.test_metrics["elbo"]) < 0.06 and len(row["saved (UTC)"]) == 16
    assert [o for o in at.selectbox(key="ckpt_choice").options if "lecture-a" in o]


def test_the_checkpoints_folder_is_the_repositorys_by_default(monkeypatch):
    """Without VAE_CHECKPOINT_DIR the app lists checkpoints/ beside app.py, where the shipped defaults are."""
    from pages.ui.current_model import DEFAULT_MODELS
    from pages.ui.places import checkpoint_dir

    monkeypatch.delenv("VAE_CHECKPOINT_DIR", raising=False)
    assert checkpoint_dir() == (Path(__file__).resolve().parents[1] / "checkpoints")
    assert (checkpoint_dir() / DEFAULT_MODELS["shapes"]).is_file()


# ---- caches and jobs stay bounded as sessions come and go ------------------------------------------

def _cache_entries(cached_function) -> int:
    """How many results a st.cache_resource function holds now (Streamlit 1.67 internals: there is
    no public count)."""
    cache = cached_function._info.get_function_cache(cached_function._function_key)
    return len(cache._mem_cache)


def _cache_decorators(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        for deco in getattr(node, "decorator_list", []):
            target = deco.func if isinstance(deco, ast.Call) else deco
            if isinstance(target, ast.Attribute) and target.attr in ("cache_resource", "cache_data"):
                yield node.name, deco


def test_every_streamlit_cache_is_bounded():
    found = 0
    for path in [APP, *sorted((ROOT / "pages").rglob("*.py"))]:
        for name, deco in _cache_decorators(path):
            found += 1
            keywords = {k.arg for k in deco.keywords} if isinstance(deco, ast.Call) else set()
            assert keywords & {"max_entries", "ttl"}, f"{path.name}: {name} has no max_entries or ttl"
    assert found >= 3


def test_checkpoint_cache_holds_at_most_max_entries(app_env, good_checkpoint):
    from pages.ui import current_model

    limit = current_model._load_checkpoint._info.max_entries
    folder = app_env / "many"
    folder.mkdir()
    for i in range(limit + 4):
        path = folder / f"m{i}.pt"
        path.write_bytes(good_checkpoint.read_bytes())
        assert current_model.load_checkpoint(path).epoch == 1
        assert _cache_entries(current_model._load_checkpoint) == min(i + 1, limit)


def test_encoding_cache_holds_at_most_max_entries(app_env, good_checkpoint):
    """Each model version (a live job publishes one every few seconds) is one key; old ones leave."""
    from pages.ui import encodings
    from vae.training.view import ModelView

    limit = encodings._encoded._info.max_entries
    ckpt = ckpt_io.load(good_checkpoint)
    load_dataset("shapes", "test", app_env / "data")
    for version in range(limit + 4):
        view = ModelView.from_checkpoint(ckpt, key=f"job:1:{version}")
        encoded = encodings._encoded(view, view.key, ("shapes", str(app_env / "data"), 32, 3), 64)
        assert encoded.mu.shape == (64, 2)
        assert _cache_entries(encodings._encoded) == min(version + 1, limit)


def test_checkpoint_listing_keeps_one_entry_per_file(tmp_path, good_checkpoint):
    """A job rewrites its checkpoint every epoch and the Home page lists it on each visit."""
    folder = tmp_path / "listed"
    folder.mkdir()
    path = folder / "live.pt"
    path.write_bytes(good_checkpoint.read_bytes())
    for epoch in range(12):
        os.utime(path, ns=(10**18, 10**18 + epoch))  # rewritten: a new modification time, a new version
        assert [i.name for i in ckpt_io.list_checkpoints(folder)] == ["live"]
        assert sum(Path(k).parent == folder for k in listing._info_cache) == 1
    path.unlink()
    assert ckpt_io.list_checkpoints(folder) == []
    assert not any(Path(k).parent == folder for k in listing._info_cache)


def test_job_registry_keeps_only_the_newest_finished_jobs(tmp_path, monkeypatch):
    data = {"train": tiny_dataset(64, "train"), "test": tiny_dataset(32, "test", 1)}
    monkeypatch.setattr("vae.data.loading.load_dataset", lambda name, split, *args, **kwargs: data[split])
    monkeypatch.setattr(registry_mod, "FINISHED_JOBS_KEPT", 3)
    registry = registry_mod.JobRegistry(tmp_path, max_running=1)
    cfgs = ModelConfig(hidden=(16,)), TrainConfig(epochs=1, batch_size=32, device="cpu")
    started = []
    for _ in range(9):
        job = registry.start(*cfgs)
        job.join(60)
        assert job.state().status == "finished", job.state().message
        started.append(job.job_id)
        assert len(registry.jobs()) <= 3 + 1
    assert [j.job_id for j in registry.jobs()] == started[-4:], "the 3 kept and the newest (finished since)"
    assert len(list(tmp_path.glob("*.pt"))) == 9, "forgetting a job keeps its checkpoint on disk"


# ---- offline: no network, no dataset ---------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt fails at once, as on a laptop in a classroom with no Wi-Fi."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.parametrize("dataset, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"),
                                             ("kmnist", "KMNIST")])
def test_offline_train_page_names_the_folder_and_the_files(app_env, no_network, dataset, folder):
    at = _app().switch_page("pages/train.py").run()
    at.selectbox(key="f_dataset").set_value(dataset)
    at.button(key="start").click().run()
    assert not at.exception
    message = at.error[0].value
    raw = (app_env / "data").resolve() / folder / "raw"
    assert str(raw) in message
    for file in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert file in message, file
    assert "shapes" in message and "job_id" not in at.session_state


def test_offline_home_and_shapes_work_end_to_end(app_env, no_network):
    """No network, no data, no checkpoints: Home draws, MNIST says what to do, and the built-in
    shapes train from the page, finish, and draw on the Explore pages."""
    at = _app()
    assert not at.exception and any("No model is loaded" in i.value for i in at.info)
    at.switch_page("pages/train.py").run()
    at.selectbox(key="f_dataset").set_value("mnist")
    at.button(key="start").click().run()
    at.button(key="use_shapes").click().run()
    assert at.selectbox(key="f_dataset").value == "shapes"
    at.text_input(key="f_hidden").set_value("32")
    at.number_input(key="f_epochs").set_value(1)
    at.number_input(key="f_batch_size").set_value(512)
    at.button(key="start").click().run()
    assert not at.exception
    from pages.ui.places import registry

    job = registry().get(at.session_state["job_id"])
    job.join(120)
    assert job.state().status == "finished", job.state().message
    for page in (p.script for p in SITE if p.tour):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
    assert ckpt_io.load(job.state().checkpoint_path).dataset == "shapes"


def test_the_data_folder_typed_on_home_must_be_one_the_server_allows(app_env, tmp_path):
    at = app_test().switch_page("pages/home.py").run()
    outside = tmp_path / "not-allowed" / "mnist"
    at.text_input(key="data_dir_input").set_value(str(outside)).run()
    assert_no_exception(at, "home, data folder")
    assert "is not a data folder this server allows" in at.error[0].value
    assert "data_dir" not in at.session_state and not outside.exists()
    inside = app_env / "data" / "copy"
    at.text_input(key="data_dir_input").set_value(str(inside)).run()
    assert at.session_state["data_dir"] == str(inside) and not at.error


def _cut_short(folder: Path, shapes_dir: Path, epochs: int) -> Path:
    """A run of the shapes that stopped after 1 of `epochs` epochs (its server restarted), with Adam's state."""
    train, test = load_dataset("shapes", "train", shapes_dir), load_dataset("shapes", "test", shapes_dir)
    trainer = Trainer(ModelConfig(hidden=(32,)), TrainConfig(epochs=epochs, train_limit=512, batch_size=128, device="cpu"),
                      train, test)
    trainer.run_epoch()
    return ckpt_io.save(trainer.checkpoint_payload(), folder / "cut-short.pt")


def test_an_interrupted_run_is_listed_after_a_restart_and_resumes_where_it_stopped(env, shapes_dir):
    """A run that stopped after 1 of 3 epochs (its server restarted) with Adam's state: the Train page lists
    it, and Resume trains epochs 2 and 3 into the same checkpoint, its history continued."""
    path = _cut_short(env, shapes_dir, epochs=3)
    first = ckpt_io.load(path).history
    at = _on(_app(), "pages/train.py")
    text = " ".join(m.value for m in at.markdown)
    assert "cut-short · shapes · epoch 1 of 3" in text, text
    at.button(key="resume_cut-short").click().run()
    _no_exception(at, "resume")
    job = _job(at)
    deadline = time.monotonic() + 120
    while job.state().active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.state().status == "finished", job.state().message
    resumed = ckpt_io.load(path)
    assert resumed.epoch == 3 and resumed.history[:len(first)] == first
    assert not resumed.resumable and "cut-short" not in " ".join(m.value for m in _on(_app(), "pages/train.py").markdown)


def test_a_run_another_server_is_writing_is_not_offered_and_its_resume_is_refused(env, shapes_dir):
    """Two servers (or the CLI and a server) share the checkpoints folder: a run the other one resumed is not
    listed as interrupted here, and Resume pressed on a page drawn before it started is one sentence."""
    from tests.conftest import assert_one_sentence

    path = _cut_short(env, shapes_dir, epochs=1000)
    at = _on(_app(), "pages/train.py")
    assert "cut-short · shapes · epoch 1 of 1000" in " ".join(m.value for m in at.markdown)
    other = registry_mod.JobRegistry(env).resume(path, data_dir=str(shapes_dir))  # the other server's Resume
    try:
        at.button(key="resume_cut-short").click().run()
        _no_exception(at, "resume")
        assert "job_id" not in at.session_state, "a second run started writing the same file"
        assert [e.value for e in at.error] == [f"cut-short.pt is being written by another training run "
                                               f"(process {os.getpid()}); wait for it to finish or choose another name."]
        assert_one_sentence(at.error[0].value)
        assert "cut-short" not in " ".join(m.value for m in _on(_app(), "pages/train.py").markdown)
    finally:
        other.stop()
        other.join(30)
    assert other.state().status == "stopped", other.state().message


def _odd_folder_checkpoint(small_checkpoint: Path, folder: Path, value) -> Path:
    """The small model as a run of the user's own images whose train_config.data_dir holds value."""
    payload = torch.load(small_checkpoint, weights_only=True)
    payload["dataset"] = "folder"
    payload["train_config"].update(dataset="folder", image_size=28, channels=1, data_dir=value)
    return ckpt_io.save(payload, folder / "odd.pt")


def test_a_checkpoint_whose_data_folder_is_not_a_path_breaks_no_page(env, small_checkpoint, tmp_path):
    path = _odd_folder_checkpoint(small_checkpoint, tmp_path, [1, 2])
    at = _app(("path", str(path)))
    for page in PAGES:
        _on(at, page)
        _no_exception(at, page)
    with pytest.raises(ckpt_io.CheckpointError, match="Data folder"):
        ckpt_io.load(path)


@pytest.mark.parametrize("value", [3, [1, 2], 1.5, {"a": 1}, None, "", "/", "da\0ta", "x" * 5000])
def test_the_explore_pages_data_source_takes_any_data_folder_a_view_holds(small_checkpoint, value):
    """What a page reads from a view's train_config.data_dir: an allowed folder, or one sentence, whatever it holds."""
    import dataclasses

    from pages.ui.encodings import data_source
    from vae.data import DatasetUnavailable
    from vae.training.view import ModelView

    view = ModelView.from_checkpoint(ckpt_io.load(small_checkpoint))
    cfg = dataclasses.replace(view.train_config, dataset="folder")
    object.__setattr__(cfg, "data_dir", value)  # past the config's own check, as an older object might hold it
    view.train_config, view.dataset = cfg, "folder"
    try:
        data_source(view)
    except DatasetUnavailable as e:
        assert "\n" not in str(e) and str(e).endswith("."), str(e)


def test_start_in_a_checkpoints_folder_that_cannot_be_written_is_a_failed_job_at_once(env, read_only_folder,
                                                                                       monkeypatch):
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(read_only_folder))
    at = _start(_app(), epochs=50)
    _no_exception(at, "start")
    job = _job(at)
    assert job.state().status == "failed" and job.state().step == 0
    [shown] = [e.value for e in at.error]
    assert shown.startswith(f"failed: Cannot write a checkpoint into {read_only_folder} ("), shown
    assert shown.endswith("); make the folder writable or choose another one."), shown
