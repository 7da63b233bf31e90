"""Model and training settings: one dataclass per concern, each setting declared once.

A setting's field carries its `Setting` (label, CLI flag, help, range, choices): the CLI builds its
options from it, the Train and Compare forms their inputs, and the dataclass checks every value when it
is built, so a ModelConfig or TrainConfig that exists is valid and nothing checks it again. Every
message is one sentence a person can act on.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from vae.data import dataset_options, dataset_shape

ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-pixel")
# How a -ELBO is read: nats per image under this p(x|z) (a Gaussian's are a density's, and may be negative).
LIKELIHOOD_NAMES = {"bernoulli": "Bernoulli", "gaussian": "Gaussian, one scale", "gaussian-pixel": "Gaussian, a scale per pixel"}
DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCHEDULES = ("constant", "cosine")

# Bounds a classroom can hit by typing; anything outside gets a readable refusal.
LATENT_DIM_RANGE = (1, 64)
HIDDEN_SIZE_RANGE = (1, 4096)
MAX_HIDDEN_LAYERS = 6
BATCH_SIZE_RANGE = (1, 4096)
EPOCHS_RANGE = (1, 1000)
MAX_BETA = 1000.0
CHANNELS = (1, 3)  # grey or RGB
IMAGE_SIDE_RANGE = (8, 128)  # pixels, each of height and width
CONV_MIN_SIDE = 4  # the conv net halves while both sides stay even and at least this
CONV_MAX_CHANNELS = 128
# Weights a model may have: its checkpoint with Adam's two moments (3 x 4 bytes a weight) stays under the
# loader's 100 MB limit (vae/checkpoint/files.py), so every model that can be trained can be saved and resumed.
MAX_PARAMS = 8_000_000
MAX_PATH_CHARS = 4096  # the longest path Linux takes: a longer data folder can only come from a crafted file


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


def _check_path_text(name: str, value: Any) -> str | None:
    """A folder path as text (a Path becomes its text), or None; a checkpoint may hold any plain value here."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a folder path written as text, not {_shown(value)}.")
    if "\0" in value or len(value) > MAX_PATH_CHARS:
        raise ConfigError(f"{name} must be a folder path of at most {MAX_PATH_CHARS} characters without a NUL "
                          f"character; you gave {_shown(value)}.")
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
    options: tuple[str | tuple[str, str], ...] | Callable[[], tuple] = ()  # the choices, each a value or (value, label),
    # or a function that gives them when asked (the datasets: a registry that may grow)
    example: str = ""  # how a value is written, e.g. 1e-3
    step: float | None = None  # the forms' +/- step
    advanced: bool = False  # folded away in the forms, under "More settings"
    optional: bool = False  # None is allowed (the forms and the CLI leave it unset)
    only_for: str = ""  # a dataset this setting applies to alone ("folder"): the forms ask for it beside that data
    live: bool = False  # a running job may change it from its next batch (vae/training/control.py)

    @property
    def _pairs(self) -> tuple[tuple[str, str], ...]:
        options = self.options() if callable(self.options) else self.options
        return tuple(o if isinstance(o, tuple) else (o, o) for o in options)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self._pairs)

    @property
    def choice_labels(self) -> tuple[str, ...]:
        """How the forms show the choices."""
        return tuple(label for _, label in self._pairs)

    def check(self, value: Any) -> Any:
        """The value in its normal form, or ConfigError naming this setting."""
        if value is None and self.optional:
            return None
        if self.kind == "int":
            value = _check_int(self.label, value, int(self.lo), int(self.hi))
            return value if not self.choices else int(_check_choice(self.label, str(value), self.choices))
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
        return dict(self._pairs).get(choice, choice)


def _setting(default: Any, **kwargs) -> Any:
    """A dataclass field with its Setting."""
    return field(default=default, metadata={"setting": Setting(**kwargs)})


