"""Faults in real processes: `python -m vae train` killed with SIGKILL mid-training leaves a checkpoint
that loads and `--resume` continues with its history intact; `python -m vae eval` refuses a malicious
pickle without running it."""
from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, CodeRunningPickle
from vae import checkpoint as ckpt_io

# About 0.3 s per epoch on one core: the kill lands mid-epoch, after the first autosave.
TRAIN = ["--dataset", "shapes", "--hidden", "64", "--train-limit", "4000", "--batch-size", "64", "--epochs", "1000",
         "--device", "cpu", "--quiet"]


def _vae(*args: str, data_dir: Path, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, VAE_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "vae", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _epochs_saved(path: Path) -> int:
    """Epochs in the checkpoint on disk now (0 while there is none); a read never sees a half-written file."""
    try:
        return ckpt_io.load(path).epoch
    except ckpt_io.CheckpointError:
        if path.exists():  # written (renamed into place whole) between the failed read and now
            return ckpt_io.load(path).epoch
        return 0


def test_sigkill_mid_training_leaves_a_checkpoint_that_loads_and_resumes(tmp_path):
    out, data = tmp_path / "ckpt" / "killed.pt", tmp_path / "data"
    proc = _vae("train", *TRAIN, "--out", str(out), data_dir=data)
    try:
        deadline = time.monotonic() + 120
        while _epochs_saved(out) < 2:  # two autosaves: the second one replaced the first in place
            assert proc.poll() is None, f"training ended early: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint with 2 epochs after 120 s"
            time.sleep(0.05)
        time.sleep(0.15)  # into the next epoch
        with pytest.raises(ckpt_io.CheckpointInUse, match=f"killed.pt is being written by another training run "
                                                          f"\\(process {proc.pid}\\)"):
            ckpt_io.reserve(out)  # the running process holds the file: no other run may write it
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    left = ckpt_io.load(out)  # what the killed process left
    assert left.epoch >= 2 and left.train_config.epochs == 1000
    epoch_records = [r for r in left.history if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epoch_records] == list(range(1, left.epoch + 1))
    assert left.optimizer_state is not None and left.step == left.epoch * 63  # 4000 / 64 -> 63 steps an epoch
    assert [p.name for p in out.parent.glob("*.pt")] == ["killed.pt"], "only the checkpoint is listed"
    lock = out.parent / ".killed.pt.lock"
    assert lock.read_text().strip() == str(proc.pid), "the killed run's reservation file stays behind"
    assert not ckpt_io.in_use(out), "but its lock went with the process: the run can be resumed"

    target = left.epoch + 2
    resumed = _vae("train", "--resume", str(out), "--epochs", str(target), "--quiet", "--json", data_dir=data)
    stdout, stderr = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, stderr[-2000:]
    assert '"epochs": %d' % target in stdout.splitlines()[-1]

    after = ckpt_io.load(out)
    assert after.epoch == target and after.step == target * 63
    assert after.history[:len(left.history)] == left.history, "the records before the kill are kept as they were"
    assert [r["epoch"] for r in after.history if r["kind"] == "epoch"] == list(range(1, target + 1))
    steps = [r["step"] for r in after.history]
    assert steps == sorted(steps), "step numbers go on from where the killed run stopped"
    assert after.train_config.epochs == target and after.model_config == left.model_config
    assert not lock.exists(), "the resumed run took the reservation over and released it when it ended"


@pytest.mark.parametrize("kind", ["torch.save zip", "raw pickle"])
def test_python_dash_m_vae_eval_refuses_a_malicious_pickle(tmp_path, kind):
    marker = tmp_path / "PWNED"
    if kind == "raw pickle":
        data = pickle.dumps(CodeRunningPickle(marker), protocol=2)
    else:
        buf = io.BytesIO()
        torch.save({"format": ckpt_io.FORMAT, "state_dict": CodeRunningPickle(marker)}, buf)
        data = buf.getvalue()
    evil = tmp_path / "evil.pt"
    evil.write_bytes(data)
    proc = _vae("eval", str(evil), data_dir=tmp_path / "data")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    refusal = ("asks to run code or build objects a checkpoint never contains" if kind == "torch.save zip"
               else "is not the zip-format PyTorch file that every checkpoint is")  # refused before any unpickling
    assert stderr.strip().splitlines() == [
        f"error: evil.pt was refused because it {refusal}; only load checkpoints saved by Latent Explorer."]
    assert not marker.exists(), "the payload ran"
    pickle.loads(data) if kind == "raw pickle" else torch.load(io.BytesIO(data), weights_only=False)
    assert marker.exists(), "control: unpickled the unsafe way, the same file does run its payload"
