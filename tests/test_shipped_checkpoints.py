"""The default models shipped in checkpoints/: safe to load, small, described truthfully in
checkpoints/README.md, and each with a training replay for the Training replay page."""
from __future__ import annotations

from pathlib import Path

import pytest

from vae import checkpoint as ckpt_io
from vae.replay import replay_from_extras

FOLDER = Path(__file__).resolve().parents[1] / "checkpoints"
SHIPPED = {"default-mnist-2d.pt": "mnist", "default-shapes-2d.pt": "shapes"}
SIZE_LIMIT = 5_000_000  # bytes: "each <= 5 MB"


@pytest.mark.parametrize("name, dataset", SHIPPED.items())
def test_a_shipped_model_loads_safely_is_small_and_matches_its_readme_row(name, dataset):
    path = FOLDER / name
    assert path.stat().st_size <= SIZE_LIMIT, f"{name} is {path.stat().st_size:,} bytes"
    ckpt = ckpt_io.load(path)  # weights_only=True and every check
    assert ckpt.dataset == dataset and ckpt.model_config.latent_dim == 2 and ckpt.epoch == 20
    assert ckpt.optimizer_state is None  # saved with --slim
    if dataset == "mnist":
        assert "24,345" in ckpt.notes  # says it was trained on the offline copy's first 24,345 images
    readme = (FOLDER / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
    assert f"{ckpt.test_metrics['elbo']:.2f} nats" in row
    replay = replay_from_extras(ckpt.extras)
    assert replay is not None, f"{name} carries no training replay"
    epochs = [int(e) for e in replay.epochs]
    assert epochs[0] == 0 and epochs[-1] == 20 and ", ".join(map(str, epochs)) in row
