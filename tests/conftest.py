"""Shared fixtures: tiny in-memory datasets and configs so tests never download anything."""
from pathlib import Path

import pytest
import torch

from vae.config import ModelConfig, TrainConfig
from vae.data import InMemoryDataset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def tiny_dataset(n: int = 64, split: str = "train", seed: int = 0) -> InMemoryDataset:
    """n random blob images with 3 labels: enough to exercise every code path in a second."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, 1, 28, 28, generator=g) * 255 * (labels.view(-1, 1, 1, 1) + 1) / 3).to(torch.uint8)
    return InMemoryDataset("shapes", split, images, labels, ["a", "b", "c"], {}, "tiny test data")


@pytest.fixture
def tiny_data():
    return tiny_dataset(64, "train", 0), tiny_dataset(32, "test", 1)


@pytest.fixture
def tiny_cfg():
    return ModelConfig(arch="mlp", latent_dim=2, hidden=(32,)), TrainConfig(
        dataset="shapes", epochs=2, batch_size=16, lr=1e-3, seed=0, log_every=2, device="cpu"
    )
