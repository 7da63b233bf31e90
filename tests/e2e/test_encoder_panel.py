"""The encoder's side of the latent pad in a real Chromium page (tests/e2e/pad_harness.py, no Streamlit): a
test image clicked into the input panel gets the code stored for it; a drawn stroke's KL and reconstruction
term are torch's; the posterior's samples and the prior's grid resample; a new model version moves the
posterior of the same input; files dropped, Undo and Clear; 1-D, 3-D and colour models."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from tests.e2e import pad_harness as harness
from tests.e2e.conftest import chromium, require_browser
from vae.browser.pad import PadCodes, pad_payload, unpack
from vae.browser.programs import decoder_program, encoder_program
from vae.config import ModelConfig
from vae.nets.loss import kl_divergence, reconstruction_nll
from vae.nets.model import VAE
from vae.render.images import to_uint8

pytestmark = pytest.mark.e2e

CLASSES = [(name, colour) for name, colour in zip("abc", ["#0072B2", "#E69F00", "#009E73"])]
PAD = harness.PAD


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    assert not page.errors
    page.close()


def _model(arch: str = "mlp", latent_dim: int = 2, seed: int = 0, **kw) -> VAE:
    hidden = (48,) if arch == "conv" else (64, 32)
    return VAE(ModelConfig(arch=arch, latent_dim=latent_dim, hidden=hidden, **kw), torch.Generator().manual_seed(seed)).eval()


def _payload(model: VAE, key: str = "m:1", codes: PadCodes | None = None, **kw) -> bytes:
    dims = (0, 1)[:model.config.latent_dim]
    return pad_payload(model, decoder_program(model), model_key=key, dims=dims, base=None, point=[0.0] * len(dims),
                       limit=4.0, classes=CLASSES, codes=codes, encoder=encoder_program(model), **kw)


def _rounded(model: VAE) -> VAE:
    """The model with the networks' weights rounded to float16 and back: torch's numbers for what the page runs
    (a per-pixel log sigma goes as float32)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "log_sigma":
                p.copy_(p.half().float())
    return model


def _stroke(page, points, steps: int = 12) -> None:
    """A pen stroke on the input panel through `points` (fractions of its width and height)."""
    box = page.locator(".latent-draw").bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(at[:-1], at[1:]):
        for t in np.linspace(0, 1, steps)[1:]:
            page.mouse.move(ax + t * (bx - ax), ay + t * (by - ay))
    page.mouse.up()


SEVEN = [(0.3, 0.25), (0.7, 0.25), (0.45, 0.8)]


def _posterior(page) -> dict:
    return page.evaluate(f"""() => {{ const p = {PAD}, q = p.post.q, el = document.querySelector('.latent-pad');
        return {{mu: q && Array.from(q.mu), logvar: q && Array.from(q.logvar), x: q && Array.from(q.x),
                 z: q && Array.from(p.post.z), dataMu: el.dataset.mu, dataSigma: el.dataset.sigma,
                 filled: p.input.filled, versions: p.versions}}; }}""")


def _flush(page) -> None:
    page.evaluate(f"() => {{ {PAD}.post.strip.flush(); {PAD}.post.grid.flush(); {PAD}.post.showNumbers(); }}")


def test_a_test_image_clicked_into_the_panel_gets_the_code_stored_for_it(page):
    model = VAE(ModelConfig(arch="conv", latent_dim=2, hidden=(48,)), torch.Generator().manual_seed(3)).eval()
    rng = np.random.default_rng(0)
    images = to_uint8((rng.random((60, 1, 28, 28)) > 0.75) * rng.random((60, 1, 28, 28)))
    with torch.no_grad():
        stored, _ = model.encode(torch.from_numpy(images.astype(np.float32) / 255))
    stored = stored.numpy() * 8  # spread the dots over the plane so that one can be clicked alone
    model.to_mu.weight.data *= 8
    model.to_mu.bias.data *= 8
    payload = _payload(model, codes=PadCodes(stored, rng.integers(0, 3, 60), images))
    harness.mount(page, payload)
    # A dot with no other within 12 px, and its place on the screen.
    k, x, y = page.evaluate(f"""() => {{ const p = {PAD}, d = p.dots, r = p.el.pad.getBoundingClientRect();
        for (let k = 0; k < d.length / 2; k++) {{
            if (Number.isNaN(d[2 * k])) continue;
            let alone = true;
            for (let j = 0; j < d.length / 2; j++) if (j !== k && Math.hypot(d[2 * j] - d[2 * k], d[2 * j + 1] - d[2 * k + 1]) < 12) alone = false;
            if (alone) return [k, r.left + d[2 * k], r.top + d[2 * k + 1]];
        }} return [-1, 0, 0]; }}""")
    assert k >= 0
    page.mouse.click(x, y)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    got = _posterior(page)
    np.testing.assert_array_equal(np.round(np.asarray(got["x"]) * 255).astype(np.uint8), images[k].ravel())
    error = unpack(payload)[0]["encoder"]["float16Error"] * 8
    assert np.abs(np.asarray(got["mu"]) - stored[k]).mean() <= 4 * error + 1e-5, (got["mu"], stored[k], error)
    assert np.asarray(eval(got["dataMu"])) == pytest.approx(np.asarray(got["mu"]))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian-pixel"])
