"""AppTest: the four Explore pages, with no model, a 2-D and a 4-D checkpoint, and a live job.

Images are checked through st.image's media URL (a hash of the encoded bytes, so it changes
exactly when the picture does); figures through the plotly JSON in the chart element's proto.
"""
import base64
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from pages.ui.sitemap import PAGES as SITE
from tests.conftest import assert_no_exception, open_page, plotly_array
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.data.shapes import SHAPE_NAMES
from vae.nets.model import VAE
from vae.browser.pad import unpack
from vae.training.trainer import Trainer

APP = Path(__file__).parents[1] / "app.py"
PAGES = [p.script for p in SITE if p.tour]  # the four on a student's tour (traversals: test_traversals_page.py)
SHAPES_TEST_SIZE = 4000  # fewer than the pages' 5,000, so every test image is encoded


@pytest.fixture(scope="session")
def explore_env(tmp_path_factory):
    """A shapes disk cache and an empty checkpoints folder for the whole session (generation takes seconds)."""
    root = tmp_path_factory.mktemp("explore")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_DATA_DIR", str(root / "data"))
        mp.setenv("VAE_CHECKPOINT_DIR", str(root / "checkpoints"))
        yield root


def _train(folder: Path, latent_dim: int) -> Path:
    train, test = load_dataset("shapes", "train"), load_dataset("shapes", "test")
    trainer = Trainer(ModelConfig(hidden=(64,), latent_dim=latent_dim),
                      TrainConfig(epochs=1, train_limit=2000, batch_size=128, device="cpu"), train, test)
    trainer.run()
    return ckpt_io.save(trainer.checkpoint_payload(), folder / f"shapes-{latent_dim}d.pt")


@pytest.fixture(scope="session")
def models(explore_env):
    """Small trained shapes models: {latent_dim: checkpoint path}."""
    folder = explore_env / "models"
    return {d: _train(folder, d) for d in (2, 4)}


@pytest.fixture(autouse=True)
def fresh_caches(explore_env):
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


_open = open_page
_no_exception = assert_no_exception


def _figure(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _class_traces(figure: dict) -> list[dict]:
    """The traces of the classes; the scatter names each "<class> · <count>"."""
    return [t for t in figure["data"] if t["type"] == "scattergl" and str(t.get("name")).split(" · ")[0] in SHAPE_NAMES]


def _text(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.markdown, *at.caption])


@pytest.mark.parametrize("page", PAGES)
def test_page_without_a_model_shows_the_hint(page):
    at = _open(page, None)
    assert any("No model yet" in i.value for i in at.info)
    assert not at.get("plotly_chart") and not at.image


def _pad(at: AppTest) -> tuple[dict, dict, bytes]:
    """The latent pad's payload on the page: (header, sections, the bytes themselves)."""
    pads = at.get("bidi_component")
    assert len(pads) == 1 and pads[0].proto.component_name == "latent_explorer.latent_pad", pads
    payload = pads[0].proto.bytes
    return (*unpack(payload), payload)


def test_sliders_hand_the_pad_the_decoder_and_the_test_codes(models):
    at = _open("pages/sliders.py", ("path", str(models[2])))
    header, sections, payload = _pad(at)
    model = ckpt_io.load(models[2]).model
    assert header["model"]["params"] == sum(p.numel() for p in model.decoder.parameters())
    assert header["model"]["dtype"] == "float16" and len(sections["weights"]) == 2 * header["model"]["params"]
    assert header["plane"]["dims"] == [0, 1] and header["plane"]["names"] == ["z1", "z2"]
    assert header["codes"]["count"] == 1000 and [c["name"] for c in header["classes"]] == list(SHAPE_NAMES)
    assert len(sections["codes"]) == 1000 * 2 * 4 and sections["sprite"][:4] == b"\x89PNG"
    assert not at.image and not at.slider  # the picture and the sliders are the pad's own, in the browser
    caption = " ".join(c.value for c in at.caption)
    assert header["encoder"]["ops"] and header["encoder"]["params"] == sum(
        p.numel() for m in (model.encoder, model.to_mu, model.to_logvar) for p in m.parameters())
    weights = len(sections["weights"]) + len(sections["encoderWeights"])
    assert f"({weights / 1e6:.2f} MB as float16" in caption and "decoder and the encoder run" in caption, caption
    at.run()  # nothing changed: the pad gets the very same bytes, which Streamlit need not send again
    assert _pad(at)[2] == payload


def test_the_pad_starts_at_the_point_last_released(models):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["model_source"] = ("path", str(models[2]))
    at.session_state["latent_point"] = {"dims": [0, 1], "z": [1.5, -2.0], "code": [1.5, -2.0]}
    at.run().switch_page("pages/sliders.py").run()
    _no_exception(at)
    assert _pad(at)[0]["point"] == [1.5, -2.0]


