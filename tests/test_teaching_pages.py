"""AppTest: the teaching views of issue 7. Compare (loaded models on shared axes, and the
three-variant preset run briefly on shapes), Training replay (scrubber, GIF button, rate and
distortion, active units), the label map on the scatter, the math, and the sidebar card's weights."""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import assert_no_exception, open_page, plotly_array
from pages.ui.sitemap import PAGES
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.training.replay import ReplayRecorder
from vae.training.trainer import Trainer

APP = Path(__file__).parents[1] / "app.py"
TEACH_PAGES = [p.script for p in PAGES if p.section == "Teach"]


@pytest.fixture(scope="session")
def teach_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("teach")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_DATA_DIR", str(root / "data"))
        mp.setenv("VAE_CHECKPOINT_DIR", str(root / "checkpoints"))
        yield root


def _train(folder: Path, name: str, latent_dim: int = 2, replay: bool = True, **train) -> Path:
    data = load_dataset("shapes", "train"), load_dataset("shapes", "test")
    cfg = TrainConfig(**{**dict(epochs=2, train_limit=1000, batch_size=128, device="cpu"), **train})
    trainer = Trainer(ModelConfig(hidden=(64,), latent_dim=latent_dim), cfg, *data)
    if replay:
        ReplayRecorder(n_codes=200).attach(trainer)
    trainer.run()
    return ckpt_io.save(trainer.checkpoint_payload(), folder / f"{name}.pt")


@pytest.fixture(scope="session")
def models(teach_env):
    """Small shapes models outside the checkpoints folder: with a replay (2-D, 4-D), without one, and an AE."""
    folder = teach_env / "models"
    return {"2d": _train(folder, "r2"), "4d": _train(folder, "r4", latent_dim=4),
            "plain": _train(folder, "plain", replay=False), "ae": _train(folder, "ae", beta=0.0)}


@pytest.fixture(autouse=True)
def fresh(teach_env):
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    from pages.ui.places import registry

    registry().stop_all()
    st.cache_resource.clear()
    st.cache_data.clear()


def _open(page: str, source=None) -> AppTest:
    return open_page(page, source, timeout=120)


_no_exception = assert_no_exception


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _text(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.info, *at.warning])


def _share_shown(scatter: dict) -> float:
    """The share of a scatter's codes (its class traces, "<class> · <count>") inside its x and y ranges."""
    traces = [t for t in scatter["data"] if t["type"].startswith("scatter") and " · " in str(t.get("name"))]
    xy = np.concatenate([np.stack([plotly_array(t["x"]), plotly_array(t["y"])], axis=1) for t in traces])
    (x0, x1), (y0, y1) = scatter["layout"]["xaxis"]["range"], scatter["layout"]["yaxis"]["range"]
    return float(((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)).mean())


@pytest.mark.parametrize("page", TEACH_PAGES)
def test_new_pages_without_a_model(page):
    at = _open(page, None)
    assert at.title[0].value in ("Compare", "Training replay")


@pytest.mark.parametrize("page", TEACH_PAGES)
def test_new_pages_with_a_model_without_replay(models, page):
    at = _open(page, ("path", str(models["plain"])))
    if page == "pages/replay.py":
        assert any("no replay" in i.value for i in at.info)
        assert "active" in _text(at)  # the rest of the page still works


# --- Training replay ------------------------------------------------------------------------------

def test_replay_page_scrubs_epochs(models):
    at = _open("pages/replay.py", ("path", str(models["2d"])))
    slider = at.select_slider(key="rp_epoch")
    assert slider.options == ["0", "1", "2"] and slider.value == 2
    manifold, scatter, rd = _figures(at)
    assert manifold["data"][0]["type"] == "image"
    extent = scatter["layout"]["xaxis"]["range"]
    assert rd["data"][0]["mode"] == "lines+markers+text" and len(rd["data"][0]["x"]) == 2
    download = at.get("download_button")[0]
    assert "Download GIF (3 epochs)" in download.proto.label
    slider.set_value(0).run()
    _no_exception(at)
    assert any("before training" in c.value for c in at.caption)
    assert _figures(at)[1]["layout"]["xaxis"]["range"] == extent, "one range for every epoch"
    assert at.expander[0].label == "The math" and len(at.latex) >= 4


