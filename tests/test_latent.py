"""Unit tests for vae/analysis and vae/render: the numbers behind the Explore pages, and the latent figures."""
import base64
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vae.config import ModelConfig
from vae.render.figures import kl_per_dim_figure, latent_scatter, manifold_figure, selected_index
from vae.analysis.geometry import knn_label_map, square_extent, pca_2d, pca_prior_centre, project_codes
from vae.analysis.usage import latent_usage, active_units, kl_per_dimension
from vae.analysis.encoding import (decode_codes, decode_grid, encode_dataset, grid_axis, grid_codes, interpolate,
    reconstruct, sample_indices)
from vae.render.axes import grid_cell_edges, grid_plot_coords, prior_contour, round_ticks, format_tick
from vae.render.images import png_bytes, tile_images, tile_rows, to_uint8, upscale_factor, upscale_nearest
from vae.render.palette import PALETTE
from vae.nets.loss import kl_divergence
from vae.nets.model import VAE

ARCHS = [("mlp", (32,)), ("conv", (32,))]


def _model(arch="mlp", hidden=(32,), latent_dim=2, seed=0) -> VAE:
    g = torch.Generator().manual_seed(seed)
    return VAE(ModelConfig(arch=arch, latent_dim=latent_dim, hidden=hidden), generator=g).eval()


def _images(n, seed=0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# --- encode, decode, reconstruct ------------------------------------------------------------------

@pytest.mark.parametrize("arch,hidden", ARCHS)
@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_encode_dataset_shapes_and_batching(arch, hidden, latent_dim):
    model, x = _model(arch, hidden, latent_dim), _images(37)
    mu, logvar = encode_dataset(model, x, batch_size=10)  # 4 batches, the last one short
    assert mu.shape == logvar.shape == (37, latent_dim) and mu.dtype == np.float32
    with torch.no_grad():
        ref_mu, ref_logvar = model.encode(x)
    torch.testing.assert_close(torch.from_numpy(mu), ref_mu)
    torch.testing.assert_close(torch.from_numpy(logvar), ref_logvar)


def test_encode_dataset_empty():
    mu, logvar = encode_dataset(_model(latent_dim=3), torch.zeros(0, 1, 28, 28))
    assert mu.shape == logvar.shape == (0, 3)


@pytest.mark.parametrize("arch,hidden", ARCHS)
def test_decode_codes_is_the_sigmoid_image_mean(arch, hidden):
    model = _model(arch, hidden)
    z = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    out = decode_codes(model, z)
    assert out.shape == (6, 28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    with torch.no_grad():
        ref = torch.sigmoid(model.decode_logits(torch.from_numpy(z)))[:, 0]
    torch.testing.assert_close(torch.from_numpy(out), ref)


def test_reconstruct_decodes_the_posterior_mean():
    model, x = _model(), _images(5)
    mu, _ = encode_dataset(model, x)
    out = reconstruct(model, x)
    assert out.shape == (5, 28, 28)
    torch.testing.assert_close(torch.from_numpy(out), torch.from_numpy(decode_codes(model, mu)))


# --- grids ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,radius", [(2, 1.0), (5, 3.0), (20, 2.5)])
def test_grid_axis_linear_endpoints(n, radius):
    axis = grid_axis(n, radius, "linear")
    assert axis.shape == (n,) and axis[0] == pytest.approx(-radius) and axis[-1] == pytest.approx(radius)
    np.testing.assert_allclose(np.diff(axis), 2 * radius / (n - 1), rtol=1e-5)


@pytest.mark.parametrize("n", [1, 4, 5, 20, 30])
def test_grid_axis_gaussian_symmetric_monotone_equal_mass(n):
    axis = grid_axis(n, spacing="gaussian")
    assert axis.shape == (n,)
    assert np.all(np.diff(axis) > 0)
    np.testing.assert_allclose(axis, -axis[::-1], atol=1e-5)
    # Each value is the median of its cell: Phi(axis) = (i + 0.5) / n, so every cell holds 1/n of the prior.
    cdf = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in axis])
    np.testing.assert_allclose(cdf, (np.arange(n) + 0.5) / n, atol=1e-6)
    edges = np.concatenate([[0.0], (cdf[:-1] + cdf[1:]) / 2, [1.0]])
    np.testing.assert_allclose(np.diff(edges), 1 / n, atol=1e-6)


