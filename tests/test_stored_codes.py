"""Stored codes: every checkpoint a trainer writes carries the codes of its test images and of its first
training images (vae/checkpoint/codes.py), so it explores on a machine without the dataset. What the trainer
stores, the round trip, the loader's checks, and every Explore and Teach page on an MNIST model with no
MNIST on disk."""
from __future__ import annotations

import json
import numpy as np
import pytest
import streamlit as st
import torch

from pages.ui.sitemap import PAGES as SITE
from tests.conftest import assert_no_exception, assert_one_sentence, open_page, tiny_dataset
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.analysis.encoding import encode_dataset
from vae.checkpoint.codes import (CODES_KEY, STORED_TEST, StoredCodesError, check_stored_codes,
    stored_codes_from_extras)
from vae.training.trainer import Trainer

N_TEST, N_TRAIN = 48, 80
OWN_TESTS = {"pages/scatter.py", "pages/reconstructions.py"}  # the pages with tests of their own below


def trained(dataset: str = "shapes", latent_dim: int = 2, epochs: int = 1, n_train: int = N_TRAIN) -> Trainer:
    train, test = (tiny_dataset(n_train, "train", 0, name=dataset), tiny_dataset(N_TEST, "test", 1, name=dataset))
    trainer = Trainer(ModelConfig(hidden=(32,), latent_dim=latent_dim),
                      TrainConfig(dataset=dataset, epochs=epochs, batch_size=16, log_every=2, device="cpu"), train, test)
    trainer.run()
    return trainer


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_the_trainer_stores_the_codes_of_its_test_and_training_images(latent_dim):
    trainer = trained(latent_dim=latent_dim)
    stored = stored_codes_from_extras(trainer.extras)
    mu, logvar = encode_dataset(trainer.model, trainer.x_test)
    train_mu, _ = encode_dataset(trainer.model, trainer.x_train)
    # float16 keeps about 3 significant digits: codes within a few units of 0 round by under 4e-3.
    np.testing.assert_allclose(stored.mu, mu, atol=4e-3, rtol=1e-3)
    np.testing.assert_allclose(stored.logvar, logvar, atol=4e-3, rtol=1e-3)
    np.testing.assert_allclose(stored.train_mu, train_mu, atol=4e-3, rtol=1e-3)
    assert stored.mu.shape == (N_TEST, latent_dim) and stored.train_mu.shape == (N_TRAIN, latent_dim)
    np.testing.assert_array_equal(stored.labels, trainer.test_data.labels.numpy())
    np.testing.assert_array_equal(stored.train_labels, trainer.train_data.labels.numpy())
    assert stored.test_size == N_TEST and stored.labels.dtype == np.int64


def test_the_stored_codes_follow_the_weights_of_every_epoch():
    """Each epoch's evaluation replaces them: the codes in a checkpoint are those of its own weights."""
    trainer = trained(epochs=1)
    first = stored_codes_from_extras(trainer.extras).mu.copy()
    trainer.cfg = TrainConfig(**{**trainer.cfg.to_dict(), "epochs": 2})
    trainer.run()
    second = stored_codes_from_extras(trainer.extras).mu
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, encode_dataset(trainer.model, trainer.x_test)[0], atol=4e-3, rtol=1e-3)


def test_the_test_codes_are_bounded_and_come_from_the_first_images():
    big = tiny_dataset(STORED_TEST + 300, "test", 1)
    trainer = Trainer(ModelConfig(hidden=(16,)), TrainConfig(epochs=1, batch_size=64, train_limit=64, device="cpu"),
                      tiny_dataset(64), big)
    trainer.run()
    stored = stored_codes_from_extras(trainer.extras)
    assert len(stored) == STORED_TEST and stored.test_size == STORED_TEST + 300
    np.testing.assert_allclose(stored.mu[-5:], encode_dataset(trainer.model, trainer.x_test[STORED_TEST - 5:STORED_TEST])[0],
                               atol=4e-3, rtol=1e-3)


def test_the_shapes_factors_are_stored_with_the_codes():
    from vae.data import load_dataset

    train, test = load_dataset("shapes", "train").subset(256), load_dataset("shapes", "test").subset(200)
    trainer = Trainer(ModelConfig(hidden=(16,)), TrainConfig(epochs=1, batch_size=64, device="cpu"), train, test)
    trainer.run()
    stored = stored_codes_from_extras(trainer.extras)
    assert set(stored.factors) == set(test.factors)
    for name, values in test.factors.items():
        np.testing.assert_allclose(stored.factors[name], values.numpy(), rtol=1e-6)


