"""Frey Face: the 1,965 faces (28 tall, 20 wide) of Kingma & Welling 2013, Fig. 5, from Roweis' MATLAB file
(read by vae/data/matfile.py), with the same held-out share as a folder without its own test split."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vae.data.loading import unavailable_message
from vae.data.matfile import FREY_FILE, MatFileError, load_frey_faces
from vae.data.memory import InMemoryDataset
from vae.data.registry import DatasetUnavailable, LoadRequest

FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FOLDER = "FreyFace"


def frey_files(root: Path) -> list[Path]:
    return [root / FREY_FOLDER / FREY_FILE]


def load_frey(request: LoadRequest) -> InMemoryDataset:
    path = frey_files(request.root)[0]
    try:
        if request.download and not os.path.lexists(path):  # never written through a pipe or link already there
            from torchvision.datasets.utils import download_url

            download_url(FREY_URL, str(path.parent), FREY_FILE)
        faces = torch.from_numpy(load_frey_faces(path))  # uint8 (N, 28, 20)
    except (OSError, MatFileError, RuntimeError, ValueError) as error:
        raise DatasetUnavailable(unavailable_message("frey-face", request.root, request.download, error)) from error
    from vae.data.folders import held_out  # imported here: it brings torchvision

    test = np.zeros(len(faces), bool)
    test[held_out(len(faces), seed=0)] = True
    keep = torch.from_numpy(test == (request.split == "test"))
    images = faces[keep].unsqueeze(1).contiguous()  # (n, 1, 28, 20)
    return InMemoryDataset("frey-face", request.split, images, torch.zeros(len(images), dtype=torch.int64), ["face"], {},
                           f"Frey Face from {path}")
