"""Background training jobs without any UI: lifecycle, snapshots, autosave, faults, the cap."""
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import tiny_dataset
from vae import checkpoint as ckpt_io
from vae.training import jobs as jobs_mod
from vae.training.threads import TRAINING_THREAD_NAME
from vae.config import ModelConfig, TrainConfig
from vae.training.jobs import JobLimitReached, JobRegistry


@pytest.fixture
def tiny_loader(monkeypatch):
    """Jobs load their data by name; serve the tiny in-memory sets instead of generating shapes."""
    data = {"train": tiny_dataset(256, "train", 0), "test": tiny_dataset(64, "test", 1)}
    monkeypatch.setattr("vae.data.loading.load_dataset", lambda name, split, *args, **kwargs: data[split])
    return data


def _cfgs(**train):
    base = dict(dataset="shapes", epochs=2, batch_size=32, seed=0, log_every=2, device="cpu")
    return ModelConfig(hidden=(32,)), TrainConfig(**{**base, **train})


def _wait(job, timeout=60):
    job.join(timeout)
    assert not job.state().active, "job did not end in time"
    return job.state()


def test_job_runs_publishes_and_autosaves(tmp_path, tiny_loader, monkeypatch):
    registry = JobRegistry(tmp_path, max_running=1)
    saved_epochs = []
    original_save = ckpt_io.save

    def spy(payload, path):
        saved_epochs.append(payload["epoch"])
        return original_save(payload, path)

    monkeypatch.setattr(ckpt_io, "save", spy)
    job = registry.start(*_cfgs())
    state = _wait(job)
    assert state.status == "finished", state.message
    assert saved_epochs[:2] == [1, 2], "autosave after every epoch"
    history = job.history()
    assert sum(r["kind"] == "epoch" for r in history) == 2
    assert sum(r["kind"] == "step" for r in history) == 8  # 8 steps/epoch, log_every 2 -> 4 per epoch
    ckpt = ckpt_io.load(state.checkpoint_path)
    assert ckpt.epoch == 2 and ckpt.history == history
    assert ckpt.optimizer_state, "a Train-page job keeps its optimizer, so `python -m vae train --resume` goes on"
    view = job.view()
    assert view.key.startswith("job:") and not view.live
    for k, v in view.model.state_dict().items():
        assert torch.equal(v, ckpt.model.state_dict()[k]), k


def test_view_is_rebuilt_only_when_the_version_changes(tmp_path, tiny_loader):
    job = JobRegistry(tmp_path).start(*_cfgs(epochs=1))
    _wait(job)
    first, second = job.view(), job.view()
    assert first.model is second.model
    assert first.class_names == ["a", "b", "c"]


def test_stop_ends_quickly_and_saves(tmp_path, tiny_loader):
    job = JobRegistry(tmp_path).start(*_cfgs(epochs=1000))
    deadline = time.time() + 30
    while job.state().step < 3 and time.time() < deadline:
        time.sleep(0.02)
    t0 = time.perf_counter()
    job.stop()
    state = _wait(job, timeout=5)
    assert time.perf_counter() - t0 < 1.0, "Stop must end the job within a second"
    assert state.status == "stopped"
    ckpt = ckpt_io.load(state.checkpoint_path)
    assert ckpt.step == state.step and "elbo" in ckpt.test_metrics


def test_diverging_job_fails_with_a_readable_status_and_keeps_last_good_epoch(tmp_path, tiny_loader, monkeypatch):
    calls = {"n": 0}
    real_step = jobs_mod.Trainer._train_step

    def poisoned(self, x, beta):  # epoch 1 trains normally, then the loss turns NaN
        calls["n"] += 1
        if self.epoch >= 1:
            with torch.no_grad():
                self.model.to_logvar.bias.fill_(float("nan"))
        return real_step(self, x, beta)

    monkeypatch.setattr(jobs_mod.Trainer, "_train_step", poisoned)
    job = JobRegistry(tmp_path).start(*_cfgs(epochs=3))
    state = _wait(job)
    assert state.status == "failed"
    assert state.message.startswith("failed: loss became nan at step 9; try a smaller learning rate")
    assert "last good epoch is kept" in state.message
    assert ckpt_io.load(state.checkpoint_path).epoch == 1


def test_failed_save_is_reported_and_training_continues(tmp_path, tiny_loader, monkeypatch):
    def disk_full(payload, path):
        raise ckpt_io.CheckpointError("Could not save the checkpoint to x (No space left on device); free some disk space.")

    monkeypatch.setattr(jobs_mod.ckpt_io, "save", disk_full)
    job = JobRegistry(tmp_path).start(*_cfgs(epochs=2))
    state = _wait(job)
    assert state.status == "finished"
    assert "could not be saved" in state.message and "No space left on device" in state.message
    assert job.view() is not None and job.state().step == 16


