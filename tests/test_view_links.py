"""Links that reopen a view (pages/ui/view_link.py): the parameters' text both ways, a link that opens the view it
records on every page, the URL that follows what the pages show, and hostile links: a model named by a path, a
model that is not there, values that fit nothing. The model is a 4-D one trained on tiny data that it stores the
codes of (48 test images), as "mnist" with no MNIST here."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pages.ui import view_link
from pages.ui.view_link import PARAMS, LinkFit, model_text, number_text, parse_index, parse_plane, parse_point
from tests.conftest import APP, ROOT, assert_no_exception, assert_one_sentence, tiny_dataset
from tests.test_explore_pages import _pad
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.training.trainer import Trainer

NAME, IMAGES = "linked-4d", 48
DEFAULT = "default-shapes-2d"
HOSTILE = ["", " ", ",", "1,", ",1", "1,2,3", "nan,0", "inf,1", "1e999,0", "-1", "99999999999999", "0x10", "1_0,2",
           "z3,z4", "3;4", "١,٢", "\x00", "%00", "<script>alert(1)</script>", "[a](javascript:alert(1))", "9" * 5000,
           "../../etc/passwd", "1.5,2.5", "0,0", "4.0001,0", "-5,5", "3,3", "0,3", "5,1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The checkpoints folder (the shipped shapes default and the 4-D model) and an empty data folder."""
    root = tmp_path_factory.mktemp("links")
    checkpoints = root / "checkpoints"
    checkpoints.mkdir()
    shutil.copy2(ROOT / "checkpoints" / f"{DEFAULT}.pt", checkpoints)
    trainer = Trainer(ModelConfig(hidden=(32,), latent_dim=4),
                      TrainConfig(dataset="mnist", epochs=1, batch_size=16, log_every=2, device="cpu"),
                      tiny_dataset(80, "train", 0, name="mnist"), tiny_dataset(IMAGES, "test", 1, name="mnist"))
    trainer.run()
    ckpt_io.save(trainer.checkpoint_payload(), checkpoints / f"{NAME}.pt")
    ckpt_io.save(trainer.checkpoint_payload(), root / "outside.pt")  # a checkpoint a link must never reach
    return root


