"""Tests for vae/data/shapes.py: the built-in shapes, grey and colour, their factors and their disk cache."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vae import data
from vae.data import shapes


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    data.clear_cache()
    yield
    data.clear_cache()



def test_shapes_deterministic_from_seed():
    a, b, c = shapes.make_shapes(300, 7), shapes.make_shapes(300, 7), shapes.make_shapes(300, 8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert all(torch.equal(a[2][k], b[2][k]) for k in a[2])
    assert not torch.equal(a[0], c[0])


def test_shapes_types_classes_and_factors():
    images, labels, factors = shapes.make_shapes(500, 0)
    assert images.dtype == torch.uint8 and images.shape == (500, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.shape == (500,)
    assert set(labels.tolist()) == set(range(len(shapes.SHAPE_NAMES)))
    assert set(factors) == {"shape", "scale", "rotation", "x", "y"}
    assert all(f.dtype == torch.float32 and f.shape == (500,) for f in factors.values())
    torch.testing.assert_close(factors["shape"], labels.float(), rtol=0, atol=0)
    assert images.amax() == 255 and images.amin() == 0
    edge = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    assert edge.max() == 0  # every shape stays inside the frame, with a margin


def test_shapes_centre_of_mass_matches_xy():
    images, _, factors = shapes.make_shapes(1000, 1)
    ink = images[:, 0].double()
    centres = torch.arange(28, dtype=torch.float64) + 0.5  # pixel centres, pixel units
    mass = ink.sum(dim=(1, 2))
    cx = (ink * centres[None, None, :]).sum(dim=(1, 2)) / mass
    cy = (ink * centres[None, :, None]).sum(dim=(1, 2)) / mass
    # Tolerance 0.25 px: anti-aliasing at 4x supersampling and 8-bit rounding move it ~0.13 px at most.
    assert (cx - factors["x"].double()).abs().max() < 0.25
    assert (cy - factors["y"].double()).abs().max() < 0.25


def test_shapes_larger_scale_means_more_ink():
    images, labels, factors = shapes.make_shapes(1500, 2)
    ink = images.double().sum(dim=(1, 2, 3))
    for shape_id, name in enumerate(shapes.SHAPE_NAMES):
        keep = labels == shape_id
        # Area grows as scale², so compare ink with scale² per shape (rotation only jitters it).
        corr = np.corrcoef(ink[keep].numpy(), factors["scale"][keep].double().numpy() ** 2)[0, 1]
        assert corr > 0.95, name


def test_shapes_rotation_turns_the_image():
    # Same square, rotated by 45 degrees, is not the same picture; circles do not care.
    square = shapes._render(np.array([0, 0]), np.float32([7, 7]), np.float32([0, np.pi / 4]),
                          np.float32([14, 14]), np.float32([14, 14]))
    circle = shapes._render(np.array([1, 1]), np.float32([7, 7]), np.float32([0, np.pi / 4]),
                          np.float32([14, 14]), np.float32([14, 14]))
    assert np.abs(square[0].astype(int) - square[1]).sum() > 255 * 10
    assert np.abs(circle[0].astype(int) - circle[1]).max() <= 16


def test_shapes_full_train_split(tmp_path):
    start = time.perf_counter()
    ds = data.load_dataset("shapes", "train", data_dir=tmp_path)
    print(f"shapes train split: {time.perf_counter() - start:.2f} s")
    assert len(ds) == 20_000 and ds.images.shape == (20_000, 1, 28, 28)
    assert ds.class_names[:3] == ["square", "circle", "triangle"] and ds.source == "built-in shapes (generated, seed 0)"
    assert data.load_dataset("shapes", "train") is ds  # one in-process copy whatever the folder


def test_shapes_disk_cache_round_trip(tmp_path, monkeypatch):
    ds = data.load_dataset("shapes", "test", data_dir=tmp_path)
    cache_file = tmp_path / "shapes" / "shapes-v1-test.npz"
    assert cache_file.is_file() and not list(cache_file.parent.glob("*.tmp"))
    data.clear_cache()
    monkeypatch.setattr(shapes, "make_shapes", lambda *a: pytest.fail("regenerated despite the cache"))
    cached = data.load_dataset("shapes", "test", data_dir=tmp_path)
    monkeypatch.undo()
    images, labels, factors = shapes.make_shapes(4000, 1)
    assert len(cached) == 4000 and ds.source == cached.source
    assert torch.equal(cached.images, images) and torch.equal(cached.labels, labels)
    assert torch.equal(ds.images, images)
    for key, value in factors.items():
        torch.testing.assert_close(cached.factors[key], value, rtol=0, atol=0)


def test_shapes_corrupt_cache_is_regenerated(tmp_path):
    cache_file = tmp_path / "shapes" / "shapes-v1-test.npz"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"not a zip file")
    ds = data.load_dataset("shapes", "test", data_dir=tmp_path)
    assert torch.equal(ds.images, shapes.make_shapes(4000, 1)[0])
    assert cache_file.stat().st_size > 1000  # rewritten


def test_shapes_unwritable_folder_is_skipped(tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    ds = data.load_dataset("shapes", "test", data_dir=blocker)  # <blocker>/shapes cannot be created
    assert len(ds) == 4000


# --- colour ---------------------------------------------------------------------------------------


def test_hues_are_the_colour_wheel():
    rgb = shapes.hue_to_rgb(np.array([0.0, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 5 / 6]))
    np.testing.assert_allclose(rgb, [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], atol=1e-6)
    assert (rgb.max(axis=1) == 1).all()  # full value: a pixel's brightest channel is its coverage


def test_colour_shapes_are_the_grey_shapes_painted_in_their_hue():
    grey, labels, factors = shapes.make_shapes(400, 3)
    colour, colour_labels, colour_factors = shapes.make_shapes(400, 3, colour=True)
    assert colour.shape == (400, 3, 28, 28) and colour.dtype == torch.uint8
    assert torch.equal(labels, colour_labels) and set(colour_factors) == set(factors) | {"hue"}
    assert all(torch.equal(factors[k], colour_factors[k]) for k in factors)  # the same shapes from the same seed
    assert (colour.amax(dim=1) - grey[:, 0]).abs().max() <= 1  # brightest channel = the grey coverage
    hue = colour_factors["hue"].numpy()
    assert hue.min() >= 0 and hue.max() < 1 and hue.std() > 0.2
    ink = colour.double().sum(dim=(2, 3))  # (n, 3) total of each channel
    direction = ink / ink.norm(dim=1, keepdim=True)
    expected = torch.from_numpy(shapes.hue_to_rgb(hue)).double()
    cosine = (direction * expected / expected.norm(dim=1, keepdim=True)).sum(dim=1)
    assert cosine.min() > 0.99  # every image is its hue


def test_colour_shapes_load_as_their_own_dataset(tmp_path):
    ds = data.load_dataset("shapes-color", "test", data_dir=tmp_path)
    assert ds.image_shape == (3, 28, 28) and len(ds) == 4000 and ds.name == "shapes-color"
    assert (tmp_path / "shapes" / "shapes-color-v1-test.npz").is_file()
    assert "hue" in ds.factors and ds.class_names == list(shapes.SHAPE_NAMES)
    assert data.load_dataset("shapes", "test", data_dir=tmp_path).image_shape == (1, 28, 28)
