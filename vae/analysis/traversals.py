"""Latent traversals (Higgins et al. 2017, beta-VAE): sweep one dimension at a time from a base code,
the dimensions ordered by their KL, decoded in one batch."""
from __future__ import annotations

import numpy as np

from vae.analysis.encoding import decode_codes
from vae.nets.model import VAE


def traversal_order(kl: np.ndarray) -> np.ndarray:
    """(D,) per-dimension KL -> (D,) dimension indices, most informative first (ties keep index order), so a
    traversal shows the dimensions the model actually uses before the collapsed ones (Higgins et al. 2017)."""
    return np.argsort(-np.asarray(kl, np.float64), kind="stable")


def traversal_codes(base: np.ndarray, dims: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(R * S, D) float32 codes for a traversal grid, row-major: row r, column s is `base` (D,) with
    dimension dims[r] set to values[s]; every other dimension stays at base."""
    base = np.asarray(base, np.float32).reshape(-1)
    dims = np.asarray(dims, np.int64).reshape(-1)
    values = np.asarray(values, np.float32).reshape(-1)
    if dims.size and (dims.min() < 0 or dims.max() >= base.size):
        raise ValueError(f"Traversal dimensions must lie in 0..{base.size - 1}, got {dims.tolist()}.")
    z = np.tile(base, (dims.size, values.size, 1))  # (R, S, D)
    for r, d in enumerate(dims):
        z[r, :, d] = values
    return z.reshape(-1, base.size)


def decode_traversals(model: VAE, base: np.ndarray, dims: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(R, S, H, W[, 3]) pictures: row r sweeps dimension dims[r] over values (S,), the others held at base (D,);
    one batched forward pass."""
    pictures = decode_codes(model, traversal_codes(base, dims, values))
    return pictures.reshape(len(dims), len(values), *pictures.shape[1:])
