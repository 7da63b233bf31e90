"""Tests for vae/data/: torchvision loaders on tiny IDX files, the registry, Frey Face, folders, batching."""
from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from vae import data
from vae.data import loading, torchvision_sets
from vae.data.frey import FREY_FOLDER

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
    assert torchvision_sets.MNIST_CLASSES == tuple(str(d) for d in range(10))
    assert torchvision_sets.FASHION_CLASSES[0] == "T-shirt/top"
    assert torchvision_sets.KMNIST_CLASSES == ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


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
    assert [f.name for f in files] == list(torchvision_sets.MNIST_RAW_FILES)
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


# --- Frey Face, CIFAR-10, CelebA, a folder of images ----------------------------------------------


def _write_frey(root: Path, n: int = 40) -> np.ndarray:
    """A Frey-Face-shaped MAT-file of n faces (28 tall, 20 wide, each with its index in a corner)."""
    from tests.matwriter import write_mat

    faces = np.zeros((n, 28, 20), np.uint8)
    faces[:, :7] = 250  # bright top rows: upright faces keep them on top
    faces[:, 27, 19] = np.arange(n)
    (root / FREY_FOLDER).mkdir(parents=True, exist_ok=True)
    (root / FREY_FOLDER / "frey_rawface.mat").write_bytes(write_mat({"ff": faces.reshape(n, -1).T}, compress=True))
    return faces


def test_frey_face_loads_upright_28_by_20_with_a_fixed_test_share(tmp_path):
    faces = _write_frey(tmp_path, 40)
    train, test = (data.load_dataset("frey-face", split, tmp_path) for split in ("train", "test"))
    assert train.image_shape == test.image_shape == data.dataset_shape("frey-face") == (1, 28, 20)
    assert (len(train), len(test)) == (34, 6) and train.class_names == ["face"]
    ids = sorted(int(i) for i in torch.cat([train.images, test.images])[:, 0, 27, 19])
    assert ids == list(range(40))  # every face once, in one split or the other
    assert (train.images[:, 0, :7] == 250).all()
    np.testing.assert_array_equal(train.images[0, 0].numpy(), faces[int(train.images[0, 0, 27, 19])])


@pytest.mark.parametrize("name, words", [("frey-face", "FreyFace/frey_rawface.mat"),
                                         ("cifar10", "cifar-10-batches-py"), ("celeba", "celeba")])
def test_datasets_that_are_not_here_say_where_their_files_go(tmp_path, name, words):
    assert not data.dataset_available(name, tmp_path)
    with pytest.raises(data.DatasetUnavailable) as missing:
        data.load_dataset(name, "test", tmp_path)
    message = str(missing.value)
    assert str(tmp_path) in message and words.split("/")[0] in message and "shapes" in message, message
    assert "\n" not in message


def test_a_damaged_frey_file_is_one_message(tmp_path):
    (tmp_path / FREY_FOLDER).mkdir()
    (tmp_path / FREY_FOLDER / "frey_rawface.mat").write_bytes(b"MATLAB but not really" * 10)
    with pytest.raises(data.DatasetUnavailable, match="could not be read"):
        data.load_dataset("frey-face", "train", tmp_path)


