"""Model and training settings: one dataclass per concern, each setting declared once.

A setting's field carries its `Setting` (label, CLI flag, help, range, choices): the CLI builds its
options from it, the Train and Compare forms their inputs, and the dataclass checks every value when it
is built, so a ModelConfig or TrainConfig that exists is valid and nothing checks it again. Every
message is one sentence a person can act on.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .data import DATASET_NAMES

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
# Weights a model may have: its checkpoint with Adam's two moments (3 x 4 bytes a weight) stays under the
# loader's 100 MB limit (vae/checkpoint.py), so every model that can be trained can be saved and resumed.
MAX_PARAMS = 8_000_000


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


@dataclass(frozen=True)
class Setting:
    """One setting as people meet it: its label (forms, messages), CLI flag, help, and what it accepts."""

    label: str
    flag: str
    help: str
    kind: str  # "int", "float", "choice", "text" (checked by its dataclass) or "switch" (on/off)
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed
    choices: tuple[str, ...] = ()
    choice_labels: tuple[str, ...] = ()  # how the forms show the choices
    example: str = ""  # how a value is written, e.g. 1e-3
    step: float | None = None  # the forms' +/- step
    advanced: bool = False  # folded away in the forms
    optional: bool = False  # None is allowed (the forms and the CLI leave it unset)

    def check(self, value: Any) -> Any:
        """The value in its normal form, or ConfigError naming this setting."""
        if value is None and self.optional:
            return None
        if self.kind == "int":
            return _check_int(self.label, value, int(self.lo), int(self.hi))
        if self.kind == "float":
            if isinstance(value, str) and self.example:
                try:
                    value = float(value)
                except ValueError:
                    raise ConfigError(f"{self.label} must be a number like {self.example}, not {_shown(value)}.") from None
            return _check_float(self.label, value, self.lo, self.hi, self.lo_open)
        if self.kind == "choice":
            return _check_choice(self.label, value, self.choices)
        if self.kind == "switch":
            return bool(value)
        return value

    def describe(self) -> str:
        """The help with what the setting accepts, for `--help` and the forms' tooltips."""
        if self.kind == "choice":
            return f"{self.help} One of {', '.join(self.choices)}."
        if self.kind in ("int", "float") and self.lo is not None:
            lo, hi = (f"{int(v)}" if self.kind == "int" else f"{v:g}" for v in (self.lo, self.hi))
            return f"{self.help} {'Above' if self.lo_open else 'From'} {lo} to {hi}."
        return self.help

    def label_of(self, choice: str) -> str:
        return dict(zip(self.choices, self.choice_labels)).get(choice, choice)


def _setting(default: Any, **kwargs) -> Any:
    """A dataclass field with its Setting."""
    return field(default=default, metadata={"setting": Setting(**kwargs)})


