"""A model over many inputs or codes at once: encode a dataset, decode codes and grids of codes in one
forward pass, reconstruct, the manifold at a glance."""
from __future__ import annotations

import numpy as np
import torch

from vae.nets.model import VAE
from vae.render.images import tile_images, to_pictures

ENCODE_BATCH = 2048


@torch.no_grad()
def encode_dataset(model: VAE, x: torch.Tensor, batch_size: int = ENCODE_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, C, H, W) float in [0, 1] -> posterior mu, logvar as float32 arrays (N, D)."""
    device = next(model.parameters()).device
    mus, logvars = [], []
    for start in range(0, len(x), batch_size):
        mu, logvar = model.encode(x[start:start + batch_size].to(device))
        mus.append(mu.cpu())
        logvars.append(logvar.cpu())
    if not mus:
        d = model.config.latent_dim
        return np.zeros((0, d), np.float32), np.zeros((0, d), np.float32)
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


@torch.no_grad()
def decode_codes(model: VAE, z: np.ndarray | torch.Tensor) -> np.ndarray:
    """z: (B, D) -> decoded image means as pictures (B, H, W[, 3]) float32 in [0, 1], one forward pass."""
    device = next(model.parameters()).device
    z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
    return to_pictures(model.decode(z))


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor) -> np.ndarray:
    """x: (B, C, H, W) -> decode(mu(x)) as pictures (B, H, W[, 3]): the deterministic reconstruction."""
    mu, _ = encode_dataset(model, x)
    return decode_codes(model, mu)


def grid_axis(n: int, radius: float = 3.0, spacing: str = "linear") -> np.ndarray:
    """n latent values along one axis, ascending.

    linear: evenly over [-radius, radius]. gaussian: inverse-CDF of evenly spaced
    probabilities, so each cell holds equal prior mass (Kingma & Welling 2013, Fig. 4).
    """
    if n < 1:
        raise ValueError("A grid needs at least one point per side.")
    if spacing == "linear":
        return np.linspace(-radius, radius, n, dtype=np.float32)
    if spacing == "gaussian":
        p = (np.arange(n, dtype=np.float64) + 0.5) / n  # cell centres in probability
        return torch.special.ndtri(torch.from_numpy(p)).numpy().astype(np.float32)
    raise ValueError(f"Unknown spacing {spacing!r}; use linear or gaussian.")


def grid_codes(xs: np.ndarray, ys: np.ndarray, latent_dim: int, dims: tuple[int, int] = (0, 1),
               base: np.ndarray | None = None) -> np.ndarray:
    """(len(ys) * len(xs), D) codes, row-major with the top row at the largest y (as on a plot).

    Dimensions other than `dims` are held at `base` (default 0).
    """
    base = np.zeros(latent_dim, np.float32) if base is None else np.asarray(base, np.float32)
    gx, gy = np.meshgrid(xs, ys[::-1])  # (ny, nx) each; row 0 is the top of the picture
    z = np.tile(base, (gx.size, 1))
    z[:, dims[0]] = gx.ravel()
    z[:, dims[1]] = gy.ravel()
    return z


def decode_grid(model: VAE, xs: np.ndarray, ys: np.ndarray, dims: tuple[int, int] = (0, 1),
                base: np.ndarray | None = None) -> np.ndarray:
    """(ny, nx, H, W[, 3]) decoded pictures over the grid, in one batched forward pass."""
    z = grid_codes(xs, ys, model.config.latent_dim, dims, base)
    pictures = decode_codes(model, z)
    return pictures.reshape(len(ys), len(xs), *pictures.shape[1:])


def manifold_picture(model: VAE, n: int, radius: float = 3.0) -> np.ndarray:
    """The decoder over an n x n grid of (z1, z2) in [-radius, radius], the other dimensions at 0 (one row
    over z1 for a 1-D space), as one uint8 picture (n * H, n * W[, 3]): the manifold at a glance."""
    xs = grid_axis(n, radius)
    if model.config.latent_dim == 1:
        return tile_images(decode_codes(model, xs[:, None])[None])
    return tile_images(decode_grid(model, xs, xs))


def sample_indices(n: int, k: int, seed: int) -> np.ndarray:
    """k distinct indices into n items (all of them when k >= n), drawn from a seed, ascending."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(k, n), replace=False))


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int) -> np.ndarray:
    """(steps, D) points on the straight line from z0 to z1, both ends included."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return (1 - t) * np.asarray(z0, np.float32) + t * np.asarray(z1, np.float32)
