"""Checkpoints a user can trust: a plain dict written atomically, read back with
`torch.load(weights_only=True)` and checked key by key, so no file can run code and any
fault is one readable sentence in a CheckpointError."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vae.checkpoint.codes import CODES_KEY, StoredCodesError, check_stored_codes
from vae.checkpoint.replay import REPLAY_KEY, ReplayError, check_replay
from vae.config import EPOCHS_RANGE, ConfigError, ModelConfig, TrainConfig, live_settings
from vae.nets.model import VAE

FORMAT = "latent-explorer-checkpoint"
FORMAT_VERSION = 1
MAX_HISTORY = 200_000
MAX_EPOCH, MAX_STEP = EPOCHS_RANGE[1], 10**9  # counters: the most epochs a run may have, and far more steps
MAX_EXTRAS_DEPTH, MAX_EXTRAS_ITEMS = 16, 200_000
DATASET_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")  # ours, or any other shown as a plain label
HISTORY_KEYS = {"step": {"epoch", "step", "recon", "kl", "total"}, "epoch": {"epoch", "step"},
                "change": {"epoch", "step", "setting", "old", "new"}}  # what the pages read
# Every field a history record may have: what the trainer and the app's jobs write (vae/training/). "stepped"
# marks a step record logged because the run was paused, stepping or in slow motion (one per batch then).
HISTORY_FIELDS = frozenset({"kind", "epoch", "step", "recon", "kl", "total", "beta", "samples_per_sec", "train_recon",
                            "train_kl", "train_total", "seconds", "world_size", "test_recon", "test_kl", "test_elbo",
                            "partial", "stepped", "setting", "old", "new"})
MAX_CHANGES = 10_000  # settings changed mid-run (vae/training/control.py), each one a press of a button
MAX_STOPS = 1_000  # partial-epoch records, one each time a run is stopped or interrupted and saved
# Adam's param_group as this project's optimizer writes it: each flag at the value the trainer uses (the
# implementation flags foreach and fused are the trainer's own choice on resume and may be anything).
ADAM_FLAGS = {"amsgrad": False, "maximize": False, "capturable": False, "differentiable": False,
              "decoupled_weight_decay": False, "weight_decay": 0}
ADAM_REQUIRED_KEYS = frozenset({"lr", "betas", "eps", "params", *ADAM_FLAGS} - {"decoupled_weight_decay"})
# and those a group may lack (older torch writes no decoupled_weight_decay)
ADAM_GROUP_KEYS = ADAM_REQUIRED_KEYS | {"foreach", "fused", "initial_lr", "decoupled_weight_decay"}
ADAM_STATE_KEYS = frozenset({"step", "exp_avg", "exp_avg_sq"})
REQUIRED_KEYS = ("format", "format_version", "model_config", "state_dict", "dataset", "class_names", "history")


class CheckpointError(Exception):
    """A checkpoint could not be saved or loaded; the message is one sentence for a person."""


@dataclass
class Checkpoint:
    """A validated checkpoint: the model, ready in eval mode on the CPU, and its metadata."""

    model: VAE
    model_config: ModelConfig
    train_config: TrainConfig | None
    dataset: str
    class_names: list[str]
    history: list[dict]
    test_metrics: dict[str, float]
    epoch: int = 0
    step: int = 0
    created: str = ""
    notes: str = ""
    path: str = ""
    optimizer_state: dict | None = None
    rng_state: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "uploaded model"

    @property
    def resumable(self) -> bool:
        """A run that stopped before its planned epochs and kept Adam's state (the Train page offers Resume)."""
        return self.optimizer_state is not None and self.train_config is not None and self.epoch < self.train_config.epochs