@pytest.mark.parametrize("bad", [dict(n=0), dict(n=5, spacing="log")])
def test_grid_axis_refuses_bad_input(bad):
    with pytest.raises(ValueError):
        grid_axis(**bad)


def test_grid_codes_row_zero_is_the_top():
    xs, ys = np.array([-1.0, 0.0, 1.0], np.float32), np.array([-2.0, 2.0], np.float32)
    z = grid_codes(xs, ys, 2)
    assert z.shape == (6, 2)
    np.testing.assert_array_equal(z[:3, 1], 2.0)  # first row: the largest y
    np.testing.assert_array_equal(z[3:, 1], -2.0)
    np.testing.assert_array_equal(z[:3, 0], xs)  # x runs left to right along a row


def test_grid_codes_other_dims_held_at_base():
    base = np.array([9.0, 8.0, 7.0, 6.0], np.float32)
    z = grid_codes(np.array([0.5]), np.array([-0.5]), 4, dims=(3, 1), base=base)
    np.testing.assert_array_equal(z, [[9.0, -0.5, 7.0, 0.5]])
    np.testing.assert_array_equal(grid_codes(np.array([1.0]), np.array([2.0]), 3, dims=(0, 2)), [[1.0, 0.0, 2.0]])


@pytest.mark.parametrize("arch,hidden", ARCHS)
def test_decode_grid_matches_decoding_each_code_in_one_pass(arch, hidden):
    model = _model(arch, hidden, latent_dim=3)
    xs, ys = grid_axis(4, 2.0), grid_axis(3, 1.0)
    calls = []
    handle = model.decoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        grid = decode_grid(model, xs, ys, dims=(2, 0))
    finally:
        handle.remove()
    assert calls == [12]  # one forward pass over all 3 x 4 codes
    assert grid.shape == (3, 4, 28, 28)
    for row, y in enumerate(ys[::-1]):
        for col, x in enumerate(xs):
            single = decode_codes(model, np.array([[y, 0.0, x]], np.float32))[0]
            torch.testing.assert_close(torch.from_numpy(grid[row, col]), torch.from_numpy(single))


# --- images ---------------------------------------------------------------------------------------

def test_tile_images_layout_exact():
    images = np.zeros((2, 3, 2, 2), np.float32)
    for r in range(2):
        for c in range(3):
            images[r, c] = (r * 3 + c) / 5  # tile value 0, .2, ... 1
    tiled = tile_images(images)
    assert tiled.shape == (4, 6) and tiled.dtype == np.uint8
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(tiled[2 * r:2 * r + 2, 2 * c:2 * c + 2], round((r * 3 + c) / 5 * 255))


def test_tile_images_with_gap():
    images = np.zeros((2, 2, 3, 3), np.float32)
    tiled = tile_images(images, gap=1, gap_value=1.0)
    assert tiled.shape == (7, 7)
    np.testing.assert_array_equal(tiled[3, :], 255)  # the horizontal gap line
    np.testing.assert_array_equal(tiled[:, 3], 255)
    assert tiled[:3, :3].max() == 0 and tiled[4:, 4:].max() == 0


def test_tile_rows_stacks_rows_top_to_bottom():
    top, bottom = np.zeros((4, 2, 2)), np.ones((4, 2, 2))
    tiled = tile_rows([top, bottom], gap=2)
    assert tiled.shape == (2 * 2 + 2, 4 * 2 + 3 * 2)
    assert tiled[:2, :2].max() == 0 and tiled[4:, :2].min() == 255


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0])), [0, 0, 128, 255, 255])


def test_upscale_nearest_repeats_blocks():
    image = np.arange(4, dtype=np.uint8).reshape(2, 2)
    big = upscale_nearest(image, 3)
    assert big.shape == (6, 6)
    np.testing.assert_array_equal(big[:3, :3], 0)
    np.testing.assert_array_equal(big[3:, 3:], 3)
    assert upscale_nearest(np.zeros((28, 28), np.uint8), 12).shape == (336, 336)


@pytest.mark.parametrize("width,target,expected", [(28, 336, 12), (300, 1100, 3), (2000, 1100, 1), (0, 10, 10)])
def test_upscale_factor(width, target, expected):
    assert upscale_factor(width, target, max_factor=12) == expected


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_png_bytes_round_trip(shape):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), image)


