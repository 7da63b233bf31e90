"""Tests for vae/data.py: torchvision loaders on tiny IDX files, the registry, Frey Face, folders, batching."""
from __future__ import annotations

import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from vae import data

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    data.clear_cache()
    yield
    data.clear_cache()


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as torchvision reads it: magic (2051 images / 2049 labels), big-endian counts, uint8 body."""
    magic = 2051 if array.ndim == 3 else 2049
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


def write_tiny_raw(root: Path, folder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """5 train and 3 test images with distinct known pixels, in <root>/<folder>/raw/."""
    rng = np.random.default_rng(123)
    splits = {}
    for split, prefix, n in (("train", "train", 5), ("test", "t10k", 3)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels)
        splits[split] = (images, labels)
    return splits


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "kmnist"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_torchvision_loaders_read_tiny_idx_files(tmp_path, name, split):
    written = write_tiny_raw(tmp_path, FOLDERS[name])
    assert data.dataset_available(name, tmp_path)
    ds = data.load_dataset(name, split, data_dir=tmp_path)
    images, labels = written[split]
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (len(images), 1, 28, 28)
    assert ds.labels.dtype == torch.int64 and ds.labels.shape == (len(images),)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
    assert torch.equal(ds.labels, torch.from_numpy(labels.astype(np.int64)))
    assert len(ds) == len(images) and len(ds.class_names) == 10 and ds.factors == {}
    assert (ds.name, ds.split) == (name, split) and FOLDERS[name] in ds.source


def test_class_names():
    assert data._TORCHVISION["mnist"][2] == [str(d) for d in range(10)]
    assert data._TORCHVISION["fashion-mnist"][2][0] == "T-shirt/top"
    assert data._TORCHVISION["kmnist"][2] == ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


def test_loaded_dataset_is_cached_per_process(tmp_path):
    write_tiny_raw(tmp_path, "MNIST")
    first = data.load_dataset("mnist", "train", data_dir=tmp_path)
    assert data.load_dataset("mnist", "train", data_dir=str(tmp_path)) is first
    data.clear_cache()
    assert data.load_dataset("mnist", "train", data_dir=tmp_path) is not first


def test_float_images_and_subset(tmp_path):
    write_tiny_raw(tmp_path, "MNIST")
    ds = data.load_dataset("mnist", "train", data_dir=tmp_path)
    floats = ds.float_images()
    assert floats.dtype == torch.float32 and floats.shape == ds.images.shape
    torch.testing.assert_close(floats, ds.images.float() / 255.0)
    assert ds.float_images() is floats  # computed once
    sub = ds.subset(2)
    assert len(sub) == 2 and torch.equal(sub.images, ds.images[:2]) and torch.equal(sub.labels, ds.labels[:2])
    torch.testing.assert_close(sub.float_images(), floats[:2])
    assert len(ds.subset(100)) == len(ds)


def test_missing_files_give_an_actionable_error(tmp_path):
    assert not data.dataset_available("mnist", tmp_path)
    with pytest.raises(data.DatasetUnavailable) as info:
        data.load_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path.resolve() / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "shapes" in message
    first_sentence = message.split(". ")[0]
    assert str(tmp_path.resolve()) in first_sentence and "t10k-labels-idx1-ubyte" in first_sentence


def test_failed_download_becomes_dataset_unavailable(tmp_path, monkeypatch):
    from torchvision import datasets

    def no_network(self):
        raise URLError("no network")

    monkeypatch.setattr(datasets.MNIST, "download", no_network)
    with pytest.raises(data.DatasetUnavailable, match="could not be downloaded") as info:
        data.load_dataset("mnist", data_dir=tmp_path, download=True)
    assert "shapes" in str(info.value) and isinstance(info.value.__cause__, URLError)


def test_unreadable_files_give_an_error(tmp_path):
    for file in data.expected_files("kmnist", tmp_path):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"\x00\x00")
    with pytest.raises(data.DatasetUnavailable, match="could not be read"):
        data.load_dataset("kmnist", data_dir=tmp_path)


def test_bad_names_and_splits():
    with pytest.raises(ValueError, match="mnist, fashion-mnist, kmnist, shapes"):
        data.load_dataset("cifar")
    with pytest.raises(ValueError, match="split"):
        data.load_dataset("shapes", "validation")
    with pytest.raises(ValueError):
        data.expected_files("cifar")


def test_expected_files_and_data_dir(tmp_path, monkeypatch):
    files = data.expected_files("fashion-mnist", tmp_path)
    assert [f.name for f in files] == list(data._RAW_FILES)
    assert all(f.parent == tmp_path.resolve() / "FashionMNIST" / "raw" for f in files)
    assert data.expected_files("shapes") == [] and data.dataset_available("shapes", tmp_path)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "from-env"))
    assert data.resolve_data_dir() == (tmp_path / "from-env").resolve()
    assert data.resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    monkeypatch.delenv(data.DATA_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    assert data.resolve_data_dir() == (tmp_path / "data").resolve()


# --- batching -------------------------------------------------------------------------------------


def test_batch_iterator_covers_each_index_once():
    batches = list(data.batch_iterator(10, 4, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = list(data.batch_iterator(10, 4, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    other = torch.cat(list(data.batch_iterator(10, 4, torch.Generator().manual_seed(1))))
    assert not torch.equal(torch.cat(batches), other)
    assert [len(b) for b in data.batch_iterator(8, 4, torch.Generator())] == [4, 4]
    assert list(data.batch_iterator(0, 4, torch.Generator())) == []
    with pytest.raises(ValueError):
        data.batch_iterator(10, 0, torch.Generator())


def test_batch_iterator_epochs_differ_but_each_is_complete():
    gen = torch.Generator().manual_seed(3)
    first, second = (torch.cat(list(data.batch_iterator(50, 7, gen))) for _ in range(2))
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(50))
    assert not torch.equal(first, second)


# --- the real MNIST copy, where this machine has one ------------------------------------------------


def test_real_mnist_test_split():
    if not data.dataset_available("mnist", SHARED_DATA):
        pytest.skip(f"no MNIST copy in {SHARED_DATA}")
    ds = data.load_dataset("mnist", "test", data_dir=SHARED_DATA)
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.shape == (10_000,) and set(ds.labels.tolist()) == set(range(10))
    assert ds.images.float().mean().item() == pytest.approx(33.3, abs=0.5)  # MNIST test mean pixel ~33.3/255



def test_a_browser_may_only_choose_the_allowed_data_folders(tmp_path, monkeypatch):
    from vae.data import DataFolderRefused, check_data_dir

    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("VAE_DATA_DIRS", raising=False)
    assert check_data_dir(str(tmp_path / "data" / "mnist-copy")) == tmp_path / "data" / "mnist-copy"
    for outside in ("/etc", str(tmp_path / "data" / ".." / "elsewhere"), "a\0b", "  "):
        with pytest.raises(DataFolderRefused):
            check_data_dir(outside)
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "data").exists()  # nothing was created
    monkeypatch.setenv("VAE_DATA_DIRS", str(tmp_path / "shared"))
    assert check_data_dir(str(tmp_path / "shared" / "x")) == tmp_path / "shared" / "x"


def test_a_dataset_name_that_is_not_ours_is_a_sentence_not_a_path(tmp_path):
    from vae.data import DatasetUnavailable

    for name in ("foo", "../../etc"):
        with pytest.raises(DatasetUnavailable, match="Unknown dataset"):
            data.load_dataset(name, "test", tmp_path)
    assert not any(tmp_path.iterdir())
