"""Model and training settings: one dataclass per concern, validated in one place.

The CLI and the app both build these objects and call `validate()`; neither checks the
values again. Every message is one sentence a person can act on.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "cosine")

# Bounds a classroom can hit by typing; anything outside gets a readable refusal.
LATENT_DIM_RANGE = (1, 64)
HIDDEN_SIZE_RANGE = (1, 4096)
MAX_HIDDEN_LAYERS = 6
BATCH_SIZE_RANGE = (1, 4096)
EPOCHS_RANGE = (1, 1000)
MAX_BETA = 1000.0


class ConfigError(ValueError):
    """A setting is out of range; the message says which one and what to use instead."""


def _shown(value: Any, limit: int = 40) -> str:
    """A value as a message quotes it: repr for text, at most `limit` characters, on one line."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_float = float(value)
        except (TypeError, ValueError, OverflowError):
            as_float = math.nan
        if isinstance(value, bool) or not math.isfinite(as_float) or as_float != int(as_float):
            raise ConfigError(f"{name} must be a whole number from {lo} to {hi}, not {_shown(value)}.")
        value = int(as_float)
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be from {lo} to {hi}; you gave {_shown(value)}.")
    return value


def _check_float(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, not {value!r}.")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        value = math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {_shown(value)}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; you gave {value}.")
    too_low = value <= lo if lo_open else value < lo
    if too_low or value > hi:
        low_word = f"above {lo:g}" if lo_open else f"at least {lo:g}"
        raise ConfigError(f"{name} must be {low_word} and at most {hi:g}; you gave {value:g}.")
    return value


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; you gave {_shown(value)}.")
    return value


AUTO_HIDDEN = "auto"


def default_hidden(latent_dim: int) -> tuple[int, ...]:
    """The default MLP: a third hidden layer for a 1- or 2-D latent space.

    Measured on MNIST (docs/benchmarks.md): the extra layer gives the decoder of a 2-D plane
    about 4 nats of test ELBO in 20 epochs, while for 20-D codes the shallower net is about
    6 nats better after 30.
    """
    return (512, 256, 256) if latent_dim <= 2 else (512, 256)


def parse_hidden(text: str | list | tuple, latent_dim: int | None = None) -> tuple[int, ...]:
    """'512,256' or [512, 256] -> (512, 256), with the bounds checked; 'auto' -> default_hidden."""
    if isinstance(text, str) and text.strip().lower() == AUTO_HIDDEN:
        if latent_dim is None:
            return AUTO_HIDDEN  # resolved by ModelConfig.validate once the latent dim is known
        return default_hidden(latent_dim)
    if isinstance(text, str):
        parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    elif isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        raise ConfigError(f"Hidden sizes must be a list like 512,256 or 'auto', not {_shown(text)}.")
    if not parts:
        raise ConfigError("Hidden sizes need at least one layer, for example 512,256.")
    if len(parts) > MAX_HIDDEN_LAYERS:
        raise ConfigError(f"Use at most {MAX_HIDDEN_LAYERS} hidden layers; you gave {len(parts)}.")
    lo, hi = HIDDEN_SIZE_RANGE
    sizes = []
    for p in parts:
        try:
            sizes.append(_check_int("Each hidden size", p, lo, hi))
        except ConfigError:
            raise ConfigError(
                f"Hidden sizes must be whole numbers from {lo} to {hi} separated by commas, "
                f"like 512,256; {_shown(p)} is not."
            ) from None
    return tuple(sizes)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "mlp"
    latent_dim: int = 2
    hidden: tuple[int, ...] | str = AUTO_HIDDEN  # or e.g. (512, 256); "auto" -> default_hidden(latent_dim)
    likelihood: str = "bernoulli"
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)

    def validate(self) -> "ModelConfig":
        """Returns a normalised copy, or raises ConfigError with one readable sentence."""
        arch = _check_choice("Architecture", self.arch, ARCHITECTURES)
        latent = _check_int("Latent dim", self.latent_dim, *LATENT_DIM_RANGE)
        hidden = parse_hidden(self.hidden, latent)
        likelihood = _check_choice("Likelihood", self.likelihood, LIKELIHOODS)
        shape = tuple(self.image_shape) if isinstance(self.image_shape, (list, tuple)) else self.image_shape
        if shape != (1, 28, 28):
            raise ConfigError(f"Images must be 1x28x28 grayscale; this model asks for {_shown(shape)}.")
        return ModelConfig(arch, latent, hidden, likelihood, (1, 28, 28))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d).validate()


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "shapes"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"  # cosine: decays to 0 over the run, a few nats better at the end
    beta: float = 1.0
    warmup_epochs: float = 0.0  # beta rises linearly from 0 over this many epochs
    recon_weight: float = 1.0  # 0 trains on the KL term alone (a teaching variant)
    seed: int = 0
    device: str = "auto"
    binarize: bool = False  # dynamic binarization: resample pixels ~ Bernoulli(intensity) each batch
    log_every: int = 20  # steps between step-metric callbacks
    train_limit: int | None = None  # use only the first N training images (tests, quick demos)
    data_dir: str | None = field(default=None, compare=False)

    def validate(self) -> "TrainConfig":
        from .data import DATASET_NAMES  # local import: data imports torchvision lazily

        return dataclasses.replace(
            self,
            dataset=_check_choice("Dataset", self.dataset, DATASET_NAMES),
            epochs=_check_int("Epochs", self.epochs, *EPOCHS_RANGE),
            batch_size=_check_int("Batch size", self.batch_size, *BATCH_SIZE_RANGE),
            lr=_check_float("Learning rate", self.lr, 0.0, 1.0, lo_open=True),
            lr_schedule=_check_choice("Learning-rate schedule", self.lr_schedule, LR_SCHEDULES),
            beta=_check_float("Beta", self.beta, 0.0, MAX_BETA),
            warmup_epochs=_check_float("Warm-up epochs", self.warmup_epochs, 0.0, float(EPOCHS_RANGE[1])),
            recon_weight=_check_float("Reconstruction weight", self.recon_weight, 0.0, MAX_BETA),
            seed=_check_int("Seed", self.seed, 0, 2**31 - 1),
            device=_check_choice("Device", self.device, DEVICES),
            binarize=bool(self.binarize),
            log_every=_check_int("Log interval", self.log_every, 1, 100_000),
            train_limit=None if self.train_limit is None else _check_int("Training limit", self.train_limit, 1, 10**7),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d).validate()


def _from_dict(cls, d: dict):
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__} settings must be a mapping of names to values.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} setting {unknown[0]!r}.")
    values = dict(d)
    for key in ("hidden", "image_shape"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return cls(**values)