def test_sliders_choose_dims_and_hold_at_a_test_code(models):
    at = _open("pages/sliders.py", ("path", str(models[4])))
    at.selectbox(key="sl_dim_x").set_value(2).run()
    at.selectbox(key="sl_dim_y").set_value(3).run()
    _no_exception(at)
    plane = _pad(at)[0]["plane"]
    assert plane["dims"] == [2, 3] and plane["names"] == ["z3", "z4"] and plane["base"] == [0.0] * 4
    at.radio(key="sl_hold").set_value("the code of a test image").run()
    at.number_input(key="sl_base_index").set_value(5).run()
    _no_exception(at)
    header, sections, _ = _pad(at)
    mu = np.frombuffer(sections["codes"], "<f4").reshape(-1, 4)
    assert header["plane"]["base"] == pytest.approx(mu[5].tolist())
    assert any("z1, z2 held at the code of test image #5" in c.value for c in at.caption)
    at.selectbox(key="sl_dim_y").set_value(2).run()  # the same dimension twice
    _no_exception(at)
    assert any("two different dimensions" in w.value for w in at.warning)


def test_a_decoder_too_large_for_the_browser_gets_server_sliders_and_one_sentence(explore_env):
    model = VAE(ModelConfig(hidden=(1400, 1400)), torch.Generator().manual_seed(0)).eval()
    path = ckpt_io.save(ckpt_io.build_payload(model, train_config=None, dataset="shapes",
                                              class_names=list(SHAPE_NAMES), history=[]),
                        explore_env / "models" / "wide.pt")
    at = _open("pages/sliders.py", ("path", str(path)))
    assert not at.get("bidi_component")
    sentence = " ".join(i.value for i in at.info)
    assert "drawn on the server, when you release a slider" in sentence and "3.1 M weights" in sentence, sentence
    before, side_before = at.image[0].value, at.image[1].value
    at.slider(key="z1").set_value(1.5).run()
    _no_exception(at)
    assert at.image[0].value != before and at.image[1].value != side_before  # the picture and the marked point
    assert "1.50, 0.00" in at.image[0].captions[0]


def _manifold_png(at: AppTest) -> np.ndarray:
    image = _figure(at)["data"][0]
    assert image["type"] == "image"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image["source"].split(",", 1)[1]))))


def test_manifold_grid_size_spacing_and_overlay(models):
    at = _open("pages/manifold.py", ("path", str(models[2])))
    assert _manifold_png(at).shape == (20 * 28, 20 * 28)
    layout = _figure(at)["layout"]
    assert len(layout["xaxis"]["minor"]["tickvals"]) == 20  # a small tick at each cell centre
    assert layout["xaxis"]["ticktext"] == ["−3", "−2", "−1", "0", "1", "2", "3"]  # labels at round z, as on the scatter
    at.slider(key="mf_n").set_value(7).run()
    assert _manifold_png(at).shape == (7 * 28, 7 * 28)
    at.radio(key="mf_spacing").set_value("gaussian").run()
    at.checkbox(key="mf_overlay").check().run()
    _no_exception(at)
    figure = _figure(at)
    assert "Gaussian" in figure["layout"]["xaxis"]["title"]["text"]
    assert figure["layout"]["xaxis"]["range"] == pytest.approx([0, 1], abs=1e-6)  # the axis is Phi(z), ticks give z
    assert sum(len(plotly_array(t["x"])) for t in _class_traces(figure)) == 2000
    assert any("normal CDF" in c.value for c in at.caption)
    download = at.get("download_button")[0]
    assert "196 x 196" in download.proto.help


def test_manifold_other_dims(models):
    at = _open("pages/manifold.py", ("path", str(models[4])))
    at.selectbox(key="mf_dim_x").set_value(3).run()
    _no_exception(at)
    assert _figure(at)["layout"]["xaxis"]["title"]["text"].startswith("z4")
    assert any("other 2 dimensions are held at 0" in c.value for c in at.caption)


def test_scatter_one_trace_per_class_with_counts(models):
    at = _open("pages/scatter.py", ("path", str(models[2])))
    traces = _class_traces(_figure(at))
    labels = load_dataset("shapes", "test").labels.numpy()
    assert [t["name"] for t in traces] == [f"{name} · {(labels == i).sum():,}" for i, name in enumerate(SHAPE_NAMES)]
    for label, trace in enumerate(traces):
        ids = plotly_array(trace["customdata"])
        assert len(ids) == len(plotly_array(trace["x"])) == (labels == label).sum()
        np.testing.assert_array_equal(labels[ids], label)
    assert sum(len(plotly_array(t["x"])) for t in traces) == SHAPES_TEST_SIZE
    assert sum(t["name"].startswith("prior") for t in _figure(at)["data"]) == 2
    legend = _figure(at)["layout"]["legend"]  # a row over the plot: beside it, it took a third of the width at 1280 px
    assert legend["orientation"] == "h" and legend["y"] > 1 and legend["yanchor"] == "bottom"