def test_replay_page_plays_the_epochs_and_stops_at_the_last(models):
    at = _open("pages/replay.py", ("path", str(models["2d"])))
    assert at.button(key="rp_play").label == "Play" and at.select_slider(key="rp_epoch").value == 2
    at.button(key="rp_play").click().run()  # at the last epoch: Play starts again from the first
    _no_exception(at)
    slider = at.select_slider(key="rp_epoch")
    assert slider.value == 0 and slider.disabled and at.button(key="rp_play").label == "Pause"
    at.run()  # what each tick of the fragment's timer does
    assert at.select_slider(key="rp_epoch").value == 1 and at.session_state["rp_playing"]
    at.run()
    _no_exception(at)
    slider = at.select_slider(key="rp_epoch")
    assert slider.value == 2 and not slider.disabled and at.button(key="rp_play").label == "Play"
    assert not at.session_state["rp_playing"]
    at.run()
    assert at.select_slider(key="rp_epoch").value == 2, "stopped: the last epoch stays"
    at.select_slider(key="rp_epoch").set_value(1).run()
    at.button(key="rp_play").click().run()  # from where the scrubber is
    assert at.select_slider(key="rp_epoch").value == 1 and at.button(key="rp_play").label == "Pause"
    at.button(key="rp_play").click().run()  # Pause holds the epoch shown
    assert at.select_slider(key="rp_epoch").value == 1 and at.button(key="rp_play").label == "Play"
    at.run()
    assert at.select_slider(key="rp_epoch").value == 1
    _no_exception(at)


def test_replay_page_shows_kl_per_dimension_for_4d(models):
    at = _open("pages/replay.py", ("path", str(models["4d"])))
    bars = [f for f in _figures(at) if f["data"][0]["type"] == "bar"]
    assert len(bars) == 1 and bars[0]["data"][0]["x"] == ["z1", "z2", "z3", "z4"]
    assert "of 4 latent dimensions active" in _text(at)


def test_replay_page_follows_a_live_job():
    from pages.ui.places import registry

    job = registry().start(ModelConfig(hidden=(32,)), TrainConfig(epochs=50, train_limit=500, device="cpu"))
    deadline = time.monotonic() + 60
    while job.view() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    at = _open("pages/replay.py", ("job", job.job_id))
    assert at.toggle(key="rp_follow").value
    scrubber = at.select_slider(key="rp_epoch")
    assert str(scrubber.value) == scrubber.options[-1] and scrubber.disabled
    job.stop()


# --- Compare --------------------------------------------------------------------------------------

def test_compare_shows_models_on_the_same_axes(models):
    at = _open("pages/compare.py", ("path", str(models["2d"])))
    assert at.multiselect(key="cmp_models").value == [f"path:{models['2d']}"]  # starts from this tab's model
    folder = Path(os.environ["VAE_CHECKPOINT_DIR"])  # the AE as a checkpoint in the app's folder
    folder.mkdir(exist_ok=True)
    (folder / "ae.pt").write_bytes(models["ae"].read_bytes())
    at.run()
    at.multiselect(key="cmp_models").select(f"path:{folder / 'ae.pt'}")
    at.run()
    _no_exception(at)
    figures = _figures(at)
    scatters = [f for f in figures if any(t.get("name", "").startswith("prior") for t in f["data"])]
    manifolds = [f for f in figures if f["data"][0]["type"] == "image"]
    assert len(scatters) == 2 and len(manifolds) == 2
    ranges = {tuple(np.round(f["layout"][axis]["range"], 4)) for f in scatters + manifolds for axis in ("xaxis", "yaxis")}
    assert len(ranges) == 1, f"every plot spans the same range: {ranges}"
    shown = [_share_shown(f) for f in scatters]
    assert min(shown) >= 0.98, f"by default the axes fit every model's codes: {shown}"
    assert at.radio(key="cmp_axes").value == "fit"
    rd = [f for f in figures if f["data"][0].get("mode") == "lines+markers+text"][0]
    assert [t["name"] for t in rd["data"]] == ["r2", "ae"]
    assert "β 0, recon weight 1" in _text(at) and "plain autoencoder" in _text(at)
    at.radio(key="cmp_axes").set_value("prior").run()  # the prior's region: one click away
    _no_exception(at)
    figures = [f for f in _figures(at) if f["data"][0]["type"] == "image"
               or any(t.get("name", "").startswith("prior") for t in f["data"])]
    prior = {tuple(np.round(f["layout"][axis]["range"], 4)) for f in figures for axis in ("xaxis", "yaxis")}
    (lo, hi), = prior
    assert lo < -3 and 3 < hi < 3.5 and prior != ranges  # [-3, 3] plus half a cell
    assert any(row.get("model") == "ae" for row in at.dataframe[0].value.to_dict("records"))


