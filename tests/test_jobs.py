"""Background training jobs without any UI: lifecycle, snapshots, autosave, faults, the cap, one writer per file."""
import dataclasses
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import thread_cpu_ticks, tiny_dataset, wait_held
from vae import checkpoint as ckpt_io
from vae.training import jobs as jobs_mod
from vae.training import registry as registry_mod
from vae.training.threads import TRAINING_THREAD_NAME
from vae.config import ModelConfig, TrainConfig
from vae.training.registry import JobLimitReached, JobRegistry


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
    monkeypatch.setattr(registry_mod, "FINISHED_JOBS_KEPT", 2)
    registry = JobRegistry(tmp_path, max_running=1)
    for _ in range(4):
        _wait(registry.start(*_cfgs(epochs=1)))
    assert len(registry.jobs()) <= 3


def test_max_jobs_env(monkeypatch):
    monkeypatch.setenv("VAE_MAX_JOBS", "3")
    assert registry_mod.default_max_jobs() == 3
    monkeypatch.delenv("VAE_MAX_JOBS")
    assert registry_mod.default_max_jobs() == (2 if torch.cuda.is_available() else 1)


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


# ---- one run per checkpoint file: a run reserves its file when it starts ----------------------------

def _interrupted(folder: Path, name: str = "cut", **train) -> Path:
    """A run that stopped after 1 of 1000 planned epochs, with Adam's state: one the Train page offers to resume."""
    from vae.training.trainer import Trainer

    model_cfg, train_cfg = _cfgs(epochs=1000, **train)
    trainer = Trainer(model_cfg, train_cfg, tiny_dataset(256, "train", 0), tiny_dataset(64, "test", 1))
    trainer.run_epoch()
    return ckpt_io.save(trainer.checkpoint_payload(), folder / f"{name}.pt")


def _saved_once(job, timeout=30):
    deadline = time.monotonic() + timeout
    while not Path(job.state().checkpoint_path).exists():
        assert job.state().active and time.monotonic() < deadline, job.state().message
        time.sleep(0.01)


def test_three_writers_to_one_name_give_three_files_or_a_refusal(tmp_path, tiny_loader, monkeypatch, capsys):
    """Two tabs name their run "same" and `python -m vae train --out same.pt` runs beside them, with two jobs
    allowed (a GPU server's default): each writer saves its own run or is refused in one sentence; no
    writer reports a save that another run overwrote."""
    from tests.conftest import assert_one_sentence
    from vae.cli import main

    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    registry = JobRegistry(tmp_path, max_running=2)
    saved, refused = {}, []  # writer -> (the file it says it saved, its seed); the sentences of the refused
    first = registry.start(*_cfgs(epochs=1000, seed=1), name="same")
    try:
        second = registry.start(*_cfgs(epochs=2, seed=2), name="same")
    except ckpt_io.CheckpointError as e:
        second = refused.append(str(e))
    code = main(["train", "--dataset", "shapes", "--epochs", "2", "--batch-size", "32", "--hidden", "32", "--seed", "3",
                 "--device", "cpu", "--quiet", "--out", str(tmp_path / "same.pt")])
    err = capsys.readouterr().err.strip()
    if code == 0:
        saved["cli"] = (tmp_path / "same.pt", 3)
    else:
        assert code == 2 and len(err.splitlines()) == 1, err
        refused.append(err.removeprefix("error: "))
    first.stop()
    for writer, job, seed in (("tab 1", first, 1), ("tab 2", second, 2)):
        if job is not None:
            state = _wait(job)
            assert state.status in ("finished", "stopped"), state.message
            saved[writer] = (Path(state.checkpoint_path), seed)
    for sentence in refused:
        assert_one_sentence(sentence)
        assert "same.pt is being written by another training run" in sentence, sentence
    paths = [path.resolve() for path, _ in saved.values()]
    assert len(set(paths)) == len(paths), f"two runs reported saving the same file: {saved}"
    for writer, (path, seed) in saved.items():
        assert ckpt_io.load(path).train_config.seed == seed, f"{writer}'s run was overwritten in {path.name}"
    assert len(saved) + len(refused) == 3 and "tab 1" in saved


