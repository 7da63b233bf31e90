"""Model shapes, the closed-form KL, reparameterization gradients and the IWAE estimate."""
import math

import pytest
import torch

from vae.config import ConfigError, ModelConfig
from vae.nets.loss import elbo_terms, iw_log_likelihood, kl_divergence, kl_per_dim, reconstruction_nll
from vae.nets.model import VAE

CONFIGS = [
    ModelConfig(arch="mlp", latent_dim=2, hidden=(64, 32)),
    ModelConfig(arch="mlp", latent_dim=20, hidden=(400,)),
    ModelConfig(arch="conv", latent_dim=2, hidden=(64,)),
    ModelConfig(arch="conv", latent_dim=8, hidden=(32,), likelihood="gaussian"),
]


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def _images(b=5):
    return torch.rand(b, 1, 28, 28)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.arch}-{c.latent_dim}-{c.likelihood}")
def test_public_function_shapes(cfg):
    model = VAE(cfg)
    x = _images(5)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, cfg.latent_dim)
    z = model.reparameterize(mu, logvar)
    assert z.shape == (5, cfg.latent_dim)
    img = model.decode(z)
    assert img.shape == (5, 1, 28, 28)
    assert img.min() >= 0 and img.max() <= 1
    out = model(x)
    assert out.logits.shape == (5, 1, 28, 28)
    terms = elbo_terms(model, x, out, beta=0.5)
    for t in terms:
        assert t.shape == (5,)
    torch.testing.assert_close(terms.total, terms.recon + 0.5 * terms.kl)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.arch}-{c.latent_dim}")
def test_gradients_reach_encoder_through_reparameterize(cfg):
    model = VAE(cfg)
    x = _images(4)
    out = model(x)
    # Only the reconstruction term: its gradient reaches the encoder only through z = mu + sigma * eps.
    reconstruction_nll(out.logits, x, cfg.likelihood, getattr(model, "log_sigma", None)).sum().backward()
    for name in ("to_mu", "to_logvar"):
        grad = getattr(model, name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    first_encoder_param = next(model.encoder.parameters())
    assert first_encoder_param.grad.abs().sum() > 0


def test_linear_layers_use_xavier_init():
    model = VAE(ModelConfig(hidden=(400,), latent_dim=20))
    w = model.encoder[1][0].weight  # Linear(784, 400)
    bound = math.sqrt(6 / (784 + 400))
    assert w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert torch.count_nonzero(model.encoder[1][0].bias) == 0


def test_kl_is_zero_at_standard_normal():
    mu = torch.zeros(3, 7)
    logvar = torch.zeros(3, 7)
    assert torch.equal(kl_divergence(mu, logvar), torch.zeros(3))


def test_kl_closed_form_matches_known_value():
    # KL(N(1, e^1) || N(0,1)) = 0.5 * (1 + e - 1 - 1) per dimension
    mu, logvar = torch.ones(1, 1), torch.ones(1, 1)
    torch.testing.assert_close(kl_per_dim(mu, logvar), torch.tensor([[0.5 * (math.e - 1)]]))


def test_kl_closed_form_agrees_with_monte_carlo():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    n = 400_000
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((n,))  # (n, 4, 3)
    p = torch.distributions.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)  # (4,)
    # Monte Carlo standard error at n = 4e5 is ~3e-3 nats here; 0.02 is a > 5-sigma tolerance.
    torch.testing.assert_close(mc, kl_divergence(mu, logvar), atol=0.02, rtol=0)


def test_bernoulli_nll_matches_binary_cross_entropy_definition():
    logits = torch.randn(2, 1, 28, 28)
    x = torch.rand(2, 1, 28, 28)
    p = torch.sigmoid(logits)
    manual = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll(logits, x), manual, rtol=1e-4, atol=1e-3)


def test_gaussian_nll_matches_torch_distribution():
    logits = torch.randn(2, 1, 28, 28)
    x = torch.rand(2, 1, 28, 28)
    log_sigma = torch.tensor(-1.3)
    ref = -torch.distributions.Normal(torch.sigmoid(logits), log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nll(logits, x, "gaussian", log_sigma), ref, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: f"{c.arch}-{c.latent_dim}")
def test_importance_weighted_estimate_bounds_elbo_and_grows_with_k(cfg):
    model = VAE(cfg).eval()
    x = (torch.rand(16, 1, 28, 28) > 0.5).float()
    g = torch.Generator().manual_seed(0)
    estimates = {k: iw_log_likelihood(model, x, k, g).mean().item() for k in (1, 10, 100)}
    with torch.no_grad():
        elbo = -elbo_terms(model, x, model(x)).total.mean().item()
    # k = 1 is itself an unbiased ELBO estimate: equal in expectation, Monte Carlo noise aside.
    assert estimates[1] == pytest.approx(elbo, abs=0.05 * abs(elbo))
    assert estimates[10] >= elbo
    assert estimates[100] >= estimates[10] >= estimates[1]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"arch": "rnn"}, "Architecture"),
        ({"latent_dim": 0}, "Latent dim"),
        ({"latent_dim": 65}, "Latent dim"),
        ({"hidden": (512, 0)}, "Hidden sizes"),
        ({"hidden": (8,) * 7}, "at most 6"),
        ({"likelihood": "poisson"}, "Likelihood"),
    ],
)
def test_bad_model_settings_raise_readable_error(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("latent, hidden", [(1, (512, 256, 256)), (2, (512, 256, 256)), (3, (512, 256)), (20, (512, 256))])
def test_auto_hidden_sizes_depend_on_latent_dim(latent, hidden):
    assert ModelConfig(latent_dim=latent).hidden == hidden
    assert ModelConfig(latent_dim=latent, hidden="auto").hidden == hidden
    assert ModelConfig(latent_dim=latent, hidden="64, 32").hidden == (64, 32)
