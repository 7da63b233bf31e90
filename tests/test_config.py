"""The settings, typed into a config or onto the command line: every value is a valid config (or a run)
or one readable sentence, never a traceback; the bounds are the declared ones; the CLI and the forms
read the same declarations. Hypothesis feeds 1,200 random configs and 1,000 random argument lists; inside
the CLI property the trainer and the data are stand-ins, and `test_real_tiny_runs` runs a few for real."""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as hs

import vae.cli as cli
from tests.conftest import ROOT, assert_one_sentence, malicious_files, tiny_checkpoint, tiny_dataset
from vae import checkpoint as ckpt_io
from vae import data
from vae.data import dataset_names
from vae.config import (ARCHITECTURES, DEVICES, LIKELIHOODS, LR_SCHEDULES, MAX_BETA, MAX_PARAMS, ConfigError,
                        ModelConfig, TrainConfig)
from vae.training.distributed import SINGLE
from vae.nets.model import pick_device


# ---- settings: every field bounded, validated in one place ---------------------------------------

TEXT = hs.one_of(
    hs.text(max_size=20),
    hs.sampled_from(["", " ", "nan", "-nan", "inf", "-inf", "1e400", "-1e400", "1e-3", "0", "1", "2.5", "64",
                     "65", "4096", "4097", "auto", "AUTO", "512,256", "1,2,3,4,5,6,7", "512;256", "٣", "0x10",
                     "1_000", "None", "True", "9" * 400]),
)
JUNK = hs.one_of(  # what a typo, a form, a JSON file or a foreign checkpoint can hand the validation
    hs.none(), hs.booleans(), hs.integers(), hs.just(10**400), hs.just(-(10**400)),
    hs.floats(allow_nan=True, allow_infinity=True), TEXT, hs.binary(max_size=4),
    hs.lists(hs.one_of(hs.integers(-5, 5000), TEXT, hs.floats()), max_size=8),
    hs.dictionaries(hs.text(max_size=3), hs.integers(), max_size=2), hs.tuples(),
)
SIZES = hs.lists(hs.integers(-2, 4200), max_size=8)


def mostly(good, bad=JUNK, one_in: int = 8):
    """good, and bad once in `one_in` draws (one_of would draw each half the time, and a config with a
    dozen fields would then almost never be valid)."""
    return hs.integers(1, one_in).flatmap(lambda i: bad if i == 1 else good)


MODEL_FIELDS = {
    "arch": mostly(hs.sampled_from(ARCHITECTURES)),
    "latent_dim": mostly(hs.integers(-3, 70)),
    "hidden": mostly(hs.just("auto") | SIZES | SIZES.map(lambda s: ",".join(map(str, s)))),
    "likelihood": mostly(hs.sampled_from(LIKELIHOODS)),
    "image_shape": mostly(hs.sampled_from([(1, 28, 28), [1, 28, 28], (3, 32, 32), (1, 28, 20), (3, 64, 64), (1, 8, 8),
                                           (3, 128, 128), (2, 28, 28), (1, 7, 28), (3, 129, 8), (1, 27, 27), (3, 30, 30)])),
}
TRAIN_FIELDS = {
    "dataset": mostly(hs.sampled_from(dataset_names())),
    "epochs": mostly(hs.integers(-3, 1100)),
    "batch_size": mostly(hs.integers(-3, 4200)),
    "lr": mostly(hs.floats(-0.05, 1.05)),
    "lr_schedule": mostly(hs.sampled_from(LR_SCHEDULES)),
    "beta": mostly(hs.floats(-0.1, 1100.0)),
    "warmup_epochs": mostly(hs.floats(-0.1, 1100.0)),
    "recon_weight": mostly(hs.floats(-0.1, 1100.0)),
    "seed": mostly(hs.integers(-3, 2**32)),
    "device": mostly(hs.sampled_from(DEVICES)),
    "binarize": mostly(hs.booleans()),
    "log_every": mostly(hs.integers(-2, 200_000)),
    "train_limit": mostly(hs.none() | hs.integers(-2, 10**7 + 5)),
    "image_size": mostly(hs.integers(-1, 140)),
    "channels": mostly(hs.integers(-1, 4)),
}