def settings_of(cls) -> dict[str, Setting]:
    """{field name: Setting} of a config class, in declaration order."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata}


def _check_fields(config) -> None:
    """Replaces each declared field of a frozen config by its checked value."""
    for name, setting in settings_of(type(config)).items():
        object.__setattr__(config, name, setting.check(getattr(config, name)))


AUTO_HIDDEN = "auto"


def default_hidden(latent_dim: int) -> tuple[int, ...]:
    """The default MLP: a third hidden layer for a 1- or 2-D latent space, whose decoder it helps while
    it hurts 20-D codes (docs/benchmarks.md, Quality)."""
    return (512, 256, 256) if latent_dim <= 2 else (512, 256)


def parse_hidden(text: str | list | tuple, latent_dim: int | None = None) -> tuple[int, ...]:
    """'512,256' or [512, 256] -> (512, 256), with the bounds checked; 'auto' -> default_hidden."""
    if isinstance(text, str) and text.strip().lower() == AUTO_HIDDEN:
        if latent_dim is None:
            return AUTO_HIDDEN  # resolved by ModelConfig.__post_init__ once the latent dim is known
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
    arch: str = _setting("mlp", label="Architecture", flag="--arch", kind="choice", choices=ARCHITECTURES,
                         help="mlp: fully connected layers; conv: two strided convolutions on each side.")
    latent_dim: int = _setting(2, label="Latent dim", flag="--latent-dim", kind="int", lo=LATENT_DIM_RANGE[0],
                               hi=LATENT_DIM_RANGE[1], help="Dimensions of the code z.")
    hidden: tuple[int, ...] | str = _setting(
        AUTO_HIDDEN, label="Hidden sizes", flag="--hidden", kind="text", example="512,256",
        help="Hidden layer sizes, comma separated, e.g. 512,256; auto: 512,256,256 for a 1- or 2-D latent space, "
             "else 512,256.")
    likelihood: str = _setting("bernoulli", label="Likelihood", flag="--likelihood", kind="choice", choices=LIKELIHOODS,
                               advanced=True, help="p(x|z): Bernoulli pixels, or Gaussian with one learned scale.")
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W)

    def __post_init__(self):
        _check_fields(self)
        object.__setattr__(self, "hidden", parse_hidden(self.hidden, self.latent_dim))
        shape = tuple(self.image_shape) if isinstance(self.image_shape, (list, tuple)) else self.image_shape
        if shape != (1, 28, 28):
            raise ConfigError(f"Images must be 1x28x28 grayscale; this model asks for {_shown(shape)}.")
        object.__setattr__(self, "image_shape", (1, 28, 28))
        if self.n_params > MAX_PARAMS:
            raise ConfigError(f"This model would have {self.n_params / 1e6:.1f} M weights and a checkpoint holds at most "
                              f"{MAX_PARAMS / 1e6:.0f} M; use fewer or smaller hidden layers.")

    @property
    def n_params(self) -> int:
        """Weights and biases of the VAE this config builds (vae/model.py), counted without building it."""
        (c, h, w), d, hidden = self.image_shape, self.latent_dim, list(self.hidden)

        def linears(sizes):
            return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

        if self.arch == "mlp":
            body = linears([c * h * w, *hidden]) + linears([d, *reversed(hidden), c * h * w])
            width = hidden[-1]
        else:  # two 4x4 convolutions each way around a 64 x 7 x 7 code, and a hidden layer on each side
            width = hidden[0]
            convs = (c * 32 + 32 * 64) * 16 + 32 + 64 + (64 * 32 + 32 * c) * 16 + 32 + c
            body = convs + linears([64 * 7 * 7, width]) + linears([d, width, 64 * 7 * 7])
        return body + 2 * (width * d + d) + (self.likelihood == "gaussian")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d)


DATASET_LABELS = {"mnist": "MNIST digits", "fashion-mnist": "Fashion-MNIST", "kmnist": "Kuzushiji-MNIST",
                  "shapes": "Shapes (built in, no download)"}


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = _setting("shapes", label="Dataset", flag="--dataset", kind="choice", choices=DATASET_NAMES,
                            choice_labels=tuple(DATASET_LABELS[n] for n in DATASET_NAMES),
                            help="The images to learn; shapes is built in and needs no download.")
    epochs: int = _setting(10, label="Epochs", flag="--epochs", kind="int", lo=EPOCHS_RANGE[0], hi=EPOCHS_RANGE[1],
                           help="Passes over the training images.")
    batch_size: int = _setting(128, label="Batch size", flag="--batch-size", kind="int", lo=BATCH_SIZE_RANGE[0],
                               hi=BATCH_SIZE_RANGE[1], help="Images per optimizer step.")
    lr: float = _setting(1e-3, label="Learning rate", flag="--lr", kind="float", lo=0.0, hi=1.0, lo_open=True,
                         example="1e-3", help="Adam's step size.")
    lr_schedule: str = _setting("constant", label="Learning-rate schedule", flag="--lr-schedule", kind="choice",
                                choices=LR_SCHEDULES, advanced=True,
                                help="cosine decays the rate to 0 by the last epoch, a few nats better at the end.")
    beta: float = _setting(1.0, label="KL weight β", flag="--beta", kind="float", lo=0.0, hi=MAX_BETA, step=0.1,
                           help="The KL term's weight: 1 is the ELBO, more pulls the codes towards the prior.")
    warmup_epochs: float = _setting(0.0, label="Warm-up epochs", flag="--warmup", kind="float", lo=0.0,
                                    hi=float(EPOCHS_RANGE[1]), step=1.0,
                                    help="β rises linearly from 0 over this many epochs.")
    recon_weight: float = _setting(1.0, label="Reconstruction weight", flag="--recon-weight", kind="float", lo=0.0,
                                   hi=MAX_BETA, step=0.1,
                                   help="0 trains on the KL alone; β 0 on the reconstruction alone (an autoencoder).")
    seed: int = _setting(0, label="Seed", flag="--seed", kind="int", lo=0, hi=2**31 - 1,
                         help="The same seed and settings train the same model.")
    device: str = _setting("auto", label="Device", flag="--device", kind="choice", choices=DEVICES, advanced=True,
                           help="auto takes a GPU when there is one.")
    binarize: bool = _setting(False, label="Binarize pixels", flag="--binarize", kind="switch", advanced=True,
                              help="Dynamic binarization: each batch resamples every pixel ~ Bernoulli(its intensity).")
    train_limit: int | None = _setting(None, label="Training images", flag="--train-limit", kind="int", lo=1, hi=10**7,
                                       optional=True, advanced=True,
                                       help="Use only the first N training images (a quick demonstration).")
    log_every: int = 20  # steps between step-metric callbacks
    data_dir: str | None = field(default=None, compare=False)

    def __post_init__(self):
        _check_fields(self)
        object.__setattr__(self, "log_every", _check_int("Log interval", self.log_every, 1, 100_000))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d)


def _from_dict(cls, d: dict):
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__} settings must be a mapping of names to values.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names, key=str)
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} setting {_shown(unknown[0])}.")
    plain = (str, int, float, bool, type(None))
    for key, value in d.items():  # what a file may hold: text, numbers, and flat lists of them
        if not isinstance(value, plain) and not (isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value)):
            raise ConfigError(f"The {cls.__name__} setting {key!r} holds a {type(value).__name__}, not a plain value.")
    values = dict(d)
    for key in ("hidden", "image_shape"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return cls(**values)