def test_png_bytes_refuses_floats():
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((2, 2), np.float32))


# --- manifold axes --------------------------------------------------------------------------------

def test_grid_plot_coords_linear_is_identity_and_gaussian_is_even():
    z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(grid_plot_coords(z, "linear"), z)
    n = 7
    np.testing.assert_allclose(grid_plot_coords(grid_axis(n, spacing="gaussian"), "gaussian"),
                               (np.arange(n) + 0.5) / n, atol=1e-6)
    assert grid_plot_coords(np.array([0.0]), "gaussian")[0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        grid_plot_coords(z, "log")


def test_grid_cell_edges():
    assert grid_cell_edges(np.array([-3.0, -1.5, 0.0, 1.5, 3.0])) == pytest.approx((-3.75, 3.75))
    assert grid_cell_edges((np.arange(4) + 0.5) / 4) == pytest.approx((0.0, 1.0))
    assert grid_cell_edges(np.array([2.0])) == pytest.approx((1.5, 2.5))


@pytest.mark.parametrize("lo, hi, expected", [
    (-3.16, 3.16, [-3, -2, -1, 0, 1, 2, 3]),
    (-6.3, 6.3, [-6, -4, -2, 0, 2, 4, 6]),
    (-1.96, 1.96, [-1.5, -1, -0.5, 0, 0.5, 1, 1.5]),
    (-0.625, 0.625, [-0.6, -0.4, -0.2, 0, 0.2, 0.4, 0.6]),
    (0.3, 4.2, [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]),
])
def test_round_ticks_are_round_inside_the_range_and_few(lo, hi, expected):
    ticks = round_ticks(lo, hi, max_ticks=11)
    np.testing.assert_allclose(ticks, expected, atol=1e-12)


@pytest.mark.parametrize("max_ticks", [3, 5, 9, 11])
@pytest.mark.parametrize("r", [0.5, 1.0, 2.5, 3.0, 4.7, 6.0])
def test_round_ticks_hold_zero_and_respect_the_limit(r, max_ticks):
    ticks = round_ticks(-r, r, max_ticks)
    assert 2 <= len(ticks) <= max_ticks and 0.0 in ticks
    assert ticks.min() >= -r - 1e-9 and ticks.max() <= r + 1e-9
    np.testing.assert_allclose(ticks, -ticks[::-1])  # symmetric, like the grid


def test_format_tick_writes_numbers_as_people_do():
    assert [format_tick(v) for v in (-3.0, -2.5, -0.0, 0.0, 0.25, 1e-13, 2.0)] == ["−3", "−2.5", "0", "0", "0.25", "0", "2"]


# --- paths, prior, PCA ----------------------------------------------------------------------------

def test_interpolate_endpoints_exact_and_straight():
    z0, z1 = np.array([1.0, -2.0, 0.5]), np.array([-3.0, 4.0, 0.5])
    path = interpolate(z0, z1, 7)
    assert path.shape == (7, 3)
    np.testing.assert_array_equal(path[0], z0.astype(np.float32))
    np.testing.assert_array_equal(path[-1], z1.astype(np.float32))
    np.testing.assert_allclose(np.diff(path, axis=0), np.tile((z1 - z0) / 6, (6, 1)), atol=1e-6)


def test_sample_indices_distinct_sorted_repeatable():
    a = sample_indices(100, 10, seed=3)
    assert len(a) == 10 and len(set(a.tolist())) == 10 and np.all(np.diff(a) > 0) and a.max() < 100
    np.testing.assert_array_equal(a, sample_indices(100, 10, seed=3))
    assert not np.array_equal(a, sample_indices(100, 10, seed=4))
    np.testing.assert_array_equal(sample_indices(5, 10, seed=0), np.arange(5))


@pytest.mark.parametrize("n_sigma", [1, 2, 2.5])
def test_prior_contour_radius(n_sigma):
    x, y = prior_contour(n_sigma, 50)
    assert x.shape == y.shape == (50,)
    np.testing.assert_allclose(np.hypot(x, y), n_sigma)
    assert (x[0], y[0]) == pytest.approx((x[-1], y[-1]))  # a closed curve


def test_pca_2d_components_orthonormal_and_ratio():
    codes = np.random.default_rng(0).normal(size=(500, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    xy, components, mean, ratio = pca_2d(codes)
    assert xy.shape == (500, 2) and components.shape == (2, 6)
    np.testing.assert_allclose(components @ components.T, np.eye(2), atol=1e-6)
    var = ((codes - codes.mean(0)) ** 2).sum(0)
    assert ratio.sum() <= 1 and ratio[0] >= ratio[1]
    np.testing.assert_allclose(xy.var(0) * 500 / var.sum(), ratio, rtol=1e-4)


def test_pca_2d_finds_known_principal_axes():
    rng = np.random.default_rng(1)
    angle = np.pi / 6
    axes = np.array([[np.cos(angle), np.sin(angle), 0.0], [-np.sin(angle), np.cos(angle), 0.0]])
    # Centred, exactly uncorrelated columns with variances 16 : 1, so the sample's axes are the true ones.
    raw = rng.normal(size=(2000, 2))
    u, _, _ = np.linalg.svd(raw - raw.mean(0), full_matrices=False)  # orthonormal columns, each summing to 0
    latent = u * np.array([4.0, 1.0]) * np.sqrt(2000)
    codes = latent @ axes + np.array([1.0, -2.0, 3.0])  # lies in a tilted plane, off the origin
    xy, components, mean, ratio = pca_2d(codes)
    np.testing.assert_allclose(np.abs(components @ axes.T), np.eye(2), atol=1e-6)
    np.testing.assert_allclose(mean, [1.0, -2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(ratio, [16 / 17, 1 / 17], atol=1e-6)
    np.testing.assert_allclose(np.abs(xy), np.abs(latent), atol=1e-4)


def test_pca_2d_one_dimension_pads():
    xy, components, _, ratio = pca_2d(np.arange(10, dtype=np.float64)[:, None])
    assert xy.shape == (10, 2) and components.shape == (2, 1)
    np.testing.assert_array_equal(xy[:, 1], 0)
    assert ratio == pytest.approx([1.0, 0.0])


def test_pca_prior_centre_is_the_projected_origin():
    codes = np.random.default_rng(2).normal(size=(300, 4)) + np.array([2.0, 0.0, -1.0, 0.5])
    _, components, mean, _ = pca_2d(codes)
    centre = pca_prior_centre(components, mean)
    np.testing.assert_allclose(centre, (np.zeros(4) - mean) @ components.T, atol=1e-6)


def test_project_codes_dims_or_pca():
    codes = np.random.default_rng(3).normal(size=(50, 4))
    np.testing.assert_array_equal(project_codes(codes, (3, 1)), codes[:, [3, 1]])
    np.testing.assert_allclose(project_codes(codes, None), pca_2d(codes)[0])


# --- KL, active units, nearest --------------------------------------------------------------------

def test_kl_per_dimension_sums_to_the_loss_kl():
    rng = np.random.default_rng(4)
    mu, logvar = rng.normal(size=(64, 5)).astype(np.float32), rng.normal(size=(64, 5)).astype(np.float32) * 0.3
    per_dim = kl_per_dimension(mu, logvar)
    assert per_dim.shape == (5,) and np.all(per_dim >= 0)
    total = kl_divergence(torch.from_numpy(mu), torch.from_numpy(logvar)).mean().item()
    assert per_dim.sum() == pytest.approx(total, rel=1e-5)
    np.testing.assert_allclose(kl_per_dimension(np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32)), 0)


def test_active_units_threshold():
    rng = np.random.default_rng(5)
    mu = np.stack([rng.normal(size=1000), rng.normal(size=1000) * 0.01, np.full(1000, 3.0)], axis=1)
    np.testing.assert_array_equal(active_units(mu), [True, False, False])
    np.testing.assert_array_equal(active_units(mu, threshold=1e-5), [True, True, False])


# --- figures --------------------------------------------------------------------------------------

def _bdata(value) -> np.ndarray:
    """A plotly array from a figure's JSON: a plain list, or {'dtype', 'bdata'} base64 binary."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def _traces(fig):
    import json

    return json.loads(fig.to_json())["data"]


def test_latent_scatter_one_trace_per_class_with_counts():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 4, size=300)
    labels[labels == 2] = 1  # class 2 absent: no empty trace for it
    names = ["a", "b", "c", "d"]
    fig = latent_scatter(rng.normal(size=(300, 2)), labels, names, highlight=(0.5, -0.5))
    data = _traces(fig)
    classes = [t for t in data if t["name"].split(" · ")[0] in names]
    assert [t["name"] for t in classes] == [f"{n} · {(labels == i).sum()}" for i, n in ((0, "a"), (1, "b"), (3, "d"))]
    assert all(t["hovertemplate"].endswith(f"<extra>{n}</extra>") for t, n in zip(classes, "abd"))  # the class alone
    assert all(t["type"] == "scattergl" for t in classes)
    for trace, label in zip(classes, [0, 1, 3]):
        ids = _bdata(trace["customdata"])
        assert len(ids) == len(_bdata(trace["x"])) == (labels == label).sum()
        np.testing.assert_array_equal(labels[ids], label)
    assert sum(len(_bdata(t["x"])) for t in classes) == 300
    assert sum(t["name"].startswith("prior") for t in data) == 2  # the 1 and 2 sigma circles
    assert data[-1]["name"] == "selected" and data[-1]["x"] == [0.5]


def test_latent_scatter_past_ten_classes_repeats_the_colours_with_another_marker():
    labels = np.arange(24) % 12
    fig = latent_scatter(np.random.default_rng(8).normal(size=(24, 2)), labels, [f"c{i}" for i in range(12)],
                         prior_centre=None)
    marks = [(t["marker"]["color"], t["marker"]["symbol"]) for t in _traces(fig)]
    assert marks[0] == (PALETTE[0], "circle") and marks[10] == (PALETTE[0], "square")
    assert len(set(marks)) == 12 and not fig.layout.annotations  # names only when asked for


def test_latent_scatter_continuous_color_is_one_trace():
    rng = np.random.default_rng(7)
    fig = latent_scatter(rng.normal(size=(50, 2)), np.zeros(50, int), ["a"], color=rng.uniform(size=50),
                         color_title="scale", prior_centre=None)
    data = _traces(fig)
    assert len(data) == 1 and data[0]["marker"]["colorbar"]["title"]["text"] == "scale"
    assert len(_bdata(data[0]["marker"]["color"])) == 50


def test_latent_scatter_prior_circles_follow_the_centre():
    fig = latent_scatter(np.zeros((3, 2)), np.zeros(3, int), ["a"], prior_centre=(1.0, -2.0))
    circle = next(t for t in _traces(fig) if t["name"].startswith("prior"))
    x, y = _bdata(circle["x"]), _bdata(circle["y"])
    np.testing.assert_allclose(np.hypot(x - 1.0, y + 2.0), 1.0)


@pytest.mark.parametrize("selection,expected", [
    ({"points": [{"curve_number": 2, "point_index": 9, "customdata": 41}]}, 41),
    ({"points": [{"customdata": [7, "x"]}]}, 7),
    ({"points": [{"curve_number": 0, "x": 1.0}, {"customdata": 3}]}, 3),  # a prior circle, then a point
    ({"points": [], "point_indices": [], "box": [], "lasso": []}, None),
    (None, None),
])
def test_selected_index(selection, expected):
    assert selected_index(selection) == expected


@pytest.mark.parametrize("spacing", ["linear", "gaussian"])
def test_manifold_figure_image_and_axes(spacing):
    n = 6
    xs = ys = grid_axis(n, 2.0, spacing)
    tiled = tile_images(np.random.default_rng(8).uniform(size=(n, n, 28, 28)))
    codes = np.array([[xs[0], ys[-1]], [0.0, 0.0]], np.float32)
    fig = manifold_figure(tiled, xs, ys, spacing, overlay=(codes, np.array([0, 1]), ["a", "b"]))
    image = fig.data[0]
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(image.source.split(",", 1)[1]))))
    assert png.shape == (n * 28, n * 28)
    np.testing.assert_array_equal(png, tiled[::-1])  # bottom row first: plotly draws row r at y0 + r * dy
    lo, hi = grid_cell_edges(grid_plot_coords(xs, spacing))
    assert image.x0 - image.dx / 2 == pytest.approx(lo) and image.x0 + (n * 28 - 0.5) * image.dx == pytest.approx(hi)
    assert image.y0 - image.dy / 2 == pytest.approx(lo)
    layout = fig.layout
    # Small ticks at every cell centre; labels at round z values, placed where the axis puts z.
    np.testing.assert_allclose(layout.xaxis.minor.tickvals, grid_plot_coords(xs, spacing), atol=1e-6)
    labelled = [float(t.replace("−", "-")) for t in layout.xaxis.ticktext]
    np.testing.assert_allclose(layout.xaxis.tickvals, grid_plot_coords(np.array(labelled), spacing), atol=1e-6)
    assert 0.0 in labelled and labelled == sorted(labelled) and all(v == round(v * 4) / 4 for v in labelled)
    assert list(layout.xaxis.range) == pytest.approx([lo, hi])
    assert ("Gaussian" in layout.xaxis.title.text) == (spacing == "gaussian")
    # The overlay's first code sits at the centre of the top-left cell.
    first = next(t for t in fig.data if t.name == "a")
    assert (first.x[0], first.y[0]) == pytest.approx((layout.xaxis.minor.tickvals[0], layout.yaxis.minor.tickvals[-1]),
                                                     abs=1e-6)


# --- active units and KL per dimension ------------------------------------------------------------

def test_active_units_is_the_variance_over_the_data_of_the_posterior_mean():
    """Burda et al. 2015: A_d = Var_x(E_q[z_d | x]) > 0.01, whatever the posterior variances are."""
    rng = np.random.default_rng(0)
    mu = np.stack([rng.normal(0, 1.0, 4000), rng.normal(0, 0.05, 4000), np.full(4000, 3.0),
                   rng.normal(0, 0.2, 4000)], axis=1).astype(np.float32)  # variances 1, 0.0025, 0, 0.04
    np.testing.assert_array_equal(active_units(mu), [True, False, False, True])
    usage = latent_usage(mu, np.zeros_like(mu))  # sigma = 1: a constant mean of 3 still costs KL, yet is inactive
    assert usage.n_active == 2 and usage.kl[2] == pytest.approx(4.5)


def test_kl_per_dimension_is_exact_and_sums_to_the_loss():
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(50, 3)).astype(np.float32), rng.normal(size=(50, 3)).astype(np.float32)
    per_dim = kl_per_dimension(mu, logvar)
    expected = (0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)).mean(0)
    np.testing.assert_allclose(per_dim, expected, rtol=1e-6)
    np.testing.assert_allclose(per_dim.sum(), kl_divergence(torch.from_numpy(mu), torch.from_numpy(logvar)).mean(),
                               rtol=1e-6)


def test_kl_per_dimension_matches_a_monte_carlo_estimate():
    """KL(q || p) = E_q[log q(z) - log p(z)]; 200,000 samples agree within 2%."""
    mu, logvar = np.array([[1.5, 0.0]], np.float32), np.array([[-1.0, 0.5]], np.float32)
    g = torch.Generator().manual_seed(0)
    z = torch.from_numpy(mu) + torch.exp(0.5 * torch.from_numpy(logvar)) * torch.randn(200_000, 2, generator=g)
    log_q = -0.5 * (math.log(2 * math.pi) + torch.from_numpy(logvar) + (z - torch.from_numpy(mu))**2 / torch.exp(
        torch.from_numpy(logvar)))
    log_p = -0.5 * (math.log(2 * math.pi) + z**2)
    np.testing.assert_allclose(kl_per_dimension(mu, logvar), (log_q - log_p).mean(0).numpy(), rtol=0.02)


@pytest.mark.parametrize("kl,active,words", [
    ([0.001, 0.002], [False, False], "posterior collapse"),
    ([3.0, 0.001, 0.0], [True, False, False], "2 dimensions have collapsed"),
    ([3.0, 0.001], [True, False], "1 dimension has collapsed"),
    ([3.0, 2.0], [True, True], "every dimension carries information"),
])
def test_latent_usage_says_it_in_words(kl, active, words):
    from vae.analysis.usage import LatentUsage

    usage = LatentUsage(np.array(kl), np.array(active))
    assert words in usage.sentence()
    assert usage.collapsed == (words == "posterior collapse")


@pytest.mark.parametrize("epochs, collapsed", [(None, True), (0, False), (0.6, False), (1, True), (20, True)])
def test_no_collapse_is_said_before_the_first_epoch_has_finished(epochs, collapsed):
    """An untrained encoder gives every image nearly the same code: that is where training starts, not a collapse."""
    from vae.analysis.usage import LatentUsage

    usage = LatentUsage(np.array([0.001, 0.002]), np.array([False, False]), epochs)
    assert usage.collapsed == collapsed and ("posterior collapse" in usage.sentence()) == collapsed
    assert ("before the first epoch has finished" in usage.sentence()) == (not collapsed)
    assert usage.n_active == 0  # the numbers themselves are the same


def test_kl_per_dim_figure_colours_inactive_bars_grey():
    fig = kl_per_dim_figure(np.array([2.0, 0.01, 1.0]), np.array([True, False, True]))
    bar = fig.data[0]
    assert list(bar.x) == ["z1", "z2", "z3"] and bar.marker.color[1] == "#B0B0B0" != bar.marker.color[0]


# --- kNN label map --------------------------------------------------------------------------------

def test_knn_label_map_two_clusters_and_confidence():
    codes = np.array([[-2, 0], [-2.1, 0.1], [-1.9, -0.1], [2, 0], [2.1, 0.1], [1.9, -0.1]], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    xs, ys = np.array([-2.0, 0.5, 2.0], np.float32), np.array([-1.0, 1.0], np.float32)
    grid, conf = knn_label_map(codes, labels, xs, ys, k=3)
    assert grid.shape == conf.shape == (2, 3)
    np.testing.assert_array_equal(grid, [[0, 1, 1], [0, 1, 1]])
    np.testing.assert_allclose(conf, 1.0)
    grid5, conf5 = knn_label_map(codes, labels, xs, ys, k=5)
    np.testing.assert_allclose(conf5, 3 / 5)  # 3 of the 5 nearest agree everywhere


def test_knn_label_map_matches_brute_force_and_batches():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, 2)).astype(np.float32)
    labels = (codes[:, 0] > 0).astype(int) + 2 * (codes[:, 1] > 0)  # 4 quadrants
    xs = ys = np.linspace(-2, 2, 17, dtype=np.float32)
    grid, conf = knn_label_map(codes, labels, xs, ys, k=7, batch=10)  # 29 batches, the last short
    whole, _ = knn_label_map(codes, labels, xs, ys, k=7)
    np.testing.assert_array_equal(grid, whole)
    for (row, col) in [(0, 0), (16, 16), (3, 12), (8, 8)]:
        d = ((codes - [xs[col], ys[row]]) ** 2).sum(1)
        votes = np.bincount(labels[np.argsort(d)[:7]], minlength=4)
        assert votes[grid[row, col]] == votes.max()
        assert conf[row, col] == pytest.approx(votes.max() / 7)
    assert grid[0, 0] == 0 and grid[16, 16] == 3 and grid[0, 16] == 1 and grid[16, 0] == 2  # row 0 = smallest y


def test_knn_label_map_tie_goes_to_the_nearer_label():
    codes, labels = np.array([[0.0, 0.0], [1.0, 0.0]], np.float32), np.array([3, 1])
    grid, conf = knn_label_map(codes, labels, np.array([0.9]), np.array([0.0]), k=2, n_classes=4)
    assert grid[0, 0] == 1 and conf[0, 0] == 0.5


def test_knn_label_map_refuses_no_codes():
    with pytest.raises(ValueError, match="at least one"):
        knn_label_map(np.zeros((0, 2), np.float32), np.zeros(0, int), np.zeros(2), np.zeros(2))


def test_square_extent_holds_every_point():
    lo, hi = square_extent(np.array([[0, 0], [4, 1]]), np.array([[-1, 2]]), margin=0.0)
    assert (lo, hi) == pytest.approx((-1.0, 4.0))
    assert square_extent(np.zeros((1, 2)), min_half=3.0) == (-3.0, 3.0)


def test_latent_scatter_shades_the_label_map_under_the_points():
    xs = ys = np.linspace(-1, 1, 4, dtype=np.float32)
    grid = np.array([[0, 1, 1, 2]] * 4)
    fig = latent_scatter(np.zeros((3, 2)), np.array([0, 1, 2]), ["a", "b", "c"], label_map=(xs, ys, grid),
                         highlight=(0.0, 0.0))
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 1 and heat[0].z.shape == (4, 4) and heat[0].opacity < 0.5
    assert fig.data[-1].name == "selected"  # the highlight stays the last trace