def test_a_checkpoint_carries_its_codes_and_an_old_one_loads_without(tmp_path):
    trainer = trained()
    path = ckpt_io.save(trainer.checkpoint_payload(), tmp_path / "m.pt")
    loaded = stored_codes_from_extras(ckpt_io.load(path).extras)
    original = stored_codes_from_extras(trainer.extras)
    np.testing.assert_array_equal(loaded.mu, original.mu)
    np.testing.assert_array_equal(loaded.train_labels, original.train_labels)
    old = trainer.checkpoint_payload()
    del old["extras"][CODES_KEY]
    ckpt = ckpt_io.load(ckpt_io.save(old, tmp_path / "old.pt"))
    assert stored_codes_from_extras(ckpt.extras) is None and ckpt.epoch == 1


def test_the_stored_codes_hold_no_image():
    """Codes, labels and factors only: no entry has an image's shape or its pixel count."""
    trainer = trained()
    raw = trainer.extras[CODES_KEY]
    tensors = [v for v in raw.values() if isinstance(v, torch.Tensor)] + list(raw["factors"].values())
    assert all(t.dim() <= 2 and (t.dim() < 2 or t.shape[1] == 2) for t in tensors)
    assert sum(t.numel() for t in tensors) < 5 * (N_TEST + N_TRAIN) * 2


def _mutants(raw: dict) -> dict[str, dict]:
    def changed(**kw):
        return {**raw, **kw}
    return {
        "an extra entry": changed(images=torch.zeros(3, 28, 28)),
        "a missing entry": {k: v for k, v in raw.items() if k != "logvar"},
        "another version": changed(version=2),
        "a float test size": changed(test_size=48.0),
        "float32 codes": changed(mu=raw["mu"].float()),
        "int64 labels": changed(labels=raw["labels"].long()),
        "codes of another dimension": changed(mu=torch.zeros(N_TEST, 3, dtype=torch.float16),
                                              logvar=torch.zeros(N_TEST, 3, dtype=torch.float16)),
        "fewer log-variances than means": changed(logvar=raw["logvar"][:-1]),
        "more codes than test images": changed(test_size=N_TEST - 1),
        "too many codes": changed(mu=torch.zeros(10_001, 2, dtype=torch.float16),
                                  logvar=torch.zeros(10_001, 2, dtype=torch.float16),
                                  labels=torch.zeros(10_001, dtype=torch.int16), test_size=10_001),
        "a label beyond the classes": changed(labels=torch.full((N_TEST,), 3, dtype=torch.int16)),
        "a negative label": changed(train_labels=torch.full((N_TRAIN,), -1, dtype=torch.int16)),
        "a NaN code": changed(mu=raw["mu"].clone().index_fill_(0, torch.tensor([0]), float("nan"))),
        "an infinite factor": changed(factors={"scale": torch.full((N_TEST,), float("inf"))}),
        "a factor of the wrong length": changed(factors={"scale": torch.zeros(N_TEST + 1)}),
        "a factor with an odd name": changed(factors={"../x": torch.zeros(N_TEST)}),
        "factors that are a list": changed(factors=[torch.zeros(N_TEST)]),
        "not a dict": [raw["mu"]],
    }


MUTANTS = ["an extra entry", "a missing entry", "another version", "a float test size", "float32 codes",
           "int64 labels", "codes of another dimension", "fewer log-variances than means", "more codes than test images",
           "too many codes", "a label beyond the classes", "a negative label", "a NaN code", "an infinite factor",
           "a factor of the wrong length", "a factor with an odd name", "factors that are a list", "not a dict"]


@pytest.mark.parametrize("what", MUTANTS)
def test_the_loader_refuses_stored_codes_a_trainer_never_writes(tmp_path, what):
    trainer = trained()
    raw = trainer.extras[CODES_KEY]
    bad = _mutants(raw)[what]
    with pytest.raises(StoredCodesError):
        check_stored_codes(bad, latent_dim=2, n_classes=3)
    payload = trainer.checkpoint_payload()
    payload["extras"][CODES_KEY] = bad
    path = ckpt_io.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ckpt_io.CheckpointError) as e:
        ckpt_io.load(path)
    assert_one_sentence(str(e.value))
    assert "stored codes" in str(e.value)


# --- the pages, with no MNIST on this machine ------------------------------------------------------------

