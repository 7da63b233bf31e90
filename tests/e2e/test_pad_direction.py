"""A direction on the latent pad (vae/browser/pad.py PadDirection), in a bare Chromium page (pad_harness.py):
the alpha slider decodes decode(code + alpha v) in the page on every move, as torch decodes it; v is drawn as
an arrow on the plane; a new model version or another vector walks back to alpha = 0; a payload without a
direction takes the slider away; and the page asks no other host for anything."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e import pad_harness as harness
from tests.e2e.conftest import chromium, require_browser
from vae import checkpoint as ckpt_io
from vae.analysis.encoding import decode_codes
from vae.browser.pad import PadCodes, PadDirection, pad_payload
from vae.browser.programs import decoder_program
from vae.checkpoint.codes import stored_codes_from_extras
from vae.config import ModelConfig
from vae.nets.model import VAE
from vae.render.images import to_uint8
from vae.render.palette import class_color

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MNIST = ROOT / "checkpoints" / "default-mnist-2d.pt"
SHOT = Path("/tmp/pad-direction.png")
PAD = harness.PAD
MEAN_ABS_TOLERANCE = 1e-4  # per pixel in [0, 1], the bound
LOCAL = ("http://127.0.0.1", "blob:", "data:", "about:")  # what the bare page may load: its own module and payload


@pytest.fixture(scope="module")
def page():
    """A 1400x900 page whose every request to another host is refused and recorded in page.foreign."""
    require_browser()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.errors, page.foreign = [], []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(LOCAL) else page.foreign.append(r.url))

        def block(route):
            if route.request.url.startswith(LOCAL):
                route.continue_()
            else:
                page.foreign.append(route.request.url)
                route.abort()

        page.route("**/*", block)
        yield page


@pytest.fixture(scope="module")
def mnist():
    """The shipped 2-D MNIST model, its stored test codes, and the direction from the 1s' mean code to the 7s'."""
    if not SHIPPED_MNIST.exists():
        pytest.skip(f"{SHIPPED_MNIST.name} is not in checkpoints/")
    ckpt = ckpt_io.load(SHIPPED_MNIST)
    stored = stored_codes_from_extras(ckpt.extras)
    ones, sevens = stored.mu[stored.labels == 1].mean(0), stored.mu[stored.labels == 7].mean(0)
    direction = PadDirection("1 \u2192 7", (sevens - ones).astype(np.float32))
    codes = PadCodes(stored.mu[:1500], stored.labels[:1500], None)
    return ckpt.model.eval(), codes, direction, ones


def _payload(model: VAE, direction: PadDirection | None, key: str = "m:1", codes: PadCodes | None = None,
             point=None, base=None, dims=(0, 1)) -> bytes:
    classes = [(str(k), class_color(k)) for k in range(10)]
    return pad_payload(model, decoder_program(model), model_key=key, dims=dims, base=base,
                       point=[0.0] * len(dims) if point is None else [float(v) for v in point], limit=4.0,
                       classes=classes, codes=codes, dtype="float32", direction=direction)


def _model(latent_dim: int, seed: int = 0) -> VAE:
    return VAE(ModelConfig(arch="mlp", latent_dim=latent_dim, hidden=(64, 32)), torch.Generator().manual_seed(seed)).eval()


def _pad(page) -> dict:
    return page.evaluate(f"""() => {{ const p = {PAD}; return {{alpha: p.alpha, point: p.point,
        code: Array.from(p.code()), walked: Array.from(p.walkCode()), arrow: p.arrow,
        distinct: p.stats.distinct, draws: p.stats.draws, caption: p.el.caption.textContent,
        direction: p.root.dataset.direction ?? null, dataAlpha: p.root.dataset.alpha ?? null,
        rows: document.querySelectorAll('.lp-alpha').length}}; }}""")


def _thumb_at(page, alpha: float) -> tuple[float, float]:
    """Where on the page the alpha slider's thumb sits at alpha (Chromium's thumb: 16 CSS px wide)."""
    box = page.locator("input.lp-alpha-range").bounding_box()
    low, high = (float(v) for v in page.evaluate(f"() => [{PAD}.direction.min, {PAD}.direction.max]"))
    return box["x"] + 8 + (alpha - low) / (high - low) * (box["width"] - 16), box["y"] + box["height"] / 2


def test_dragging_alpha_decodes_in_the_page_on_every_move_and_asks_no_other_host(page, mnist):
    model, codes, direction, ones = mnist
    harness.mount(page, _payload(model, direction, codes=codes, point=ones))
    before = _pad(page)
    assert before["alpha"] == 0 and before["direction"] == "1 \u2192 7" and before["rows"] == 1
    page.mouse.move(*_thumb_at(page, 0.0))
    page.mouse.down()
    seen, t0, moves = set(), time.perf_counter(), 0
    while (t := time.perf_counter() - t0) < 2.0:
        page.mouse.move(*_thumb_at(page, 1.9 * np.sin(2 * np.pi * t / 1.3)))
        moves += 1
        if moves % 4 == 0:
            seen.add(page.evaluate(f"() => {PAD}.root.dataset.alpha"))
    page.mouse.up()
    after = _pad(page)
    drawn = after["distinct"] - before["distinct"]
    print(f"\n{drawn} distinct pictures, {after['draws'] - before['draws']} draws over {moves} moves in 2 s")
    assert drawn >= 30, f"{drawn} distinct pictures in a 2 s alpha drag"
    assert len(seen) >= 10 and after["dataAlpha"] == str(after["alpha"]), (len(seen), after)  # data-alpha follows
    assert after["point"] == pytest.approx(ones.tolist(), abs=1e-6)  # the plane's point stays where it was
    assert not page.foreign, f"the page asked for {page.foreign[:5]}"
    assert not page.errors, page.errors


def test_the_picture_at_alpha_is_torchs_decode_of_code_plus_alpha_v(page, mnist):
    model, codes, direction, ones = mnist
    harness.mount(page, _payload(model, direction, codes=codes, point=ones))
    page.evaluate(f"() => {PAD}.setAlpha(0.75)")
    state = _pad(page)
    assert state["alpha"] == 0.75 and state["dataAlpha"] == "0.75"
    assert state["caption"].startswith("decode(z + \u03b1\u00b7v) at \u03b1 = 0.75")
    assert page.locator(".lp-alpha output").inner_text() == "0.75"
    walked = (np.asarray(state["code"], np.float32) + np.float32(0.75) * direction.vector).astype(np.float32)
    np.testing.assert_allclose(state["walked"], walked, atol=1e-6)
    want = decode_codes(model, walked[None])  # (1, 28, 28)
    got = np.asarray(page.evaluate(f"(z) => {PAD}.decodeAt(z)", walked.tolist()), np.float32)
    assert np.abs(got - want.reshape(-1)).mean() < MEAN_ABS_TOLERANCE
    picture = page.evaluate(f"() => Array.from({PAD}.el.picture.getContext('2d').getImageData(0, 0, 28, 28).data)")
    assert np.abs(np.asarray(picture[::4], np.int16).reshape(28, 28) - to_uint8(want[0])).max() <= 1
    page.evaluate(f"() => {PAD}.setAlpha(9)")  # clamped to the slider's range
    assert _pad(page)["alpha"] == 2.0
    assert not page.errors, page.errors


def test_the_arrow_runs_from_the_point_to_point_plus_v_and_the_ring_to_alpha_v(page, mnist):
    model, codes, direction, ones = mnist
    harness.mount(page, _payload(model, direction, codes=codes, point=ones))
    page.evaluate(f"() => {PAD}.setAlpha(0.5)")
    arrow = _pad(page)["arrow"]
    start = page.evaluate(f"(z) => {PAD}.toPixels(z[0], z[1])", ones.tolist())
    head = page.evaluate(f"(z) => {PAD}.toPixels(z[0], z[1])", (ones + direction.vector).tolist())
    ring = page.evaluate(f"(z) => {PAD}.toPixels(z[0], z[1])", (ones + 0.5 * direction.vector).tolist())
    assert arrow["from"] == pytest.approx(start, abs=1e-3) and arrow["to"] == pytest.approx(head, abs=1e-3)
    assert arrow["walked"] == pytest.approx(ring, abs=1e-3)
    dark = page.evaluate("""([x, y]) => {  // the arrow's dark slate, on the marks layer near its head
        const c = document.querySelector('.lp-marks'), s = c.width / c.clientWidth;
        const d = c.getContext('2d').getImageData(Math.round((x - 6) * s), Math.round((y - 6) * s),
                                                 Math.round(12 * s), Math.round(12 * s)).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) n += d[i] === 0x1E && d[i + 1] === 0x2A && d[i + 2] === 0x33;
        return n; }""", head)
    assert dark >= 10, dark
    box = page.locator(".lp-left").bounding_box()
    page.screenshot(path=str(SHOT), clip={"x": 0, "y": 0, "width": 1400, "height": min(900, box["y"] + box["height"] + 20)})
    assert not page.errors, page.errors


def test_alpha_walks_back_to_zero_for_a_new_model_or_vector_and_the_slider_goes_without_a_direction(page):
    model, other = _model(3), _model(3, seed=1)
    base = np.array([0.0, 0.0, 1.5], np.float32)
    v = np.array([1.0, -0.5, 0.8], np.float32)
    first = _payload(model, PadDirection("a", v), base=base)
    harness.mount(page, first)
    page.evaluate(f"() => {PAD}.setAlpha(1.2)")
    state = _pad(page)
    np.testing.assert_allclose(state["walked"], base + np.float32(1.2) * v, atol=1e-6)  # off the plane too
    harness.send(page, first)  # the same payload again: nothing changes
    assert _pad(page)["alpha"] == 1.2
    harness.send(page, _payload(model, PadDirection("a", v, -1.0, 1.0), base=base, point=[0.5, 0.5]))
    assert _pad(page)["alpha"] == 1.0  # the same vector keeps alpha, within its new range
    harness.send(page, _payload(model, PadDirection("b", 2 * v), base=base))
    assert _pad(page)["alpha"] == 0 and _pad(page)["direction"] == "b"
    page.evaluate(f"() => {PAD}.setAlpha(-0.4)")
    harness.send(page, _payload(other, PadDirection("b", 2 * v), key="m:2", base=base))
    assert _pad(page)["alpha"] == 0
    page.evaluate(f"() => {PAD}.setAlpha(0.3)")
    harness.send(page, _payload(other, None, key="m:2", base=base))
    gone = _pad(page)
    assert gone["rows"] == 0 and gone["arrow"] is None and gone["direction"] is None and gone["dataAlpha"] is None
    assert gone["alpha"] == 0 and gone["walked"] == gone["code"] and gone["caption"].startswith("decode(z) at z = (")
    assert not page.errors, page.errors


def test_a_one_dimensional_pad_draws_the_arrow_along_its_strip_and_sends_alpha_on_release(page):
    model = _model(1)
    harness.mount(page, _payload(model, PadDirection("up", np.array([1.5], np.float32)), dims=(0,), point=[-1.0]))
    page.locator("input.lp-alpha-range").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    state = _pad(page)
    assert state["alpha"] == pytest.approx(0.03) and state["walked"] == pytest.approx([-1.0 + 0.03 * 1.5], abs=1e-6)
    assert state["arrow"]["from"][1] == state["arrow"]["to"][1]  # along the strip
    expected = page.evaluate(f"() => {PAD}.toPixels(0.5, 0)")
    assert state["arrow"]["to"] == pytest.approx(expected, abs=1e-3)
    page.wait_for_timeout(600)  # the keys rest: the point and alpha go back once
    assert harness.states(page)[-1][1]["alpha"] == pytest.approx(0.03)
    assert not page.errors, page.errors
