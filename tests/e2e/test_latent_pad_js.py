"""The latent pad's JavaScript in a real Chromium, without Streamlit (tests/e2e/pad_harness.py): the
browser's decoder gives the numbers vae.analysis.encoding.decode_codes gives, for both architectures; a drag
draws many pictures before the release and sends the point only then; the arrow keys move the point;
hovering a code shows its image and its reconstruction; a new model version keeps the point."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.e2e import pad_harness as harness
from tests.e2e.conftest import chromium, require_browser
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig
from vae.analysis.encoding import decode_codes
from vae.render.images import to_uint8
from vae.render.palette import class_color
from vae.nets.model import VAE
from vae.browser.pad import PadCodes, pad_payload, unpack
from vae.browser.programs import decoder_program

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MNIST = ROOT / "checkpoints" / "default-mnist-2d.pt"
CLASSES = [(name, class_color(label)) for label, name in enumerate("abcde")]
MEAN_ABS_TOLERANCE = 1e-4  # per pixel in [0, 1], the bound


@pytest.fixture(scope="module")
def page():
    require_browser()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page


def _model(arch: str, latent_dim: int = 2, seed: int = 0, **kw) -> VAE:
    """An untrained model (weights from a seed); kw: more ModelConfig settings, e.g. image_shape."""
    hidden = (48,) if arch == "conv" else (64, 32)
    return VAE(ModelConfig(arch=arch, latent_dim=latent_dim, hidden=hidden, **kw), torch.Generator().manual_seed(seed)).eval()


def _trained_conv() -> VAE:
    """A conv model after a few hundred Adam steps on random blobs: weights of a trained model's scale, not
    the initial ones."""
    model = _model("conv")
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(256, 1, 28, 28, generator=g) > 0.7).float()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(60):
        out = model(x, g)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, x, reduction="sum") / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _codes(model: VAE, n: int = 200, seed: int = 0) -> PadCodes:
    """n random codes with labels and random thumbnails of the model's image shape (N, C, H, W)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, model.config.latent_dim)).astype(np.float32)
    return PadCodes(mu, rng.integers(0, len(CLASSES), n), to_uint8(rng.random((n, *model.config.image_shape)) ** 3))


def _payload(model: VAE, key: str = "m:1", codes: PadCodes | None = None, dims=(0, 1), **kw) -> bytes:
    dims = dims[:model.config.latent_dim]
    return pad_payload(model, decoder_program(model), model_key=key, dims=dims, base=None,
                       point=kw.pop("point", [0.0] * len(dims)), limit=4.0, classes=CLASSES, codes=codes, **kw)


def _points(latent_dim: int) -> np.ndarray:
    """Codes across and beyond the plane: the corners at +/- 4, the centre, and random ones."""
    rng = np.random.default_rng(latent_dim)
    corners = np.array([[4, 4], [-4, -4], [4, -4], [0, 0], [0.3, -2.5]], np.float32)
    corners = np.pad(corners, ((0, 0), (0, max(latent_dim - 2, 0))))[:, :latent_dim]
    return np.vstack([corners, rng.normal(0, 2, (11, latent_dim))]).astype(np.float32)


MODELS = {
    "mlp, shipped MNIST default": lambda: ckpt_io.load(SHIPPED_MNIST).model,
    "conv, trained": _trained_conv,
    "mlp, 5-D, gaussian": lambda: _model("mlp", 5, likelihood="gaussian"),
    "conv, 1-D": lambda: _model("conv", 1),
    "conv, colour 32x32": lambda: _model("conv", image_shape=(3, 32, 32)),
    "conv, colour 64x64, a scale per pixel": lambda: _model("conv", 3, image_shape=(3, 64, 64), likelihood="gaussian-pixel"),
    "mlp, Frey-shaped 20x28 grey": lambda: _model("mlp", image_shape=(1, 28, 20)),
    "mlp, colour 20x28": lambda: _model("mlp", image_shape=(3, 28, 20)),
}


