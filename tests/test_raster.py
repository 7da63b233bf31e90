"""vae/raster.py: the Latent sliders page's small scatter, drawn into pixels."""
import numpy as np
import pytest

from vae.raster import BACKGROUND, MARKER, ScatterCanvas, hex_rgb, to_pixels

COLORS = ["#0072B2", "#E69F00"]


def test_to_pixels_maps_the_range_corners_and_puts_z2_upwards():
    px = to_pixels(np.array([[-4, -4], [4, 4], [0, 0]]), 361, -4, 4)
    np.testing.assert_allclose(px, [[0, 360], [360, 0], [180, 180]])


def test_hex_rgb():
    assert hex_rgb("#0072B2") == (0, 114, 178)
    with pytest.raises(ValueError, match="RRGGBB"):
        hex_rgb("blue")


def test_points_land_in_their_class_colour_where_their_code_is():
    xy = np.array([[-2.0, 3.0], [2.5, -1.5]])
    canvas = ScatterCanvas(xy, np.array([0, 1]), COLORS, size=201, radius=3, alpha=1.0)
    for (col, row), label in zip(np.rint(to_pixels(xy, 201, -4, 4)).astype(int), (0, 1)):
        assert tuple(canvas.base[row, col]) == hex_rgb(COLORS[label])
    assert tuple(canvas.base[5, 100 + 40]) != hex_rgb(COLORS[0])  # nothing drawn far from the points
    assert canvas.base.shape == (201, 201, 3) and canvas.base.dtype == np.uint8


def test_background_grid_and_prior_circles():
    canvas = ScatterCanvas(np.zeros((0, 2)), np.zeros(0, int), COLORS, size=201)
    scale = 200 / 8
    assert tuple(canvas.base[3, 3]) == BACKGROUND
    assert tuple(canvas.base[3, 100]) != BACKGROUND  # the z1 = 0 axis
    assert tuple(canvas.base[3, int(round(1 * scale + 100))]) != BACKGROUND  # grid line at z1 = 1
    # the 1-sigma circle passes through (z1, z2) = (0, 1): row 100 - 25, somewhere on its dashes nearby
    ring = canvas.base[100 - int(scale) - 1:100 - int(scale) + 2, 90:111]
    assert (ring.astype(int).sum(axis=2) < 300).any()


def test_marker_moves_and_base_is_untouched():
    canvas = ScatterCanvas(np.zeros((0, 2)), np.zeros(0, int), COLORS, size=201)
    base = canvas.base.copy()
    a, b = canvas.with_marker((1.0, 2.0)), canvas.with_marker((-3.0, -1.0))
    np.testing.assert_array_equal(canvas.base, base)
    col, row = np.rint(to_pixels(np.array([[1.0, 2.0]]), 201, -4, 4)[0]).astype(int)
    assert tuple(a[row, col]) == MARKER and tuple(b[row, col]) != MARKER
    assert not np.array_equal(a, b)


def test_a_point_outside_the_range_is_marked_at_the_edge():
    canvas = ScatterCanvas(np.zeros((0, 2)), np.zeros(0, int), COLORS, size=101)
    out = canvas.with_marker((9.0, 0.0))
    assert tuple(out[50, 100]) == MARKER


def test_empty_range_is_refused():
    with pytest.raises(ValueError, match="hi > lo"):
        ScatterCanvas(np.zeros((1, 2)), np.zeros(1, int), COLORS, lo=1, hi=1)