def test_a_drawn_stroke_shows_torchs_kl_and_reconstruction_term(page, likelihood):
    model = _model("mlp", latent_dim=5, likelihood=likelihood)
    harness.mount(page, _payload(model))
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    _flush(page)
    got = _posterior(page)
    shown = page.evaluate("() => { const n = document.querySelector('.lp-numbers'); return ["
                          "Number(n.querySelector('[data-kl]').dataset.kl), Number(n.querySelector('[data-recon]').dataset.recon)]; }")
    x = torch.tensor(got["x"], dtype=torch.float32).reshape(1, 1, 28, 28)
    assert x.max() > 0.9 and (x > 0).float().mean() > 0.03  # the stroke drew
    reference = _rounded(model)
    with torch.no_grad():
        mu, logvar = reference.encode(x)
        kl = float(kl_divergence(mu, logvar))
        z = torch.tensor(got["z"], dtype=torch.float32).reshape(-1, 5)
        nll = reconstruction_nll(reference.decode_logits(z), x.expand(len(z), -1, -1, -1), likelihood,
                                 getattr(reference, "log_sigma", None))
    assert shown[0] == pytest.approx(kl, abs=1e-3)
    assert shown[1] == pytest.approx(float(nll.mean()), rel=1e-4, abs=1e-2)
    # z = mu + sigma * eps for the page's own eps.
    eps = np.asarray(page.evaluate(f"() => Array.from({PAD}.post.eps)")).reshape(-1, 5)
    sigma = np.exp(0.5 * np.asarray(got["logvar"]))
    np.testing.assert_allclose(np.asarray(got["z"]).reshape(-1, 5), np.asarray(got["mu"]) + sigma * eps, rtol=1e-5, atol=1e-5)


def test_resampling_moves_every_sample_and_every_prior_picture_but_not_the_posterior(page):
    harness.mount(page, _payload(_model("conv", latent_dim=3)))
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    _flush(page)
    before = _posterior(page)
    sums = page.evaluate(f"() => [Array.from({PAD}.post.strip.sums), Array.from({PAD}.post.grid.sums)]")
    page.get_by_role("button", name="Resample ε").click()
    page.locator(".lp-prior button").click()
    _flush(page)
    after = _posterior(page)
    again = page.evaluate(f"() => [Array.from({PAD}.post.strip.sums), Array.from({PAD}.post.grid.sums)]")
    assert after["mu"] == before["mu"] and after["dataMu"] == before["dataMu"]
    z0, z1 = np.asarray(before["z"]).reshape(16, 3), np.asarray(after["z"]).reshape(16, 3)
    assert (np.abs(z0 - z1).max(axis=1) > 0).all()
    assert all(a != b for a, b in zip(sums[0], again[0])), "a sample's picture did not change"
    assert all(a != b for a, b in zip(sums[1], again[1])), "a prior sample's picture did not change"


def test_the_priors_draws_are_standard_normal(page):
    harness.mount(page, _payload(_model("mlp", latent_dim=4)))
    z = np.asarray(page.evaluate("() => Array.from(window.__pad.priorCodes(10000, 4, window.__pad.normalSource(12345)))"))
    z = z.reshape(10000, 4)
    assert np.abs(z.mean(axis=0)).max() < 0.03, z.mean(axis=0)
    assert np.abs(z.std(axis=0) / 1.0 - 1).max() < 0.03, z.std(axis=0)
    # The grid draws its codes with the same two functions.
    grid = np.asarray(page.evaluate(f"() => Array.from({PAD}.post.priorZ)")).reshape(64, 4)
    seed = page.evaluate(f"() => {PAD}.post.priorSeed")
    again = np.asarray(page.evaluate("(s) => Array.from(window.__pad.priorCodes(64, 4, window.__pad.normalSource(s)))", seed))
    np.testing.assert_array_equal(grid.ravel(), again)


def test_a_new_model_version_moves_the_posterior_of_the_same_drawn_input(page):
    harness.mount(page, _payload(_model("mlp", seed=0), key="job:1:1"))
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    first = _posterior(page)
    harness.send(page, _payload(_model("mlp", seed=1), key="job:1:2"))
    second = _posterior(page)
    assert second["versions"] == first["versions"] + 1 and second["filled"]
    assert second["x"] == first["x"], "the drawn input changed"
    assert second["dataMu"] != first["dataMu"]
    with torch.no_grad():
        mu, _ = _rounded(_model("mlp", seed=1)).encode(torch.tensor(first["x"]).reshape(1, 1, 28, 28))
    assert np.asarray(second["mu"]) == pytest.approx(mu[0].numpy(), abs=1e-4)


