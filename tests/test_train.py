"""The Trainer: steps, epochs, the fast step against autograd, determinism and divergence."""
import math
import threading

import pytest
import torch

from tests.conftest import trainer_with
from vae.config import ModelConfig, TrainConfig
from vae.training.trainer import Trainer, TrainingDiverged, beta_at


@pytest.mark.parametrize("arch, hidden", [("mlp", (32,)), ("conv", (16,))])
def test_one_train_step_changes_weights_and_eval_does_not(tiny_data, arch, hidden):
    trainer = Trainer(ModelConfig(arch=arch, hidden=hidden), TrainConfig(batch_size=16, device="cpu"), *tiny_data)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.evaluate_test()
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, before[k]), f"eval changed {k}"
    trainer.model.train()
    trainer._train_step(trainer.x_train[:16], beta=1.0)
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert set(changed) == set(before), "every parameter should move after one Adam step"


def test_same_seed_gives_identical_weights(tiny_data, tiny_cfg):
    runs = []
    for _ in range(2):
        trainer = trainer_with(tiny_data, tiny_cfg)
        torch.manual_seed(123 + len(runs))  # global RNG differs between runs: must not matter
        trainer.run()
        runs.append(trainer.model.state_dict())
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_different_seed_gives_different_weights(tiny_data, tiny_cfg):
    a = trainer_with(tiny_data, tiny_cfg, seed=0)
    b = trainer_with(tiny_data, tiny_cfg, seed=1)
    a.run(), b.run()
    assert not torch.equal(a.model.to_mu.weight, b.model.to_mu.weight)


def test_history_has_step_and_epoch_records(tiny_data, tiny_cfg):
    trainer = trainer_with(tiny_data, tiny_cfg)
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
    trainer = trainer_with(tiny_data, tiny_cfg, lr=1.0, epochs=50)
    with torch.no_grad():
        trainer.model.to_logvar.bias.fill_(200.0)  # exp(200) overflows: the loss is inf at once
    with pytest.raises(TrainingDiverged, match=r"at step 1; try a smaller learning rate"):
        trainer.run()
