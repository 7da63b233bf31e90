"""AppTest: the Directions page. Two classes of the shipped MNIST default give the vector of their stored codes'
means, its walk and the pad's direction; a known factor's thirds on the shapes default; directions kept and compared
(lengths, cosines, MIG beside them); an analogy; groups lassoed on the scatter, including ones that no longer fit the
model, which are one sentence."""
from __future__ import annotations

import json

import numpy as np
import pytest
import streamlit as st

from tests.conftest import ROOT, assert_no_exception, open_page
from tests.test_explore_pages import _pad
from vae import checkpoint as ckpt_io
from vae.analysis.directions import attribute_vector, factor_groups
from vae.analysis.encoding import encode_dataset
from vae.checkpoint.codes import stored_codes_from_extras
from vae.data import load_dataset

MNIST = ROOT / "checkpoints" / "default-mnist-2d.pt"
SHAPES = ROOT / "checkpoints" / "default-shapes-2d.pt"
PAGE = "pages/directions.py"


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No dataset: the pages read the codes the shipped models store."""
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _stored(path):
    return stored_codes_from_extras(ckpt_io.load(path).extras)


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_two_classes_give_their_means_difference_its_walk_and_the_pads_direction():
    at = open_page(PAGE, ("path", str(MNIST)))
    stored = _stored(MNIST)
    header, _, _ = _pad(at)
    want = attribute_vector(stored.mu, stored.labels == 1, stored.labels == 7)
    assert header["direction"]["name"] == "1 → 7"
    np.testing.assert_allclose(header["direction"]["vector"], want, atol=1e-5)
    assert header["direction"]["alpha"] == [-0.5, 1.5]
    assert header["point"] == pytest.approx(stored.mu[stored.labels == 1].mean(0), abs=1e-4)  # group A's mean
    assert f"|v| = {np.linalg.norm(want):.2f}" in _captions(at)
    strip = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]
    assert strip["title"]["text"] == "α: the walk decodes z + α·v" and len(strip["ticktext"]) == 9
    at.selectbox(key="dir_b").set_value(4).run()
    assert_no_exception(at)
    assert _pad(at)[0]["direction"]["name"] == "1 → 4"


def test_kept_directions_are_compared_and_an_analogy_names_its_class():
    at = open_page(PAGE, ("path", str(MNIST)))
    assert "Keep two or more directions" in _captions(at)
    at.button(key="dir_keep").click().run()
    at.selectbox(key="dir_b").set_value(4).run()
    at.button(key="dir_keep").click().run()
    assert_no_exception(at)
    table = at.dataframe[0].value
    assert list(table["direction"]) == ["1 → 7", "1 → 4"] and (table["length |v|"] > 0).all()
    assert "Mean |cos| between two directions" in _captions(at)
    assert "a − b + c = 7 − 1 + 4: its 25 nearest test codes are mostly" in _captions(at)


def test_a_factors_thirds_on_shapes_and_its_factors_compared_beside_mig():
    at = open_page(PAGE, ("path", str(SHAPES)))
    at.radio(key="dir_source").set_value("factor").run()
    assert_no_exception(at)
    test = load_dataset("shapes", "test")  # built in: generated here, as the page's codes were
    mu, _ = encode_dataset(ckpt_io.load(SHAPES).model, test.float_images())
    low, high = factor_groups({k: v.numpy() for k, v in test.factors.items()}, "scale")
    np.testing.assert_allclose(_pad(at)[0]["direction"]["vector"], attribute_vector(mu, low, high), atol=1e-5)
    table = at.dataframe[0].value
    assert {"shape", "scale", "rotation", "x", "y"} <= set(table["direction"]) and "MIG gap" in table
    assert "MIG here is" in _captions(at)


def test_groups_lassoed_on_the_scatter_make_the_direction_and_stale_ones_are_one_sentence():
    at = open_page(PAGE, ("path", str(MNIST)))
    source = ("path", str(MNIST))
    at.session_state["direction_groups"] = {"model": source, "A": [0, 1, 2], "B": [3, 4]}
    at.run()
    at.radio(key="dir_source").set_value("selection").run()
    stored = _stored(MNIST)
    np.testing.assert_allclose(_pad(at)[0]["direction"]["vector"],
                               attribute_vector(stored.mu, [0, 1, 2], [3, 4]), atol=1e-5)
    at.session_state["direction_groups"] = {"model": source, "A": [0, 10**6], "B": [3]}
    at.run()
    assert_no_exception(at)
    assert [w.value for w in at.warning] == ["Group A has indices outside 0..4999; pick codes that exist."]
