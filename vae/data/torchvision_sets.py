"""The MNIST family (MNIST, Fashion-MNIST, KMNIST; uint8 28x28 grey) and CIFAR-10 (32x32 colour), read
through their torchvision classes from torchvision's layout under the data folder."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from vae.data.loading import expected_files, unavailable_message
from vae.data.memory import InMemoryDataset
from vae.data.registry import DatasetUnavailable, LoadRequest

# torchvision's MNIST._check_exists wants all four, whichever split is asked for.
MNIST_RAW_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta")  # under cifar-10-batches-py/
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


def mnist_files(folder: str) -> Callable[[Path], list[Path]]:
    """The raw files of an MNIST-family dataset whose torchvision class (and folder) is `folder`."""
    return lambda root: [root / folder / "raw" / f for f in MNIST_RAW_FILES]


def cifar10_files(root: Path) -> list[Path]:
    return [root / "cifar-10-batches-py" / f for f in CIFAR10_FILES]


def torchvision_loader(name: str, folder: str, class_names: tuple[str, ...] | None,
                       shape: tuple[int, int, int]) -> Callable[[LoadRequest], InMemoryDataset]:
    """A loader for the torchvision class `folder` (also its folder under the root); class_names None: the
    class's own. Images come as (N, H, W) grey or (N, H, W, 3) colour and are kept as (N, C, H, W)."""

    def load(request: LoadRequest) -> InMemoryDataset:
        try:
            from torchvision import datasets  # imported here: slow, and the built-in shapes never need it

            loaded = getattr(datasets, folder)(str(request.root), train=(request.split == "train"),
                                                download=request.download)
            images, labels = torch.as_tensor(loaded.data), torch.as_tensor(loaded.targets)
            names = list(class_names or loaded.classes)
        except Exception as error:  # missing files, no network, truncated files: all become one readable error
            raise DatasetUnavailable(unavailable_message(name, request.root, request.download, error)) from error
        images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2).contiguous()
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape or len(labels) != len(images):
            bad = ValueError(f"images {tuple(images.shape)} {images.dtype}, {len(labels)} labels")
            raise DatasetUnavailable(unavailable_message(name, request.root, request.download, bad))
        return InMemoryDataset(name=name, split=request.split, images=images, labels=labels.to(torch.int64),
                               class_names=names, factors={},
                               source=f"torchvision {folder} from {expected_files(name, request.root)[0].parent}")

    return load