def validate(payload: Any, label: str) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{label} is a PyTorch file but not a Latent Explorer checkpoint; train or export one with this app.")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{label} is missing the {missing[0]!r} entry; it may be damaged or from another tool.")
    version = payload["format_version"]
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"{label} has format version {version!r}, which this version of the app cannot read; update the app.")
    try:
        model_cfg = ModelConfig.from_dict(payload["model_config"])
        train_cfg = None if payload.get("train_config") is None else TrainConfig.from_dict(payload["train_config"])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{label} has settings this app cannot use: {e}") from None
    model = _model_from_state(model_cfg, payload["state_dict"], label)
    return Checkpoint(
        model=model,
        model_config=model_cfg,
        train_config=train_cfg,
        dataset=_check_dataset(payload["dataset"], label),
        class_names=_check_str_list(payload["class_names"], label),
        history=_check_history(payload["history"], _bound_of(payload, train_cfg), label),
        test_metrics=_check_metrics(payload.get("test_metrics", {}), label),
        epoch=_check_count(payload.get("epoch", 0), "epoch", label, MAX_EPOCH),
        step=_check_count(payload.get("step", 0), "step", label, MAX_STEP),
        created=_check_str(payload.get("created", ""), "created", label),
        notes=_check_str(payload.get("notes", ""), "notes", label),
        optimizer_state=_check_optimizer(payload.get("optimizer_state"), model, label),
        rng_state=_check_rng(payload.get("rng_state"), label),
        extras=_check_extras(payload.get("extras"), model_cfg, payload["class_names"], label),
    )


def _bound_of(payload: dict, train_cfg: TrainConfig | None) -> dict[str, int]:
    """history_bound for the counters the file states (checked as counters first)."""
    epoch = payload.get("epoch", 0)
    step = payload.get("step", 0)
    if not (type(epoch) is int and type(step) is int):  # the counters' own checks say what is wrong
        return {"epoch": 0, "step": 0}
    return history_bound(min(max(epoch, 0), MAX_EPOCH), min(max(step, 0), MAX_STEP),
                         train_cfg.log_every if train_cfg else 1)


def _model_from_state(model_cfg: ModelConfig, state: Any, label: str) -> VAE:
    model = VAE(model_cfg)
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise CheckpointError(f"{label} holds weights for a different architecture than its settings describe; it cannot be loaded.")
    for key, ref in expected.items():
        t = state[key]
        if not isinstance(t, torch.Tensor) or t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(f"{label} has a weight {key!r} of the wrong shape or type for its architecture; it cannot be loaded.")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{label} has NaN or infinite values in {key!r}; the training that wrote it had diverged.")
    model.load_state_dict(state)
    return model.eval()


def _check_extras(value: Any, model_cfg: ModelConfig, class_names: Any, label: str) -> dict[str, Any]:
    """Extras are optional (a non-dict reads as none) and plain (bounded depth and size, walked without
    recursion); a training replay in them must be well formed (it comes back unpacked)."""
    if not isinstance(value, dict):
        return {}
    stack, seen = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if depth > MAX_EXTRAS_DEPTH or seen > MAX_EXTRAS_ITEMS:
            raise CheckpointError(f"{label} has extras nested deeper or larger than a checkpoint holds; it may be damaged.")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else ()
        stack.extend((child, depth + 1) for child in children)
    n_classes = len(class_names) if isinstance(class_names, list) else None
    if REPLAY_KEY in value:
        try:
            value = {**value, REPLAY_KEY: check_replay(value[REPLAY_KEY], model_cfg.latent_dim, n_classes, model_cfg.image_shape)}
        except ReplayError as e:
            raise CheckpointError(f"{label} holds a training replay that cannot be used ({e}); it may be damaged: train or save the model again.") from None
    if CODES_KEY in value:
        try:
            check_stored_codes(value[CODES_KEY], model_cfg.latent_dim, n_classes)
        except StoredCodesError as e:
            raise CheckpointError(f"{label} holds stored codes that cannot be used ({e}); it may be damaged: train or save the model again.") from None
    return value


def _check_str(value: Any, key: str, label: str) -> str:
    if not isinstance(value, str) or len(value) > 10_000:
        raise CheckpointError(f"{label} has an invalid {key!r} entry; it may be damaged.")
    return value