def in_thread(load, seconds: float = 10.0, unblock: Path | None = None):
    """load() in a thread that must finish within seconds: what it returned or raised, or pytest.fail. unblock: a
    FIFO the thread may be stuck opening, opened for writing on a timeout so that the thread can end."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(load())
        except BaseException as e:  # handed to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"still loading after {seconds:.0f} s", pytrace=False)
    return outcome[0]


def test_a_frey_file_that_is_a_pipe_is_one_message_not_a_hang(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    (tmp_path / FREY_FOLDER).mkdir()
    os.mkfifo(fifo := tmp_path / FREY_FOLDER / "frey_rawface.mat")
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", lambda *a, **k: pytest.fail("downloaded onto a pipe"))
    for download in (False, True):
        error = in_thread(lambda: data.load_dataset("frey-face", "train", tmp_path, download=download), unblock=fifo)
        assert isinstance(error, data.DatasetUnavailable), repr(error)
        assert f"{fifo} is not a regular file" in str(error) and "\n" not in str(error), str(error)


def _two_images(folder: Path) -> Path:
    from PIL import Image

    (folder / "a").mkdir(parents=True)
    for i in range(2):
        Image.new("L", (10, 10), 80 * i).save(folder / "a" / f"{i}.png")
    return folder


def test_a_folder_that_takes_long_to_read_holds_up_no_other_dataset(tmp_path, monkeypatch):
    """Folder A is held inside its reader here, as a folder of huge images would be: MNIST, folder B and folder A
    at another size load meanwhile; a second load of A at the same size waits for the first and reads nothing."""
    from vae.data import folders

    write_tiny_raw(tmp_path, "MNIST")
    slow, quick = _two_images(tmp_path / "slow"), _two_images(tmp_path / "quick")
    entered, release, reads = threading.Event(), threading.Event(), []
    real_read = folders.load_image_folder

    def held(root, **kwargs):
        reads.append((Path(root).name, kwargs["size"]))
        if reads[-1] == ("slow", 8):
            entered.set()
            release.wait(60)
        return real_read(root, **kwargs)

    monkeypatch.setattr(folders, "load_image_folder", held)
    first = threading.Thread(target=data.load_dataset, args=("folder", "train", slow, False, 8, 1), daemon=True)
    second = threading.Thread(target=data.load_dataset, args=("folder", "test", slow, False, 8, 1), daemon=True)
    first.start()
    assert entered.wait(30)
    try:
        second.start()
        assert len(in_thread(lambda: data.load_dataset("mnist", "test", tmp_path))) == 3
        assert len(in_thread(lambda: data.load_dataset("folder", "test", quick, image_size=8, channels=1))) == 1
        assert len(in_thread(lambda: data.load_dataset("folder", "test", slow, image_size=16, channels=1))) == 1
        assert second.is_alive()  # the same folder at the same size: it waits for the read in progress
    finally:
        release.set()
    first.join(30)
    second.join(30)
    assert reads.count(("slow", 8)) == 1 and loading._LOADING == {}


def test_a_folder_of_images_loads_at_the_size_and_channels_asked_and_is_checked_against_the_model(tmp_path):
    from PIL import Image

    for k, name in enumerate(("cat", "dog")):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(7):
            Image.new("RGB", (40, 30), (200 * k, 30 * i, 90)).save(tmp_path / "pets" / name / f"{i}.png")
    folder = tmp_path / "pets"
    assert data.dataset_available("folder", folder) and data.expected_files("folder", folder) == [folder]
    train = data.load_dataset("folder", "train", folder, image_size=16, channels=3)
    test = data.load_dataset("folder", "test", folder, image_size=16, channels=3)
    assert train.image_shape == (3, 16, 16) and train.class_names == ["cat", "dog"]
    assert data.class_counts(train, test) == {"class": ["cat", "dog"], "train": [6, 6], "test": [1, 1]}
    grey = data.load_dataset("folder", "train", folder, image_size=8, channels=1)
    assert grey.image_shape == (1, 8, 8)
    from vae.config import TrainConfig

    cfg = TrainConfig(dataset="folder", image_size=16, channels=3, data_dir=str(folder))
    assert data.load_for(cfg, "test", image_shape=(3, 16, 16)) is test
    with pytest.raises(data.DatasetUnavailable, match="16x16 colour but the model was made for 28x28 grey"):
        data.load_for(cfg, "test", image_shape=(1, 28, 28))


def test_only_a_few_image_folders_stay_in_memory(tmp_path):
    from PIL import Image

    for f in range(loading.SIZED_KEPT + 2):
        (tmp_path / f"set{f}" / "a").mkdir(parents=True)
        for name in ("x.png", "y.png"):  # two: one to test on
            Image.new("L", (10, 10), 255).save(tmp_path / f"set{f}" / "a" / name)
        data.load_dataset("folder", "train", tmp_path / f"set{f}", image_size=8, channels=1)
    assert len([k for k in loading._CACHE if k[0] == "folder"]) == 2 * loading.SIZED_KEPT
