"""How much of the latent space a model uses: KL per dimension, active units, posterior collapse."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae.nets.loss import kl_per_dim


def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """(D,) mean KL(q(z_d|x) || N(0,1)) over the data, nats."""
    return kl_per_dim(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(0).numpy()


def active_units(mu: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Boolean (D,): a dimension is active when Var_x[E_q(z|x)[z_d]] > threshold (Burda et al. 2015)."""
    return mu.var(axis=0) > threshold


COLLAPSE_KL = 0.1  # nats: a model whose codes carry less than this has collapsed to the prior


@dataclass(frozen=True)
class LatentUsage:
    kl: np.ndarray  # (D,) mean KL per dimension over the data, nats
    active: np.ndarray  # (D,) bool, Burda et al. 2015's criterion (see active_units)
    epochs: float | None = None  # epochs the model had finished; None: not known, judged as trained

    @property
    def untrained(self) -> bool:
        """Before the first epoch has finished: an encoder at its initial weights gives every image nearly the
        same code, which is where every model starts, not a collapse it has trained into."""
        return self.epochs is not None and self.epochs < 1

    @property
    def n_active(self) -> int:
        return int(self.active.sum())

    @property
    def collapsed(self) -> bool:
        """Posterior collapse: no dimension is used, q(z|x) is the prior whatever x is (never said of an
        untrained model)."""
        return not self.untrained and (self.n_active == 0 or float(self.kl.sum()) < COLLAPSE_KL)

    def sentence(self) -> str:
        d, total = len(self.kl), float(self.kl.sum())
        head = f"{self.n_active} of {d} latent dimension{'s' if d != 1 else ''} active, KL {total:.2f} nats"
        if self.untrained:
            return (f"{head}, before the first epoch has finished: an untrained encoder gives every image nearly the "
                    "same code, so whether the model uses its code shows once it has trained.")
        if self.collapsed:
            return (f"{head}: posterior collapse. Every image gets the same code distribution, the prior, "
                    "so the code says nothing about the image and the decoder can only draw an average.")
        if self.n_active < d:
            unused = d - self.n_active
            return (f"{head}: {unused} dimension{'s have' if unused > 1 else ' has'} collapsed to the prior "
                    "and carr" + ("y" if unused > 1 else "ies") + " no information; the others encode the images.")
        return f"{head}: every dimension carries information about the image."


def latent_usage(mu: np.ndarray, logvar: np.ndarray, threshold: float = 0.01,
                 epochs: float | None = None) -> LatentUsage:
    """Per-dimension KL and active units of posterior means and log-variances (N, D) over a dataset, by a
    model that had finished `epochs` epochs (None: not known)."""
    return LatentUsage(kl_per_dimension(mu, logvar), active_units(mu, threshold), epochs)