def _check_count(value: Any, key: str, label: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise CheckpointError(f"{label} has an invalid {key!r} entry; it may be damaged.")
    return value


def _check_dataset(value: Any, label: str) -> str:
    """The dataset's name, a label only: one of ours loads its images, any other is shown as it is."""
    if not isinstance(value, str) or not DATASET_LABEL.fullmatch(value):
        raise CheckpointError(f"{label} has an invalid dataset name; it may be damaged.")
    return value


def _check_optimizer(value: Any, model: VAE, label: str) -> dict | None:
    """Adam's state exactly as this project's torch.optim.Adam writes it for this model's parameters, or None:
    one param group with the trainer's flags, and per parameter a step and two finite float32 moments."""
    if value is None:
        return None
    if not _adam_state_ok(value, [p.shape for p in model.parameters()]):
        raise CheckpointError(f"{label} has an optimizer state that is not the one this app's Adam writes for its "
                              f"model (other flags, keys or shapes); it may be damaged: load the model without "
                              f"resuming, or train it again.")
    return value


def _adam_state_ok(value: Any, shapes: list[torch.Size]) -> bool:
    if type(value) is not dict or set(value) != {"state", "param_groups"} or type(value["param_groups"]) is not list:
        return False
    if len(value["param_groups"]) != 1 or type(value["state"]) is not dict:
        return False
    (group,) = value["param_groups"]
    if type(group) is not dict or not ADAM_REQUIRED_KEYS <= group.keys() <= ADAM_GROUP_KEYS:
        return False
    flags_ok = all(group.get(k, v) == v and isinstance(group.get(k, v), (bool, int, float)) for k, v in ADAM_FLAGS.items())
    numbers_ok = (group["params"] == list(range(len(shapes))) and _is_number(group["lr"]) and 0 < group["lr"] <= 1
                  and group["betas"] in ((0.9, 0.999), [0.9, 0.999]) and group["eps"] == 1e-8
                  and group.get("foreach") in (None, False, True) and group.get("fused") in (None, False, True))
    return flags_ok and numbers_ok and all(
        type(i) is int and 0 <= i < len(shapes) and _adam_moments_ok(state, shapes[i])
        for i, state in value["state"].items())


def _adam_moments_ok(state: Any, shape: torch.Size) -> bool:
    if type(state) is not dict or set(state) != ADAM_STATE_KEYS:
        return False
    step = state["step"]
    if not (isinstance(step, torch.Tensor) and step.numel() == 1 and step.dtype == torch.float32
            and 0 <= float(step) <= MAX_STEP):
        return False
    moments = [state["exp_avg"], state["exp_avg_sq"]]
    return all(isinstance(m, torch.Tensor) and m.shape == shape and m.dtype == torch.float32
               and bool(torch.isfinite(m).all()) for m in moments) and bool((moments[1] >= 0).all())


def _check_rng(value: Any, label: str) -> torch.Tensor | None:
    """The CPU generator's state: a uint8 tensor of the length torch's generator keeps, that a generator takes,
    or None."""
    if value is None:
        return None
    expected = torch.Generator().get_state()
    ok = isinstance(value, torch.Tensor) and value.dtype == expected.dtype and value.shape == expected.shape
    try:
        ok = ok and torch.Generator().set_state(value) is not None
    except (RuntimeError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise CheckpointError(f"{label} has a random-number state this version of torch cannot restore; it may be damaged.")
    return value


def _check_str_list(value: Any, label: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 1000 or not all(isinstance(v, str) and len(v) < 200 for v in value):
        raise CheckpointError(f"{label} has an invalid list of class names; it may be damaged.")
    return list(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_metrics(value: Any, label: str) -> dict[str, float]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in value.items()):
        raise CheckpointError(f"{label} has invalid test metrics; it may be damaged.")
    return {k: float(v) for k, v in value.items()}


def _change_ok(record: dict) -> bool:
    """A change record: exactly its fields, a setting a running job may change, and the old and new values
    each within that setting's declared range (vae/config.py)."""
    live = live_settings()
    if record.keys() != HISTORY_KEYS["change"] | {"kind"} or record["setting"] not in live:
        return False
    try:
        for v in (record["old"], record["new"]):
            if not _is_number(v):
                return False
            live[record["setting"]].check(v)
    except ConfigError:
        return False
    return all(_is_number(record[k]) and 0 <= record[k] <= limit for k, limit in (("epoch", MAX_EPOCH),
                                                                                    ("step", MAX_STEP)))


def _history_record_ok(record: Any) -> bool:
    """A step record (epoch, step, recon, kl, total), an epoch record (epoch, step; test_recon, test_kl
    and test_elbo together or not at all) or a change record (_change_ok): its kind as text, known fields
    only, every other value a finite number."""
    if type(record) is not dict or not isinstance(record.get("kind"), str) or record["kind"] not in HISTORY_KEYS:
        return False
    if not record.keys() <= HISTORY_FIELDS:
        return False
    if record["kind"] == "change":
        return isinstance(record.get("setting"), str) and _change_ok(record)
    if {"setting", "old", "new"} & record.keys():
        return False
    numbers = {k: v for k, v in record.items() if k != "kind"}
    test = {"test_recon", "test_kl", "test_elbo"} & set(numbers)
    return (all(_is_number(v) and math.isfinite(v) and abs(v) < 1e12 for v in numbers.values())
            and HISTORY_KEYS[record["kind"]] <= set(numbers) and len(test) in (0, 3)
            and 0 <= numbers["epoch"] <= MAX_EPOCH and 0 <= numbers["step"] <= MAX_STEP)


def changes_of(history: list[dict]) -> list[dict]:
    """The change records of a history, in order."""
    return [r for r in history if r.get("kind") == "change"]


def describe_change(record: dict, when: bool = True) -> str:
    """'β 1 → 8 at step 120' for the CLI and the replay; without `when`, 'β 1 → 8' (the curves' marks sit at it)."""
    names = {"beta": "β", "recon_weight": "recon weight", "lr": "lr"}
    text = f"{names.get(record['setting'], record['setting'])} {record['old']:g} → {record['new']:g}"
    return f"{text} at step {record['step']}" if when else text


def history_bound(epoch: int, step: int, log_every: int) -> dict[str, int]:
    """The most records of each kind a run at this epoch and step writes: an epoch record per finished epoch
    (and per stop), a step record every log_every steps and at each epoch's end (and around each stop), and
    one per batch run while paused, stepping or in slow motion ("stepped", counted apart); the changes."""
    return {"epoch": epoch + 1 + MAX_STOPS, "step": step // max(log_every, 1) + 2 * (epoch + 1) + MAX_STOPS,
            "stepped": step, "change": MAX_CHANGES}


def _counted_as(record: dict) -> str:
    return "stepped" if record["kind"] == "step" and record.get("stepped") else record["kind"]


def _check_history(value: Any, bound: dict[str, int], label: str) -> list[dict]:
    if type(value) is not list or len(value) > MAX_HISTORY:
        raise CheckpointError(f"{label} has an invalid training history; it may be damaged.")
    if len(value) > sum(bound.values()):
        raise CheckpointError(f"{label} has more history records than its epochs and steps allow; it may be damaged.")
    if len(set(map(id, value))) != len(value):  # the trainer writes each record once; pickle's memo repeats one
        raise CheckpointError(f"{label} has a training history that repeats one record by reference, which no run "
                              f"writes; it may be damaged.")
    if not all(_history_record_ok(record) for record in value):
        raise CheckpointError(f"{label} has an invalid training history record; it may be damaged.")
    for kind, most in bound.items():
        if sum(_counted_as(record) == kind for record in value) > most:
            raise CheckpointError(f"{label} has more {kind} records in its history than a run of its length writes; it "
                                  f"may be damaged.")
    return value
