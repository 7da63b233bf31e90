"""Unit tests for vae/analysis/disentangle.py: discretisation, mutual information, MIG, linear probes, traversals."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from vae.analysis.disentangle import (MIGResult, discretize, entropy, linear_probe_r2, mutual_info_gap,
    mutual_information, probe_scores)
from vae.analysis.traversals import traversal_codes, traversal_order


def _factors(n, seed=0) -> dict[str, np.ndarray]:
    """Independent factors as the shapes data has them: a class index and three continuous ones."""
    rng = np.random.default_rng(seed)
    return {
        "shape": rng.integers(0, 5, n).astype(np.float32),
        "scale": rng.uniform(0.5, 1.0, n).astype(np.float32),
        "rotation": rng.uniform(0.0, 2 * np.pi, n).astype(np.float32),
        "x": rng.uniform(-1.0, 1.0, n).astype(np.float32),
    }


def _copy_codes(factors, noise_dims=0, seed=1) -> np.ndarray:
    """(N, K + noise_dims) codes: dimension k is factor k times 2, then pure noise dimensions."""
    columns = [2.0 * v for v in factors.values()]  # a power of two scales exactly, so the bins match too
    rng = np.random.default_rng(seed)
    columns += [rng.standard_normal(len(columns[0])) for _ in range(noise_dims)]
    return np.column_stack(columns).astype(np.float32)


def _plugin_bias(n, bins=20) -> float:
    """Expected plug-in MI of two independent 20-bin variables over n rows, (bins - 1)^2 / 2n nats, divided by a
    20-bin factor's entropy: how far below 1 a perfect code's MIG sits because the other dimensions seem to
    share a little information with each factor (Paninski 2003)."""
    return (bins - 1) ** 2 / (2 * n) / math.log(bins)


# --- discretize ---------------------------------------------------------------------------------------

def test_discretize_equal_width_bins_over_range():
    values = np.array([0.0, 0.24, 0.26, 0.5, 0.74, 0.76, 1.0, 0.1, 0.9])
    assert_array_equal(discretize(values, bins=4), [0, 0, 1, 2, 2, 3, 3, 0, 3])  # the maximum is in the last bin


def test_discretize_columns_independently_and_keeps_range():
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.standard_normal(500), 100 + 5 * rng.uniform(size=500)])
    codes = discretize(values, bins=7)
    assert codes.shape == (500, 2) and np.issubdtype(codes.dtype, np.integer)
    for d in range(2):
        assert codes[:, d].min() == 0 and codes[:, d].max() == 6
        assert_array_equal(codes[:, d], discretize(values[:, d], bins=7))


def test_discretize_class_index_exactly():
    labels = np.array([4, 0, 2, 2, 4, 0, 1], np.float32)  # 4 distinct values <= bins: no binning
    assert_array_equal(discretize(labels, bins=4), [3, 0, 2, 2, 3, 0, 1])
    sparse = np.array([0.0, 10.0, 10.0, 11.0])  # equal-width bins would merge 10 and 11
    assert_array_equal(discretize(sparse, bins=3), [0, 1, 1, 2])


def test_discretize_constant_column_is_zero():
    assert_array_equal(discretize(np.full((6, 2), 3.5)), np.zeros((6, 2)))


def test_discretize_rejects_bad_input():
    with pytest.raises(ValueError, match="bin"):
        discretize(np.arange(5.0), bins=0)
    with pytest.raises(ValueError, match="shape"):
        discretize(np.zeros((2, 2, 2)))


# --- entropy and mutual information -------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_entropy_of_uniform_is_log_k(k):
    assert_allclose(entropy(np.repeat(np.arange(k), 7)), math.log(k), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_mutual_information_with_itself_is_entropy(seed):
    a = np.random.default_rng(seed).integers(0, 9, 1000)
    assert_allclose(mutual_information(a, a), entropy(a), rtol=1e-12)
    assert_allclose(mutual_information(a, 8 - a), entropy(a), rtol=1e-12)  # any relabelling carries it all


def test_mutual_information_of_independent_uniforms_is_near_zero():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 100_000), rng.integers(0, 4, 100_000)
    assert 0.0 <= mutual_information(a, b) < 0.01


def test_mutual_information_is_symmetric_and_bounded():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 6, 3000)
    b = (a + rng.integers(0, 2, 3000)) % 4  # partly determined by a
    mi = mutual_information(a, b)
    assert_allclose(mi, mutual_information(b, a), rtol=1e-12)
    assert 0.1 < mi <= min(entropy(a), entropy(b)) + 1e-12


def test_mutual_information_rejects_bad_input():
    with pytest.raises(ValueError, match="one length"):
        mutual_information(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="discretize"):
        mutual_information(np.array([0.5, 1.5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="discretize"):
        mutual_information(np.array([-1, 1]), np.array([0, 1]))


# --- MIG ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [5000, 20_000])
def test_mig_is_one_when_each_factor_has_its_own_dimension(n):
    factors = _factors(n)
    result = mutual_info_gap(_copy_codes(factors), factors)
    assert isinstance(result, MIGResult)
    assert result.factors == list(factors)
    assert result.mi.shape == (4, 4) and result.gaps.shape == (4,)
    assert_allclose(np.diag(result.mi), 1.0, atol=1e-6)
    assert 1 - 2 * _plugin_bias(n) < result.mig <= 1.0
    assert_array_equal(result.best_dims, np.arange(4))


def test_mig_stays_near_one_with_noise_dimensions():
    factors = _factors(5000)
    result = mutual_info_gap(_copy_codes(factors, noise_dims=3), factors)
    assert result.mi.shape == (4, 7)
    assert_array_equal(result.best_dims, np.arange(4))
    assert result.mig > 1 - 2 * _plugin_bias(5000)
    assert result.mi[:, 4:].max() < 2 * _plugin_bias(5000)  # the noise only carries the estimator's bias


def test_mig_is_near_zero_for_codes_independent_of_factors():
    factors = _factors(10_000)
    codes = np.random.default_rng(5).standard_normal((10_000, 6)).astype(np.float32)
    result = mutual_info_gap(codes, factors)
    assert 0.0 <= result.mig < 0.05
    assert np.all(result.gaps >= 0)


def test_mig_is_invariant_to_permuting_dimensions():
    factors = _factors(3000)
    rng = np.random.default_rng(3)
    codes = _copy_codes(factors, noise_dims=2) + 0.3 * rng.standard_normal((3000, 6)).astype(np.float32)
    perm = rng.permutation(6)
    plain, permuted = mutual_info_gap(codes, factors), mutual_info_gap(codes[:, perm], factors)
    assert plain.mig == permuted.mig
    assert_array_equal(plain.gaps, permuted.gaps)
    assert_array_equal(plain.mi[:, perm], permuted.mi)
    assert_array_equal(perm[permuted.best_dims], plain.best_dims)


def test_mig_gap_vanishes_for_a_factor_copied_into_two_dimensions():
    factors = _factors(4000)
    codes = _copy_codes(factors)
    codes = np.column_stack([codes, 2.0 * codes[:, 1]])  # "scale" lives in dimensions 1 and 4
    result = mutual_info_gap(codes, factors)
    gaps = dict(zip(result.factors, result.gaps))
    assert gaps["scale"] < 1e-6
    assert min(gaps["shape"], gaps["rotation"], gaps["x"]) > 1 - 2 * _plugin_bias(4000)


def test_mig_keeps_a_class_factor_exact():
    factors = _factors(2000)
    codes = _copy_codes(factors)
    result = mutual_info_gap(codes, {"shape": factors["shape"]}, bins=20)
    assert_allclose(result.mi[0, 0], 1.0, atol=1e-12)
    # the normaliser is the exact class entropy, not that of a binned version
    p = np.bincount(factors["shape"].astype(int)) / 2000
    mi_nats = result.mi[0, 0] * -(p * np.log(p)).sum()
    assert_allclose(mi_nats, mutual_information(factors["shape"].astype(int), discretize(codes[:, 0])), rtol=1e-9)


def test_mig_with_one_dimension_uses_top_score():
    factors = _factors(2000)
    result = mutual_info_gap(_copy_codes(factors)[:, :1], factors)
    assert result.mi.shape == (4, 1)
    assert_allclose(result.gaps, result.mi[:, 0])
    assert_allclose(result.gaps[0], 1.0, atol=1e-6)


def test_mig_leaves_out_constant_factors():
    factors = _factors(1000)
    factors["hue"] = np.full(1000, 0.3, np.float32)
    result = mutual_info_gap(_copy_codes(_factors(1000)), factors)
    assert result.factors == ["shape", "scale", "rotation", "x"]


@pytest.mark.parametrize("codes,factors,match", [
    (np.zeros((1, 3)), {"x": np.arange(1.0)}, "at least two"),
    (np.zeros((5, 3)), {"x": np.arange(4.0)}, "'x'"),
    (np.zeros((5, 3)), {"x": np.ones(5)}, "varies"),
    (np.zeros((5, 3)), {}, "varies"),
    (np.zeros(5), {"x": np.arange(5.0)}, r"\(N, D\)"),
])
def test_mig_readable_errors(codes, factors, match):
    with pytest.raises(ValueError, match=match):
        mutual_info_gap(codes, factors)


# --- linear probe -------------------------------------------------------------------------------------

@pytest.mark.parametrize("noise_sd", [0.5, 1.0, 2.0])
def test_linear_probe_matches_known_r2(noise_sd):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((20_000, 3))
    w = np.array([1.0, -0.5, 0.25])
    y = x @ w + 4.0 + noise_sd * rng.standard_normal(20_000)
    signal = float(w @ w)  # var(x w) for independent unit-variance columns
    assert_allclose(linear_probe_r2(x, y), signal / (signal + noise_sd ** 2), atol=0.02)


def test_linear_probe_noiseless_is_one():
    x = np.random.default_rng(1).standard_normal((500, 4)).astype(np.float32)
    assert_allclose(linear_probe_r2(x, x @ np.array([1.0, 2.0, 0.0, -3.0]) - 1.0), 1.0, atol=1e-6)


def test_linear_probe_unrelated_target_is_near_zero():
    rng = np.random.default_rng(2)
    assert abs(linear_probe_r2(rng.standard_normal((20_000, 4)), rng.standard_normal(20_000))) < 0.02


def test_linear_probe_is_seeded_and_takes_one_dimension():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(400)
    y = x + rng.standard_normal(400)
    assert linear_probe_r2(x, y, seed=4) == linear_probe_r2(x[:, None], y, seed=4)
    assert linear_probe_r2(x, y, seed=4) != linear_probe_r2(x, y, seed=5)


def test_linear_probe_constant_target_is_nan_and_errors_are_readable():
    assert math.isnan(linear_probe_r2(np.arange(10.0), np.full(10, 2.0)))
    with pytest.raises(ValueError, match="one target per code"):
        linear_probe_r2(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="at least four"):
        linear_probe_r2(np.zeros((3, 2)), np.arange(3.0))


def test_probe_scores_per_varying_factor():
    factors = _factors(2000)
    factors["hue"] = np.zeros(2000, np.float32)
    scores = probe_scores(_copy_codes(_factors(2000)), factors)
    assert list(scores) == ["shape", "scale", "rotation", "x"]
    assert all(isinstance(v, float) for v in scores.values())
    assert_allclose(scores["scale"], 1.0, atol=1e-6)


# --- traversals ---------------------------------------------------------------------------------------

def test_traversal_order_by_kl_descending_stable():
    kl = np.array([0.1, 2.0, 0.0, 2.0, 0.5, 0.0])
    assert_array_equal(traversal_order(kl), [1, 3, 4, 0, 2, 5])


def test_traversal_codes_row_major():
    base = np.array([0.5, -1.0, 2.0, 0.0], np.float32)
    dims, values = np.array([2, 0]), np.array([-3.0, 0.0, 3.0])
    z = traversal_codes(base, dims, values)
    assert z.shape == (6, 4) and z.dtype == np.float32
    grid = z.reshape(2, 3, 4)
    for r, d in enumerate(dims):
        assert_array_equal(grid[r, :, d], values)
        others = np.delete(grid[r], d, axis=1)
        assert_array_equal(others, np.tile(np.delete(base, d), (3, 1)))
    assert_array_equal(z[1], [0.5, -1.0, 0.0, 0.0])  # row 0, column 1
    assert_array_equal(z[5], [3.0, -1.0, 2.0, 0.0])  # row 1, column 2


def test_traversal_codes_empty_and_bad_dims():
    assert traversal_codes(np.zeros(3), np.array([], int), np.arange(4.0)).shape == (0, 3)
    with pytest.raises(ValueError, match="0..2"):
        traversal_codes(np.zeros(3), np.array([3]), np.arange(4.0))


@pytest.mark.parametrize("image_shape, arch", [((1, 28, 28), "mlp"), ((3, 32, 32), "conv"), ((1, 28, 20), "mlp")])
def test_the_traversal_grid_is_one_batched_decode_of_the_traversal_codes(image_shape, arch):
    import torch

    from vae.config import ModelConfig
    from vae.analysis.encoding import decode_codes
    from vae.analysis.traversals import decode_traversals
    from vae.render.images import tile_images
    from vae.nets.model import VAE

    torch.manual_seed(0)
    model = VAE(ModelConfig(arch=arch, latent_dim=5, hidden=(16,), image_shape=image_shape)).eval()
    base, dims, values = np.linspace(-1, 1, 5).astype(np.float32), np.array([3, 0, 4]), np.linspace(-2, 2, 7)
    grid = decode_traversals(model, base, dims, values)
    c, h, w = image_shape
    assert grid.shape == (3, 7, h, w) + ((3,) if c == 3 else ())
    assert_allclose(grid[1, 2], decode_codes(model, traversal_codes(base, dims[1:2], values[2:3]))[0], atol=1e-6)
    assert tile_images(grid).shape[:2] == (3 * h, 7 * w)


def test_the_traversal_gif_sweeps_out_and_back():
    import io

    from PIL import Image

    from vae.render.pictures import traversal_gif

    grid = np.random.default_rng(0).random((4, 7, 28, 28)).astype(np.float32)
    gif = Image.open(io.BytesIO(traversal_gif(grid)))
    assert gif.n_frames == 12  # 0..6 then 5..1
    assert gif.size == (4 * 84 + 3 * 2 * 3, 84)  # the rows side by side, enlarged x3 (gaps of 2 px, x3)


def test_the_figures_label_rows_and_factors():
    from vae.render.figures import mig_figure, traversal_figure

    tiled = np.zeros((3 * 28, 5 * 28), np.uint8)
    fig = traversal_figure(tiled, 3, np.linspace(-3, 3, 5), ["z2 · 1.00 nats", "z1 · 0.50 nats", "z3 · 0.00 nats · inactive"])
    assert list(fig.layout.yaxis.ticktext) == ["z2 · 1.00 nats", "z1 · 0.50 nats", "z3 · 0.00 nats · inactive"]
    assert list(fig.layout.yaxis.tickvals) == [13.5, 41.5, 69.5] and len(fig.layout.xaxis.ticktext) == 5
    result = mutual_info_gap(np.random.default_rng(0).normal(size=(500, 4)),
                             {"a": np.arange(500) % 3, "b": np.random.default_rng(1).random(500)})
    heat = mig_figure(result.mi, result.factors, result.gaps).data[0]
    assert heat.z.shape == (2, 4) and list(heat.x) == ["z1", "z2", "z3", "z4"]
    assert heat.y[0].startswith("a · gap ") and heat.zmin == 0 and heat.zmax == 1
