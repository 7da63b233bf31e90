"""A dataset is one spec in one place (vae/data/registry.py): registered there, it is a choice of the CLI's
--dataset, an option of the Train form, a valid config and something load_dataset loads; a name that is not
registered is an error naming the ones that are, never another dataset."""
from __future__ import annotations

import json

import pytest

from tests.conftest import app_test, assert_no_exception, tiny_dataset
from vae import cli
from vae.config import ConfigError, TrainConfig, configs_from
from vae.data import (DatasetSpec, UnknownDataset, clear_cache, dataset_names, dataset_shape, load_dataset, register,
                      unregister)

SHAPE = (1, 12, 16)  # (C, H, W): a size no shipped dataset has
LOADED = []  # the splits the spec's loader was asked for


def _load_blobs(request):
    LOADED.append(request.split)
    return tiny_dataset(48 if request.split == "train" else 24, request.split, seed=len(LOADED), size=SHAPE[1:],
                        name="tiny-blobs")


@pytest.fixture
def blobs():
    spec = register(DatasetSpec("tiny-blobs", "Tiny blobs (a test's)", "Tiny blobs", "tests/test_dataset_registry.py",
                                load=_load_blobs, shape=SHAPE, built_in=True))
    LOADED.clear()
    yield spec
    unregister(spec.name)
    clear_cache()


def test_a_registered_dataset_is_offered_and_loaded_everywhere(blobs, tmp_path, capsys):
    assert "tiny-blobs" in dataset_names() and dataset_shape("tiny-blobs") == SHAPE
    train = load_dataset("tiny-blobs", "train")
    assert train.image_shape == SHAPE and load_dataset("tiny-blobs", "train") is train and LOADED == ["train"]
    model_cfg, train_cfg = configs_from({"dataset": "tiny-blobs"})
    assert train_cfg.dataset == "tiny-blobs" and model_cfg.image_shape == SHAPE

    help_text = next(a.help for a in _train_parser()._actions if a.dest == "dataset")
    assert "tiny-blobs" in help_text
    out = tmp_path / "blobs.pt"
    assert cli.main(["train", "--dataset", "tiny-blobs", "--epochs", "1", "--batch-size", "16", "--hidden", "16",
                     "--no-replay", "--quiet", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == "tiny-blobs" and result["image_shape"] == list(SHAPE) and out.is_file()

    at = app_test().switch_page("pages/train.py").run()
    assert_no_exception(at, "Train")
    choice = at.selectbox(key="f_dataset")
    assert "tiny-blobs" in choice.options or "Tiny blobs (a test's)" in choice.options, choice.options


def _train_parser():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if getattr(a, "choices", None) and "train" in a.choices)
    return sub.choices["train"]


def test_an_unknown_dataset_is_an_error_naming_the_known_ones(capsys):
    with pytest.raises(UnknownDataset) as caught:
        load_dataset("svhn")
    assert all(name in str(caught.value) for name in dataset_names())
    with pytest.raises(ConfigError, match="mnist, fashion-mnist"):
        TrainConfig(dataset="svhn")
    assert cli.main(["train", "--dataset", "svhn", "--epochs", "1"]) == 2
    said = capsys.readouterr().err
    assert "svhn" in said and "shapes" in said and "Traceback" not in said


def test_a_name_is_registered_once():
    spec = DatasetSpec("shapes", "again", "again", "", load=lambda r: None, shape=(1, 28, 28))
    with pytest.raises(ValueError, match="registered already"):
        register(spec)
    assert dataset_names().count("shapes") == 1