def test_undo_and_clear_take_the_input_and_its_posterior_back(page):
    harness.mount(page, _payload(_model()))
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    one = _posterior(page)
    _stroke(page, [(0.2, 0.6), (0.8, 0.6)])
    two = _posterior(page)
    assert two["x"] != one["x"] and two["dataMu"] != one["dataMu"]
    page.get_by_role("button", name="Undo").click()
    assert _posterior(page)["x"] == one["x"] and _posterior(page)["dataMu"] == one["dataMu"]
    page.get_by_role("button", name="Clear").click()
    cleared = _posterior(page)
    assert cleared["mu"] is None and cleared["dataMu"] is None and not cleared["filled"]
    assert not page.locator(".lp-samples").is_visible()
    page.get_by_role("button", name="Undo").click()
    assert _posterior(page)["x"] == one["x"]


def _drop(page, data: bytes, name: str, kind: str) -> None:
    page.evaluate("""([b64, name, kind]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const t = new DataTransfer();
        t.items.add(new File([bytes], name, {type: kind}));
        document.querySelector('.lp-input').dispatchEvent(new DragEvent('drop', {dataTransfer: t, bubbles: true, cancelable: true}));
    }""", [base64.b64encode(data).decode(), name, kind])


def test_a_dropped_image_is_centre_cropped_to_the_models_shape_and_encoded(page):
    harness.mount(page, _payload(_model("mlp", image_shape=(1, 20, 28))))
    # A wide picture: a white square in the middle, black bands left and right beyond the crop.
    picture = np.zeros((100, 300, 3), np.uint8)
    picture[:, :50] = 255  # cut away by the centre crop (100 x 140 of the 300 columns)
    picture[30:70, 130:170] = (255, 255, 255)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "PNG")
    _drop(page, buffer.getvalue(), "wide.png", "image/png")
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    x = np.asarray(_posterior(page)["x"]).reshape(20, 28)
    assert x[:, :3].max() < 0.05 and x[:, -3:].max() < 0.05, "the left band came in: not centre-cropped"
    assert x[8:12, 12:16].min() > 0.95  # the square, in the middle
    _drop(page, b"just text", "notes.txt", "text/plain")
    note = page.locator(".lp-input-note").inner_text()
    assert note.startswith("That file is not an image") and _posterior(page)["x"] is not None


def test_a_one_d_model_shows_an_interval_and_a_three_d_model_holds_its_other_dimension_at_mu(page):
    harness.mount(page, _payload(_model("mlp", latent_dim=1)))
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    got = _posterior(page)
    assert len(eval(got["dataMu"])) == 1 and len(eval(got["dataSigma"])) == 1
    harness.mount(page, _payload(_model("mlp", latent_dim=3)))
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    got = _posterior(page)
    code = page.evaluate(f"() => Array.from({PAD}.code())")
    assert code[2] == pytest.approx(got["mu"][2]) and len(eval(got["dataMu"])) == 2


def test_a_colour_model_draws_in_the_picked_colour(page):
    harness.mount(page, _payload(_model("conv", image_shape=(3, 32, 32))))
    assert page.locator(".lp-colour").is_visible()
    page.locator(".lp-colour").evaluate("(el) => { el.value = '#ff0000'; }")
    _stroke(page, SEVEN)
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    x = np.asarray(_posterior(page)["x"]).reshape(3, 32, 32)
    assert x[0].max() > 0.9 and x[1].max() < 0.1 and x[2].max() < 0.1


def test_a_pasted_image_is_encoded_and_animate_keeps_drawing_new_eps(page):
    harness.mount(page, _payload(_model()))
    picture = np.zeros((28, 28), np.uint8)
    picture[6:22, 12:16] = 255  # a 1
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "PNG")
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const t = new DataTransfer();
        t.items.add(new File([bytes], 'one.png', {type: 'image/png'}));
        document.body.dispatchEvent(new ClipboardEvent('paste', {clipboardData: t, bubbles: true, cancelable: true}));
    }""", base64.b64encode(buffer.getvalue()).decode())
    page.wait_for_function(f"() => {PAD}.post.q !== null")
    x = np.asarray(_posterior(page)["x"]).reshape(28, 28)
    np.testing.assert_array_equal(np.round(x * 255).astype(np.uint8), picture)  # same shape: pixel for pixel
    seen = set()
    page.locator(".lp-samples input[type=checkbox]").check()
    for _ in range(12):
        seen.add(tuple(_posterior(page)["z"][:2]))
        page.wait_for_timeout(250)
    page.locator(".lp-samples input[type=checkbox]").uncheck()
    assert len(seen) >= 3, "animate did not keep drawing new eps"
