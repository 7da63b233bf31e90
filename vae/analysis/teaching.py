"""The lecture's ideas as data: its three variants (reconstruction only, KL only, the full ELBO),
and "The math" (the ELBO, the closed-form KL, the reparameterization trick) filled in with a
model's own numbers. Pages only place what these return."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from vae.config import TrainConfig


@dataclass(frozen=True)
class Variant:
    suffix: str  # checkpoint name suffix
    title: str
    beta: float
    recon_weight: float
    expect: str  # what the latent space should look like, in one sentence


LECTURE_VARIANTS = (
    Variant("recon-only", "Reconstruction only (β = 0)", 0.0, 1.0,
            "A plain autoencoder: codes spread wherever the decoder likes them, unlike the prior."),
    Variant("kl-only", "KL only (reconstruction weight 0)", 1.0, 0.0,
            "Every code collapses onto the prior N(0, I): the code carries nothing, the decoder learns nothing."),
    Variant("elbo", "Full ELBO (β = 1)", 1.0, 1.0,
            "In between: classes find their own regions, packed inside the prior's circles."),
)


LECTURE_NAME = "lecture"


def lecture_variants(base: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """(checkpoint suffix, settings) of the three variants: base's data, seed and schedule, no warm-up."""
    return [(v.suffix, dataclasses.replace(base, beta=v.beta, recon_weight=v.recon_weight, warmup_epochs=0.0))
            for v in LECTURE_VARIANTS]


def variant_of(train_cfg: TrainConfig | None) -> Variant | None:
    """Which lecture variant these settings are, if any (the full ELBO only at β = 1: a larger β is the sweep's)."""
    if train_cfg is None:
        return None
    for v in LECTURE_VARIANTS:
        if (train_cfg.beta == 0) == (v.beta == 0) and (train_cfg.recon_weight == 0) == (v.recon_weight == 0):
            return v if v.suffix != "elbo" or train_cfg.beta <= 1 else None
    return None


# β-VAE (Higgins et al. 2017): a larger β buys codes whose dimensions follow the data's factors one by one,
# at the price of reconstruction. The sweep trains the same data and seed at each β, in 10-D codes.
BETA_SWEEP = (1.0, 4.0, 8.0)
BETA_SWEEP_NAME = "beta-sweep"
BETA_SWEEP_LATENT = 10


def beta_sweep_variants(base: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """(checkpoint suffix, settings) of the β sweep: base's data, seed and schedule at each β of BETA_SWEEP."""
    return [(f"beta-{b:g}", dataclasses.replace(base, beta=b, recon_weight=1.0, warmup_epochs=0.0))
            for b in BETA_SWEEP]


def variant_suffixes() -> tuple[tuple[str, ...], ...]:
    """The checkpoint suffixes of each group of variants trained together (a run's files: <name>-<suffix>.pt)."""
    return tuple(tuple(suffix for suffix, _ in variants(TrainConfig())) for variants in (lecture_variants,
                                                                                         beta_sweep_variants))


@dataclass(frozen=True)
class LossNumbers:
    """A model's loss terms in nats per image, and the weights it was trained with."""

    recon: float  # -E_q[log p(x|z)], one z sample
    kl: float  # KL(q(z|x) || p(z)), closed form
    beta: float  # the KL weight now (during a warm-up it is still rising)
    recon_weight: float
    source: str  # where the numbers come from, for a caption

    @property
    def neg_elbo(self) -> float:
        """-ELBO = recon + KL: the bound on -log p(x), whatever the training weights were."""
        return self.recon + self.kl

    @property
    def objective(self) -> float:
        """What the optimiser minimised: recon_weight * recon + beta * KL."""
        return self.recon_weight * self.recon + self.beta * self.kl


def loss_numbers(history: list[dict], test_metrics: dict[str, float] | None = None,
                 train_cfg: TrainConfig | None = None) -> LossNumbers | None:
    """The newest test recon and KL of a history (else of the training batches, else test_metrics);
    beta from the newest step (a warm-up changes it), else the settings; None before any number."""
    beta = train_cfg.beta if train_cfg else 1.0
    recon_weight = train_cfg.recon_weight if train_cfg else 1.0
    steps = [r for r in history if r.get("kind") == "step"]
    if steps and "beta" in steps[-1]:
        beta = float(steps[-1]["beta"])
    for record in reversed(history):
        if record.get("kind") == "epoch" and "test_recon" in record and "test_kl" in record:
            return LossNumbers(record["test_recon"], record["test_kl"], beta, recon_weight,
                               f"test set, after epoch {_epoch_text(record['epoch'])}")
    if steps:
        return LossNumbers(steps[-1]["recon"], steps[-1]["kl"], beta, recon_weight,
                           f"training batches, epoch {_epoch_text(steps[-1]['epoch'])}")
    if test_metrics and "recon" in test_metrics and "kl" in test_metrics:
        return LossNumbers(test_metrics["recon"], test_metrics["kl"], beta, recon_weight, "test set")
    return None


def _epoch_text(epoch: float) -> str:
    return f"{epoch:g}" if float(epoch).is_integer() else f"{epoch:.1f}"


def _n(value: float) -> str:
    """A number as the equations show it."""
    if not math.isfinite(value):
        return r"\text{—}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def math_lines(numbers: LossNumbers | None, latent_dim: int) -> list[tuple[str, str]]:
    """(sentence, LaTeX) pairs for the expander: the ELBO, the closed-form KL, the reparameterization
    trick and the training objective; the second line of each carries the model's numbers."""
    elbo = (r"\log p_\theta(x) \;\ge\; \mathcal{L}(x) = \mathbb{E}_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]"
            r" - D_{\mathrm{KL}}\big(q_\phi(z \mid x)\,\|\,p(z)\big)")
    kl = (r"D_{\mathrm{KL}}\big(\mathcal{N}(\mu, \sigma^2 I)\,\|\,\mathcal{N}(0, I)\big) = \tfrac{1}{2} \sum_{d=1}^{"
          + str(latent_dim) + r"} \big(\mu_d^2 + \sigma_d^2 - \log \sigma_d^2 - 1\big)")
    reparam = r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)"
    lines = [
        ("**The ELBO** (Kingma & Welling 2013): a lower bound on the log-likelihood of an image x, "
         "a reconstruction term minus a KL term.", elbo),
    ]
    if numbers is not None:
        lines.append((f"This model, in nats per image ({numbers.source}):",
                      r"-\mathcal{L}(x) = \underbrace{" + _n(numbers.recon) + r"}_{\text{reconstruction}} + "
                      r"\underbrace{" + _n(numbers.kl) + r"}_{\text{KL}} = " + _n(numbers.neg_elbo) + r"\ \text{nats}"))
    lines.append(("**The KL in closed form** (their appendix B): the encoder gives a Gaussian per image, the prior "
                  f"is N(0, I), so no sampling is needed; here over {latent_dim} dimension"
                  f"{'s' if latent_dim != 1 else ''}.", kl))
    lines.append(("**The reparameterization trick**: the noise comes from outside the network, so the gradient "
                  "flows through μ and σ into the encoder.", reparam))
    if numbers is not None:
        lines.append(("**What training minimised**: the reconstruction weighted by w, the KL by β "
                      "(β = 0: a plain autoencoder; w = 0: KL only).",
                      r"w\,R + \beta\,\mathrm{KL} = " + _n(numbers.recon_weight) + r" \times " + _n(numbers.recon)
                      + " + " + _n(numbers.beta) + r" \times " + _n(numbers.kl) + " = "
                      + _n(numbers.objective) + r"\ \text{nats}"))
    return lines