def test_compare_says_no_collapse_before_the_first_epoch_has_finished(teach_env):
    """An untrained ELBO model (the lecture's width) gives every image nearly the same code: that is where
    training starts, and the usage note says so instead of flagging a posterior collapse."""
    from vae.analysis.encoding import encode_dataset
    from vae.analysis.usage import latent_usage

    test = load_dataset("shapes", "test")
    trainer = Trainer(ModelConfig(hidden=(512, 256, 256)), TrainConfig(epochs=1, train_limit=300, device="cpu"),
                      load_dataset("shapes", "train"), test)
    assert latent_usage(*encode_dataset(trainer.model, test.subset(2000).float_images())).collapsed  # the trap
    path = ckpt_io.save(trainer.checkpoint_payload(), teach_env / "models" / "untrained.pt")
    at = _open("pages/compare.py", ("path", str(path)))
    assert ckpt_io.load(path).epoch == 0
    assert not any("posterior collapse" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "posterior collapse" not in _text(at) and "before the first epoch has finished" in _text(at)


def _start_preset(epochs: int, kind: str | None = None):
    """Compare's one-click preset (the lecture's three, or kind="sweep") on 300 training images: the page and its
    group job."""
    from pages.ui.places import registry

    at = _open("pages/compare.py")
    if kind:
        at.radio(key="cmp_preset_kind").set_value(kind).run()
    at.number_input(key="cmp_epochs").set_value(epochs)
    at.number_input(key="cmp_train_limit").set_value(300)
    at.button(key="cmp_start").click().run()
    _no_exception(at)
    return at, registry().get(at.session_state["cmp_group"])


def test_compare_preset_trains_the_three_variants_as_one_job(teach_env):
    from pages.ui.places import registry

    at, group = _start_preset(1)
    assert [m.name for m in group.members] == ["lecture-shapes-recon-only", "lecture-shapes-kl-only",
                                                "lecture-shapes-elbo"]
    assert len(registry().running()) <= 1
    assert at.session_state["cmp_models"] == [f"job:{m.job_id}" for m in group.members]
    for _ in range(3):  # a few polls while it trains
        at.run()
        _no_exception(at)
    group.join(240)
    assert group.state().status == "finished", group.state().message
    at.run()
    _no_exception(at)
    assert len([f for f in _figures(at) if f["data"][0]["type"] == "image"]) == 3
    assert "posterior collapse" in _text(at), "the KL-only model is flagged"
    for member in group.members:
        ckpt = ckpt_io.load(member.checkpoint_path)
        assert ckpt.epoch == 1 and "replay" in ckpt.extras


def test_compare_beta_sweep_trains_three_betas_in_10d_and_shows_their_mig(teach_env):
    from pages.ui.places import registry

    at = _open("pages/compare.py")
    at.radio(key="cmp_preset_kind").set_value("sweep").run()
    assert "A β sweep" in _text(at)
    at.number_input(key="cmp_epochs").set_value(1)
    at.number_input(key="cmp_train_limit").set_value(300)
    at.button(key="cmp_start").click().run()
    _no_exception(at)
    group = registry().get(at.session_state["cmp_group"])
    assert [m.name for m in group.members] == ["beta-sweep-shapes-beta-1", "beta-sweep-shapes-beta-4",
                                                "beta-sweep-shapes-beta-8"]
    assert [m.train_cfg.beta for m in group.members] == [1.0, 4.0, 8.0]
    assert {m.model_cfg.latent_dim for m in group.members} == {10}
    assert {m.train_cfg.seed for m in group.members} == {group.members[0].train_cfg.seed}
    group.join(240)
    assert group.state().status == "finished", group.state().message
    at.run()
    _no_exception(at)
    rows = at.dataframe[0].value.to_dict("records")
    assert [r["β"] for r in rows] == [1.0, 4.0, 8.0] and all(0 <= r["MIG"] <= 1 for r in rows), rows
    assert _text(at).count("In between") == 1, "β = 4 and 8 are not the lecture's full-ELBO variant (β = 1 is)"
    strips = [image for image in at.image if "test images #0-#5" in image.captions[0]]
    assert [image.captions[0].split(":")[0] for image in strips] == [m.name for m in group.members]
    assert all("top: the images, bottom: decode(mu(x))" in image.captions[0] for image in strips)
    assert len({tuple(image.value) for image in strips}) == 3, "each model draws its own reconstructions"


# --- scatter, train, sidebar ----------------------------------------------------------------------

def test_scatter_label_map_shades_behind_the_points(models):
    at = _open("pages/scatter.py", ("path", str(models["2d"])))
    at.checkbox(key="sc_labelmap").check().run()
    _no_exception(at)
    figure = _figures(at)[0]
    heat = [t for t in figure["data"] if t["type"] == "heatmap"]
    assert len(heat) == 1 and figure["data"][-1]["name"].startswith("test image #")
    assert any("majority label of the 15 nearest" in c.value for c in at.caption)
    at.selectbox(key="sc_color").set_value("scale").run()  # a continuous colour: no label map
    _no_exception(at)
    assert not [t for t in _figures(at)[0]["data"] if t["type"] == "heatmap"]


def test_scatter_label_map_in_the_pca_plane(models):
    at = _open("pages/scatter.py", ("path", str(models["4d"])))
    at.radio(key="sc_plane").set_value("PCA of the codes").run()
    at.checkbox(key="sc_labelmap").check().run()
    _no_exception(at)
    assert [t for t in _figures(at)[0]["data"] if t["type"] == "heatmap"]


def test_sidebar_card_shows_non_default_weights(models):
    at = _open("pages/home.py", ("path", str(models["ae"])))
    card = " ".join(m.value for m in at.sidebar.markdown)
    assert "β / recon weight: **0 / 1**" in card
    at = _open("pages/home.py", ("path", str(models["2d"])))
    assert "β / recon weight" not in " ".join(m.value for m in at.sidebar.markdown)


def test_train_page_reconstruction_weight_and_the_math():
    from pages.ui.places import registry

    at = _open("pages/train.py")
    at.number_input(key="f_epochs").set_value(1)
    at.text_input(key="f_hidden").set_value("32")
    at.number_input(key="f_recon_weight").set_value(0.0)
    at.button(key="start").click().run()
    _no_exception(at)
    job = registry().get(at.session_state["job_id"])
    assert job.train_cfg.recon_weight == 0.0
    job.join(120)
    at.run()
    _no_exception(at)
    assert at.expander[-1].label == "The math"
    assert any(r"w\,R + \beta\,\mathrm{KL} = 0.00" in latex.value for latex in at.latex)


def test_replay_page_marks_the_epoch_after_a_setting_changed(teach_env):
    from vae.training.control import Control

    control = Control()
    data = load_dataset("shapes", "train"), load_dataset("shapes", "test")
    cfg = TrainConfig(epochs=3, train_limit=1000, batch_size=128, device="cpu")
    trainer = Trainer(ModelConfig(hidden=(64,), latent_dim=2), cfg, *data, control=control)
    ReplayRecorder(n_codes=200).attach(trainer)
    control.resume()
    trainer.run_epoch()
    control.change("beta", 4)
    trainer.run()
    path = ckpt_io.save(trainer.checkpoint_payload(), teach_env / "models" / "changed.pt")
    at = _open("pages/replay.py", ("path", str(path)))
    _no_exception(at)
    slider = at.select_slider(key="rp_epoch")
    assert slider.options == ["0", "1", "2 ◆", "3"], slider.options
    assert any("◆ changed while it trained: β 1 → 4 at step 8 (shown from epoch 2)" in c.value for c in at.caption)


def test_compare_pauses_and_steps_its_models_as_one(teach_env):
    at, group = _start_preset(50)
    try:
        at.run()
        at.button(key="cmp_pause").click().run()
        _no_exception(at)
        assert group.control.paused and all(m.control is group.control for m in group.members)
        deadline = time.monotonic() + 60
        while not group.control.waiting:
            assert time.monotonic() < deadline, "the group never held"
            time.sleep(0.02)
        step = group.state().step
        at.button(key="cmp_step").click().run()
        _no_exception(at)
        assert group.state().step == step + 1 and group.state().paused
        assert not [b for b in at.button if b.key == "cmp_change"]  # no one β for models that differ in it
        at.button(key="cmp_resume").click().run()
        assert not group.control.paused
    finally:
        group.stop()
        group.join(60)