def assert_within_bounds(m: ModelConfig, t: TrainConfig) -> None:
    """A config that passed validation holds only the issue's values, with the right types."""
    assert m.arch in ARCHITECTURES and m.likelihood in LIKELIHOODS
    c, h, w = m.image_shape
    assert c in (1, 3) and 8 <= h <= 128 and 8 <= w <= 128 and all(type(v) is int for v in m.image_shape)
    assert m.arch == "mlp" or (h % 2 == 0 and w % 2 == 0)  # the conv net halves the image
    assert t.channels in (1, 3) and 8 <= t.image_size <= 128
    assert type(m.latent_dim) is int and 1 <= m.latent_dim <= 64
    assert type(m.hidden) is tuple and 1 <= len(m.hidden) <= 6
    assert all(type(h) is int and 1 <= h <= 4096 for h in m.hidden)
    assert t.dataset in dataset_names() and t.device in DEVICES and t.lr_schedule in LR_SCHEDULES
    assert type(t.epochs) is int and 1 <= t.epochs <= 1000
    assert type(t.batch_size) is int and 1 <= t.batch_size <= 4096
    assert type(t.lr) is float and 0 < t.lr <= 1
    assert type(t.beta) is float and 0 <= t.beta <= MAX_BETA
    assert t.train_limit is None or type(t.train_limit) is int and t.train_limit >= 1


@settings(max_examples=700, deadline=None)
@given(model=hs.fixed_dictionaries({}, optional=MODEL_FIELDS), train=hs.fixed_dictionaries({}, optional=TRAIN_FIELDS))
def test_any_settings_give_a_valid_config_or_one_readable_sentence(model, train):
    try:
        m = ModelConfig(**model)
        t = TrainConfig(**train)
    except ConfigError as e:
        event("refused")
        assert_one_sentence(str(e), capital=True, max_len=300)
        return
    event("valid")
    assert_within_bounds(m, t)
    # What passed can be saved in a checkpoint and read back unchanged.
    assert ModelConfig.from_dict(m.to_dict()) == m and TrainConfig.from_dict(t.to_dict()) == t


FIELD_WORDS = {"latent": "latent dim", "hidden": "hidden", "batch": "batch size", "lr": "learning rate",
               "epochs": "epochs", "beta": "kl weight β", "weights": "weights"}


