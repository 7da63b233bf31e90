"""The encoder in the page (vae/browser/programs.js's compileEncoder over vae/browser/programs.py's
encoder_program) gives the model's own posterior, mu and log sigma^2, as torch's VAE.encode does, for the
MLP and the conv net at every image shape the app trains (grey and colour, square or not), with the weights
sent as float32 and as float16."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from tests.e2e import pad_harness as harness
from vae.browser.programs import encoder_program, weights_blob
from vae.config import ModelConfig
from vae.nets.model import VAE

pytestmark = pytest.mark.e2e

MAX_MEAN_ERROR = 1e-4  # mean |JS - torch| over mu and logvar
SHAPES = [(1, 28, 28), (1, 20, 28), (3, 32, 32), (3, 64, 64)]

_ENCODE_JS = """([model, b64, inputs]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const encode = window.__pad.compileEncoder(model, window.__pad.weightsOf(model, bytes));
    return inputs.map((x) => { const q = encode(Float32Array.from(x)); return [...q.mu, ...q.logvar]; });
}"""


@pytest.fixture(scope="module")
def page():
    with harness.module_page() as page:
        yield page


def _inputs(shape, n: int = 4) -> torch.Tensor:
    """n inputs in [0, 1] as drawn ones look: mostly exact zeros, a few soft strokes."""
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(n, *shape, generator=g)
    return torch.where(torch.rand(n, *shape, generator=g) < 0.7, torch.zeros(()), x)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_the_page_encodes_as_torch_does(page, arch, shape, dtype):
    hidden = (128,) if arch == "mlp" else (64,)  # the default MLP is past the browser's budget at 64x64 colour
    model = VAE(ModelConfig(arch=arch, latent_dim=3, hidden=hidden, image_shape=shape),
                torch.Generator().manual_seed(1)).eval()
    program = encoder_program(model)
    blob, offsets = weights_blob(program, dtype)
    if dtype == "float16":  # torch on the same rounded weights: the JS's arithmetic alone is compared
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    x = _inputs(shape)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    want = torch.cat([mu, logvar], dim=1).numpy()
    spec = {"shape": list(shape), "latentDim": 3, "dtype": dtype, "ops": program.ops, "offsets": offsets}
    got = np.asarray(page.evaluate(_ENCODE_JS, [spec, base64.b64encode(blob).decode(),
                                                x.reshape(len(x), -1).double().tolist()]), np.float32)
    assert got.shape == want.shape
    error = float(np.abs(got - want).mean())
    assert error < MAX_MEAN_ERROR, f"{arch} {shape} {dtype}: mean |JS - torch| = {error:.2e}"
    assert not page.errors, page.errors


_POSTERIOR_JS = """([mu, logvar, k, seed]) => {
    const pad = window.__pad;
    const {z, eps} = pad.samplePosterior(Float32Array.from(mu), Float32Array.from(logvar), k, pad.normalSource(seed));
    return {z: Array.from(z), eps: Array.from(eps), kl: pad.klToPrior(Float32Array.from(mu), Float32Array.from(logvar))};
}"""


def test_the_pages_samples_and_kl_are_the_posteriors(page):
    """2,000 samples z = mu + sigma * eps drawn in the page have each dimension's mean and standard deviation
    within 5% of mu and sigma; the page's KL to the prior is torch's closed form within 1e-3 nats."""
    from vae.nets.loss import kl_divergence

    mu, logvar = np.array([1.5, -0.7, 0.05, 2.4], np.float32), np.array([-1.2, 0.3, -3.0, -0.1], np.float32)
    got = page.evaluate(_POSTERIOR_JS, [mu.tolist(), logvar.tolist(), 2000, 7])
    z = np.asarray(got["z"], np.float64).reshape(2000, 4)
    sigma = np.exp(0.5 * logvar)
    assert np.all(np.abs(z.mean(0) - mu) <= 0.05 * np.maximum(np.abs(mu), sigma)), (z.mean(0), mu)
    assert np.all(np.abs(z.std(0) - sigma) <= 0.05 * sigma), (z.std(0), sigma)
    eps = np.asarray(got["eps"], np.float64).reshape(2000, 4)
    np.testing.assert_allclose(z, mu + sigma * eps, atol=1e-5)  # z is the reparameterization of its eps
    want = float(kl_divergence(torch.from_numpy(mu)[None], torch.from_numpy(logvar)[None]))
    assert abs(got["kl"] - want) < 1e-3, (got["kl"], want)
    again = page.evaluate(_POSTERIOR_JS, [mu.tolist(), logvar.tolist(), 3, 7])
    assert again["eps"] == got["eps"][:12]  # one seed, one eps: a Resample is a new seed
    assert not page.errors, page.errors
