"""The VAE of Kingma & Welling (2013): a Gaussian encoder q(z|x), a prior N(0, I) and a
decoder p(x|z), with the reparameterization trick joining them."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vae.config import ConfigError, ModelConfig, conv_code_size, conv_levels


class VAEOutput(NamedTuple):
    logits: torch.Tensor  # (B, C, H, W) decoder pre-sigmoid outputs
    mu: torch.Tensor  # (B, D) posterior means
    logvar: torch.Tensor  # (B, D) posterior log-variances
    z: torch.Tensor  # (B, D) one reparameterized sample


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        c, h, w = config.image_shape
        n_pixels = c * h * w
        d = config.latent_dim
        if config.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), _mlp([n_pixels, *config.hidden]), nn.ReLU())
            self.decoder = nn.Sequential(_mlp([d, *reversed(config.hidden), n_pixels]), nn.Unflatten(1, (c, h, w)))
            enc_out = config.hidden[-1]
        else:  # conv: halve per level (28 -> 14 -> 7; 64 -> ... -> 4) and back, a hidden linear layer on each side
            width, levels = config.hidden[0], conv_levels(h, w)
            k, chans = len(levels), [c, *levels]
            code = (levels[-1], h >> k, w >> k)  # (channels, rows, columns) of the last feature map
            down: list[nn.Module] = []
            for a, b in zip(chans[:-1], chans[1:]):
                down += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU()]  # halves H and W
            up: list[nn.Module] = []
            for i, (a, b) in enumerate(reversed(list(zip(chans[:-1], chans[1:])))):
                up += [nn.ConvTranspose2d(b, a, 4, 2, 1)] + ([nn.ReLU()] if i < k - 1 else [])  # doubles H and W
            self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(conv_code_size(c, h, w), width), nn.ReLU())
            self.decoder = nn.Sequential(
                nn.Linear(d, width), nn.ReLU(),
                nn.Linear(width, conv_code_size(c, h, w)), nn.ReLU(), nn.Unflatten(1, code),
                *up,  # (B, C, H, W) logits
            )
            enc_out = width
        self.to_mu = nn.Linear(enc_out, d)
        self.to_logvar = nn.Linear(enc_out, d)
        # Gaussian likelihood: a learned log standard deviation, shared by all pixels or one per pixel (C, H, W).
        if config.likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))
        elif config.likelihood == "gaussian-pixel":  # starts at sigma = 0.1, a tenth of the pixels' range
            self.log_sigma = nn.Parameter(torch.full((c, h, w), math.log(0.1)))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Xavier/Glorot-uniform weights, zero biases; a generator makes it independent of global RNG."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1] -> mu, logvar: (B, D)."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): the sample is differentiable in mu and logvar (K&W 2013, sec. 2.4)."""
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, D) -> logits (B, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, D) -> image mean (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return VAEOutput(self.decode_logits(z), mu, logvar, z)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' prefers CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():

        raise ConfigError("Device cuda was asked for but no CUDA GPU is available; use --device cpu or auto.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):

        raise ConfigError("Device mps was asked for but Apple's MPS is not available; use --device cpu or auto.")
    return torch.device(name)