@settings(max_examples=500, deadline=None)
@given(
    latent=hs.integers(-2, 70),
    hidden=hs.lists(hs.integers(-1, 4200), max_size=8),
    batch=hs.integers(-2, 4200),
    lr=hs.floats(-0.1, 1.2) | hs.sampled_from([0.0, -0.0, 5e-324, 1.0, 1.0000000000000002, math.nan, math.inf]),
    epochs=hs.integers(-2, 1100),
    beta=hs.floats(-1.0, 1e4) | hs.sampled_from([-0.0, 0.0, -5e-324, math.nan, math.inf, -math.inf]),
)
@example(latent=1, hidden=[1], batch=1, lr=5e-324, epochs=1, beta=0.0)  # every lower bound, just inside
@example(latent=64, hidden=[4096] * 6, batch=4096, lr=1.0, epochs=1000, beta=MAX_BETA)  # every field's upper bound: too many weights
@example(latent=64, hidden=[1000, 1000, 1000], batch=4096, lr=1.0, epochs=1000, beta=MAX_BETA)  # the upper bounds, within the weights
@example(latent=0, hidden=[512], batch=128, lr=1e-3, epochs=10, beta=1.0)
@example(latent=65, hidden=[512], batch=128, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[0], batch=128, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[4097], batch=128, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[8] * 7, batch=128, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[], batch=128, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[512], batch=0, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[512], batch=4097, lr=1e-3, epochs=10, beta=1.0)
@example(latent=2, hidden=[512], batch=128, lr=0.0, epochs=10, beta=1.0)
@example(latent=2, hidden=[512], batch=128, lr=1.0000000000000002, epochs=10, beta=1.0)
@example(latent=2, hidden=[512], batch=128, lr=1e-3, epochs=0, beta=1.0)
@example(latent=2, hidden=[512], batch=128, lr=1e-3, epochs=1001, beta=1.0)
@example(latent=2, hidden=[512], batch=128, lr=1e-3, epochs=10, beta=-5e-324)
def test_the_bounds_are_exactly_the_issues(latent, hidden, batch, lr, epochs, beta):
    """latent dim 1-64, batch 1-4096, 0 < lr <= 1, epochs 1-1000, beta >= 0 (and at most MAX_BETA),
    hidden sizes 1-4096, 1 to 6 layers, and at most MAX_PARAMS weights (so that every model trained can be
    saved and loaded): accepted exactly inside, refused outside, naming what to change."""
    def linears(sizes):
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    ok = {
        "latent": 1 <= latent <= 64,
        "hidden": 1 <= len(hidden) <= 6 and all(1 <= h <= 4096 for h in hidden),
        "batch": 1 <= batch <= 4096,
        "lr": 0 < lr <= 1,
        "epochs": 1 <= epochs <= 1000,
        "beta": 0 <= beta <= MAX_BETA,
    }
    if ok["latent"] and ok["hidden"]:  # the MLP's weights: encoder, the two heads, decoder
        weights = linears([784, *hidden]) + 2 * (hidden[-1] * latent + latent) + linears([latent, *hidden[::-1], 784])
        ok["weights"] = weights <= MAX_PARAMS
    try:
        ModelConfig(latent_dim=latent, hidden=tuple(hidden))
        TrainConfig(batch_size=batch, lr=lr, epochs=epochs, beta=beta)
    except ConfigError as e:
        assert not all(ok.values()), f"refused good settings: {e}"
        assert_one_sentence(str(e), capital=True, max_len=300)
        bad = [k for k, v in ok.items() if not v]
        if len(bad) == 1:
            assert FIELD_WORDS[bad[0]] in str(e).lower(), (bad, str(e))
    else:
        assert all(ok.values()), f"accepted {[k for k, v in ok.items() if not v]}"


def test_the_cli_and_the_forms_share_one_declaration_per_setting():
    """vae/config.py declares each setting once: the CLI's options, the Train form's inputs and the checks
    all come from it, so a value is refused with the same sentence wherever it is typed."""
    from streamlit.testing.v1 import AppTest

    from vae.config import ModelConfig, TrainConfig, settings_of

    declared = {**settings_of(ModelConfig), **settings_of(TrainConfig)}
    assert set(cli.setting_options()) == set(declared)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run().switch_page("pages/train.py").run()
    form_keys = {w.key for w in at.main if getattr(w, "key", None)} | {
        w.key for kind in ("number_input", "text_input", "selectbox", "checkbox") for w in at.get(kind)}
    assert {f"f_{name}" for name in declared} <= form_keys, sorted({f"f_{n}" for n in declared} - form_keys)
    labels = {w.label for kind in ("number_input", "text_input", "selectbox", "checkbox") for w in at.get(kind)}
    assert {s.label for s in declared.values() if not s.optional} <= labels
    with pytest.raises(ConfigError) as from_cli:
        cli.configs_from_args(cli.build_parser().parse_args(["train", "--latent-dim", "65"]))
    with pytest.raises(ConfigError) as direct:
        ModelConfig(latent_dim="65")
    assert str(from_cli.value) == str(direct.value) == "Latent dim must be from 1 to 64; you gave 65."


# ---- the command line: random argument lists --------------------------------------------------------

