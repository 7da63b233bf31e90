"""Data-parallel training with torch's own launcher: 2 CPU processes (gloo, 127.0.0.1) on the built-in shapes
train one model whose weights agree bit for bit on both ranks; rank 0's checkpoint loads in the app's loader
and scores within 2 nats of one process with the same global batch and seed; --resume continues it; killing
one rank ends the run with a readable message and the last epoch's checkpoint intact. The CUDA path runs
where a GPU is."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.harness import free_port
from tests.conftest import ROOT
from vae import checkpoint as ckpt_io
from vae.training.distributed import World, shard

ARGS = ["--dataset", "shapes", "--train-limit", "8000", "--batch-size", "128", "--hidden", "128", "--latent-dim", "2",
        "--device", "cpu", "--quiet"]


def torchrun(n: int, *args: str, data_dir: Path, **popen) -> subprocess.Popen:
    env = dict(os.environ, VAE_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(n),
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "vae", "train", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)


def single(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, VAE_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "vae", "train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    proc = torchrun(2, *ARGS, "--epochs", "2", "--out", str(out), "--json", data_dir=data_dir)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return out, json_lines(stdout)


def test_two_processes_train_one_model_with_identical_weights(two_ranks):
    out, lines = two_ranks
    assert len(lines) == 1, "rank 0 alone prints the run's one JSON line"
    result = lines[0]
    assert result["world_size"] == 2 and result["epochs"] == 2
    assert len(set(result["rank_weights"])) == 1 and len(result["rank_weights"]) == 2, result["rank_weights"]
    ckpt = ckpt_io.load(out)  # the app's loader: weights_only=True and every check
    assert ckpt.epoch == 2 and ckpt.model_config.latent_dim == 2
    epochs = [r for r in ckpt.history if r["kind"] == "epoch"]
    assert [r["world_size"] for r in epochs] == [2, 2]
    assert ckpt.optimizer_state is not None and "replay" in ckpt.extras and "codes" in ckpt.extras


def test_two_processes_score_within_2_nats_of_one(two_ranks, tmp_path, data_dir):
    _, lines = two_ranks
    done = single(*ARGS, "--epochs", "2", "--out", str(tmp_path / "one.pt"), "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    one = json_lines(done.stdout)[-1]
    assert one["world_size"] == 1
    assert abs(one["test_elbo"] - lines[0]["test_elbo"]) < 2.0, (one["test_elbo"], lines[0]["test_elbo"])


def test_a_distributed_run_resumes(two_ranks, tmp_path, data_dir):
    out, _ = two_ranks
    copy = tmp_path / "resume.pt"
    copy.write_bytes(out.read_bytes())
    proc = torchrun(2, "--resume", str(copy), "--epochs", "3", "--quiet", "--json", data_dir=data_dir)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    after = ckpt_io.load(copy)
    assert after.epoch == 3 and [r["epoch"] for r in after.history if r["kind"] == "epoch"] == [1, 2, 3]
    assert len(set(json_lines(stdout)[-1]["rank_weights"])) == 1


def test_killing_one_rank_ends_the_run_readably_and_keeps_the_last_epoch(tmp_path, data_dir):
    out = tmp_path / "killed.pt"
    proc = torchrun(2, *ARGS, "--epochs", "1000", "--out", str(out), data_dir=data_dir, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (out.exists() and ckpt_io.load(out).epoch >= 1):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no epoch saved within 180 s"
            time.sleep(0.1)
        ranks = _worker_pids(proc.pid)
        assert len(ranks) == 2, ranks
        os.kill(ranks[-1], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert proc.returncode != 0
    # Rank 0 says what happened in one sentence; no traceback runs through the project's code (torchrun's
    # own launcher then reports the killed rank in its summary).
    assert "another training process ended" in stderr and f'File "{ROOT / "vae"}' not in stderr, stderr[-3000:]
    left = ckpt_io.load(out)
    assert left.epoch >= 1 and [r["epoch"] for r in left.history if r["kind"] == "epoch"] == list(range(1, left.epoch + 1))


def _worker_pids(launcher: int) -> list[int]:
    """The launcher's children (one per rank), oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[1]) == launcher:
                found.append((int(fields[19]), int(entry.name)))
    return [pid for _, pid in sorted(found)]


def test_each_rank_takes_its_slice_of_every_global_batch():
    batch = torch.arange(10)
    parts = [shard(batch, World(r, 3)) for r in range(3)]
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert torch.equal(shard(batch, World()), batch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_trains_and_evaluates_like_the_cpu(tmp_path, data_dir):
    runs = {}
    for device in ("cpu", "cuda"):
        args = [a if a != "cpu" else device for a in ARGS]
        done = single(*args, "--epochs", "1", "--out", str(tmp_path / f"{device}.pt"), "--json", data_dir=data_dir)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[device] = json_lines(done.stdout)[-1]
    assert runs["cuda"]["device"].startswith("cuda")
    assert abs(runs["cuda"]["test_elbo"] - runs["cpu"]["test_elbo"]) < 1.0, runs
