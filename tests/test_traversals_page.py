"""AppTest: the Traversals page for a 10-D shapes model (rows sorted by KL, the sweep, the downloads, the MIG
heat map and the probe), a 2-D MNIST-named model without known factors, and no model."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import streamlit as st
from PIL import Image

from tests.conftest import open_page, tiny_dataset
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.analysis.disentangle import mutual_info_gap
from vae.analysis.traversals import traversal_order
from vae.analysis.encoding import encode_dataset
from vae.analysis.usage import latent_usage
from vae.training.trainer import Trainer

PAGE = "pages/traversals.py"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("traversals")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_DATA_DIR", str(root / "data"))
        mp.setenv("VAE_CHECKPOINT_DIR", str(root / "checkpoints"))
        train, test = load_dataset("shapes", "train").subset(3000), load_dataset("shapes", "test")
        shapes = Trainer(ModelConfig(hidden=(64,), latent_dim=10), TrainConfig(epochs=2, batch_size=64, device="cpu"),
                         train, test)
        shapes.run()
        mnist = Trainer(ModelConfig(hidden=(32,), latent_dim=2),
                        TrainConfig(dataset="mnist", epochs=1, batch_size=16, device="cpu"),
                        tiny_dataset(64, name="mnist"), tiny_dataset(32, "test", 1, name="mnist"))
        mnist.run()
        yield {"shapes": ckpt_io.save(shapes.checkpoint_payload(), root / "shapes-10d.pt"),
               "mnist": ckpt_io.save(mnist.checkpoint_payload(), root / "mnist-2d.pt"), "test": test}


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _array(value) -> np.ndarray:
    """A plotly JSON array: a nested list, or {'dtype', 'bdata', 'shape'} base64 binary."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")]).astype(np.float64)
    return np.asarray(value, np.float64)


def _figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_the_grid_has_one_row_per_dimension_sorted_by_kl_and_the_mig_heat_map(models):
    at = open_page(PAGE, ("path", str(models["shapes"])))
    grid, heat = _figures(at)
    ckpt = ckpt_io.load(models["shapes"])
    x = models["test"].float_images()[:4000]
    mu, logvar = encode_dataset(ckpt.model, x)
    usage = latent_usage(mu, logvar)
    order = traversal_order(usage.kl)
    labels = grid["layout"]["yaxis"]["ticktext"]
    assert [int(t.split(" · ")[0][1:]) - 1 for t in labels] == order.tolist()
    kl_shown = [float(t.split(" · ")[1].split()[0]) for t in labels]
    assert kl_shown == sorted(kl_shown, reverse=True)
    assert sum("inactive" in t for t in labels) == int((~usage.active).sum())
    image = Image.open(io.BytesIO(base64.b64decode(grid["data"][0]["source"].split(",", 1)[1])))
    assert image.size == (9 * 28, 10 * 28)  # 9 steps by default, 10 rows of 28 px pictures
    assert len(grid["layout"]["xaxis"]["ticktext"]) == 9
    # The heat map: factor x dimension, the same numbers as mutual_info_gap on the page's codes.
    result = mutual_info_gap(mu, {k: v.numpy()[:4000] for k, v in models["test"].factors.items()})
    np.testing.assert_allclose(_array(heat["data"][0]["z"]), result.mi, atol=2e-3)
    assert f"MIG {result.mig:.2f}" in " ".join(m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert list(table["factor"]) == result.factors and (table["linear probe R²"] <= 1).all()


def test_the_sweep_follows_the_controls(models):
    at = open_page(PAGE, ("path", str(models["shapes"])))
    before = _figures(at)[0]["data"][0]["source"]
    at.slider(key="tv_steps").set_value(5).run()
    at.radio(key="tv_start").set_value("the prior's centre").run()
    assert not at.exception
    grid = _figures(at)[0]
    assert len(grid["layout"]["xaxis"]["ticktext"]) == 5 and grid["data"][0]["source"] != before
    assert ["−3", "−1.5", "0", "1.5", "3"] == grid["layout"]["xaxis"]["ticktext"]
    assert any("the prior's centre (0)" in c.value for c in at.caption)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download PNG", "Download GIF", "Download model"]  # the sweep's, then the sidebar card's


def test_a_model_without_known_factors_says_so_in_one_sentence(models):
    at = open_page(PAGE, ("path", str(models["mnist"])))
    assert len(_figures(at)) == 1  # the grid; no heat map
    assert any("no known generative factors" in i.value for i in at.info)


def test_without_a_model_the_page_says_how_to_get_one():
    at = open_page(PAGE, None)
    assert any("No model yet" in i.value for i in at.info) and not at.get("plotly_chart")