ARG_CHARS = hs.characters(exclude_categories=("Cc", "Cs"))  # a shell hands no NUL, rarely a control char
ARG_JUNK = hs.one_of(
    hs.text(ARG_CHARS, max_size=12),
    hs.sampled_from(["", " ", "-", "--", "-1", "nan", "inf", "-inf", "1e400", "1" * 40, "0", "auto", "1.5",
                     "512,,256", "x" * 300, "~", "/", ".", "..", "{good}", "{evil}", "{missing}", "{tmp}"]),
    hs.integers(-10, 5000).map(str),
    hs.floats().map(repr),
)
NUMBER = mostly(hs.integers(-3, 5000).map(str), ARG_JUNK, 4)
PATHS = mostly(hs.sampled_from(["{good}", "{evil}", "{missing}", "{tmp}", "{empty}", "{tmp}/out.pt"]), ARG_JUNK, 4)
TRAIN_FLAGS = {
    "--dataset": mostly(hs.sampled_from(dataset_names() + ("shapes",) * 4), ARG_JUNK, 4),
    "--data-dir": PATHS,
    "--latent-dim": mostly(hs.integers(-1, 70).map(str), ARG_JUNK, 4),
    "--arch": mostly(hs.sampled_from(ARCHITECTURES), ARG_JUNK, 4),
    "--hidden": mostly(hs.just("auto") | SIZES.map(lambda s: ",".join(map(str, s))), ARG_JUNK, 4),
    "--likelihood": mostly(hs.sampled_from(LIKELIHOODS), ARG_JUNK, 4),
    "--epochs": mostly(hs.integers(-1, 1100).map(str), ARG_JUNK, 4),
    "--batch-size": mostly(hs.integers(-1, 4200).map(str), ARG_JUNK, 4),
    "--lr": mostly(hs.floats(-0.05, 1.05).map(repr), ARG_JUNK, 4),
    "--lr-schedule": mostly(hs.sampled_from(LR_SCHEDULES), ARG_JUNK, 4),
    "--beta": mostly(hs.floats(-0.1, 1100.0).map(repr), ARG_JUNK, 4),
    "--warmup": NUMBER,
    "--recon-weight": NUMBER,
    "--seed": NUMBER,
    "--device": mostly(hs.sampled_from(DEVICES), ARG_JUNK, 4),
    "--train-limit": NUMBER,
    "--out": PATHS,
    "--resume": PATHS,
    "--notes": ARG_JUNK,
}
EVAL_FLAGS = {"--data-dir": PATHS, "--iw-samples": NUMBER, "--limit": NUMBER}


def _options(command: str) -> tuple[list[str], list[str]]:
    """The subcommand's (options that take a value, switches), read from the parser itself, so a
    flag added later is fed to the property too."""
    sub = next(a for a in cli.build_parser()._actions if a.choices and command in a.choices).choices[command]
    takes, switches = [], []
    for action in sub._actions:
        longs = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        if longs:
            (switches if action.nargs == 0 else takes).append(longs[0])
    return takes, switches


TRAIN_TAKES, TRAIN_SWITCHES = _options("train")
TRAIN_FLAGS.update({flag: ARG_JUNK for flag in TRAIN_TAKES if flag not in TRAIN_FLAGS})
STRANGERS = ["--bogus", "-x", "--lr=", "--epochs=3", "--latent-dim=0", "--json=1", "-", "--", "--help", "-h", "--qu"]


@hs.composite
def argument_lists(draw) -> list[str]:
    """A command (mostly train, often with --dataset shapes so that it runs), then random flags,
    values, switches, unknown flags and stray words, in any order."""
    command = draw(mostly(hs.sampled_from(["train"] * 6 + ["eval"] * 2 + ["list"]), ARG_JUNK, 10))
    argv = [command] if draw(hs.integers(0, 30)) else []
    flags, switches = (TRAIN_FLAGS, TRAIN_SWITCHES) if command == "train" else (EVAL_FLAGS, ["--json"])
    if command in ("eval", "list") and draw(hs.integers(0, 9)):
        argv.append(draw(PATHS))
    if command == "train" and draw(hs.integers(0, 2)):
        argv += ["--dataset", "shapes"]
    for _ in range(draw(hs.integers(0, 7))):
        kind = draw(hs.integers(0, 39))
        if kind < 30:
            flag = draw(hs.sampled_from(sorted(flags)))
            argv += [flag, draw(flags[flag])] if kind else [flag]  # kind 0: the value is missing
        elif kind < 36:
            argv.append(draw(hs.sampled_from(switches)))
        elif kind < 38:
            argv.append(draw(hs.sampled_from(STRANGERS)))
        else:
            argv.append(draw(ARG_JUNK))
    return argv