def settings_of(cls) -> dict[str, Setting]:
    """{field name: Setting} of a config class, in declaration order."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls) if "setting" in f.metadata}


def live_settings() -> dict[str, Setting]:
    """The training settings a running job may change, {field name: Setting} (β, the reconstruction weight, the
    learning rate)."""
    return {name: s for name, s in settings_of(TrainConfig).items() if s.live}


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


def check_image_shape(shape: Any) -> tuple[int, int, int]:
    """(C, H, W) with C grey or RGB and each side in IMAGE_SIDE_RANGE, or ConfigError."""
    lo, hi = IMAGE_SIDE_RANGE
    ok = isinstance(shape, (list, tuple)) and len(shape) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in shape)
    if not ok or shape[0] not in CHANNELS or not all(lo <= v <= hi for v in shape[1:]):
        raise ConfigError(f"Images must have 1 (grey) or 3 (colour) channels and sides from {lo} to {hi} pixels; "
                          f"this model asks for {_shown(shape)}.")
    return tuple(shape)


def conv_levels(h: int, w: int) -> list[int]:
    """The conv net's channels after each halving of an h x w image (32, 64, then 128 each): it halves
    while both sides are even and stay at least CONV_MIN_SIDE (28: 14, 7; 32: 16, 8, 4; 64: down to 4)."""
    levels = []
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= CONV_MIN_SIDE:
        h, w = h // 2, w // 2
        levels.append(min(32 * 2 ** len(levels), CONV_MAX_CHANNELS))
    return levels


def conv_code_size(c: int, h: int, w: int) -> int:
    """Values in the conv net's last feature map, (channels, h / 2^k, w / 2^k) flattened."""
    levels = conv_levels(h, w)
    k = len(levels)
    return levels[-1] * (h >> k) * (w >> k)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = _setting("mlp", label="Architecture", flag="--arch", kind="choice", options=ARCHITECTURES,
                         help="mlp: fully connected layers, any image size; conv: strided convolutions that halve the "
                              "image down to 4-7 pixels a side (28: twice; 64: four times), for even sizes.")
    latent_dim: int = _setting(2, label="Latent dim", flag="--latent-dim", kind="int", lo=LATENT_DIM_RANGE[0],
                               hi=LATENT_DIM_RANGE[1], help="Dimensions of the code z.")
    hidden: tuple[int, ...] | str = _setting(
        AUTO_HIDDEN, label="Hidden sizes", flag="--hidden", kind="text", example="512,256",
        help="Hidden layer sizes, comma separated, e.g. 512,256; auto: 512,256,256 for a 1- or 2-D latent space, "
             "else 512,256.")
    likelihood: str = _setting("bernoulli", label="Likelihood", flag="--likelihood", kind="choice", options=LIKELIHOODS,
                               advanced=True,
                               help="p(x|z): Bernoulli pixels (data in [0, 1], e.g. digits); Gaussian with one learned "
                                    "scale; gaussian-pixel: a learned scale per pixel (colour photographs).")
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W): the dataset's, see vae/data/registry.py

    def __post_init__(self):
        _check_fields(self)
        object.__setattr__(self, "hidden", parse_hidden(self.hidden, self.latent_dim))
        object.__setattr__(self, "image_shape", check_image_shape(self.image_shape))
        if self.arch == "conv" and not conv_levels(*self.image_shape[1:]):
            c, h, w = self.image_shape
            raise ConfigError(f"The conv architecture halves the image, so it needs an even height and width of at least "
                              f"{2 * CONV_MIN_SIDE}; use mlp for {h}x{w} images.")
        if self.n_params > MAX_PARAMS:
            raise ConfigError(f"This model would have {self.n_params / 1e6:.1f} M weights and a checkpoint holds at most "
                              f"{MAX_PARAMS / 1e6:.0f} M; use fewer or smaller hidden layers.")

    @property
    def n_params(self) -> int:
        """Weights and biases of the VAE this config builds (vae/nets/model.py), counted without building it."""
        (c, h, w), d, hidden = self.image_shape, self.latent_dim, list(self.hidden)

        def linears(sizes):
            return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

        if self.arch == "mlp":
            body = linears([c * h * w, *hidden]) + linears([d, *reversed(hidden), c * h * w])
            width = hidden[-1]
        else:  # 4x4 convolutions each way around the last level's code, and a hidden layer on each side
            width, levels = hidden[0], conv_levels(h, w)
            chans = [c, *levels]
            convs = sum(2 * 16 * a * b + a + b for a, b in zip(chans[:-1], chans[1:]))  # a conv and its transpose
            code = conv_code_size(c, h, w)
            body = convs + linears([code, width]) + linears([d, width, code])
        sigma = {"gaussian": 1, "gaussian-pixel": c * h * w}.get(self.likelihood, 0)  # the learned log sigma
        return body + 2 * (width * d + d) + sigma

    @property
    def elbo_unit(self) -> str:
        """What a -ELBO of this model is in: 'nats per image (Bernoulli)'."""
        return f"nats per image ({LIKELIHOOD_NAMES[self.likelihood]})"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d)


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = _setting("shapes", label="Dataset", flag="--dataset", kind="choice", options=dataset_options,
                            help="The images to learn; shapes is built in and needs no download.")
    epochs: int = _setting(10, label="Epochs", flag="--epochs", kind="int", lo=EPOCHS_RANGE[0], hi=EPOCHS_RANGE[1],
                           help="Passes over the training images.")
    batch_size: int = _setting(128, label="Batch size", flag="--batch-size", kind="int", lo=BATCH_SIZE_RANGE[0],
                               hi=BATCH_SIZE_RANGE[1], help="Images per optimizer step, over all processes: under torchrun "
                               "each of N processes takes a 1/N share of every batch.")
    lr: float = _setting(1e-3, label="Learning rate", flag="--lr", kind="float", lo=0.0, hi=1.0, lo_open=True,
                         example="1e-3", help="Adam's step size.", live=True)
    lr_schedule: str = _setting("constant", label="Learning-rate schedule", flag="--lr-schedule", kind="choice",
                                options=LR_SCHEDULES, advanced=True,
                                help="cosine decays the rate to 0 by the last epoch, a few nats better at the end.")
    beta: float = _setting(1.0, label="KL weight β", flag="--beta", kind="float", lo=0.0, hi=MAX_BETA, step=0.1,
                           help="The KL term's weight: 1 is the ELBO, more pulls the codes towards the prior.", live=True)
    warmup_epochs: float = _setting(0.0, label="Warm-up epochs", flag="--warmup", kind="float", lo=0.0,
                                    hi=float(EPOCHS_RANGE[1]), step=1.0,
                                    help="β rises linearly from 0 over this many epochs.")
    recon_weight: float = _setting(1.0, label="Reconstruction weight", flag="--recon-weight", kind="float", lo=0.0,
                                   hi=MAX_BETA, step=0.1,
                                   help="0 trains on the KL alone; β 0 on the reconstruction alone (an autoencoder).",
                                   live=True)
    seed: int = _setting(0, label="Seed", flag="--seed", kind="int", lo=0, hi=2**31 - 1,
                         help="The same seed and settings train the same model.")
    device: str = _setting("auto", label="Device", flag="--device", kind="choice", options=DEVICES, advanced=True,
                           help="auto takes a GPU when there is one.")
    binarize: bool = _setting(False, label="Binarize pixels", flag="--binarize", kind="switch", advanced=True,
                              help="Dynamic binarization: each batch resamples every pixel ~ Bernoulli(its intensity).")
    train_limit: int | None = _setting(None, label="Training images", flag="--train-limit", kind="int", lo=1, hi=10**7,
                                       optional=True, advanced=True,
                                       help="Use only the first N training images (a quick demonstration).")
    image_size: int = _setting(32, label="Image size", flag="--image-size", kind="int", lo=IMAGE_SIDE_RANGE[0],
                               hi=IMAGE_SIDE_RANGE[1], advanced=True, only_for="folder",
                               help="Your own image folder only: each image is resized and centre-cropped to this "
                                    "many pixels a side.")
    channels: int = _setting(3, label="Channels", flag="--channels", kind="int", lo=1, hi=3,
                             options=(("1", "1: grey"), ("3", "3: colour (RGB)")), advanced=True, only_for="folder",
                             help="Your own image folder only: 1 reads the images as grey, 3 in colour.")
    log_every: int = 20  # steps between step-metric callbacks
    data_dir: str | None = field(default=None, compare=False)

    def __post_init__(self):
        _check_fields(self)
        object.__setattr__(self, "log_every", _check_int("Log interval", self.log_every, 1, 100_000))
        object.__setattr__(self, "data_dir", _check_path_text("Data folder", self.data_dir))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d)


def configs_from(values: dict[str, Any], **train_extra) -> tuple[ModelConfig, TrainConfig]:
    """Both configs from settings' values (the others keep their declared defaults); the model takes its
    dataset's image shape. A bad value raises ConfigError with the readable message."""
    train_cfg = TrainConfig(**{k: v for k, v in values.items() if k in settings_of(TrainConfig)}, **train_extra)
    shape = dataset_shape(train_cfg.dataset, train_cfg.image_size, train_cfg.channels)
    model_cfg = ModelConfig(**{k: v for k, v in values.items() if k in settings_of(ModelConfig)}, image_shape=shape)
    return model_cfg, train_cfg


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
