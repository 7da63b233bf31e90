"""The encoder's side of the latent pad in the app, on a server that encodes (VAE_BROWSER_ENCODE=0, as for an
encoder the page cannot run): the page says so in one sentence, a stroke's input reaches the server when the
pen lifts, and the posterior the server sends back is torch's for that input, drawn on the plane with its
samples. With no dataset on the machine (serve_app has no MNIST; the shipped shapes model's stored codes
serve). The pad's own encoder in the app is tested with a training job in tests/e2e/test_latent_pad.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.harness import serve_app
from tests.e2e.conftest import DEFAULT_SHAPES, assert_clean, require_browser, screenshot, wait_until
from tests.e2e.test_encoder_panel import SEVEN, _stroke
from tests.e2e.test_teacher_loop import go
from vae import checkpoint as ckpt_io

pytestmark = pytest.mark.e2e

PAD = "document.querySelector('.lp-root').latentPad"


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    require_browser()
    with serve_app(tmp_path_factory.mktemp("e2e-encode"), env={"VAE_BROWSER_ENCODE": "0"}) as server:
        yield server


@pytest.mark.timeout(180)
def test_a_server_that_encodes_answers_each_lifted_stroke_with_torchs_posterior(page, app_server, console_errors):
    go(page, "sliders", "Latent sliders")
    wait_until(lambda: page.evaluate(f"() => !!({PAD} && {PAD}.header)"), 30, "the pad never received its model",
               page=page)
    note = page.locator(".lp-input-note").inner_text()
    assert note.startswith("This model's encoder runs on the server") and note.count(".") == 1, note
    page.locator(".latent-draw").scroll_into_view_if_needed()
    _stroke(page, SEVEN)
    got = wait_until(lambda: page.evaluate(f"""() => {{ const p = {PAD}, q = p.post.q;
        return q ? {{mu: Array.from(q.mu), logvar: Array.from(q.logvar), x: Array.from(p.input.pixels()),
                     dataMu: p.el.pad.dataset.mu}} : null; }}"""), 30,
                     "the server's posterior never reached the pad", page=page)
    model = ckpt_io.load(DEFAULT_SHAPES).model.eval()
    x = torch.tensor(got["x"], dtype=torch.float32).reshape(1, *model.config.image_shape)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    np.testing.assert_allclose(got["mu"], mu[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["logvar"], logvar[0].numpy(), atol=1e-5)
    assert page.evaluate(f"() => {PAD}.post.z.length") == 16 * model.config.latent_dim
    # A second stroke: a new input, a new answer.
    _stroke(page, [(0.2, 0.5), (0.8, 0.5)])
    wait_until(lambda: page.evaluate(f"() => {PAD}.el.pad.dataset.mu") != got["dataMu"], 30,
               "the second stroke's posterior never came", page=page)
    screenshot(page, "pad-server-encoder")
    assert_clean(page, "/sliders (server encoder)", app_server, console_errors)
