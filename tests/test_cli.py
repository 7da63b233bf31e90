"""The headless CLI: a real tiny run, JSON output, eval, list, and bad arguments."""
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vae.cli import main

TINY = ["--dataset", "shapes", "--epochs", "1", "--train-limit", "256", "--batch-size", "64", "--hidden", "32",
        "--quiet", "--device", "cpu"]


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_train_json_eval_and_list(tmp_path, data_dir, capsys):
    out = tmp_path / "tiny.pt"
    assert main(["train", *TINY, "--out", str(out), "--json"]) == 0
    result = _last_json(capsys.readouterr().out)
    for key in ("dataset", "latent_dim", "epochs", "test_elbo", "test_recon", "test_kl", "samples_per_sec", "train_seconds"):
        assert key in result, key
    assert result["dataset"] == "shapes" and result["epochs"] == 1 and result["samples_per_sec"] > 0
    assert out.exists()

    assert main(["eval", str(out), "--iw-samples", "5", "--limit", "200", "--json"]) == 0
    ev = _last_json(capsys.readouterr().out)
    assert ev["iw_ll"] is not None and ev["iw_ll"] >= -ev["test_elbo"] - 1.0
    assert ev["test_images"] == 200

    assert main(["list", str(tmp_path), "--json"]) == 0
    listed = _last_json(capsys.readouterr().out)
    assert [c["name"] for c in listed["checkpoints"]] == ["tiny"]


def test_resume_continues_history(tmp_path, data_dir, capsys):
    out = tmp_path / "r.pt"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet", "--json"]) == 0
    result = _last_json(capsys.readouterr().out)
    assert result["epochs"] == 2 and result["checkpoint"] == str(out)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--latent-dim", "0"], "Latent dim"),
        (["train", "--latent-dim", "two"], "Latent dim"),
        (["train", "--epochs", "-3"], "Epochs"),
        (["train", "--lr", "10"], "Learning rate"),
        (["train", "--lr", "nan"], "Learning rate"),
        (["train", "--batch-size", "0"], "Batch size"),
        (["train", "--hidden", "512,abc"], "Hidden sizes"),
        (["train", "--arch", "transformer"], "Architecture"),
        (["train", "--dataset", "cifar"], "Dataset"),
        (["train", "--beta", "-1"], "KL weight β"),
        (["train", "--bogus"], "unrecognized"),
        (["eval"], "required"),
        (["eval", "/nonexistent/model.pt"], "could not be read"),
        (["eval", " "], "the checkpoint's path is blank"),
        (["train", "--out", ""], "--out is blank"),
        (["train", "--replay-frames", "1"], "--replay-frames must be from 2 to 50"),
        (["train", "--replay-frames", "many"], "--replay-frames must be a whole number"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, words, capsys, data_dir):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_missing_dataset_names_folder_and_exits_2(tmp_path, capsys):
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "shapes" in err


def test_malicious_checkpoint_passed_to_eval_is_refused(tmp_path, capsys):
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Payload()))
    assert main(["eval", str(evil)]) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_python_dash_m_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vae", "list", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "No checkpoints" in proc.stdout