def test_scatter_names_each_class_at_its_centre_until_the_toggle_is_off(models):
    at = _open("pages/scatter.py", ("path", str(models[2])))
    names = {a["text"]: (a["x"], a["y"]) for a in _figure(at)["layout"]["annotations"]}
    assert sorted(names) == sorted(SHAPE_NAMES)  # one per class
    for trace in _class_traces(_figure(at)):  # at the median of the class's plotted dots
        name = trace["name"].split(" · ")[0]
        centre = np.median(plotly_array(trace["x"])), np.median(plotly_array(trace["y"]))
        np.testing.assert_allclose(names[name], centre, atol=1e-5)
    at.toggle(key="sc_names").set_value(False).run()
    _no_exception(at)
    assert not _figure(at)["layout"].get("annotations")


def test_scatter_pick_a_point_and_color_by_a_factor(models):
    at = _open("pages/scatter.py", ("path", str(models[2])))
    at.number_input(key="sc_index").set_value(17).run()
    _no_exception(at)
    name = SHAPE_NAMES[int(load_dataset("shapes", "test").labels[17])]
    assert f"#17: {name}" in _text(at)
    assert _figure(at)["data"][-1]["name"] == "test image #17"
    at.selectbox(key="sc_color").set_value("scale").run()
    _no_exception(at)
    data = _figure(at)["data"]
    assert data[0]["marker"]["colorbar"]["title"]["text"].startswith("scale")
    assert len(plotly_array(data[0]["x"])) == SHAPES_TEST_SIZE and not _class_traces(_figure(at))
    at.number_input(key="sc_count").set_value(500).run()
    _no_exception(at)
    assert len(plotly_array(_figure(at)["data"][0]["x"])) == 500


def test_scatter_pca_and_dims_for_a_4d_model(models):
    at = _open("pages/scatter.py", ("path", str(models[4])))
    assert _figure(at)["layout"]["xaxis"]["title"]["text"] == "z1"
    at.radio(key="sc_plane").set_value("PCA of the codes").run()
    _no_exception(at)
    assert _figure(at)["layout"]["xaxis"]["title"]["text"].startswith("PC1 (")
    assert any("PCA plane" in c.value for c in at.caption)
    at.radio(key="sc_plane").set_value("two dimensions").run()
    at.selectbox(key="sc_dim_x").set_value(2).run()
    at.selectbox(key="sc_dim_y").set_value(3).run()
    _no_exception(at)
    layout = _figure(at)["layout"]
    assert (layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]) == ("z3", "z4")
    assert any("Most informative dimensions" in c.value for c in at.caption)


def test_reconstructions_strip_and_interpolation(models):
    at = _open("pages/reconstructions.py", ("path", str(models[2])))
    strip, path = (image.value for image in at.image)
    assert "#0, #1" in at.image[0].captions[0] and "10 evenly spaced codes" in at.image[1].captions[0]
    at.radio(key="rc_which").set_value("random").run()
    at.number_input(key="rc_seed").set_value(3).run()
    _no_exception(at)
    assert at.image[0].value != strip
    at.number_input(key="rc_to").set_value(42).run()
    at.slider(key="rc_steps").set_value(5).run()
    _no_exception(at)
    assert at.image[1].value != path and "#42" in at.image[1].captions[0]


def test_a_job_without_weights_yet_says_it_is_starting(explore_env):
    """Between Start and the first snapshot the pages wait for the model instead of asking for one."""
    from pages.ui.places import registry
    from vae.training.jobs import TrainingJob

    job = TrainingJob("waiting", "shapes-waiting", ModelConfig(hidden=(32,)), TrainConfig(epochs=1),
                      explore_env / "checkpoints" / "waiting.pt")  # never started: no weights yet
    registry()._jobs[job.job_id] = job
    at = _open("pages/sliders.py", ("job", job.job_id))
    assert any("shapes-waiting is starting" in i.value for i in at.info)
    assert not at.image


def test_pages_follow_a_live_job(explore_env):
    """While a job trains, every page draws from its latest snapshot without error."""
    from pages.ui.places import registry

    job = registry().start(ModelConfig(hidden=(32,)), TrainConfig(epochs=100, train_limit=1000, device="cpu"))
    try:
        deadline = time.monotonic() + 30
        while job.view() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.view() is not None and job.view().live
        for page in PAGES:
            at = _open(page, ("job", job.job_id))
            if page == "pages/sliders.py":  # the pad holds the snapshot it was handed
                assert _pad(at)[0]["model"]["key"].startswith(f"job:{job.job_id}:")
            else:
                assert at.image or at.get("plotly_chart")
    finally:
        registry().stop_all()