@pytest.fixture(autouse=True)
def env(folder, monkeypatch):
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(folder / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(folder / "data"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def open_link(params: dict, page: str | None = None) -> AppTest:
    """A fresh session opened at the app's URL with these query parameters (at a page, when given)."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(params)
    if page:
        at.switch_page(page)
    at.run()
    assert_no_exception(at, f"{page or 'home'} ?{params}")
    return at


def sentences(at: AppTest) -> list[str]:
    return [e.value for e in (*at.info, *at.warning) if "link" in e.value]


def card_name(at: AppTest) -> str:
    return next(m.value for m in at.sidebar.markdown if m.value.startswith("**"))


# --- the parameters' text ------------------------------------------------------------------------------

@pytest.mark.parametrize("value,text", [(1.25, "1.25"), (-0.5, "-0.5"), (0.0, "0"), (-0.00001, "0"), (3.14159265, "3.1416"),
                                        (-4.0, "-4"), (0.1, "0.1")])
def test_a_coordinate_is_written_to_four_decimals_and_no_more(value, text):
    assert number_text(value) == text


@pytest.mark.parametrize("text,latent_dim,dims", [("3,7", 20, (2, 6)), (" 1, 20 ", 20, (0, 19)), ("2,1", 4, (1, 0)),
                                                  ("3,7", 4, None), ("3,3", 4, None), ("0,1", 4, None),
                                                  ("1,2", 2, None), ("1.0,2", 4, None), (None, 4, None)])
def test_a_plane_is_two_different_dimensions_of_the_model(text, latent_dim, dims):
    assert parse_plane(text, latent_dim) == dims


@pytest.mark.parametrize("text", HOSTILE)
def test_no_text_breaks_a_parser(text):
    """Every parser answers a value or None, and the value it answers fits."""
    plane = parse_plane(text, 4)
    assert plane is None or (len(set(plane)) == 2 and all(0 <= d < 4 for d in plane))
    point = parse_point(text, (0, 1))
    assert point is None or (len(point) == 2 and all(abs(v) <= 4 for v in point))
    index = parse_index(text, IMAGES)
    assert index is None or 0 <= index < IMAGES


def test_each_parameter_sets_only_the_session_entries_it_lists():
    """The list and its readers agree: a value that fits sets exactly the keys its parameter names."""
    fit = LinkFit(ckpt_io.load(Path(view_link.checkpoint_dir()) / f"{NAME}.pt"), "3,4")
    fit.images = IMAGES  # a cached_property: set, it is not counted
    fitting = {"plane": "3,4", "point": "1.25,-0.5", "hold": "5", "dot": "17", "start": "9"}
    assert set(fitting) == set(PARAMS)
    assert all(f"\n    {name} " in view_link.__doc__ for name in view_link.NAMES)  # the module's table lists each
    for name, text in fitting.items():
        assert set(PARAMS[name].entries(text, fit)) == set(PARAMS[name].keys), name
    assert PARAMS["start"].entries("prior", fit) == {"tv_start": view_link.START_PRIOR}
    assert PARAMS["point"].entries("1.25,-0.5", fit)["latent_point"]["dims"] == [2, 3]


def test_only_a_plain_checkpoint_in_the_folder_or_a_job_is_linked(folder):
    checkpoints = folder / "checkpoints"
    assert model_text(("path", str(checkpoints / f"{NAME}.pt"))) == NAME
    assert model_text(("path", str(folder / "outside.pt"))) is None
    assert model_text(("upload", "file-id")) is None and model_text(None) is None
    assert model_text(("job", "3")) == "job:3"


# --- links in the app ----------------------------------------------------------------------------------

LINK = {"model": NAME, "plane": "3,4", "point": "1.25,-0.5", "hold": "5", "dot": "17", "start": "prior"}


def test_a_link_opens_the_view_it_records_on_every_page():
    at = open_link(LINK, "pages/sliders.py")
    assert card_name(at).startswith(f"**{NAME}**") and not sentences(at)
    plane = _pad(at)[0]["plane"]
    assert plane["dims"] == [2, 3] and _pad(at)[0]["point"] == [1.25, -0.5]
    assert at.radio(key="sl_hold").value == view_link.HOLD_IMAGE and at.number_input(key="sl_base_index").value == 5
    at.switch_page("pages/scatter.py").run()
    assert_no_exception(at, "scatter")
    assert at.number_input(key="sc_index").value == 17 and any("**#17:" in m.value for m in at.markdown)
    at.switch_page("pages/traversals.py").run()
    assert_no_exception(at, "traversals")
    assert at.radio(key="tv_start").value == view_link.START_PRIOR
    assert dict(at.query_params) == LINK  # every page kept the whole link in the URL


def test_the_url_follows_what_the_pages_show_and_keeps_present():
    at = open_link({"present": "1"})
    assert at.query_params == {"present": "1", "model": DEFAULT}
    at.session_state["model_source"] = ("path", str(view_link.checkpoint_dir() / f"{NAME}.pt"))
    at.switch_page("pages/sliders.py").run()
    at.selectbox(key="sl_dim_x").set_value(1).run()
    at.selectbox(key="sl_dim_y").set_value(3).run()
    at.radio(key="sl_hold").set_value(view_link.HOLD_IMAGE).run()
    at.number_input(key="sl_base_index").set_value(7).run()
    at.session_state["latent_point"] = {"dims": [1, 3], "z": [0.123456, -2.0], "code": [0, 0.123456, 0, -2.0]}
    at.run()
    assert_no_exception(at, "sliders")
    want = {"present": "1", "model": NAME, "plane": "2,4", "point": "0.1235,-2", "hold": "7"}
    assert at.query_params == want
    at.switch_page("pages/scatter.py").run()
    at.number_input(key="sc_index").set_value(30).run()
    assert at.query_params == {**want, "dot": "30"}
    at.switch_page("pages/sliders.py").run()  # and back: the plane and the held code are still there
    assert _pad(at)[0]["plane"]["dims"] == [1, 3] and at.number_input(key="sl_base_index").value == 7
    assert at.query_params == {**want, "dot": "30"}


@pytest.mark.parametrize("name", ["nope", "nope.pt"])
def test_a_link_to_a_model_that_is_not_here_says_so_in_one_sentence(name):
    at = open_link({"model": name, "dot": "3"}, "pages/scatter.py")
    said = sentences(at)
    assert said == [f"The link names model `nope`, which is not on this server; showing {DEFAULT} instead."], said
    assert_one_sentence(said[0])
    assert card_name(at).startswith(f"**{DEFAULT}**") and at.query_params["model"] == DEFAULT
    assert at.number_input(key="sc_index").value == 3  # the rest of the link still opens, on the default


@pytest.mark.parametrize("name", ["../outside", "../outside.pt", "..", "/etc/passwd", "%2e%2e/outside", "a/b",
                                  "..\\outside", "~/outside", "checkpoints/../outside", " ", "x" * 300, "job:../1",
                                  "\x00"])
def test_a_model_named_by_a_path_is_refused(folder, name):
    at = open_link({"model": name})
    said = sentences(at)
    assert len(said) == 1 and said[0].endswith(f"showing {DEFAULT} instead."), said
    assert_one_sentence(said[0])
    assert "outside" not in said[0] and card_name(at).startswith(f"**{DEFAULT}**")


def test_a_link_to_a_job_the_server_no_longer_runs_says_so():
    at = open_link({"model": "job:99"})
    assert sentences(at) == [f"The link names a training job this server no longer runs; showing {DEFAULT} instead."]


@pytest.mark.parametrize("text", ["nan,0", "1e999,0", "-1", "99999999999999", "[a](javascript:alert(1))", "9" * 5000,
                                  "../../etc/passwd", "1.5,2.5", "3,3", "5,1", "", "prior"])
def test_hostile_values_are_left_out_in_one_sentence(text):
    """Every parameter given the same text: the pages open without an exception, and one sentence names exactly
    the parameters that did not fit."""
    at = open_link({"model": NAME, **{name: text for name in PARAMS}}, "pages/sliders.py")
    said = sentences(at)
    for page in ("pages/scatter.py", "pages/traversals.py"):
        at.switch_page(page).run()
        assert_no_exception(at, page)
    fit = LinkFit(ckpt_io.load(view_link.checkpoint_dir() / f"{NAME}.pt"), text)
    fit.images = IMAGES
    fits = {name: PARAMS[name].entries(text, fit) is not None for name in PARAMS}
    assert len(said) == (0 if all(fits.values()) else 1), said
    if said:
        assert_one_sentence(said[0])
        assert all((name in said[0]) != fits[name] for name in PARAMS), (said, fits)
