"""The default models shipped in checkpoints/: safe to load, small, described truthfully in
checkpoints/README.md, each with a training replay for the Training replay page, and the MNIST ones with
the codes of their data (no image), so they explore on a machine without MNIST."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vae import checkpoint as ckpt_io
from vae.replay import replay_from_extras
from vae.stored_codes import CODES_KEY, STORED_TEST, STORED_TRAIN, stored_codes_from_extras

FOLDER = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = {  # name: (dataset, latent dim, epochs)
    "default-mnist-2d.pt": ("mnist", 2, 20),
    "default-mnist-20d.pt": ("mnist", 20, 30),
    "default-shapes-2d.pt": ("shapes", 2, 20),
}
SIZE_LIMIT = 5_000_000  # bytes: "each <= 5 MB"


@pytest.mark.parametrize("name, shipped", SHIPPED.items())
def test_a_shipped_model_loads_safely_is_small_and_matches_its_readme_row(name, shipped):
    dataset, latent_dim, epochs = shipped
    path = FOLDER / name
    assert path.stat().st_size <= SIZE_LIMIT, f"{name} is {path.stat().st_size:,} bytes"
    ckpt = ckpt_io.load(path)  # weights_only=True and every check
    assert ckpt.dataset == dataset and ckpt.model_config.latent_dim == latent_dim and ckpt.epoch == epochs
    assert ckpt.optimizer_state is None  # saved with --slim
    readme = (FOLDER / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
    assert f"{ckpt.test_metrics['elbo']:.2f} nats" in row and f"{path.stat().st_size / 1e6:.2f} MB" in row
    replay = replay_from_extras(ckpt.extras)
    assert replay is not None, f"{name} carries no training replay"
    replay_epochs = [int(e) for e in replay.epochs]
    assert replay_epochs[0] == 0 and replay_epochs[-1] == epochs and ", ".join(map(str, replay_epochs)) in row


@pytest.mark.parametrize("name", [n for n, (dataset, _, _) in SHIPPED.items() if dataset == "mnist"])
def test_the_mnist_defaults_carry_codes_and_labels_but_no_image(name):
    ckpt = ckpt_io.load(FOLDER / name)
    assert "24,345" in ckpt.notes  # says it was trained on the offline copy's first 24,345 images
    stored = stored_codes_from_extras(ckpt.extras)
    assert stored is not None and len(stored) == STORED_TEST and stored.test_size == 10_000
    assert len(stored.train_mu) == STORED_TRAIN and sorted(set(stored.labels.tolist())) == list(range(10))
    assert ckpt.class_names == [str(d) for d in range(10)]
    # Every tensor outside the weights is codes, labels or decoded pictures: none holds 784 values a row
    # of anything but the replay's decoded manifold (uint8 tiles the model drew).
    raw = torch.load(FOLDER / name, weights_only=True)
    codes = raw["extras"][CODES_KEY]
    assert all(t.shape[-1] in (ckpt.model_config.latent_dim,) for t in (codes["mu"], codes["logvar"], codes["train_mu"]))
    assert codes["factors"] == {}
    assert set(raw["extras"]) == {"replay", CODES_KEY}
