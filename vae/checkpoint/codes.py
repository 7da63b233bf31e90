"""Stored codes: what a checkpoint keeps of its data so it explores on a machine without the dataset.

When a trainer evaluates the test set each epoch it already encodes it; the posterior means and
log-variances of the first STORED_TEST test images (in the dataset's order, so the first n of them are
the codes of the first n test images), their labels and known factors, and the means of the first
STORED_TRAIN training images (the scatter's label map) go into `trainer.extras["codes"]`, so every
checkpoint the trainer writes carries them: codes and labels only, never an image. Stored as float16
codes, int16 labels (a folder has at most 1,000 classes) and float32 factors, read back with
`torch.load(weights_only=True)` and checked by `check_stored_codes`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

CODES_KEY = "codes"  # in trainer.extras and the checkpoint's extras
CODES_VERSION = 1
STORED_TEST = 5_000  # the Explore pages show at most this many test codes; 20 kB per latent dimension
STORED_TRAIN = 2_000  # a few thousand training codes for the scatter's label map offline; 4 kB per latent dimension
MAX_STORED = 10_000
MAX_FACTORS = 16
MAX_TEST_SIZE = 10**7  # images in the test split the codes came from: far more than any dataset here
FACTOR_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class StoredCodesError(ValueError):
    """Stored codes that are not what a trainer writes; the message says what is wrong."""


@dataclass
class StoredCodes:
    """A model's codes of its own data, as numpy arrays (n test images, m training images, D dimensions)."""

    mu: np.ndarray  # (n, D) float32 posterior means of the first n test images
    logvar: np.ndarray  # (n, D) float32 their log-variances
    labels: np.ndarray  # (n,) int64
    factors: dict[str, np.ndarray]  # name -> (n,) float32, the known generative factors (shapes)
    train_mu: np.ndarray  # (m, D) float32 posterior means of the first m training images
    train_labels: np.ndarray  # (m,) int64
    test_size: int  # test images in the dataset the codes came from

    def __len__(self) -> int:
        return len(self.mu)


def stored_codes_payload(mu, logvar, test_data, train_mu, train_data) -> dict:
    """The plain dict kept in extras: mu, logvar (n, D) of test_data's first n images, train_mu (m, D) of
    train_data's first m (tensors or arrays); labels and factors are taken from the datasets' first rows."""
    mu, logvar, train_mu = (torch.as_tensor(t).detach().to("cpu", torch.float16) for t in (mu, logvar, train_mu))
    n, m = len(mu), len(train_mu)
    return {
        "version": CODES_VERSION,
        "mu": mu, "logvar": logvar,
        "labels": test_data.labels[:n].to(torch.int16).clone(),
        "factors": {k: v[:n].to(torch.float32).clone() for k, v in test_data.factors.items()},
        "train_mu": train_mu,
        "train_labels": train_data.labels[:m].to(torch.int16).clone(),
        "test_size": len(test_data),
    }


def check_stored_codes(value, latent_dim: int, n_classes: int | None = None) -> dict:
    """The stored-codes dict if it is well formed for a model of latent_dim, else StoredCodesError."""
    expected = {"version", "mu", "logvar", "labels", "factors", "train_mu", "train_labels", "test_size"}
    if not isinstance(value, dict) or set(value) != expected:
        raise StoredCodesError(f"its entries are not {sorted(expected)}")
    if value["version"] != CODES_VERSION or type(value["test_size"]) is not int or not 0 < value["test_size"] <= MAX_TEST_SIZE:
        raise StoredCodesError("its version or test size is not one this app writes")
    factors = value["factors"]
    if not isinstance(factors, dict) or len(factors) > MAX_FACTORS or not all(
            isinstance(k, str) and FACTOR_NAME.fullmatch(k) for k in factors):
        raise StoredCodesError("its factors are not a small mapping of plain names")
    tensors = {"mu": torch.float16, "logvar": torch.float16, "labels": torch.int16, "train_mu": torch.float16,
               "train_labels": torch.int16, **{f"factor {k}": torch.float32 for k in factors}}
    values = {**value, **{f"factor {k}": v for k, v in factors.items()}}
    for key, dtype in tensors.items():
        if not isinstance(values[key], torch.Tensor) or values[key].dtype != dtype:
            raise StoredCodesError(f"its {key!r} entry is not a {dtype} tensor")
    n, m, d = len(value["mu"]), len(value["train_mu"]), latent_dim
    shapes_ok = (1 <= n <= MAX_STORED and 0 <= m <= MAX_STORED and n <= value["test_size"]
                 and value["mu"].shape == value["logvar"].shape == (n, d) and value["labels"].shape == (n,)
                 and value["train_mu"].shape == (m, d) and value["train_labels"].shape == (m,)
                 and all(v.shape == (n,) for v in factors.values()))
    if not shapes_ok:
        raise StoredCodesError("its arrays have shapes that do not fit together or this model")
    labels = torch.cat([value["labels"], value["train_labels"]])
    if (labels < 0).any() or (n_classes and (labels >= n_classes).any()):
        raise StoredCodesError("it has labels beyond the model's classes")
    if not all(torch.isfinite(t).all() for t in (value["mu"], value["logvar"], value["train_mu"], *factors.values())):
        raise StoredCodesError("it has NaN or infinite codes")
    return value


def stored_codes_from_extras(extras: dict | None) -> StoredCodes | None:
    """The stored codes of a model's extras (checked when it was loaded or recorded), or None."""
    raw = (extras or {}).get(CODES_KEY)
    if raw is None:
        return None
    return StoredCodes(
        mu=raw["mu"].float().numpy(), logvar=raw["logvar"].float().numpy(), labels=raw["labels"].long().numpy(),
        factors={k: v.numpy() for k, v in raw["factors"].items()}, train_mu=raw["train_mu"].float().numpy(),
        train_labels=raw["train_labels"].long().numpy(), test_size=raw["test_size"],
    )
