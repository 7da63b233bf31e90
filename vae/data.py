"""Datasets held in memory as uint8 (N, C, H, W) tensors: the MNIST family, CIFAR-10 and CelebA through
torchvision, Frey Face from its MATLAB file, a folder of the user's own images (vae/folders.py), and the
built-in shapes in grey and colour (vae/shapes.py).

`load_dataset` loads each (name, split, folder, size) once per process and hands every caller the same
object, so callers must treat a dataset and its tensors as read-only (slice or copy, never write).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import shapes
from .cachefile import read_npz, write_npz

import numpy as np
import torch

DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist", "shapes", "shapes-color", "frey-face", "cifar10", "celeba", "folder")
BUILT_IN = ("shapes", "shapes-color")  # made here from a seed: no files, no download
SPLITS = ("train", "test")
DATA_DIR_ENV = "VAE_DATA_DIR"
ALLOWED_DATA_DIRS_ENV = "VAE_DATA_DIRS"  # more folders a browser may point the server at, os.pathsep-separated
FOLDER_CACHE = ".folder-cache"  # under the configured data folder: decoded image folders (vae/folders.py)
FOLDERS_KEPT = 3  # image folders (both splits, at one size) held in memory at once
UPLOADS = "uploads"  # under the configured data folder: where uploaded .zip files of images are unpacked

# registry name -> (torchvision class, which is also its folder under the root; readable title; class names)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST", [str(d) for d in range(10)]),
    "fashion-mnist": ("FashionMNIST", "Fashion-MNIST", [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]),
    "kmnist": ("KMNIST", "KMNIST", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]),
}
# torchvision's MNIST._check_exists wants all four, whichever split is asked for.
_RAW_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta")  # under cifar-10-batches-py/
CELEBA_FILES = ("img_align_celeba", "list_eval_partition.txt", "list_attr_celeba.txt", "identity_CelebA.txt",
                "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")  # under celeba/
CELEBA_SIZE, CELEBA_CROP = 64, 148  # the usual VAE crop of the aligned 178x218 faces, then 64x64
CELEBA_LIMIT = {"train": 40_000, "test": 5_000}  # images kept: 40k x 12 kB of uint8 = 0.5 GB in memory
CELEBA_LABEL = "Smiling"  # the attribute that colours the scatter; a few others become factors
CELEBA_FACTORS = ("Smiling", "Male", "Young", "Eyeglasses", "Blond_Hair", "Wearing_Hat")
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FOLDER = "FreyFace"

_CACHE: dict[tuple, "InMemoryDataset"] = {}
_LOCK = threading.Lock()  # the app may load from several script threads at once


@dataclass(eq=False, repr=False)
class InMemoryDataset:
    """One split of one dataset, entirely in memory. Shared between callers: do not mutate."""

    name: str
    split: str
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    factors: dict[str, torch.Tensor]  # float32 (N,) each; {} when unknown
    source: str
    summary: str = ""  # what reading it found, in a sentence (a folder: images read and skipped)
    _float: torch.Tensor | None = field(default=None, init=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"InMemoryDataset({self.name!r}, {self.split!r}, n={len(self)}, source={self.source!r})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of each image."""
        return tuple(int(v) for v in self.images.shape[1:])

    def float_images(self) -> torch.Tensor:
        """float32 (N, C, H, W) in [0, 1], computed once and kept."""
        if self._float is None:
            self._float = self.images.to(torch.float32).div_(255.0)
        return self._float

    def subset(self, n: int) -> InMemoryDataset:
        """The first n items (all of them when n >= len); shares memory with this dataset."""
        if n < 0:
            raise ValueError(f"A subset needs a size of 0 or more, not {n}.")
        sub = InMemoryDataset(
            self.name, self.split, self.images[:n], self.labels[:n], list(self.class_names),
            {key: value[:n] for key, value in self.factors.items()}, self.source, self.summary,
        )
        if self._float is not None:
            sub._float = self._float[:n]
        return sub


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on disk and could not be fetched; the message says what to do."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The argument, else $VAE_DATA_DIR, else ./data (relative to the working directory), made absolute."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or "data"
    try:
        return Path(data_dir).expanduser().resolve()
    except (OSError, ValueError):  # unresolvable (a NUL byte, a loop): keep it as typed, loading will say why
        return Path(os.path.abspath(data_dir))


class DataFolderRefused(ValueError):
    """A data folder typed in the browser that the server's operator did not allow; the message says which are."""


