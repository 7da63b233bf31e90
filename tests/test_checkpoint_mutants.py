"""One schema for a checkpoint, checked whole at load: a valid checkpoint with any one field removed,
retyped, pushed to an extreme or nested deep either is refused with one sentence, or loads and then
every CLI command and every page works with it. Several hundred mutants, each field of the file; and the
largest fields the loader accepts, alone and together, work everywhere within seconds."""
from __future__ import annotations

import contextlib
import io
import itertools
import time
import math
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

import vae.cli as cli
from pages.ui.sitemap import PAGES as SITE
from tests.conftest import ROOT, assert_one_sentence, tiny_dataset
from tests.crafted import LARGEST
from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.training.control import Control
from vae.training.replay import ReplayRecorder
from vae.training.trainer import Trainer

PAGES = [p.script for p in SITE]


def _deep(depth: int):
    value = []
    for _ in range(depth):
        value = [value]
    return value


MUTATIONS = {
    "removed": None,  # deletes the field
    "None": lambda v: None,
    "text": lambda v: "x",
    "negative": lambda v: -1,
    "huge": lambda v: 10**30,
    "nan": lambda v: math.nan,
    "nested deep": lambda v: _deep(400),
    "wrong tensor": lambda v: torch.zeros(3),
}


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> dict:
    """A trained tiny model's checkpoint as the dict torch.load gives (optimizer, RNG state, replay, a change of β
    made mid-run)."""
    control = Control()
    control.change("beta", 2.0)  # a change record in the history, applied before the first batch
    trainer = Trainer(ModelConfig(hidden=(32,)), TrainConfig(dataset="shapes", epochs=2, batch_size=16, log_every=2,
                                                             device="cpu", train_limit=64),
                      tiny_dataset(64), tiny_dataset(32, "test", 1), control=control)
    ReplayRecorder(seed=0).attach(trainer)
    trainer.run()
    path = ckpt_io.save(trainer.checkpoint_payload(), tmp_path_factory.mktemp("original") / "original.pt")
    return torch.load(path, weights_only=True)


def _paths(payload: dict) -> list[tuple]:
    """Every field of the payload a page or command reads, as key paths."""
    paths = [(k,) for k in payload]
    for group in ("model_config", "train_config", "test_metrics"):
        paths += [(group, k) for k in payload[group]]
    history = payload["history"]
    first_step = next(i for i, r in enumerate(history) if r["kind"] == "step")
    last_epoch = max(i for i, r in enumerate(history) if r["kind"] == "epoch")
    change = next(i for i, r in enumerate(history) if r["kind"] == "change")
    paths += [("history", i, k) for i in (first_step, last_epoch, change) for k in history[i]]
    paths += [("class_names", 0), ("extras", "replay")] + [("extras", "replay", k) for k in payload["extras"]["replay"]]
    paths += [("optimizer_state", "state", 0, k) for k in payload["optimizer_state"]["state"][0]]
    paths += [("optimizer_state", "param_groups", 0, k) for k in ("lr", "betas", "params")]
    return paths


def _mutant(payload: dict, path: tuple, mutation: str) -> dict:
    import copy

    mutant = copy.deepcopy(payload)
    node = mutant
    for key in path[:-1]:
        node = node[key]
    if MUTATIONS[mutation] is None:
        del node[path[-1]]
    else:
        node[path[-1]] = MUTATIONS[mutation](node[path[-1]])
    return mutant


def _consumers_work(ckpt: ckpt_io.Checkpoint, path: Path, tmp: Path, page_seconds: float | None = None,
                    commands: bool = True) -> None:
    """Every CLI command on the file (unless commands is False), then every page with it as the tab's model: none
    raises (and each page is drawn within page_seconds, when given)."""
    data = str(tmp / "data")
    for argv in () if not commands else (["eval", str(path), "--data-dir", data, "--limit", "32", "--json"], ["list", str(path.parent), "--json"],
                 ["replay", str(path), "--gif", str(tmp / "replay.gif")],
                 ["train", "--resume", str(path), "--epochs", str(min(ckpt.epoch + 1, 1000)), "--data-dir", data,
                  "--out", str(tmp / "resumed.pt"), "--quiet", "--no-replay"]):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = cli.main(argv)
        assert code == 0 or (code == 2 and err.getvalue().startswith("error: ")), (argv, code, err.getvalue())
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["model_source"] = ("upload", path.name)
    at.session_state["uploaded_checkpoint"] = ckpt
    at.run()
    for page in PAGES:
        start = time.perf_counter()
        at.switch_page(page).run()
        took = time.perf_counter() - start
        assert not at.exception, (page, [e.value for e in at.exception][:1])
        assert page_seconds is None or took < page_seconds, f"{page} took {took:.1f} s"


@pytest.mark.timeout(1200)
def test_a_mutant_checkpoint_is_refused_in_one_sentence_or_works_everywhere(original, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    outcomes, checked = {"refused": 0, "loaded": 0}, set()
    for path in _paths(original):
        for mutation in MUTATIONS:
            buffer = io.BytesIO()
            try:
                torch.save(_mutant(original, path, mutation), buffer)
            except RecursionError:  # torch itself cannot write it: no such file can exist
                continue
            try:
                ckpt = ckpt_io.load(buffer.getvalue(), "mutant.pt")
            except ckpt_io.CheckpointError as e:
                assert_one_sentence(str(e))
                outcomes["refused"] += 1
                continue
            outcomes["loaded"] += 1
            checked.add((path, mutation))
            folder = tmp_path / f"m{len(checked)}"
            folder.mkdir()
            (folder / "mutant.pt").write_bytes(buffer.getvalue())
            _consumers_work(ckpt, folder / "mutant.pt", folder)
    assert outcomes["refused"] + outcomes["loaded"] >= 300, outcomes
    print(f"mutants: {outcomes}; run through every command and page: {len(checked)}")


PAGE_SECONDS = 5.0  # the most one page may take with the largest file the loader accepts
COMBINATIONS = [(name,) for name in LARGEST] + [tuple(pair) for pair in itertools.combinations(LARGEST, 2)] + \
    [tuple(LARGEST)]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("fields", COMBINATIONS, ids="+".join)
def test_the_largest_files_the_loader_accepts_work_everywhere_in_seconds(original, tmp_path, monkeypatch, fields):
    """Each field pushed to the largest the loader accepts (the longest history its counters allow, a full
    replay, a full set of stored codes), alone, in pairs and all together: the file loads, every command runs
    and every page draws without an exception, each in under PAGE_SECONDS."""
    import copy

    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    payload = copy.deepcopy(original)
    for field in fields:
        payload = LARGEST[field](payload)
    path = tmp_path / "largest.pt"
    torch.save(payload, path)
    ckpt = ckpt_io.load(path)
    # Each command reads the file afresh (about 10 s for the longest history): the commands run on each field
    # alone and on all of them together; the pages, which share one load, on every combination.
    _consumers_work(ckpt, path, tmp_path, page_seconds=PAGE_SECONDS, commands=len(fields) in (1, len(LARGEST)))
