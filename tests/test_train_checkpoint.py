"""Trainer behaviour, checkpoint round trips, hostile files, and safe names."""
import io
import math
import os
import pickle
import threading

import pytest
import torch

from vae import checkpoint as ckpt_io
from vae.checkpoint import CheckpointError
from vae.config import ModelConfig, TrainConfig
from vae.train import Trainer, TrainingDiverged, beta_at


def _trainer(tiny_data, tiny_cfg, **train_overrides):
    model_cfg, train_cfg = tiny_cfg
    train_cfg = TrainConfig(**{**train_cfg.to_dict(), **train_overrides})
    return Trainer(model_cfg, train_cfg, *tiny_data)


@pytest.mark.parametrize("arch, hidden", [("mlp", (32,)), ("conv", (16,))])
def test_one_train_step_changes_weights_and_eval_does_not(tiny_data, arch, hidden):
    trainer = Trainer(ModelConfig(arch=arch, hidden=hidden), TrainConfig(batch_size=16, device="cpu"), *tiny_data)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.evaluate(trainer.x_test)
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), f"eval changed {k}"
    trainer.model.train()
    trainer._train_step(trainer.x_train[:16], beta=1.0)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert set(changed) == set(before), "every parameter should move after one Adam step"


def test_same_seed_gives_identical_weights(tiny_data, tiny_cfg):
    runs = []
    for _ in range(2):
        trainer = _trainer(tiny_data, tiny_cfg)
        torch.manual_seed(123 + len(runs))  # global RNG differs between runs: must not matter
        trainer.run()
        runs.append(trainer.model.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_different_seed_gives_different_weights(tiny_data, tiny_cfg):
    a = _trainer(tiny_data, tiny_cfg, seed=0)
    b = _trainer(tiny_data, tiny_cfg, seed=1)
    a.run(), b.run()
    assert not torch.equal(a.model.to_mu.weight, b.model.to_mu.weight)


def test_history_has_step_and_epoch_records(tiny_data, tiny_cfg):
    trainer = _trainer(tiny_data, tiny_cfg)
    steps, epochs = [], []
    trainer.add_callback("on_step", lambda tr, rec: steps.append(rec))
    trainer.add_callback("on_epoch_end", lambda tr, rec: epochs.append(rec))
    history = trainer.run()
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert len(steps) == 4  # 4 steps/epoch, log_every=2 -> 2 records per epoch
    for r in epochs:
        assert r["test_elbo"] == pytest.approx(r["test_recon"] + r["test_kl"])
        assert all(math.isfinite(v) for k, v in r.items() if k != "kind")
    assert history == steps[:2] + epochs[:1] + steps[2:] + epochs[1:]


def test_stop_event_stops_between_steps(tiny_data, tiny_cfg):
    stop = threading.Event()
    model_cfg, train_cfg = tiny_cfg
    trainer = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 100}), *tiny_data, stop_event=stop)
    trainer.add_callback("on_step", lambda tr, rec: stop.set() if tr.step >= 6 else None)
    trainer.run()
    assert trainer.step == 6
    assert trainer.epoch == 1


def test_beta_warmup_is_linear():
    cfg = TrainConfig(beta=2.0, warmup_epochs=4)
    assert [beta_at(cfg, e) for e in (0, 1, 2, 4, 9)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    assert beta_at(TrainConfig(beta=0.5), 0) == 0.5


def test_divergence_stops_with_readable_error(tiny_data, tiny_cfg):
    trainer = _trainer(tiny_data, tiny_cfg, lr=1.0, epochs=50)
    with torch.no_grad():
        trainer.model.to_logvar.bias.fill_(200.0)  # exp(200) overflows: the loss is inf at once
    with pytest.raises(TrainingDiverged, match=r"at step 1; try a smaller learning rate"):
        trainer.run()


# ---- checkpoints -----------------------------------------------------------------------

def _saved(tiny_data, tiny_cfg, tmp_path, **payload_kw):
    trainer = _trainer(tiny_data, tiny_cfg)
    trainer.run()
    path = ckpt_io.save(trainer.checkpoint_payload(**payload_kw), tmp_path / "model.pt")
    return trainer, path


def test_checkpoint_round_trip_equal_on_every_key(tiny_data, tiny_cfg, tmp_path):
    trainer, path = _saved(tiny_data, tiny_cfg, tmp_path, notes="tiny")
    ckpt = ckpt_io.load(path)
    state = trainer.model.state_dict()
    assert set(ckpt.model.state_dict()) == set(state)
    for k, v in ckpt.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert ckpt.model_config == trainer.model_cfg
    assert ckpt.train_config == trainer.cfg
    assert ckpt.history == trainer.history
    assert ckpt.test_metrics == trainer.latest_test_metrics()
    assert (ckpt.epoch, ckpt.step, ckpt.notes, ckpt.dataset) == (2, 8, "tiny", "shapes")
    assert ckpt.class_names == ["a", "b", "c"]
    assert not ckpt.model.training


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_data, tiny_cfg, tmp_path):
    model_cfg, train_cfg = tiny_cfg
    full = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 3}), *tiny_data)
    full.run()
    first = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 1}), *tiny_data)
    first.run()
    path = ckpt_io.save(first.checkpoint_payload(), tmp_path / "half.pt")
    resumed = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 3}), *tiny_data)
    resumed.restore(ckpt_io.load(path))
    resumed.run()
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v)
    assert [r["epoch"] for r in resumed.history if r["kind"] == "epoch"] == [1, 2, 3]


