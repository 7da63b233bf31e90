"""Teaching with the training itself (vae/training/control.py): a paused trainer holds its step count and uses no
CPU; Step runs exactly one batch, or the rest of an epoch; slow motion keeps its pace; a change of β at step s
leaves steps <= s as they were and weighs the KL by the new β from s + 1; the change is in the history, in the
checkpoint, and a resumed run goes on with the last values; malformed change records are refused."""
from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import thread_cpu_ticks, tiny_dataset, wait_held
from vae import checkpoint as ckpt_io
from vae.config import ConfigError, ModelConfig, TrainConfig
from vae.checkpoint.format import changes_of, describe_change
from vae.training.control import Control, check_change
from vae.training.trainer import Trainer

STEPS_PER_EPOCH = 8  # 128 images in batches of 16


def _trainer(control: Control | None = None, epochs: int = 3, **train) -> Trainer:
    cfg = TrainConfig(**{**dict(dataset="shapes", epochs=epochs, batch_size=16, seed=0, log_every=100, device="cpu"),
                         **train})
    return Trainer(ModelConfig(arch="mlp", latent_dim=2, hidden=(32,)), cfg, tiny_dataset(128, "train", 0),
                   tiny_dataset(32, "test", 1), control=control)


def _in_thread(trainer: Trainer) -> threading.Thread:
    thread = threading.Thread(target=trainer.run, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _paused_run(**train):
    """A trainer held at its first batch, training in a thread; stopped (and the stop seen) on the way out."""
    control = Control()
    control.pause()
    trainer = _trainer(control, **train)
    thread = _in_thread(trainer)
    try:
        wait_held(control)
        yield control, trainer, thread
    finally:
        trainer.stop_event.set()
        control.wake()
        thread.join(10)
    assert not thread.is_alive(), "a stop did not reach the paused thread"


def test_a_paused_trainer_keeps_its_step_for_5_s_and_uses_no_cpu():
    with _paused_run() as (control, trainer, thread):
        step, history = trainer.step, len(trainer.history)
        linux = Path(f"/proc/self/task/{control.thread_id}/stat").exists()
        before = thread_cpu_ticks(control.thread_id) if linux else 0
        time.sleep(5)
        assert trainer.step == step and len(trainer.history) == history
        if linux:  # a tick is 10 ms: a thread that waits on its condition uses none
            assert thread_cpu_ticks(control.thread_id) - before <= 1
        assert control.waiting and thread.is_alive()


def test_step_runs_exactly_one_batch_and_step_epoch_the_rest_of_the_epoch():
    with _paused_run() as (control, trainer, _):
        for k in range(1, 6):
            control.step()
            time.sleep(0.05)
            wait_held(control)
            assert trainer.step == k
        stepped = [r for r in trainer.history if r["kind"] == "step"]
        assert [r["step"] for r in stepped] == [1, 2, 3, 4, 5] and all(r["stepped"] == 1 for r in stepped)
        control.step_epoch()  # the rest of epoch 1
        time.sleep(0.05)
        wait_held(control)
        assert trainer.step == STEPS_PER_EPOCH and trainer.epoch == 1
        control.step_epoch()  # then a whole epoch
        time.sleep(0.05)
        wait_held(control)
        assert trainer.step == 2 * STEPS_PER_EPOCH and trainer.epoch == 2


def test_slow_motion_runs_at_the_chosen_pace():
    control = Control()
    control.set_slow(100)
    trainer = _trainer(control, epochs=2)
    thread = _in_thread(trainer)
    t0 = time.monotonic()
    thread.join(30)
    seconds = time.monotonic() - t0
    batches = 2 * STEPS_PER_EPOCH
    # The first batch goes at once; the rest one every 100 ms. Two test evaluations add their own time.
    assert (batches - 1) * 0.1 * 0.8 <= seconds <= (batches - 1) * 0.1 * 1.2 + 0.5, seconds
    assert trainer.step == batches


@pytest.mark.parametrize("s", [3, 8])  # mid-epoch, and at an epoch's end
def test_a_beta_change_at_step_s_leaves_the_past_and_weighs_the_kl_by_the_new_beta_after(s):
    plain = _trainer(log_every=1)
    plain.run()
    control = Control()
    control.pause()
    changed = _trainer(control, log_every=1)
    thread = _in_thread(changed)
    try:
        wait_held(control)
        control.step(s)
        while changed.step < s or not control.waiting:
            time.sleep(0.005)
        control.change("beta", 8)
        control.resume()
        thread.join(30)
    finally:
        changed.stop_event.set()
        control.wake()
    steps = lambda t: [r for r in t.history if r["kind"] == "step"]  # noqa: E731
    before, after = steps(plain), steps(changed)
    for a, b in zip(before[:s], after[:s]):
        assert (a["recon"], a["kl"], a["total"], a["beta"]) == (b["recon"], b["kl"], b["total"], b["beta"])
    for r in after[s:]:
        assert r["beta"] == 8.0 and r["total"] == pytest.approx(r["recon"] + 8.0 * r["kl"], rel=1e-5)
    assert after[s]["total"] != pytest.approx(before[s]["total"], rel=1e-6)
    [change] = changes_of(changed.history)
    assert change == {"kind": "change", "epoch": s / STEPS_PER_EPOCH, "step": s, "setting": "beta", "old": 1.0,
                      "new": 8.0}
    assert describe_change(change) == f"β 1 → 8 at step {s}"


def test_a_change_survives_a_checkpoint_and_a_resume_goes_on_with_the_last_values(tmp_path):
    control = Control()
    control.pause()
    trainer = _trainer(control, epochs=4)
    thread = _in_thread(trainer)
    try:
        wait_held(control)
        control.change("beta", 4)
        control.change("lr", 3e-3)
        control.change("recon_weight", 0.5)
        control.step(2)
        while trainer.step < 2 or not control.waiting:
            time.sleep(0.005)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)
        path = tmp_path / "changed.pt"
        ckpt_io.save(trainer.checkpoint_payload(), path)
    finally:
        trainer.stop_event.set()
        control.wake()
        thread.join(10)
    loaded = ckpt_io.load(path)
    assert [(c["setting"], c["new"]) for c in changes_of(loaded.history)] == [("beta", 4.0), ("lr", 3e-3),
                                                                             ("recon_weight", 0.5)]
    assert (loaded.train_config.beta, loaded.train_config.lr, loaded.train_config.recon_weight) == (4.0, 3e-3, 0.5)
    resumed = Trainer(loaded.model_config, loaded.train_config, tiny_dataset(128, "train", 0), tiny_dataset(32, "test", 1))
    resumed.restore(loaded)
    resumed.cfg = TrainConfig(**{**resumed.cfg.to_dict(), "log_every": 1})
    resumed.train_epoch()
    step = [r for r in resumed.history if r["kind"] == "step"][-1]
    assert step["beta"] == 4.0 and step["total"] == pytest.approx(0.5 * step["recon"] + 4.0 * step["kl"], rel=1e-5)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)