def test_a_disk_that_fills_mid_write_costs_one_epochs_save_and_no_temp_file(tmp_path, tiny_loader, monkeypatch):
    """torch's zip writer meets a full disk part-way through an epoch's save (a RuntimeError, as it reports
    it): the job says so in a sentence, trains on, and the next epoch's save works; nothing is left behind."""
    real_save, calls = torch.save, []

    def fills_once(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            f.write(b"PK\x03\x04" + bytes(4096))  # part of the file is on disk when the space runs out
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 4100")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_once)
    job = JobRegistry(tmp_path).start(*_cfgs(epochs=3))
    seen = []
    while job.state().active:
        seen.append(job.state().message)
        time.sleep(0.01)
    state = _wait(job)
    assert any(m.startswith("Autosave failed, training goes on") and "the disk is full" in m for m in seen), set(seen)
    assert state.status == "finished" and state.message == f"finished: saved {Path(state.checkpoint_path).name}"
    assert ckpt_io.load(state.checkpoint_path).epoch == 3
    assert not list(tmp_path.glob(".*.tmp")), list(tmp_path.iterdir())


def test_missing_dataset_fails_with_the_data_message(tmp_path):
    model_cfg, train_cfg = _cfgs()
    train_cfg = TrainConfig(**{**train_cfg.to_dict(), "dataset": "mnist", "data_dir": str(tmp_path / "nothing")})
    job = JobRegistry(tmp_path).start(model_cfg, train_cfg)
    state = _wait(job)
    assert state.status == "failed" and str(tmp_path / "nothing") in state.message


def test_registry_caps_running_jobs_and_names_the_running_one(tmp_path, tiny_loader):
    registry = JobRegistry(tmp_path, max_running=1)
    first = registry.start(*_cfgs(epochs=1000))
    with pytest.raises(JobLimitReached, match=f"already running \\({first.name}\\)"):
        registry.start(*_cfgs())
    registry.stop_all()
    second = registry.start(*_cfgs(epochs=1))
    _wait(second)
    assert first.name != second.name, "a new job never overwrites an older checkpoint"


def test_registry_forgets_old_finished_jobs(tmp_path, tiny_loader, monkeypatch):
    monkeypatch.setattr(jobs_mod, "FINISHED_JOBS_KEPT", 2)
    registry = JobRegistry(tmp_path, max_running=1)
    for _ in range(4):
        _wait(registry.start(*_cfgs(epochs=1)))
    assert len(registry.jobs()) <= 3


def test_max_jobs_env(monkeypatch):
    monkeypatch.setenv("VAE_MAX_JOBS", "3")
    assert jobs_mod.default_max_jobs() == 3
    monkeypatch.delenv("VAE_MAX_JOBS")
    assert jobs_mod.default_max_jobs() == (2 if torch.cuda.is_available() else 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_the_training_thread_runs_at_a_lower_priority_than_the_server(tmp_path, monkeypatch):
    from vae.training.threads import lower_this_threads_priority, training_nice

    monkeypatch.setenv("VAE_TRAIN_NICE", "7")
    assert training_nice() == 7
    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen = {}

    def worker():
        seen["nice"] = lower_this_threads_priority()
        seen["workers"] = torch.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["nice"] == min(before + 7, 19)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the calling (server) thread is untouched
    monkeypatch.setenv("VAE_TRAIN_NICE", "0")
    assert lower_this_threads_priority() is None  # 0: leave priorities alone
    monkeypatch.delenv("VAE_TRAIN_NICE")
    assert training_nice() == 0  # the default leaves them alone too
    assert lower_this_threads_priority() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names and priorities are read from /proc")
@pytest.mark.parametrize("nice", [None, "5"])
def test_a_jobs_threads_carry_its_name_and_the_priority_asked_for(tmp_path, tiny_loader, monkeypatch, nice):
    """The job thread is named, so ps, top -H and the benchmarks can tell its CPU from the server's;
    with VAE_TRAIN_NICE unset its priority is the server's, with 5 it is 5 lower."""
    if nice is None:
        monkeypatch.delenv("VAE_TRAIN_NICE", raising=False)
    else:
        monkeypatch.setenv("VAE_TRAIN_NICE", nice)
    server_nice = os.getpriority(os.PRIO_PROCESS, 0)
    seen = []
    original_save = ckpt_io.save

    def spy(payload, path):  # autosave runs in the job's thread
        seen.append((open("/proc/thread-self/comm").read().strip(),
                     os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return original_save(payload, path)

    monkeypatch.setattr(ckpt_io, "save", spy)
    state = _wait(JobRegistry(tmp_path, max_running=1).start(*_cfgs()))
    assert state.status == "finished", state.message
    assert seen and all(name == TRAINING_THREAD_NAME for name, _ in seen)
    expected = server_nice if nice is None else min(server_nice + int(nice), 19)
    assert all(p == expected for _, p in seen), (seen, expected)
    assert os.getpriority(os.PRIO_PROCESS, 0) == server_nice
    assert open("/proc/thread-self/comm").read().strip() != TRAINING_THREAD_NAME


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names are read from /proc")
def test_torchs_worker_threads_inherit_the_training_threads_name():
    from vae.training.threads import become_a_training_thread

    names, done = {}, threading.Event()

    def worker():
        become_a_training_thread()
        big = torch.randn(1 << 20)  # far above at::parallel_for's grain: an OpenMP parallel region for sure
        for _ in range(3):
            big.relu_()  # torch starts this thread's OpenMP workers now
        names.update({tid: open(f"/proc/self/task/{tid}/comm").read().strip() for tid in os.listdir("/proc/self/task")})
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    t.join(30)
    assert done.is_set()
    named = [tid for tid, name in names.items() if name == TRAINING_THREAD_NAME]
    assert len(named) >= (2 if torch.get_num_threads() > 1 else 1), names
