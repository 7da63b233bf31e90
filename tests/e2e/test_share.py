"""A model's explorer as one HTML file (`python -m vae share`), opened from disk in Chromium with every request
blocked: the pad decodes as decode_codes does and follows a drag, the input panel encodes, the manifold is drawn,
and the page asks for nothing. For the shipped MNIST default and a colour conv model trained here; the file holds
no pixel of any dataset."""
from __future__ import annotations

import base64
import json
import math
import re
import time

import numpy as np
import pytest
import torch
from PIL import Image

import vae.cli as cli
from tests.conftest import ROOT, tiny_dataset
from tests.e2e.conftest import chromium, require_browser
from tests.e2e.test_colour import DOC_SHOTS
from tests.e2e.test_encoder_panel import SEVEN, _stroke
from vae import checkpoint as ckpt_io
from vae.analysis.encoding import decode_codes
from vae.browser.pad import unpack
from vae.config import ModelConfig, TrainConfig
from vae.training.trainer import Trainer

pytestmark = pytest.mark.e2e

PAD = "document.querySelector('.lp-root').latentPad"
MAX_BYTES = 4_000_000


def _shared(tmp_path, checkpoint) -> tuple[str, bytes]:
    out = tmp_path / "explorer.html"
    assert cli.main(["share", str(checkpoint), "--out", str(out)]) == 0
    text = out.read_text()
    payload = json.loads(re.search(r'<script type="application/json" id="lx-payload">(.*?)</script>', text).group(1))
    return str(out), base64.b64decode(payload)


def _colour_conv(tmp_path):
    cfg = TrainConfig(dataset="shapes-color", epochs=1, batch_size=16, device="cpu", log_every=4)
    trainer = Trainer(ModelConfig(arch="conv", latent_dim=2, hidden=(48,), image_shape=(3, 28, 28)), cfg,
                      tiny_dataset(64, channels=3), tiny_dataset(32, "test", 1, channels=3))
    trainer.run()
    return ckpt_io.save(trainer.checkpoint_payload(), tmp_path / "colour.pt")


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as b:
        yield b


@pytest.mark.parametrize("which", ["shipped MNIST", "colour conv"])
def test_the_exported_explorer_works_from_disk_with_every_request_blocked(browser, tmp_path, which):
    checkpoint = ROOT / "checkpoints" / "default-mnist-2d.pt" if which == "shipped MNIST" else _colour_conv(tmp_path)
    path, payload = _shared(tmp_path, checkpoint)
    size = len(open(path, "rb").read())
    assert size <= MAX_BYTES, size
    header, sections = unpack(payload)
    assert "sprite" not in sections and (header["codes"] is None or "sprite" not in header["codes"])  # no pixels
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    asked: list[str] = []
    own = f"file://{path}"

    def block(route):  # the file itself opens; anything else it might ask for is refused and counted
        if route.request.url == own:
            route.continue_()
        else:
            asked.append(route.request.url)
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"file://{path}")
    page.wait_for_function(f"() => {PAD} && {PAD}.header")
    page.wait_for_function("() => document.querySelector('.lx-manifold').dataset.drawn")
    model = ckpt_io.load(checkpoint).model.eval()
    rng = np.random.default_rng(0)
    codes = rng.uniform(-3, 3, (16, 2)).astype(np.float32)
    js = np.asarray(page.evaluate(f"(codes) => codes.map((z) => {PAD}.decodeAt(z))", codes.tolist()), np.float32)
    want = decode_codes(model, codes)  # (N, H, W) grey, (N, H, W, 3) colour; the page's are channel planes
    want = (want.transpose(0, 3, 1, 2) if want.ndim == 4 else want).reshape(len(codes), -1)
    assert np.abs(js - want).mean() < 1e-4
    # A 2 s drag draws at least 30 distinct pictures.
    box = page.locator(".latent-pad").bounding_box()
    before = page.evaluate(f"() => {PAD}.stats.distinct")
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    t0 = time.perf_counter()
    while (t := time.perf_counter() - t0) < 2.0:
        page.mouse.move(box["x"] + box["width"] * (0.5 + 0.35 * math.sin(2.1 * t)),
                        box["y"] + box["height"] * (0.5 + 0.35 * math.sin(3.3 * t + 0.7)))
    page.mouse.up()
    assert page.evaluate(f"() => {PAD}.stats.distinct") - before >= 30
    # The input panel encodes, as torch does.
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    x = torch.tensor(page.evaluate(f"() => Array.from({PAD}.post.q.x)")).reshape(1, *model.config.image_shape)
    with torch.no_grad():
        mu, _ = model.encode(x)
    assert np.abs(np.asarray(page.evaluate(f"() => Array.from({PAD}.post.q.mu)")) - mu[0].numpy()).max() < 1e-2
    assert page.locator(".lx-card").inner_text().count("\n") >= 5 and not errors, errors
    foreign = [u for u in asked if u != own]
    assert not foreign, f"the page asked for {foreign[:5]}"
    if which == "shipped MNIST":  # README's picture of the file, as a student opens it: the pad at the top
        page.set_viewport_size({"width": 1400, "height": 900})
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(DOC_SHOTS / "shared-explorer.png"))
    context.close()


def test_a_model_the_page_cannot_run_is_refused_in_one_sentence(tmp_path, capsys):
    cfg = ModelConfig(arch="mlp", latent_dim=2, hidden=(1400, 1400))
    trainer = Trainer(cfg, TrainConfig(dataset="shapes", epochs=1, batch_size=64, device="cpu", train_limit=64),
                      tiny_dataset(64), tiny_dataset(32, "test", 1))
    path = ckpt_io.save(trainer.checkpoint_payload(), tmp_path / "big.pt")
    assert cli.main(["share", str(path), "--out", str(tmp_path / "big.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: big cannot be explored in a page on its own") and err.count("\n") == 0, err
    assert not (tmp_path / "big.html").exists()


def test_save_picture_downloads_the_decoded_picture_enlarged_pixel_for_pixel(browser, tmp_path):
    checkpoint = ROOT / "checkpoints" / "default-mnist-2d.pt"
    path, _ = _shared(tmp_path, checkpoint)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"file://{path}")
    page.wait_for_function(f"() => {PAD} && {PAD}.header")
    box = page.locator(".latent-pad").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
    point = page.evaluate(f"() => {PAD}.point")
    with page.expect_download() as download:
        page.get_by_role("button", name="Save picture").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "decoded_z1_{:.2f}_z2_{:.2f}.png".format(*point)
    picture = np.asarray(Image.open(saved).convert("L"), np.float32) / 255  # (28 k, 28 k), k = 232 // 28
    k = 232 // 28
    assert picture.shape == (28 * k, 28 * k)
    want = decode_codes(ckpt_io.load(checkpoint).model.eval(), np.asarray([point], np.float32))[0]  # (28, 28)
    assert np.abs(picture[::k, ::k] - want).max() <= 1 / 255 + 1e-6
    np.testing.assert_array_equal(picture, np.kron(picture[::k, ::k], np.ones((k, k), np.float32)))
    context.close()