def allowed_data_dirs() -> list[Path]:
    """The folders (and those below them) a browser may choose: the configured data folder ($VAE_DATA_DIR,
    else ./data) and any listed in $VAE_DATA_DIRS."""
    listed = [p for p in os.environ.get(ALLOWED_DATA_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [resolve_data_dir(None), *(resolve_data_dir(p) for p in listed)]


def check_data_dir(typed: str) -> Path:
    """The folder typed, resolved, when it is an allowed one or below one; else DataFolderRefused. Nothing
    is created: the folder need not exist yet."""
    if "\0" in typed or not typed.strip():
        raise DataFolderRefused("Type a folder path (without control characters), e.g. " + str(resolve_data_dir(None)) + ".")
    folder = resolve_data_dir(typed.strip())
    allowed = allowed_data_dirs()
    if not any(folder == root or root in folder.parents for root in allowed):
        raise DataFolderRefused(f"{folder} is not a data folder this server allows; use {allowed[0]} or a folder below it "
                                f"(the server's operator can allow more with ${ALLOWED_DATA_DIRS_ENV}).")
    return folder


def clear_cache() -> None:
    """Forget every dataset loaded in this process (for tests; disk caches stay)."""
    with _LOCK:
        _CACHE.clear()


class UnknownDataset(DatasetUnavailable, ValueError):
    """A dataset name that is not one of ours (a checkpoint may carry any as a label): never a path."""


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise UnknownDataset(f"Unknown dataset {str(name)[:64]!r}: its images cannot be loaded here; the datasets this "
                             f"app knows are {', '.join(DATASET_NAMES)}.")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")


def dataset_shape(name: str, image_size: int = 32, channels: int = 3) -> tuple[int, int, int]:
    """(C, H, W) of a dataset's images, known without loading them; a folder's are the size and channels
    its images are made to (vae/folders.py)."""
    _check_name(name)
    fixed = {"shapes-color": (3, shapes.SIZE, shapes.SIZE), "frey-face": (1, 28, 20), "cifar10": (3, 32, 32),
             "celeba": (3, CELEBA_SIZE, CELEBA_SIZE), "folder": (int(channels), int(image_size), int(image_size))}
    return fixed.get(name, (1, 28, 28))


def _raw_folder(name: str, data_dir: str | os.PathLike | None) -> Path:
    return resolve_data_dir(data_dir) / _TORCHVISION[name][0] / "raw"


def expected_files(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The files (or folders) a dataset is read from; [] for the built-in shapes. A folder dataset's is
    the folder itself: data_dir holds one subfolder of images per class."""
    _check_name(name)
    root = resolve_data_dir(data_dir)
    if name in BUILT_IN:
        return []
    if name == "folder":
        return [root]
    if name == "frey-face":
        from .matfile import FREY_FILE

        return [root / FREY_FOLDER / FREY_FILE]
    if name == "cifar10":
        return [root / "cifar-10-batches-py" / f for f in CIFAR10_FILES]
    if name == "celeba":
        return [root / "celeba" / f for f in CELEBA_FILES]
    folder = _raw_folder(name, data_dir)
    return [folder / file for file in _RAW_FILES]


def dataset_available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """True when the files are already on disk (never downloads); always True for the built-in shapes."""
    try:
        paths = expected_files(name, data_dir)
        return all(p.is_dir() if name == "folder" or p.name == "img_align_celeba" else p.is_file() for p in paths)
    except (OSError, ValueError):  # a folder name too long for the system, or with a NUL byte in it
        return False


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    image_size: int = 32,
    channels: int = 3,
) -> InMemoryDataset:
    """Load one split, once per process; raises DatasetUnavailable when the files cannot be had.
    image_size, channels: what a folder's images are made to (other datasets have their own shape)."""
    _check_name(name)
    _check_split(split)
    root = resolve_data_dir(data_dir)
    # Shapes are the same whatever the folder (it only holds their disk cache), so one key serves all.
    key = (name, split, None if name in BUILT_IN else str(root), (image_size, channels) if name == "folder" else None)
    with _LOCK:
        dataset = _CACHE.get(key)
        if dataset is None:
            if name in BUILT_IN:
                dataset = _load_shapes(split, root, colour=name == "shapes-color")
            elif name == "folder":
                for part in _load_folder(root, image_size, channels):
                    _CACHE[(name, part.split, str(root), (image_size, channels))] = part
                dataset = _CACHE[key]
                folders = [k for k in _CACHE if k[0] == "folder"]
                for old in folders[:-2 * FOLDERS_KEPT]:  # a user previewing folder after folder: keep the newest
                    del _CACHE[old]
            elif name == "frey-face":
                dataset = _load_frey(split, root, download)
            elif name == "celeba":
                dataset = _load_celeba(split, root, download)
            else:
                dataset = _load_torchvision(name, split, root, download)
            _CACHE[key] = dataset
    return dataset


def load_for(train_cfg, split: str, data_dir: str | os.PathLike | None = None, download: bool = False,
             image_shape: tuple[int, int, int] | None = None) -> InMemoryDataset:
    """One split of the data a TrainConfig names: its dataset, from data_dir (else the config's own folder),
    a folder's images made to its size and channels. image_shape: the model's (C, H, W), which the images
    must have (DatasetUnavailable, one sentence, when they do not)."""
    data = load_dataset(train_cfg.dataset, split, data_dir if data_dir is not None else train_cfg.data_dir, download,
                        train_cfg.image_size, train_cfg.channels)
    if image_shape is not None and data.image_shape != tuple(image_shape):
        raise DatasetUnavailable(f"The {train_cfg.dataset} images here are {describe_shape(data.image_shape)} but the model "
                                 f"was made for {describe_shape(image_shape)}; load the data it was trained on.")
    return data


def describe_shape(shape: tuple[int, int, int]) -> str:
    """(C, H, W) as people say it: '28x20 grey', '64x64 colour' (width x height)."""
    c, h, w = shape
    return f"{w}x{h} {'colour' if c == 3 else 'grey'}"


def class_counts(train: InMemoryDataset, test: InMemoryDataset) -> dict[str, list]:
    """{"class": names, "train": counts, "test": counts}: the images of each class in each split."""
    k = len(train.class_names)
    return {"class": list(train.class_names),
            "train": torch.bincount(train.labels, minlength=k)[:k].tolist(),
            "test": torch.bincount(test.labels, minlength=k)[:k].tolist()}


# --- torchvision datasets -------------------------------------------------------------------------


def _unavailable_message(name: str, root: Path, download: bool, error: BaseException | None) -> str:
    """One sentence naming the folder and the files a dataset needs, and what to do instead."""
    title = {"cifar10": "CIFAR-10", "celeba": "CelebA", "frey-face": "Frey Face"}.get(name) or _TORCHVISION[name][1]
    paths = expected_files(name, root)
    raw = paths[0].parent
    files = ", ".join(p.name for p in paths)
    missing = not dataset_available(name, root)
    if missing and download:
        first = (f"{title} could not be downloaded into {raw} (is there a network connection?), "
                 f"so the files it is read from are missing there: {files}.")
    elif missing:
        first = f"{title} is not in {raw}: it is read from the files {files} there."
    else:
        reason = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "unknown error"
        first = (f"{title} files in {raw} could not be read ({type(error).__name__}: {reason[:200]}); "
                 f"it needs intact {files} there.")
    holder = raw.relative_to(root) if raw != root and root in raw.parents else raw.name
    return (f"{first} Point --data-dir or {DATA_DIR_ENV} at the folder that holds {holder}, "
            f"or pick the built-in 'shapes' dataset, which needs no files.")


def _load_torchvision(name: str, split: str, root: Path, download: bool) -> InMemoryDataset:
    """The MNIST family (uint8 (N, 28, 28)) and CIFAR-10 (uint8 (N, 32, 32, 3)) from their torchvision classes."""
    folder, _, class_names = _TORCHVISION.get(name, ("CIFAR10", "CIFAR-10", None))
    try:
        from torchvision import datasets  # imported here: slow, and shapes never needs it

        loaded = getattr(datasets, folder)(str(root), train=(split == "train"), download=download)
        images, labels = torch.as_tensor(loaded.data), torch.as_tensor(loaded.targets)
        class_names = class_names or list(loaded.classes)
    except Exception as error:  # missing files, no network, truncated files: all become one readable error
        raise DatasetUnavailable(_unavailable_message(name, root, download, error)) from error
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != dataset_shape(name) or len(labels) != len(images):
        bad = ValueError(f"images {tuple(images.shape)} {images.dtype}, {len(labels)} labels")
        raise DatasetUnavailable(_unavailable_message(name, root, download, bad))
    return InMemoryDataset(
        name=name, split=split, images=images, labels=labels.to(torch.int64), class_names=list(class_names),
        factors={}, source=f"torchvision {folder} from {expected_files(name, root)[0].parent}",
    )


def _celeba_cache(root: Path, split: str) -> Path:
    return root / "celeba" / f"latent-explorer-{CELEBA_SIZE}-{split}.npz"


def _load_celeba(split: str, root: Path, download: bool) -> InMemoryDataset:
    """The first CELEBA_LIMIT[split] aligned faces, centre-cropped to 148 and resized to 64x64 RGB, through
    torchvision's CelebA; decoded once and kept as an .npz beside the files."""
    cache = _celeba_cache(root, split)
    arrays = read_npz(cache, ("images", "attrs"))
    images, attrs = (None, None) if arrays is None else (torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["attrs"]))
    if images is None or images.shape[1:] != (3, CELEBA_SIZE, CELEBA_SIZE) or attrs.shape != (len(images), len(CELEBA_FACTORS)):
        try:
            from torchvision import datasets, transforms

            loaded = datasets.CelebA(str(root), split="train" if split == "train" else "test", target_type="attr",
                                     download=download)
            prepare = transforms.Compose([transforms.CenterCrop(CELEBA_CROP), transforms.Resize(CELEBA_SIZE)])
            columns = [loaded.attr_names.index(a) for a in CELEBA_FACTORS]
            n = min(len(loaded), CELEBA_LIMIT[split])
            images = torch.empty((n, 3, CELEBA_SIZE, CELEBA_SIZE), dtype=torch.uint8)
            for i in range(n):
                picture, attr = loaded[i]
                images[i] = torch.from_numpy(np.asarray(prepare(picture.convert("RGB")), np.uint8)).permute(2, 0, 1)
            attrs = loaded.attr[:n][:, columns].to(torch.int64)
        except Exception as error:
            raise DatasetUnavailable(_unavailable_message("celeba", root, download, error)) from error
        write_npz(cache, {"images": images.numpy(), "attrs": attrs.numpy()})
    factors = {name.lower(): attrs[:, i].to(torch.float32) for i, name in enumerate(CELEBA_FACTORS)}
    return InMemoryDataset("celeba", split, images, attrs[:, 0].clone(), ["not smiling", "smiling"], factors,
                           f"torchvision CelebA from {root / 'celeba'}, the aligned faces centre-cropped to "
                           f"{CELEBA_CROP} px and resized to {CELEBA_SIZE}x{CELEBA_SIZE} RGB")


# --- Frey Face, a folder of images, the built-in shapes ---------------------------------------------


def _load_frey(split: str, root: Path, download: bool) -> InMemoryDataset:
    """The 1,965 faces of Frey Face (Kingma & Welling 2013, Fig. 5), 28 tall and 20 wide, from the MATLAB file."""
    from .folders import held_out
    from .matfile import FREY_FILE, MatFileError, load_frey_faces

    path = root / FREY_FOLDER / FREY_FILE
    try:
        if download and not path.is_file():
            from torchvision.datasets.utils import download_url

            download_url(FREY_URL, str(path.parent), FREY_FILE)
        faces = torch.from_numpy(load_frey_faces(path))  # uint8 (N, 28, 20)
    except (OSError, MatFileError, RuntimeError, ValueError) as error:
        raise DatasetUnavailable(_unavailable_message("frey-face", root, download, error)) from error
    test = np.zeros(len(faces), bool)
    test[held_out(len(faces), seed=0)] = True  # the same share as a folder without its own test split
    keep = torch.from_numpy(test == (split == "test"))
    images = faces[keep].unsqueeze(1).contiguous()  # (n, 1, 28, 20)
    return InMemoryDataset("frey-face", split, images, torch.zeros(len(images), dtype=torch.int64), ["face"], {},
                           f"Frey Face from {path}")


def _load_folder(root: Path, image_size: int, channels: int) -> tuple[InMemoryDataset, InMemoryDataset]:
    """Both splits of a folder of images, one subfolder per class (vae/folders.py)."""
    from .folders import FolderError, load_image_folder

    try:
        read = load_image_folder(root, size=image_size, channels=channels, seed=0,
                                 cache_dir=resolve_data_dir(None) / FOLDER_CACHE)
    except FolderError as error:
        raise DatasetUnavailable(str(error)) from error
    return tuple(InMemoryDataset("folder", split, images, labels, list(read.class_names), {}, read.source, read.summary())
                 for split, images, labels in (("train", read.train_images, read.train_labels),
                                               ("test", read.test_images, read.test_labels)))


def _load_shapes(split: str, root: Path, colour: bool = False) -> InMemoryDataset:
    images, labels, factors, seed = shapes.load(split, root, colour)
    return InMemoryDataset(
        name="shapes-color" if colour else "shapes", split=split, images=images, labels=labels,
        class_names=list(shapes.SHAPE_NAMES), factors=factors,
        source=f"built-in {'colour ' if colour else ''}shapes (generated, seed {seed})",
    )


# --- batching -------------------------------------------------------------------------------------


def batch_iterator(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One shuffled epoch of int64 index tensors; the last, smaller batch is kept."""
    if n < 0 or batch_size < 1:
        raise ValueError(f"Batches need n >= 0 and batch_size >= 1; got n={n}, batch_size={batch_size}.")
    order = torch.randperm(n, generator=generator)  # drawn now, so the generator advances at the call
    return (order[start:start + batch_size] for start in range(0, n, batch_size))