@pytest.mark.parametrize("argv, words", [
    (["train", "--out", "bad\0name.pt"], "--out contains a NUL character"),
    (["train", "--data-dir", "da\0ta"], "--data-dir contains a NUL character"),
    (["eval", "x\0.pt"], "the checkpoint's path contains a NUL character"),
    (["train", "--out", str(ROOT / "checkpoints" / "default-shapes-2d.pt")], "is a shipped default model"),
    (["train", "--resume", str(ROOT / "checkpoints" / "default-shapes-2d.pt")], "is a shipped default model"),
])
def test_paths_are_checked_before_any_work(argv, words, capsys, monkeypatch):
    monkeypatch.setattr("vae.data.loading.load_dataset", lambda *a, **k: pytest.fail("data was loaded before the paths were checked"))
    assert main(argv + TINY[:0]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and len(err.strip().splitlines()) == 1, err


def test_an_out_folder_that_cannot_take_a_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr("vae.data.loading.load_dataset", lambda *a, **k: pytest.fail("data was loaded before --out was checked"))
    assert main(["train", *TINY, "--out", str(blocker / "model.pt")]) == 2
    assert "Cannot write a checkpoint into" in capsys.readouterr().err


def test_an_epoch_that_cannot_be_saved_is_one_line_and_training_goes_on(tmp_path, data_dir, capsys, monkeypatch):
    import torch

    import vae.checkpoint as ckpt_io

    real_save, calls = torch.save, []

    def fills_once(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_once)
    out = tmp_path / "m.pt"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("warning")] == [
        f"warning: epoch 1 was not saved, training goes on: Could not save the checkpoint to {out} (the disk is full or "
        "the file could not be written); free some disk space or pick a folder you can write to."]
    assert _last_json(captured.out)["epochs"] == 2 and ckpt_io.load(out).epoch == 2
    assert not list(tmp_path.glob(".*.tmp"))


