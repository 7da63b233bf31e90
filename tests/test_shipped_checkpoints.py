"""The default models shipped in checkpoints/: safe to load, small, described truthfully in
checkpoints/README.md, each with a training replay for the Training replay page, and the MNIST ones with
the codes of their data (no image), so they explore on a machine without MNIST."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vae import checkpoint as ckpt_io
from vae.checkpoint.replay import replay_from_extras
from vae.checkpoint.codes import CODES_KEY, STORED_TEST, STORED_TRAIN, stored_codes_from_extras

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


# Each default's 20x20 manifold over [-3, 3]^2 on (z1, z2), as the Manifold page tiles it (uint8 (560, 560)), as
# the mean grey level of each of its 400 cells (tests/shipped_manifolds.json): code that is moved or tidied must
# decode the same weights to the same pictures. Not a digest of the bytes: another CPU's kernels round a few
# pixels to the next grey level, which moves a cell's mean by thousandths.
MANIFOLDS = json.loads((Path(__file__).with_name("shipped_manifolds.json")).read_text())
CELL_TOLERANCE = 0.25  # grey levels (of 255) a cell's mean may move


@pytest.mark.parametrize("name", MANIFOLDS)
def test_a_shipped_models_manifold_is_the_same(name):
    from vae.analysis.encoding import decode_grid, grid_axis
    from vae.render.images import tile_images

    xs = grid_axis(20, 3.0)
    picture = tile_images(decode_grid(ckpt_io.load(FOLDER / name).model, xs, xs))
    assert picture.shape == (560, 560)
    cells = picture.astype(np.float64).reshape(20, 28, 20, 28).mean(axis=(1, 3)).ravel()
    assert np.abs(cells - np.asarray(MANIFOLDS[name])).max() <= CELL_TOLERANCE
