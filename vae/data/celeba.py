"""CelebA (Liu et al. 2015): the aligned faces centre-cropped to 148 px and resized to 64x64 colour, the first
40,000 training images, labelled by the Smiling attribute with a few other attributes as known factors;
read through torchvision and decoded once into an .npz beside the files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vae.data.cachefile import read_npz, write_npz
from vae.data.loading import unavailable_message
from vae.data.memory import InMemoryDataset
from vae.data.registry import DatasetUnavailable, LoadRequest

CELEBA_FOLDER = "celeba"
CELEBA_IMAGES = "img_align_celeba"  # a folder of JPEGs
CELEBA_FILES = ("list_eval_partition.txt", "list_attr_celeba.txt", "identity_CelebA.txt",
                "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")  # under celeba/, beside the images
CELEBA_SIZE, CELEBA_CROP = 64, 148  # the usual VAE crop of the aligned 178x218 faces, then 64x64
CELEBA_LIMIT = {"train": 40_000, "test": 5_000}  # images kept: 40k x 12 kB of uint8 = 0.5 GB in memory
CELEBA_FACTORS = ("Smiling", "Male", "Young", "Eyeglasses", "Blond_Hair", "Wearing_Hat")  # the first labels


def celeba_folders(root: Path) -> list[Path]:
    return [root / CELEBA_FOLDER / CELEBA_IMAGES]


def celeba_files(root: Path) -> list[Path]:
    return [root / CELEBA_FOLDER / f for f in CELEBA_FILES]


def _cache(root: Path, split: str) -> Path:
    return root / CELEBA_FOLDER / f"latent-explorer-{CELEBA_SIZE}-{split}.npz"


def load_celeba(request: LoadRequest) -> InMemoryDataset:
    """The first CELEBA_LIMIT[split] faces of a split, with their attributes."""
    split, root = request.split, request.root
    arrays = read_npz(_cache(root, split), ("images", "attrs"))
    images, attrs = (None, None) if arrays is None else (torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["attrs"]))
    if images is None or images.shape[1:] != (3, CELEBA_SIZE, CELEBA_SIZE) or attrs.shape != (len(images), len(CELEBA_FACTORS)):
        images, attrs = _decode(request)
        write_npz(_cache(root, split), {"images": images.numpy(), "attrs": attrs.numpy()})
    factors = {name.lower(): attrs[:, i].to(torch.float32) for i, name in enumerate(CELEBA_FACTORS)}
    return InMemoryDataset("celeba", split, images, attrs[:, 0].clone(), ["not smiling", "smiling"], factors,
                           f"torchvision CelebA from {root / CELEBA_FOLDER}, the aligned faces centre-cropped to "
                           f"{CELEBA_CROP} px and resized to {CELEBA_SIZE}x{CELEBA_SIZE} RGB")


def _decode(request: LoadRequest) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (n, 3, 64, 64) faces and int64 (n, len(CELEBA_FACTORS)) attributes from torchvision's CelebA."""
    try:
        from torchvision import datasets, transforms

        loaded = datasets.CelebA(str(request.root), split="train" if request.split == "train" else "test",
                                 target_type="attr", download=request.download)
        prepare = transforms.Compose([transforms.CenterCrop(CELEBA_CROP), transforms.Resize(CELEBA_SIZE)])
        columns = [loaded.attr_names.index(a) for a in CELEBA_FACTORS]
        n = min(len(loaded), CELEBA_LIMIT[request.split])
        images = torch.empty((n, 3, CELEBA_SIZE, CELEBA_SIZE), dtype=torch.uint8)
        for i in range(n):
            picture, _ = loaded[i]
            images[i] = torch.from_numpy(np.asarray(prepare(picture.convert("RGB")), np.uint8)).permute(2, 0, 1)
        return images, loaded.attr[:n][:, columns].to(torch.int64)
    except Exception as error:
        raise DatasetUnavailable(unavailable_message("celeba", request.root, request.download, error)) from error