@pytest.mark.parametrize("servers", [1, 2])
def test_two_unnamed_starts_at_the_same_moment_get_two_files(tmp_path, tiny_loader, servers):
    """Two tabs press Start with no name at once, on one server (one registry) or two sharing the folder."""
    registries = [JobRegistry(tmp_path, max_running=2) for _ in range(servers)]
    barrier, jobs = threading.Barrier(2), {}

    def press(seed):
        barrier.wait()
        jobs[seed] = registries[seed % servers].start(*_cfgs(epochs=2, seed=seed))

    threads = [threading.Thread(target=press, args=(seed,)) for seed in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    states = {seed: _wait(job) for seed, job in jobs.items()}
    assert all(s.status == "finished" for s in states.values()), [s.message for s in states.values()]
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["shapes-2d-2.pt", "shapes-2d.pt"]
    for seed, state in states.items():
        assert ckpt_io.load(state.checkpoint_path).train_config.seed == seed


def test_one_interrupted_run_resumed_twice_trains_once(tmp_path, tiny_loader):
    """Two tabs press Resume on one interrupted run, on one server or two sharing the folder: one run trains,
    the other tab gets a sentence; once the run stopped it can be resumed again."""
    from tests.conftest import assert_one_sentence

    path = _interrupted(tmp_path)
    first = JobRegistry(tmp_path).resume(path)
    for other in (JobRegistry(tmp_path), JobRegistry(tmp_path, max_running=2)):
        with pytest.raises((ckpt_io.CheckpointError, JobLimitReached)) as refused:
            other.resume(path)
        assert_one_sentence(str(refused.value))
        assert "cut.pt is being written by another training run" in str(refused.value)
    first.stop()
    assert _wait(first).status == "stopped"
    again = JobRegistry(tmp_path).resume(path)
    again.stop()
    assert _wait(again).status == "stopped"


def test_a_reservation_lasts_the_run_and_the_listing_ignores_it(tmp_path, tiny_loader):
    """While a run trains its file is reserved (a hidden lock beside it that no listing shows and no clean-up of
    killed saves removes, however old); when it ends, finished, stopped or failed, the reservation goes."""
    job = JobRegistry(tmp_path).start(*_cfgs(epochs=1000), name="held")
    _saved_once(job)
    path = Path(job.state().checkpoint_path)
    assert ckpt_io.in_use(path)
    hidden = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert [p.name for p in hidden] == [".held.pt.lock"]
    hour_ago = time.time() - 3600
    os.utime(hidden[0], (hour_ago, hour_ago))
    assert [i.name for i in ckpt_io.list_checkpoints(tmp_path)] == ["held"] and hidden[0].exists()
    job.stop()
    assert _wait(job).status == "stopped"
    assert not ckpt_io.in_use(path) and sorted(p.name for p in tmp_path.iterdir()) == ["held.pt"]
    colour = ModelConfig(hidden=(32,), image_shape=(3, 32, 32))  # the grey tiny images do not fit it: the job fails
    failed = JobRegistry(tmp_path).start(colour, _cfgs()[1], name="no-data")
    assert _wait(failed).status == "failed" and not list(tmp_path.glob(".*.lock"))


def test_two_groups_of_variants_started_together_get_their_own_files(tmp_path, tiny_loader):
    model_cfg, train_cfg = _cfgs(epochs=2)
    variants = [("a", train_cfg), ("b", dataclasses.replace(train_cfg, beta=0.0))]
    groups = [JobRegistry(tmp_path).start_variants(model_cfg, variants, name="lec") for _ in range(2)]
    assert all(_wait(group).status == "finished" for group in groups)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["lec-2-a.pt", "lec-2-b.pt", "lec-a.pt", "lec-b.pt"]
    assert not list(tmp_path.glob(".*"))


def test_a_checkpoint_folder_that_cannot_be_written_fails_the_job_before_training(read_only_folder, tiny_loader):
    """The job, or a group of variants, fails at once with the sentence; no data is read and nothing trains."""
    from tests.conftest import assert_one_sentence

    registry = JobRegistry(read_only_folder, max_running=1)
    job = registry.start(*_cfgs(epochs=2))
    group = registry.start_variants(_cfgs()[0], [("a", _cfgs()[1]), ("b", _cfgs()[1])], name="lec")
    for ended in (job, group, *group.members):
        state = _wait(ended)
        assert state.status == "failed" and state.step == 0 and ended.history() == [], state
        message = state.message.removeprefix("failed: ")
        assert_one_sentence(message)
        assert message.startswith(f"Cannot write a checkpoint into {read_only_folder.resolve()}"), message


def test_resume_reads_the_files_own_image_folder_only_where_home_would(tmp_path, tiny_loader, monkeypatch):
    """A checkpoint of the user's own images names their folder; Resume reads it only when the server allows
    that folder (as Home's data folder input does), else one sentence and no data is read."""
    from tests.conftest import assert_one_sentence
    from vae.data import DataFolderRefused

    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    asked = []
    real = jobs_mod.TrainingJob._load_data

    def spy(self):
        asked.append(self.train_cfg.data_dir)
        return real(self)

    monkeypatch.setattr(jobs_mod.TrainingJob, "_load_data", spy)
    for folder in ("/", str(tmp_path / "elsewhere")):
        path = _interrupted(tmp_path, "own", dataset="folder", data_dir=folder)
        with pytest.raises(DataFolderRefused) as refused:
            JobRegistry(tmp_path).resume(path, data_dir=str(tmp_path / "data"))
        assert_one_sentence(str(refused.value))
        assert asked == [] and not ckpt_io.in_use(path)
    allowed = tmp_path / "data" / "mine"
    path = _interrupted(tmp_path, "own", dataset="folder", data_dir=str(allowed))
    job = JobRegistry(tmp_path).resume(path, data_dir=str(tmp_path / "data"))
    job.stop()
    _wait(job)
    assert asked == [str(allowed)]


# --- teaching controls (vae/training/control.py) --------------------------------------------------------

def _held(job) -> None:
    wait_held(job.control, alive=lambda: job.state().active)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads a thread's CPU time from /proc")
def test_a_paused_job_holds_its_step_for_5_s_with_no_cpu_and_steps_exactly(tmp_path, tiny_loader):
    registry = JobRegistry(tmp_path, max_running=1)
    job = registry.start(*_cfgs(epochs=50))
    try:
        job.pause()
        _held(job)
        state, ticks = job.state(), thread_cpu_ticks(job.control.thread_id)
        time.sleep(5)
        assert job.state().step == state.step and job.state().version == state.version and job.state().paused
        assert thread_cpu_ticks(job.control.thread_id) - ticks <= 1  # ticks of 10 ms: none used
        for k in range(1, 6):
            version = job.state().version
            job.step()
            _held(job)
            assert job.state().step == state.step + k and job.state().version > version  # new weights each step
        job.step_epoch()
        _held(job)
        assert job.state().step % 8 == 0  # 256 images in batches of 32: the epoch ran to its end
        job.change("beta", 8)
        job.step()
        _held(job)
        assert job.train_config.beta == 8.0
        assert [r["setting"] for r in job.history() if r["kind"] == "change"] == ["beta"]
    finally:
        job.stop()
        job.join(30)
    assert not job.state().active
    saved = ckpt_io.load(job.state().checkpoint_path)
    assert saved.train_config.beta == 8.0 and [r["new"] for r in saved.history if r["kind"] == "change"] == [8.0]


def test_a_compare_group_pauses_and_steps_as_one(tmp_path, tiny_loader):
    registry = JobRegistry(tmp_path, max_running=1)
    group = registry.start_variants(_cfgs(epochs=50)[0], [("a", _cfgs(epochs=50)[1]), ("b", _cfgs(epochs=50)[1])],
                                    name="lec")
    try:
        group.pause()
        _held(group)
        assert all(m.control is group.control for m in group.members)
        step = group.state().step
        group.step()
        _held(group)
        assert group.state().step == step + 1
        time.sleep(1)
        assert group.state().step == step + 1
    finally:
        group.stop()
        group.join(30)
    assert not group.state().active