def test_eval_factors_prints_the_mig_per_factor_and_the_probe(tmp_path, data_dir, capsys):
    out = tmp_path / "tiny.pt"
    assert main(["train", *TINY, "--latent-dim", "4", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--factors", "--limit", "1000", "--json"]) == 0
    ev = _last_json(capsys.readouterr().out)
    factors = ["shape", "scale", "rotation", "x", "y"]
    assert list(ev["mig_per_factor"]) == factors == list(ev["probe_r2"]) == list(ev["best_dimension"])
    assert 0 <= ev["mig"] <= 1 and ev["mig"] == pytest.approx(sum(ev["mig_per_factor"].values()) / 5)
    assert all(1 <= d <= 4 for d in ev["best_dimension"].values()) and all(r <= 1 for r in ev["probe_r2"].values())
    assert main(["eval", str(out), "--factors", "--limit", "1000"]) == 0
    text = capsys.readouterr().out
    assert "MIG " in text and "x gap " in text and "probe R^2" in text


def test_eval_factors_without_known_factors_is_one_sentence(tmp_path, capsys):
    import numpy as np

    from tests.conftest import assert_one_sentence
    from vae.data.frey import FREY_FOLDER
    from vae.data.matfile import write_frey_faces

    (tmp_path / FREY_FOLDER).mkdir()
    write_frey_faces(tmp_path / FREY_FOLDER / "frey_rawface.mat",
                     np.random.default_rng(0).integers(0, 256, (120, 28, 20), dtype=np.uint8))
    out = tmp_path / "frey.pt"
    assert main(["train", "--dataset", "frey-face", "--data-dir", str(tmp_path), "--epochs", "1", "--hidden", "16",
                 "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--factors", "--data-dir", str(tmp_path)]) == 2
    message = capsys.readouterr().err.strip().removeprefix("error: ")
    assert_one_sentence(message)
    assert "frey-face has no known generative factors" in message


# ---- a run's file and its data folder, as a file or another run may name them --------------------------

@pytest.fixture
def tiny_splits(monkeypatch):
    """Data served from memory; `asked` records the folder each load read from."""
    from tests.conftest import tiny_dataset

    data, asked = {"train": tiny_dataset(128, "train", 0), "test": tiny_dataset(64, "test", 1)}, []

    def load(name, split, data_dir=None, *args, **kwargs):
        asked.append(None if data_dir is None else str(data_dir))
        return data[split]

    monkeypatch.setattr("vae.data.loading.load_dataset", load)
    return asked


def _resumable(path, **train):
    """A run stopped after 1 of 3 planned epochs, with Adam's state, saved with train_config changed as given."""
    from tests.conftest import tiny_dataset
    from vae import checkpoint as ckpt_io
    from vae.config import ModelConfig, TrainConfig
    from vae.training.trainer import Trainer

    trainer = Trainer(ModelConfig(hidden=(32,)), TrainConfig(epochs=3, batch_size=32, device="cpu"),
                      tiny_dataset(128, "train", 0), tiny_dataset(64, "test", 1))
    trainer.run_epoch()
    payload = trainer.checkpoint_payload()
    payload["train_config"].update(train)
    return ckpt_io.save(payload, path)


def test_an_out_that_another_run_is_writing_is_refused_before_any_work(tmp_path, data_dir, tiny_splits, capsys):
    from tests.conftest import assert_one_sentence
    from vae.config import ModelConfig, TrainConfig
    from vae.training.registry import JobRegistry

    job = JobRegistry(tmp_path).start(ModelConfig(hidden=(32,)), TrainConfig(epochs=1000, batch_size=32, device="cpu"),
                                      name="busy")
    try:
        deadline = time.monotonic() + 30
        while job.state().step == 0 and time.monotonic() < deadline:  # the job has loaded its data
            time.sleep(0.01)
        loads = len(tiny_splits)
        assert main(["train", *TINY, "--out", str(tmp_path / "busy.pt")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(tiny_splits) == loads, "the refused run loaded its data"
    finally:
        job.stop()
        job.join(30)
    assert_one_sentence(err.removeprefix("error: "))
    assert err.startswith("error: busy.pt is being written by another training run"), err
    assert job.state().status == "stopped"


@pytest.mark.parametrize("value", [3, [1, 2], 1.5, "da\0ta"])
def test_a_data_folder_that_is_not_a_path_is_one_sentence_in_eval_and_resume(tmp_path, data_dir, tiny_splits, capsys,
                                                                            value):
    from tests.conftest import assert_one_sentence

    path = _resumable(tmp_path / "odd.pt", data_dir=value)
    for argv in (["eval", str(path)], ["train", "--resume", str(path), "--quiet"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: odd.pt has settings this app cannot use: Data folder"), err
        assert_one_sentence(err.removeprefix("error: "))
    assert tiny_splits == []


def test_resume_reads_the_files_own_folder_only_where_the_server_allows(tmp_path, data_dir, tiny_splits, capsys,
                                                                         monkeypatch):
    """--resume of a run of the user's own images: --data-dir when given, else the folder the file names when it
    passes Home's allow-list, else one sentence (exit 2) before any data is read; '/' is never walked."""
    from tests.conftest import assert_one_sentence

    outside = tmp_path / "elsewhere"
    for folder in ("/", str(outside)):
        path = _resumable(tmp_path / "own.pt", dataset="folder", data_dir=folder)
        assert main(["train", "--resume", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().removeprefix("error: ")
        assert_one_sentence(err)
        assert "--data-dir" in err and str(Path(folder).resolve()) in err, err
        assert tiny_splits == []
    mine = tmp_path / "mine"
    path = _resumable(tmp_path / "own.pt", dataset="folder", data_dir=str(outside))
    assert main(["train", "--resume", str(path), "--data-dir", str(mine), "--quiet"]) == 0
    assert set(tiny_splits) == {str(mine)}
    tiny_splits.clear()
    monkeypatch.setenv("VAE_DATA_DIRS", str(outside))
    path = _resumable(tmp_path / "own.pt", dataset="folder", data_dir=str(outside))
    assert main(["train", "--resume", str(path), "--quiet"]) == 0
    assert set(tiny_splits) == {str(outside)}


def test_a_checkpoints_folder_that_cannot_be_written_is_refused_before_training(read_only_folder, tiny_splits,
                                                                              monkeypatch, capsys):
    from tests.conftest import assert_one_sentence

    monkeypatch.chdir(read_only_folder.parent)
    monkeypatch.setattr("vae.cli.DEFAULT_CHECKPOINT_DIR", Path(read_only_folder.name))
    assert main(["train", *TINY]) == 2
    err = capsys.readouterr().err.strip().removeprefix("error: ")
    assert_one_sentence(err)
    assert err.startswith(f"Cannot write a checkpoint into {read_only_folder}"), err
    assert tiny_splits == [], "the data was loaded before the folder was found unwritable"