@pytest.fixture(scope="module")
def offline_mnist(tmp_path_factory):
    """An MNIST-named model (trained on tiny images standing in for MNIST) with its stored codes; the data
    folder is empty, so every page must draw from the codes."""
    root = tmp_path_factory.mktemp("offline")
    trainer = trained(dataset="mnist", latent_dim=2, epochs=2)
    path = ckpt_io.save(trainer.checkpoint_payload(), root / "checkpoints" / "mnist-offline.pt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_DATA_DIR", str(root / "data"))
        mp.setenv("VAE_CHECKPOINT_DIR", str(root / "checkpoints"))
        yield path, trainer


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _texts(at) -> str:
    return " ".join(e.value for kind in ("caption", "markdown", "warning", "info") for e in at.get(kind))


def test_the_scatter_draws_the_stored_codes_and_a_click_shows_the_reconstruction(offline_mnist):
    path, trainer = offline_mnist
    at = open_page("pages/scatter.py", ("path", str(path)))
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t["name"] for t in figure["data"] if t.get("mode") == "markers" and "customdata" in t]
    counts = np.bincount(trainer.test_data.labels.numpy(), minlength=3)
    assert names == [f"{c} · {n}" for c, n in zip("abc", counts) if n], names
    assert "(stored with the model)" in _texts(at) and not at.warning
    assert at.image[0].captions == ["its reconstruction, from the stored code"]
    first = at.image[0].value
    at.number_input(key="sc_index").set_value(7).run()
    assert_no_exception(at)
    text = _texts(at)
    assert "#7" in text and "The original image needs the dataset: MNIST is not in" in text
    assert len(at.image) == 1 and at.image[0].value != first, "the reconstruction of the code clicked is drawn"


def test_the_label_map_uses_the_stored_training_codes(offline_mnist):
    path, _ = offline_mnist
    at = open_page("pages/scatter.py", ("path", str(path)))
    at.checkbox(key="sc_labelmap").check().run()
    assert_no_exception(at)
    assert f"nearest of {N_TRAIN:,} training codes" in _texts(at) and not at.warning


def test_the_reconstructions_page_decodes_the_stored_codes(offline_mnist):
    path, trainer = offline_mnist
    at = open_page("pages/reconstructions.py", ("path", str(path)))
    text = _texts(at) + " " + " ".join(c for image in at.image for c in image.captions)
    assert "from their stored codes" in text and "what you see is decoded from the codes" in text
    assert "From test image #0 to #1" in text and not at.warning


def test_compare_shows_the_reconstructions_of_the_stored_codes(offline_mnist):
    path, _ = offline_mnist
    at = open_page("pages/compare.py", ("path", str(path)))
    strips = [image for image in at.image if "test images #0-#5" in image.captions[0]]
    assert len(strips) == 1 and "decoded from the codes stored with the model" in strips[0].captions[0]
    assert not at.warning


@pytest.mark.parametrize("page", [p.script for p in SITE if p.section != "Model" and p.script not in OWN_TESTS])
def test_every_other_explore_and_teach_page_works_from_the_stored_codes(offline_mnist, page):
    path, _ = offline_mnist
    at = open_page(page, ("path", str(path)))
    assert not at.warning, [w.value for w in at.warning]


def test_the_pad_gets_the_stored_codes_without_thumbnails(offline_mnist):
    from vae.browser.pad import unpack

    path, trainer = offline_mnist
    at = open_page("pages/sliders.py", ("path", str(path)))
    pads = [e for e in at.get("bidi_component") if e.proto.component_name == "latent_explorer.latent_pad"]
    header, sections = unpack(pads[0].proto.bytes)
    assert header["codes"]["count"] == N_TEST and "sprite" not in sections
    codes = np.frombuffer(sections["codes"], np.float32).reshape(-1, 2)
    np.testing.assert_allclose(codes, stored_codes_from_extras(trainer.extras).mu, atol=1e-6)
    assert "what you see is decoded from the codes" in _texts(at)


def test_a_fresh_session_opens_the_mnist_default_when_it_stores_its_codes(tmp_path, monkeypatch):
    from pages.ui.current_model import DEFAULT_MODELS

    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    trainer = trained(dataset="mnist")
    ckpt_io.save(trainer.checkpoint_payload(), folder / DEFAULT_MODELS["mnist"])
    shapes = trained()
    ckpt_io.save(shapes.checkpoint_payload(), folder / DEFAULT_MODELS["shapes"])
    at = open_page("pages/home.py")
    assert at.session_state["model_source"] == ("path", str(folder / DEFAULT_MODELS["mnist"]))
    # Without stored codes (an older default) and without MNIST, the shapes default opens instead.
    old = trainer.checkpoint_payload()
    del old["extras"][CODES_KEY]
    ckpt_io.save(old, folder / DEFAULT_MODELS["mnist"])
    st.cache_resource.clear()
    at = open_page("pages/home.py")
    assert at.session_state["model_source"] == ("path", str(folder / DEFAULT_MODELS["shapes"]))