def test_save_is_atomic_and_failed_save_is_readable(tiny_data, tiny_cfg, tmp_path, monkeypatch):
    trainer, path = _saved(tiny_data, tiny_cfg, tmp_path)
    good = path.read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        ckpt_io.save(trainer.checkpoint_payload(), path)
    assert path.read_bytes() == good, "a failed save must leave the previous checkpoint intact"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"], "no temp files left behind"


def test_save_into_unwritable_folder_is_readable(tiny_data, tiny_cfg, tmp_path):
    trainer = _trainer(tiny_data, tiny_cfg)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="Could not save"):
        ckpt_io.save(trainer.checkpoint_payload(), blocker / "x.pt")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _corrupt_files(tmp_path, good: bytes):
    marker = tmp_path / "PWNED"
    evil_zip = io.BytesIO()
    torch.save({"format": ckpt_io.FORMAT, "x": _Payload(marker)}, evil_zip)
    return marker, {
        "empty": b"",
        "random bytes": os.urandom(4096),
        "text": b"hello, this is not a model\n",
        "truncated": good[: len(good) // 2],
        "bit-flipped zip": good[:200] + bytes(b ^ 0xFF for b in good[200:260]) + good[260:],
        "malicious torch.save": evil_zip.getvalue(),
        "malicious raw pickle": pickle.dumps(_Payload(marker)),
        "foreign tensor dict": _torch_bytes({"weight": torch.zeros(3)}),
        "foreign plain list": _torch_bytes([1, 2, 3]),
    }


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_hostile_and_broken_files_raise_checkpoint_error(tiny_data, tiny_cfg, tmp_path):
    _, path = _saved(tiny_data, tiny_cfg, tmp_path)
    marker, files = _corrupt_files(tmp_path, path.read_bytes())
    for label, data in files.items():
        f = tmp_path / f"{label.replace(' ', '_')}.pt"
        f.write_bytes(data)
        for source in (f, data):
            with pytest.raises(CheckpointError) as info:
                ckpt_io.load(source)
            message = str(info.value)
            assert message.endswith(".") and "\n" not in message, (label, message)
            assert "Traceback" not in message
    assert not marker.exists(), "the pickle's payload ran"


def test_malicious_pickle_message_says_it_was_refused(tmp_path):
    marker = tmp_path / "PWNED"
    with pytest.raises(CheckpointError, match="refused"):
        ckpt_io.load(pickle.dumps(_Payload(marker)))
    assert not marker.exists()


def _tampered(tiny_data, tiny_cfg, tmp_path, edit):
    trainer = _trainer(tiny_data, tiny_cfg)
    payload = trainer.checkpoint_payload()
    edit(payload)
    return _torch_bytes(payload)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda p: p.pop("state_dict"), "missing"),
        (lambda p: p.update(format_version=99), "format version"),
        (lambda p: p["model_config"].update(latent_dim=500), "settings"),
        (lambda p: p["state_dict"].pop("to_mu.bias"), "different architecture"),
        (lambda p: p["state_dict"].update({"to_mu.bias": torch.zeros(7)}), "wrong shape"),
        (lambda p: p["state_dict"].update({"to_mu.bias": torch.zeros(2, dtype=torch.float64)}), "wrong shape or type"),
        (lambda p: p["state_dict"]["to_mu.bias"].fill_(float("nan")), "NaN"),
        (lambda p: p.update(history="oops"), "history"),
        (lambda p: p.update(class_names=[1, 2]), "class names"),
    ],
)
def test_tampered_checkpoints_are_refused(tiny_data, tiny_cfg, tmp_path, edit, words):
    with pytest.raises(CheckpointError, match=words):
        ckpt_io.load(_tampered(tiny_data, tiny_cfg, tmp_path, edit))


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt_io, "MAX_CHECKPOINT_BYTES", 10)
    (tmp_path / "big.pt").write_bytes(b"x" * 11)
    with pytest.raises(CheckpointError, match="limit"):
        ckpt_io.load(tmp_path / "big.pt")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "", "x" * 65, "a\\b", "con fig", "/etc/passwd", "ok.pt/x"])