@pytest.mark.parametrize("setting, value", [("beta", -1), ("beta", 1e9), ("lr", 0), ("epochs", 5), ("seed", 1)])
def test_a_change_outside_the_forms_ranges_is_refused_in_one_sentence(setting, value):
    with pytest.raises(ConfigError) as e:
        check_change(setting, value)
    assert str(e.value).count(".") >= 1 and "\n" not in str(e.value)


def test_a_stop_wakes_a_thread_held_in_slow_motion():
    control = Control()
    control.set_slow(5000)
    trainer = _trainer(control)
    thread = _in_thread(trainer)
    time.sleep(0.3)
    t0 = time.monotonic()
    trainer.stop_event.set()
    control.wake()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - t0 < 1.0


if os.name != "posix":  # the CPU accounting reads /proc
    test_a_paused_trainer_keeps_its_step_for_5_s_and_uses_no_cpu = pytest.mark.skip("needs /proc")(
        test_a_paused_trainer_keeps_its_step_for_5_s_and_uses_no_cpu)


def test_list_and_eval_report_a_runs_changes(tmp_path, capsys):
    import json

    import vae.cli as cli

    control = Control()
    control.change("beta", 4)
    trainer = _trainer(control, epochs=1)
    trainer.run()
    ckpt_io.save(trainer.checkpoint_payload(), tmp_path / "changed.pt")
    assert cli.main(["list", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert listed["checkpoints"][0]["changes"] == [{"kind": "change", "epoch": 0.0, "step": 0, "setting": "beta",
                                                    "old": 1.0, "new": 4.0}]
    assert cli.main(["list", str(tmp_path)]) == 0
    assert "changed: β 1 → 4 at step 0" in capsys.readouterr().out
    assert cli.main(["eval", str(tmp_path / "changed.pt"), "--data-dir", str(tmp_path / "data"), "--limit", "32",
                     "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [c["new"] for c in evaluated["changes"]] == [4.0]