class RecordingTrainer:
    """Stands in for vae.training.trainer.Trainer in the CLI property: takes the configs as the real one does
    (validate, pick the device), records them and trains nothing, so one example takes milliseconds."""

    built: list[tuple[ModelConfig, TrainConfig]] = []
    steps_per_epoch = 1
    extras: dict = {}

    def __init__(self, model_cfg, train_cfg, train_data, test_data=None, stop_event=None, world=SINGLE):
        self.model_cfg, self.cfg, self.world = model_cfg, train_cfg, world
        self.device = pick_device(self.cfg.device)
        self.model = torch.nn.Linear(1, 1)  # what the run's weight digest reads
        self.train_data, self.x_train = train_data, train_data.images
        self.history, self.epoch, self.step, self.train_seconds = [], 0, 0, 0.0
        RecordingTrainer.built.append((self.model_cfg, self.cfg))

    def add_callback(self, event, fn):
        pass

    def restore(self, ckpt):
        self.history, self.epoch, self.step = list(ckpt.history), ckpt.epoch, ckpt.step

    def run(self):
        return self.history

    def checkpoint_payload(self, include_optimizer=True, notes=""):
        return {"notes": notes}

    def latest_test_metrics(self):
        return {"elbo": 100.0, "recon": 90.0, "kl": 10.0}


class _NoReplay:
    seconds = 0.0

    def __init__(self, *args, **kwargs):
        pass

    def attach(self, trainer):
        return self