def test_unsafe_checkpoint_names_are_refused(tmp_path, name):
    with pytest.raises(CheckpointError, match="name"):
        ckpt_io.checkpoint_path(name, tmp_path)


def test_safe_names_stay_inside_and_never_overwrite(tmp_path):
    path = ckpt_io.checkpoint_path("mnist-2d.pt", tmp_path)
    assert path == (tmp_path / "mnist-2d.pt").resolve()
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="already exists"):
        ckpt_io.checkpoint_path("mnist-2d", tmp_path)
    assert ckpt_io.unique_checkpoint_path("mnist-2d", tmp_path).name == "mnist-2d-2.pt"


def test_list_checkpoints_reports_metadata_and_errors(tiny_data, tiny_cfg, tmp_path):
    _saved(tiny_data, tiny_cfg, tmp_path)
    (tmp_path / "broken.pt").write_bytes(b"nope")
    infos = {i.name: i for i in ckpt_io.list_checkpoints(tmp_path)}
    assert infos["model"].dataset == "shapes" and infos["model"].latent_dim == 2 and infos["model"].epochs == 2
    assert math.isfinite(infos["model"].test_elbo)
    assert infos["broken"].error and not infos["broken"].dataset
    assert ckpt_io.list_checkpoints(tmp_path / "missing") == []


@pytest.mark.parametrize("hidden", [(32,), (64, 32), (48, 32, 16)])
@pytest.mark.parametrize("beta, recon_weight", [(1.0, 1.0), (0.0, 1.0), (4.0, 0.5), (1.0, 0.0)])
def test_the_mlp_fast_step_gives_autogradss_loss_and_gradients(hidden, beta, recon_weight):
    """vae/mlp_step.py writes the MLP's backward out by hand: its loss sums and every gradient equal
    autograd's on vae/loss.py's terms, in float64 to rounding."""
    from vae.loss import elbo_terms
    from vae.mlp_step import MLPStep
    from vae.model import VAE

    torch.manual_seed(0)
    model = VAE(ModelConfig(hidden=hidden, latent_dim=3)).double()
    x = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    assert MLPStep.applies(model, torch.device("cpu"))
    sums, grads = MLPStep(model)(x, beta, recon_weight, torch.Generator().manual_seed(7))
    terms = elbo_terms(model, x, model(x, torch.Generator().manual_seed(7)), beta, recon_weight)
    terms.total.mean().backward()
    expected = torch.stack([terms.recon.sum(), terms.kl.sum(), terms.total.sum()]).detach()
    torch.testing.assert_close(torch.as_tensor(sums, dtype=torch.float64), expected, rtol=1e-12, atol=1e-9)
    assert {id(p) for p, _ in grads} == {id(p) for p in model.parameters()}
    for param, grad in grads:
        torch.testing.assert_close(grad, param.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", [ModelConfig(arch="conv", hidden=(32,)), ModelConfig(hidden=(32,), likelihood="gaussian")])
def test_other_models_train_through_autograd(config):
    from vae.mlp_step import MLPStep
    from vae.model import VAE

    assert not MLPStep.applies(VAE(config), torch.device("cpu"))


def test_the_fast_step_and_autograd_train_the_same_weights(tiny_data, tiny_cfg):
    """A whole epoch each way, float32: the weights agree to float32 rounding accumulated over the steps."""
    fast, plain = _trainer(tiny_data, tiny_cfg), _trainer(tiny_data, tiny_cfg)
    plain.fast_step = None
    assert fast.fast_step is not None
    fast.run_epoch(), plain.run_epoch()
    for (name, a), b in zip(fast.model.state_dict().items(), plain.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)