@pytest.mark.parametrize("dtype", [None, "float32"])
@pytest.mark.parametrize("name", list(MODELS))
def test_the_browser_decodes_what_decode_codes_decodes(page, name, dtype):
    if name.startswith("mlp, shipped") and not SHIPPED_MNIST.exists():
        pytest.skip(f"{SHIPPED_MNIST.name} is not in checkpoints/")
    model = MODELS[name]()
    payload = _payload(model, dtype=dtype)
    harness.mount(page, payload)
    z = _points(model.config.latent_dim)
    got = harness.decode(page, z)
    want = model.decode(torch.from_numpy(z)).detach().numpy().reshape(len(z), -1)  # (B, C*H*W), channel planes
    error = np.abs(got - want)
    sent = unpack(payload)[0]["model"]["dtype"]
    assert error.mean() < MEAN_ABS_TOLERANCE, f"{name} ({sent}): mean |JS - torch| {error.mean():.2e} per pixel"
    assert error.max() < (5e-3 if sent == "float16" else 1e-4), f"{name} ({sent}): max {error.max():.2e}"
    assert not page.errors, page.errors


def test_a_drag_draws_many_pictures_and_sends_the_point_only_on_release(page):
    model = _trained_conv()
    harness.mount(page, _payload(model, codes=_codes(model)))
    start, end = harness.to_page(page, (-3.0, -2.0)), harness.to_page(page, (3.0, 2.5))
    before = harness.stats(page)
    page.mouse.move(*start)
    page.mouse.down()
    steps = 40
    for i in range(1, steps + 1):
        t = i / steps
        page.mouse.move(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
    during = harness.stats(page)
    assert harness.states(page) == [], "the pad sent its point before the release"
    assert during["distinct"] - before["distinct"] >= 30, (
        f"{during['distinct'] - before['distinct']} distinct pictures over a {steps}-move drag")
    page.mouse.up()
    sent = harness.states(page)
    assert len(sent) == 1 and sent[0][0] == "point", sent
    assert sent[0][1]["z"] == pytest.approx([3.0, 2.5], abs=0.02) and sent[0][1]["dims"] == [0, 1]
    assert during["point"] == pytest.approx(sent[0][1]["z"], abs=1e-3)
    picture = page.evaluate(f"() => Array.from({harness.PAD}.el.picture.getContext('2d').getImageData(0, 0, 28, 28).data)")
    want = to_uint8(decode_codes(model, np.array([during["point"]], np.float32))[0])
    assert np.abs(np.asarray(picture[::4], np.int16).reshape(28, 28) - want).max() <= 1  # the last point's picture
    assert not page.errors, page.errors


def test_arrow_keys_on_the_sliders_and_the_pad_move_the_point(page):
    model = _model("mlp")
    harness.mount(page, _payload(model))
    z1, z2 = page.locator(".lp-slider input").nth(0), page.locator(".lp-slider input").nth(1)
    drawn = harness.stats(page)["draws"]
    z1.focus()
    for _ in range(4):
        z1.press("ArrowRight")
    z2.focus()
    z2.press("ArrowLeft")
    state = harness.stats(page)
    assert state["point"] == pytest.approx([0.2, -0.05]), state["point"]
    assert state["draws"] - drawn == 5  # a picture for every key
    page.wait_for_timeout(600)  # the keys rest: the point goes back once
    assert [s[1]["z"] for s in harness.states(page)][-1] == pytest.approx([0.2, -0.05])
    page.locator(".latent-pad").focus()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Shift+ArrowLeft")
    assert harness.stats(page)["point"] == pytest.approx([-0.3, 0.05])
    assert page.locator(".lp-slider output").nth(0).inner_text() == "\u22120.30"
    assert not page.errors, page.errors


def _canvas(page, selector: str, shape: tuple[int, int, int] = (1, 28, 28)) -> np.ndarray:
    """A thumbnail canvas of the pad as (H, W) grey (its R channel) or (H, W, 3) RGB, for images of shape."""
    c, h, w = shape
    data = page.evaluate(f"() => Array.from(document.querySelector('{selector}').getContext('2d')"
                         f".getImageData(0, 0, {w}, {h}).data)")
    rgba = np.asarray(data, np.int16).reshape(h, w, 4)
    return rgba[..., 0] if c == 1 else rgba[..., :3]


def _isolated(codes: PadCodes) -> int:
    """The code farthest from every other in the plane (and inside it), so the pointer can only mean it."""
    xy = codes.mu[:, :2]
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    inside = np.abs(xy).max(axis=1) < 3.5
    return int(np.argmax(np.where(inside, gaps.min(axis=1), -1)))


def test_hovering_a_code_shows_its_image_its_reconstruction_and_its_label(page):
    model = _model("mlp", 3)
    codes = _codes(model, 300)
    harness.mount(page, _payload(model, codes=codes))
    k, xy = _isolated(codes), codes.mu[:, :2]
    page.mouse.move(*harness.to_page(page, tuple(xy[k] + 0.3)))
    page.mouse.move(*harness.to_page(page, tuple(xy[k])))
    page.wait_for_function(f"() => document.querySelector('.lp-root').dataset.hovered === '{k}'")
    page.wait_for_timeout(200)  # the thumbnail sheet decodes asynchronously
    np.testing.assert_array_equal(_canvas(page, ".lp-original"), codes.images[k, 0])
    recon = to_uint8(decode_codes(model, codes.mu[k:k + 1])[0])
    assert np.abs(_canvas(page, ".lp-recon") - recon).max() <= 1
    text = page.locator(".lp-hover-text").inner_text()
    assert CLASSES[codes.labels[k]][0] in text and f"test image #{k}" in text and "\u03bc = (" in text, text
    assert page.locator(".lp-thumbs").is_visible()
    assert not page.errors, page.errors


def test_hovering_a_colour_code_shows_its_colour_image_and_reconstruction(page):
    model = _model("conv", image_shape=(3, 32, 32))
    codes = _codes(model, 40, seed=3)
    harness.mount(page, _payload(model, codes=codes))
    k = _isolated(codes)
    page.mouse.move(*harness.to_page(page, tuple(codes.mu[k, :2])))
    page.wait_for_function(f"() => document.querySelector('.lp-root').dataset.hovered === '{k}'")
    page.wait_for_timeout(200)  # the thumbnail sheet decodes asynchronously
    np.testing.assert_array_equal(_canvas(page, ".lp-original", (3, 32, 32)), codes.images[k].transpose(1, 2, 0))
    recon = to_uint8(decode_codes(model, codes.mu[k:k + 1])[0])  # (32, 32, 3)
    assert np.abs(_canvas(page, ".lp-recon", (3, 32, 32)) - recon).max() <= 1
    assert not page.errors, page.errors


def test_a_new_model_version_swaps_the_weights_in_place_and_keeps_the_point(page):
    first, second = _model("mlp", seed=0), _model("mlp", seed=1)
    harness.mount(page, _payload(first, "job:1:1", codes=_codes(first)))
    page.mouse.click(*harness.to_page(page, (1.5, -0.5)))
    point = harness.stats(page)["point"]
    page.evaluate(f"() => {{ {harness.PAD}.marker = 'same element'; }}")
    harness.send(page, _payload(second, "job:1:2", codes=_codes(second, seed=3)))
    after = harness.stats(page)
    assert after["versions"] == 2 and after["point"] == point
    assert page.evaluate(f"() => {harness.PAD}.marker") == "same element"
    assert page.evaluate("() => document.querySelector('.lp-root').dataset.modelKey") == "job:1:2"
    want = to_uint8(decode_codes(second, np.array([point], np.float32))[0])
    assert np.abs(_canvas(page, ".lp-picture") - want).max() <= 1
    harness.send(page, _payload(second, "job:1:2", codes=_codes(second, seed=3)))  # the same again: nothing to do
    assert harness.stats(page)["versions"] == 2
    assert not page.errors, page.errors


def test_a_one_dimensional_space_gets_a_strip_and_one_slider(page):
    model = _model("mlp", 1)
    harness.mount(page, _payload(model, codes=_codes(model)))
    assert page.locator(".latent-pad.lp-strip").count() == 1
    assert page.locator(".lp-slider input").count() == 1
    page.mouse.click(*harness.to_page(page, (2.0, 0.0)))
    assert harness.stats(page)["point"] == pytest.approx([2.0], abs=0.02)
    assert harness.states(page)[-1][1]["code"] == pytest.approx([2.0], abs=0.02)
    assert not page.errors, page.errors


def test_a_payload_the_page_cannot_decode_shows_a_sentence_not_an_error(page):
    model = _model("mlp")
    payload = _payload(model)
    bad = payload.replace(b'"op":"relu"', b'"op":"gelu"', 1)
    harness.mount(page, payload)
    harness.send(page, bad.replace(b'"key":"m:1"', b'"key":"m:2"'))
    message = page.locator(".lp-error")
    assert message.is_visible() and "gelu" in message.inner_text() and "reload the page" in message.inner_text()
    assert not page.errors, page.errors


def test_the_sprite_png_is_what_the_hover_reads(page):
    """The thumbnails travel as one PNG; Chromium reads it to the same pixels PIL wrote."""
    model = _model("mlp")
    codes = _codes(model, 90)
    sheet = np.asarray(Image.open(io.BytesIO(unpack(_payload(model, codes=codes))[1]["sprite"])))
    assert sheet.shape == (3 * 28, 40 * 28)
    np.testing.assert_array_equal(sheet[28:56, 28 * 5:28 * 6], codes.images[45, 0])


# How many pixels of the codes canvas, in a 100 x 30 CSS px box centred on (x, y), are exactly `hex`: a name's
# label is outlined opaque in its class's colour, while the dots are drawn translucent.
NAME_PIXELS_JS = """([x, y, hex]) => {
    const canvas = document.querySelector('.lp-codes'), s = canvas.width / canvas.clientWidth;
    const box = canvas.getContext('2d').getImageData(Math.round((x - 50) * s), Math.round((y - 15) * s),
                                                      Math.round(100 * s), Math.round(30 * s)).data;
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    let n = 0;
    for (let i = 0; i < box.length; i += 4) n += box[i] === rgb[0] && box[i + 1] === rgb[1] && box[i + 2] === rgb[2];
    return n;
}"""
NAMED = [(f"class {name}", colour) for name, colour in CLASSES]


def _named_payload(model: VAE, key: str, mu: np.ndarray, labels: np.ndarray) -> bytes:
    return pad_payload(model, decoder_program(model), model_key=key, dims=(0, 1), base=None, point=[0.0, 0.0],
                       limit=4.0, classes=NAMED, codes=PadCodes(mu, labels, None))


def _name_spots(page) -> list[dict]:
    return page.evaluate(f"() => {harness.PAD}.nameSpots")


def test_each_class_is_named_at_the_median_of_its_codes_until_the_legend_box_is_unticked(page):
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 40)  # a, b, c and d; no e
    centres = np.array([[-2, -2], [2, -1.5], [-1.5, 2], [1.8, 1.8]], np.float32)
    mu = (centres[labels] + rng.normal(0, 0.4, (len(labels), 2))).astype(np.float32)
    mu[0] = [9, 9]  # a code off the plane still counts in its class's median
    harness.mount(page, _named_payload(_model("mlp"), "m:1", mu, labels))
    spots = _name_spots(page)
    assert [s["name"] for s in spots] == ["class a", "class b", "class c", "class d"]
    drawn = {}
    for spot in spots:
        median = np.median(mu[labels == spot["label"]].astype(np.float64), axis=0).tolist()
        want = page.evaluate(f"(z) => {harness.PAD}.toPixels(z[0], z[1])", median)
        assert [spot["x"], spot["y"]] == pytest.approx(want, abs=1e-3)
        drawn[spot["label"]] = page.evaluate(NAME_PIXELS_JS, [spot["x"], spot["y"], NAMED[spot["label"]][1]])
        assert drawn[spot["label"]] >= 40, spot  # the label is there, outlined in the class's colour
    box = page.locator(".lp-legend .lp-names-toggle input")
    assert box.is_checked()
    box.uncheck()
    assert _name_spots(page) == []
    for spot in spots:
        assert page.evaluate(NAME_PIXELS_JS, [spot["x"], spot["y"], NAMED[spot["label"]][1]]) < drawn[spot["label"]] / 4
    harness.send(page, _named_payload(_model("mlp", seed=1), "m:2", mu, labels))
    assert not box.is_checked() and _name_spots(page) == []  # the choice outlives a new model version
    box.check()
    assert len(_name_spots(page)) == 4
    assert not page.errors, page.errors


def test_past_ten_classes_the_pad_draws_the_next_marker(page):
    """The legend's keys take the payload's markers: class 10 (the eleventh) is a square."""
    model = _model("mlp")
    classes = [(f"class {k}", class_color(k)) for k in range(12)]
    harness.mount(page, pad_payload(model, decoder_program(model), model_key="m:12", dims=(0, 1), base=None,
                                    point=[0.0, 0.0], limit=4.0, classes=classes,
                                    codes=PadCodes(np.zeros((12, 2), np.float32), np.arange(12), None)))
    markers = page.locator(".lp-key i").evaluate_all("(keys) => keys.map((k) => k.dataset.marker)")
    assert markers == ["circle"] * 10 + ["square"] * 2
    assert not page.errors, page.errors