@pytest.fixture
def cli_sandbox(tmp_path, monkeypatch):
    """An empty cwd and data folder, a good and a malicious checkpoint, and stand-ins for training,
    evaluation, saving and the shapes data (other datasets go through the real, offline loader)."""
    good = tiny_checkpoint(tmp_path)  # before save is replaced below
    tiny = {"train": tiny_dataset(64, "train"), "test": tiny_dataset(32, "test", 1)}
    tiny["colour"] = {split: tiny_dataset(32, split, channels=3) for split in ("train", "test")}
    real_load = data.load_dataset

    def offline_load(name, split="train", data_dir=None, download=False, *args):
        if name in ("shapes", "shapes-color"):
            return tiny[split] if name == "shapes" else tiny["colour"][split]
        return real_load(name, split, data_dir, False, *args)

    saved = []
    monkeypatch.setattr(cli, "Trainer", RecordingTrainer)
    monkeypatch.setattr(cli, "ReplayRecorder", _NoReplay, raising=False)  # it would encode with the model
    monkeypatch.setattr("vae.data.loading.load_dataset", offline_load)
    monkeypatch.setattr(cli.ckpt_io, "save", lambda payload, path: saved.append(Path(path)) or Path(path))
    monkeypatch.setattr(cli, "evaluate_model", lambda model, x: {"elbo": 100.0, "recon": 90.0, "kl": 10.0})
    monkeypatch.setattr(cli, "iw_log_likelihood", lambda model, x, k, g: torch.zeros(len(x)))
    (tmp_path / "cwd").mkdir()
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # a default --out (checkpoints/...) or a relative path lands here
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "empty"))
    marker = tmp_path / "PWNED"
    (tmp_path / "evil.pt").write_bytes(malicious_files(marker)["torch.save zip"])
    tokens = {"{good}": str(good), "{evil}": str(tmp_path / "evil.pt"),
              "{missing}": str(tmp_path / "missing.pt"), "{tmp}": str(tmp_path), "{empty}": str(tmp_path / "empty")}
    RecordingTrainer.built.clear()
    yield tokens, saved
    assert not marker.exists(), "a checkpoint's pickle payload ran"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """vae.cli.main in this process: (exit code, stdout, stderr); argparse's exits count as codes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_readable_failure(err: str) -> None:
    """argparse's usage line plus 'error: ...', or our own 'error: <one sentence>'; never a traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and lines[-1][len("error: "):].strip(), err
    if not any(line.startswith("usage:") for line in lines):  # ours, not argparse's
        assert len(lines) == 1, err
        assert_one_sentence(lines[-1][len("error: "):])


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argument_lists())
@example(argv=["train", "--dataset", "shapes", "--hidden", "4096,4096,4096,4096,4096,4096", "--latent-dim", "64"])
@example(argv=["train", "--dataset", "shapes", "--lr", "1e400"])
@example(argv=["train", "--resume", "{evil}"])
@example(argv=["train", "--resume", "{tmp}"])
@example(argv=["eval", "{evil}", "--json"])
@example(argv=["eval", "/dev/zero"])
@example(argv=["train", "--data-dir", "x" * 5000, "--dataset", "mnist"])
@example(argv=["train", "--dataset", "shapes", "--device", "cuda"] if not torch.cuda.is_available() else ["list"])
def test_any_command_line_runs_or_exits_2_with_one_readable_line(cli_sandbox, argv):
    tokens, saved = cli_sandbox
    for token, value in tokens.items():
        argv = [a.replace(token, value) for a in argv]
    built_before = len(RecordingTrainer.built)
    code, out, err = run_cli(argv)
    assert code in (0, 2), (argv, code, err)
    command = argv[0] if argv[:1] in (["train"], ["eval"], ["list"]) else "other"
    event(f"{command} exit {code}")  # --hypothesis-show-statistics: how often each path is taken
    if code == 2:
        assert_readable_failure(err)
        return
    assert "Traceback" not in err and out.strip(), (argv, err)
    if "--json" in argv and not ({"-h", "--help"} & set(argv)) and out.strip().startswith("{"):
        json.loads(out.strip().splitlines()[-1])
    if argv[:1] == ["train"] and len(RecordingTrainer.built) > built_before:
        assert_within_bounds(*RecordingTrainer.built[-1])
        assert saved, "a finished run saves its checkpoint"


@pytest.mark.parametrize("extra", [
    [],
    ["--arch", "conv", "--hidden", "16", "--latent-dim", "3", "--json"],
    ["--likelihood", "gaussian", "--beta", "0", "--lr-schedule", "cosine", "--binarize"],
    ["--hidden", "8,8,8,8,8,8", "--batch-size", "4096", "--warmup", "2", "--recon-weight", "0"],
    ["--lr", "1", "--hidden", "8"],  # may diverge: then exit 1 with the NaN sentence, never a traceback
])
def test_real_tiny_runs(tmp_path, monkeypatch, extra):
    """A few command lines from the property, trained for real on shapes, then evaluated."""
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "run.pt"
    argv = ["train", "--dataset", "shapes", "--epochs", "1", "--train-limit", "256", "--batch-size", "64",
            "--hidden", "32", "--quiet", "--device", "cpu", "--out", str(out), *extra]
    code, stdout, err = run_cli(argv)
    if code == 1:
        assert "loss became" in err and "try a smaller learning rate" in err and "Traceback" not in err, err
        return
    assert code == 0, err
    assert ckpt_io.load(out).epoch == 1
    code, stdout, err = run_cli(["eval", str(out), "--limit", "100", "--iw-samples", "3", "--json"])
    assert code == 0, err
    assert math.isfinite(json.loads(stdout.splitlines()[-1])["iw_ll"])


@pytest.mark.parametrize("path", ["/dev/zero", "/tmp", "/nonexistent/model.pt"])
def test_eval_of_a_device_a_folder_or_nothing_is_one_sentence(path):
    """/dev/zero has size 0 and never ends: reading it whole would hang; it is refused unread."""
    code, _, err = run_cli(["eval", path])
    assert code == 2
    assert_readable_failure(err)
