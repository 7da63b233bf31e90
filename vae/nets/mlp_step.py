"""A faster training step for one model: the MLP VAE (arch "mlp", Bernoulli likelihood) on the CPU.

The loss is vae/nets/loss.py's: its sums and its gradient with respect to the network's three outputs (logits,
mu, logvar) come from `bernoulli_sums_and_gradients`, in closed form beside `elbo_terms`. What is
written out here is the backward pass through the network itself: a matmul per weight, a column sum
per bias and one mask per ReLU, instead of autograd recording and replaying every Linear and ReLU. The reparameterization's part,
z = mu + sigma * eps (Kingma & Welling 2013, sec. 2.4), joins the two: dL/dmu += dL/dz and
dL/dlogvar += dL/dz * eps * sigma / 2. Public torch APIs only; tests/test_checkpoint.py checks
every gradient against autograd's.
"""
from __future__ import annotations

import torch
from torch import nn

from vae.nets.loss import bernoulli_sums_and_gradients
from vae.nets.model import VAE


def _leaf_types(module: nn.Module) -> list[type]:
    return [type(m) for m in module.modules() if not list(m.children())]


class MLPStep:
    """Loss sums and gradients of one training step of an MLP VAE; see the module's docstring."""

    def __init__(self, model: VAE):
        self.model = model
        self.encoder = [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]  # each followed by a ReLU
        self.decoder = [m for m in model.decoder.modules() if isinstance(m, nn.Linear)]  # ReLU between, none after

    @staticmethod
    def applies(model: VAE, device: torch.device) -> bool:
        """True for exactly the layers VAE builds for arch "mlp" with a Bernoulli likelihood, on the CPU, so
        that any other model (or a changed one) trains through autograd instead of wrong gradients."""
        cfg = model.config
        if cfg.arch != "mlp" or cfg.likelihood != "bernoulli" or device.type != "cpu":
            return False
        n = len(cfg.hidden)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        expected = {id(p) for m in linears if m.bias is not None for p in (m.weight, m.bias)}
        return (
            _leaf_types(model.encoder) == [nn.Flatten] + [nn.Linear, nn.ReLU] * n
            and _leaf_types(model.decoder) == [nn.Linear, nn.ReLU] * n + [nn.Linear, nn.Unflatten]
            and type(model.to_mu) is nn.Linear and type(model.to_logvar) is nn.Linear
            and {id(p) for p in model.parameters()} == expected and len(expected) == 2 * len(linears)
            and all(p.requires_grad for p in model.parameters())
        )

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, beta: float, recon_weight: float, generator: torch.Generator | None):
        """x: (B, C, H, W) -> ((recon, kl, total) batch sums as floats, [(parameter, d mean total / d parameter)])."""
        model, n = self.model, x.shape[0]
        enc_in, h = [], x.reshape(n, -1)  # each Linear's input, kept for its weight's gradient
        for lin in self.encoder:
            enc_in.append(h)
            h = torch.addmm(lin.bias, h, lin.weight.t()).relu_()
        mu = torch.addmm(model.to_mu.bias, h, model.to_mu.weight.t())  # (B, D)
        logvar = torch.addmm(model.to_logvar.bias, h, model.to_logvar.weight.t())
        std = logvar.mul(0.5).exp_()
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
        a = torch.addcmul(mu, std, eps)  # z
        dec_in = []
        for k, lin in enumerate(self.decoder):
            dec_in.append(a)
            a = torch.addmm(lin.bias, a, lin.weight.t())
            if k < len(self.decoder) - 1:
                a.relu_()
        sums, d_logits, d_mu, d_logvar = bernoulli_sums_and_gradients(a, x, mu, logvar, beta, recon_weight)
        return sums, self._backward(d_logits, d_mu, d_logvar, eps, std, h, enc_in, dec_in)

    def _backward(self, d, d_mu, d_logvar, eps, std, h, enc_in, dec_in) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """The network's gradients from those of the loss with respect to its outputs."""
        model, grads = self.model, []
        for k in range(len(self.decoder) - 1, -1, -1):
            lin, inp = self.decoder[k], dec_in[k]
            grads += [(lin.weight, d.t().mm(inp)), (lin.bias, d.sum(0))]
            d = d.mm(lin.weight)
            if k > 0:
                d.mul_(torch.sign(inp))  # through the ReLU that made inp (>= 0): sign(inp) is its 0/1 mask
        d_mu = d_mu + d  # d is now dL/dz
        d_logvar = d_logvar + d * eps * std * 0.5
        grads += [(model.to_mu.weight, d_mu.t().mm(h)), (model.to_mu.bias, d_mu.sum(0)),
                  (model.to_logvar.weight, d_logvar.t().mm(h)), (model.to_logvar.bias, d_logvar.sum(0))]
        d = d_mu.mm(model.to_mu.weight).addmm_(d_logvar, model.to_logvar.weight).mul_(torch.sign(h))
        for k in range(len(self.encoder) - 1, -1, -1):
            lin, inp = self.encoder[k], enc_in[k]
            grads += [(lin.weight, d.t().mm(inp)), (lin.bias, d.sum(0))]
            if k > 0:
                d = d.mm(lin.weight).mul_(torch.sign(inp))
        return grads
