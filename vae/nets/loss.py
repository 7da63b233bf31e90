"""Loss terms of the VAE, per image, in nats.

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))      (Kingma & Welling 2013, eq. 3 and 10)
We minimise  total = recon_weight * recon + beta * kl (`objective`), where recon = -E_q[log p(x|z)]
is estimated with one reparameterized sample and kl is in closed form (appendix B).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from vae.nets.model import VAE, VAEOutput

LOG_2PI = math.log(2 * math.pi)


class LossTerms(NamedTuple):
    recon: torch.Tensor  # (B,) reconstruction negative log-likelihood, nats
    kl: torch.Tensor  # (B,) KL(q(z|x) || N(0, I)), nats
    total: torch.Tensor  # (B,) recon_weight * recon + beta * kl


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B, D): KL(N(mu, sigma^2) || N(0, 1)) for each latent dimension, closed form.

    K&W 2013 appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B,): KL summed over latent dimensions."""
    return kl_per_dim(mu, logvar).sum(dim=1)


def reconstruction_nll(
    logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli", log_sigma: torch.Tensor | None = None
) -> torch.Tensor:
    """(B,): -log p(x|z) summed over pixels.

    bernoulli: binary cross-entropy from logits (continuous x in [0, 1] allowed, the
    convention of pytorch/examples); gaussian: N(x; sigmoid(logits), sigma^2) with one learned
    sigma (gaussian-pixel: one per pixel), including the normalising constant, so all are in nats
    (a density's, for the Gaussians: they may go below zero).
    """
    flat_logits, flat_x = logits.flatten(1), x.flatten(1)
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(flat_logits, flat_x, reduction="none").sum(dim=1)
    if likelihood in ("gaussian", "gaussian-pixel"):
        if log_sigma is None:
            raise ValueError("A Gaussian likelihood needs log_sigma.")
        mean, log_sigma = torch.sigmoid(flat_logits), log_sigma.reshape(-1)  # (1,) shared or (C*H*W,) per pixel
        sq = ((flat_x - mean) * torch.exp(-log_sigma)).pow(2)
        return (0.5 * sq + log_sigma + 0.5 * LOG_2PI).sum(dim=1)
    raise ValueError(f"Unknown likelihood {likelihood!r}.")


def objective(recon, kl, beta: float, recon_weight: float):
    """What training minimises, per image: recon_weight * recon + beta * kl (beta = recon_weight = 1: the
    negative ELBO). The one place beta and the reconstruction weight enter the loss."""
    return recon_weight * recon + beta * kl


def elbo_terms(
    model: VAE, x: torch.Tensor, out: VAEOutput, beta: float = 1.0, recon_weight: float = 1.0
) -> LossTerms:
    """The loss terms for a batch, given the model's forward output on it."""
    recon = reconstruction_nll(out.logits, x, model.config.likelihood, getattr(model, "log_sigma", None))
    kl = kl_divergence(out.mu, out.logvar)
    return LossTerms(recon, kl, objective(recon, kl, beta, recon_weight))


@torch.no_grad()
def bernoulli_sums_and_gradients(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                                 beta: float, recon_weight: float):
    """For a Bernoulli likelihood without autograd: the batch sums of (recon, kl, total), as elbo_terms
    gives them, and the gradient of the batch's mean total with respect to the network's outputs, in
    closed form: d/dlogits = recon_weight (sigmoid(logits) - x) / B, d/dmu = beta mu / B and
    d/dlogvar = beta (exp(logvar) - 1) / 2B. logits, x: (B, ...); mu, logvar: (B, D).

    The reconstruction sum is softplus(a) - x a with softplus(a) = relu(a) - log(sigmoid(|a|)) (the
    sigmoid of |a| lies in [0.5, 1], so its log is well conditioned): BCE-with-logits to float32
    rounding, in fewer passes than torch's CPU kernel."""
    n, a, target = x.shape[0], logits.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1)
    softplus = torch.sigmoid(a.abs()).log_().neg_().add_(a.clamp_min(0))
    recon = float(softplus.sum() - torch.dot(a.reshape(-1), target.reshape(-1)))
    kl = float(kl_divergence(mu, logvar).sum())
    d_logits = torch.sigmoid(a).sub_(target).mul_(recon_weight / n).view_as(logits)
    d_mu = mu * (beta / n)
    d_logvar = logvar.exp().sub_(1.0).mul_(0.5 * beta / n)
    return (recon, kl, float(objective(recon, kl, beta, recon_weight))), d_logits, d_mu, d_logvar


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


@torch.no_grad()
def iw_log_likelihood(
    model: VAE, x: torch.Tensor, k: int = 100, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B,): importance-weighted estimate of log p(x) with k samples from q(z|x).

    log p(x) >= log 1/k sum_i p(x, z_i) / q(z_i|x)  (Burda et al. 2015); k = 1 is the ELBO,
    and the bound tightens as k grows (K&W 2013 appendix D estimate of the marginal likelihood).
    """
    mu, logvar = model.encode(x)  # (B, D)
    log_w = []
    for _ in range(k):
        z = model.reparameterize(mu, logvar, generator)
        log_px_z = -reconstruction_nll(model.decode_logits(z), x, model.config.likelihood, getattr(model, "log_sigma", None))
        log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = _log_normal(z, mu, logvar)
        log_w.append(log_px_z + log_pz - log_qz)
    return torch.logsumexp(torch.stack(log_w), dim=0) - math.log(k)  # (B,)
