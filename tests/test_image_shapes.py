"""Every public function that touches images, for grey and colour, square and not: (1, 28, 28),
(1, 20, 28), (1, 28, 20) (Frey Face), (3, 32, 32) and (3, 64, 64), with the MLP and the conv net, on data
the tests make. Then a colour checkpoint's round trip and every page drawing a colour model."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pages.ui.sitemap import PAGES as SITE
from tests.conftest import tiny_dataset
from vae import checkpoint as ckpt_io
from vae.config import ConfigError, ModelConfig, TrainConfig, conv_levels
from vae.render.palette import class_color
from vae.render.figures import manifold_figure
from vae.analysis.encoding import decode_codes, decode_grid, encode_dataset, reconstruct
from vae.render.images import png_bytes, tile_images, tile_rows, to_pictures, upscale_nearest
from vae.nets.loss import elbo_terms, iw_log_likelihood
from vae.nets.model import VAE
from vae.browser.pad import PadCodes, pad_payload, thumbnail_sprite, unpack
from vae.browser.programs import decoder_program
from vae.render.pictures import class_samples
from vae.training.replay import replay_frame_image, replay_gif
from vae.training.replay import ReplayRecorder
from vae.checkpoint.replay import replay_from_extras, replay_tile
from vae.training.trainer import Trainer, evaluate_model

SHAPES = [(1, 28, 28), (1, 20, 28), (1, 28, 20), (3, 32, 32), (3, 64, 64)]
CASES = [(shape, arch) for shape in SHAPES for arch in ("mlp", "conv")]


def _picture_shape(shape: tuple[int, int, int]) -> tuple[int, ...]:
    """What a picture of an image of (C, H, W) is: (H, W) grey, (H, W, 3) colour."""
    c, h, w = shape
    return (h, w) if c == 1 else (h, w, 3)


def _config(shape, arch, latent_dim=2, likelihood="bernoulli") -> ModelConfig:
    return ModelConfig(arch=arch, latent_dim=latent_dim, hidden=(32,), image_shape=shape, likelihood=likelihood)


def _data(shape, n=48, split="train", seed=0):
    return tiny_dataset(n, split, seed, channels=shape[0], size=shape[1:])


@pytest.fixture(scope="module", params=CASES, ids=lambda case: f"{case[1]}-{'x'.join(map(str, case[0]))}")
def trained(request, tmp_path_factory):
    """A model of each shape and architecture after one epoch on blobs of that shape, with its replay,
    saved and loaded back."""
    shape, arch = request.param
    train, test = _data(shape), _data(shape, 24, "test", 1)
    trainer = Trainer(_config(shape, arch), TrainConfig(dataset=train.name, epochs=1, batch_size=16, device="cpu"),
                      train, test)
    ReplayRecorder(n_codes=20, grid=4).attach(trainer)
    trainer.run()
    path = ckpt_io.save(trainer.checkpoint_payload(), tmp_path_factory.mktemp("shapes") / "model.pt")
    return shape, trainer, ckpt_io.load(path), test


def test_the_model_and_the_loss_take_the_shape(trained):
    shape, trainer, _, test = trained
    x = test.float_images()[:5]
    out = trainer.model(x)
    assert out.logits.shape == (5, *shape) and out.mu.shape == out.logvar.shape == (5, 2)
    terms = elbo_terms(trainer.model, x, out)
    assert terms.recon.shape == terms.kl.shape == (5,) and torch.isfinite(terms.total).all()
    assert iw_log_likelihood(trainer.model, x, k=3).shape == (5,)
    metrics = evaluate_model(trainer.model, test.float_images())
    assert set(metrics) >= {"elbo", "recon", "kl"} and np.isfinite(metrics["elbo"])


def test_the_latent_functions_give_pictures_of_the_shape(trained):
    shape, trainer, _, test = trained
    model, picture = trainer.model.eval(), _picture_shape(shape)
    mu, logvar = encode_dataset(model, test.float_images())
    assert mu.shape == logvar.shape == (len(test), 2)
    assert decode_codes(model, mu[:3]).shape == (3, *picture)
    assert reconstruct(model, test.float_images()[:4]).shape == (4, *picture)
    grid = decode_grid(model, np.linspace(-2, 2, 3, dtype=np.float32), np.linspace(-2, 2, 4, dtype=np.float32))
    assert grid.shape == (4, 3, *picture)
    c, h, w = shape
    tiled = tile_images(grid)
    assert tiled.dtype == np.uint8 and tiled.shape == (4 * h, 3 * w, *picture[2:])
    assert tile_images(grid, gap=2).shape == (4 * h + 6, 3 * w + 4, *picture[2:])
    assert tile_rows([to_pictures(test.float_images()[:3]), reconstruct(model, test.float_images()[:3])]).shape == \
        (2 * h, 3 * w, *picture[2:])
    assert upscale_nearest(tiled, 2).shape == (8 * h, 6 * w, *picture[2:])
    decoded = Image.open(io.BytesIO(png_bytes(tiled)))
    assert decoded.size == (3 * w, 4 * h) and decoded.mode == ("L" if c == 1 else "RGB")
    figure = manifold_figure(tiled, np.linspace(-2, 2, 3), np.linspace(-2, 2, 4))
    assert figure.data[0].type == "image"


def test_the_checkpoint_keeps_the_shape_and_the_replay(trained):
    shape, trainer, loaded, test = trained
    assert loaded.model_config.image_shape == shape == trainer.model_cfg.image_shape
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    replay = replay_from_extras(loaded.extras)
    th, tw = replay_tile(shape)
    assert max(th, tw) <= 28 and replay.manifolds.shape == (2, 4 * th, 4 * tw, *_picture_shape(shape)[2:])
    frame = replay_frame_image(replay, 1, test.class_names)
    assert frame.ndim == 3 and frame.shape[2] == 3
    gif = Image.open(io.BytesIO(replay_gif(replay, test.class_names)))
    assert gif.n_frames == 2


def test_the_pad_payload_describes_the_shape(trained):
    shape, trainer, _, test = trained
    model = trainer.model.eval()
    program = decoder_program(model)
    assert program.image_shape == shape
    images = (test.images[:6]).numpy()
    sprite = Image.open(io.BytesIO(thumbnail_sprite(images, columns=4)))
    c, h, w = shape
    assert sprite.size == (4 * w, 2 * h) and sprite.mode == ("L" if c == 1 else "RGB")
    codes = PadCodes(encode_dataset(model, test.float_images()[:6])[0], test.labels[:6].numpy(), images)
    classes = [(name, class_color(i)) for i, name in enumerate(test.class_names)]
    header, sections = unpack(pad_payload(model, program, model_key="m", dims=(0, 1), base=None, point=[0.0, 0.0],
                                          limit=4.0, classes=classes, codes=codes, sprite=thumbnail_sprite(images)))
    assert header["model"]["shape"] == list(shape) and "sprite" in sections


def test_class_samples_draw_a_row_per_class_in_colour_or_grey():
    for shape in [(1, 28, 28), (3, 32, 32), (1, 28, 20)]:
        data = _data(shape, 60)
        picture = class_samples(data, per_class=5)
        c, h, w = shape
        factor = -(-56 // max(h, w))
        assert picture.shape == (factor * (3 * h + 4), factor * (5 * w + 8), *_picture_shape(shape)[2:])


def test_every_likelihood_trains_on_colour_and_the_per_pixel_scale_has_the_image_shape():
    shape = (3, 32, 32)
    train, test = _data(shape), _data(shape, 16, "test", 1)
    for likelihood, sigma_shape in (("gaussian", ()), ("gaussian-pixel", shape)):
        model_cfg = _config(shape, "conv", likelihood=likelihood)
        trainer = Trainer(model_cfg, TrainConfig(dataset="shapes-color", epochs=1, batch_size=16, device="cpu"), train, test)
        trainer.run()
        assert trainer.model.log_sigma.shape == sigma_shape
        assert sum(p.numel() for p in trainer.model.parameters()) == model_cfg.n_params
        assert model_cfg.elbo_unit.startswith("nats per image (Gaussian")


@pytest.mark.parametrize("shape, depth", [((1, 28, 28), 2), ((1, 20, 28), 2), ((3, 32, 32), 3), ((3, 64, 64), 4),
                                          ((3, 128, 128), 5), ((1, 8, 8), 1)])
def test_the_conv_net_halves_as_often_as_the_size_allows(shape, depth):
    assert len(conv_levels(*shape[1:])) == depth
    model = VAE(_config(shape, "conv"))
    assert model.decode(torch.zeros(2, 2)).shape == (2, *shape)
    assert sum(p.numel() for p in model.parameters()) == model.config.n_params


@pytest.mark.parametrize("shape, words", [((1, 27, 27), "even height and width"), ((2, 28, 28), "1 (grey) or 3"),
                                          ((3, 7, 28), "sides from 8 to 128"), ((3, 129, 128), "sides from 8 to 128")])
def test_shapes_the_model_cannot_take_are_one_sentence(shape, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        _config(shape, "conv")


# --- every page, for a colour model and a Frey-Face-shaped one ------------------------------------------

PAGES = [p.script for p in SITE]


@pytest.fixture(scope="module")
def page_models(tmp_path_factory):
    """A data folder with the colour shapes and a Frey-shaped file, and a model trained a little on each."""
    from tests.test_data import _write_frey
    from vae.data import load_dataset

    root = tmp_path_factory.mktemp("pages")
    _write_frey(root / "data", 120)
    models = {}
    for name, arch in (("shapes-color", "conv"), ("frey-face", "mlp")):
        train, test = (load_dataset(name, split, root / "data") for split in ("train", "test"))
        cfg = _config(train.image_shape, arch)
        trainer = Trainer(cfg, TrainConfig(dataset=name, epochs=1, batch_size=64, train_limit=600, device="cpu"),
                          train, test)
        ReplayRecorder(n_codes=50, grid=4).attach(trainer)
        trainer.run()
        models[name] = ckpt_io.save(trainer.checkpoint_payload(), root / f"{name}.pt")
    return root, models


def _png_mode(uri: str) -> str:
    import base64

    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).mode


@pytest.mark.parametrize("name", ["shapes-color", "frey-face"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_draws_a_colour_or_frey_model(page_models, monkeypatch, page, name):
    import json

    import streamlit as st

    from tests.conftest import app_test, assert_no_exception

    root, models = page_models
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(root / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(root / "data"))
    st.cache_resource.clear()
    at = app_test(("path", str(models[name]))).switch_page(page).run()
    assert_no_exception(at, page)
    missing = [w.value for w in at.warning if "need" in w.value]  # "... the scatter needs the test images."
    assert not missing, missing  # the test images were found and fit the model
    card = " ".join(m.value for m in at.sidebar.markdown)
    assert ("28x28 colour" if name == "shapes-color" else "20x28 grey") in card, card
    if page == "pages/manifold.py":
        figure = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert _png_mode(figure["data"][0]["source"]) == ("RGB" if name == "shapes-color" else "L")
    st.cache_resource.clear()
