"""The live loss-curve figure: series, smoothing, thinning, and in-place reuse."""
import pytest

from vae.render.figures import MAX_CURVE_POINTS, curve_series, ema, loss_curves, thin


def test_curves_figure_has_train_and_test_series():
    history = [
        {"kind": "step", "epoch": 0.5, "step": 1, "recon": 10.0, "kl": 1.0, "total": 11.0},
        {"kind": "step", "epoch": 1.0, "step": 2, "recon": 8.0, "kl": 2.0, "total": 10.0},
        {"kind": "epoch", "epoch": 1, "step": 2, "test_recon": 9.0, "test_kl": 2.5, "test_elbo": 11.5},
    ]
    s = curve_series(history)
    assert s["train_x"] == [0.5, 1.0] and s["test_x"] == [1]
    assert s["test_total"] == [11.5]
    fig = loss_curves(history)
    assert len(fig.data) == 6
    assert list(fig.data[0].y) == pytest.approx(ema([10.0, 8.0]))


def test_ema_smooths_and_skips_nan():
    assert ema([1.0, 3.0], alpha=0.5) == [1.0, 2.0]
    assert ema([float("nan"), 2.0])[1] == 2.0


def test_thin_keeps_the_ends_and_bounds_the_count():
    values = list(range(1001))
    kept = thin(values, 100)
    assert kept[0] == 0 and kept[-1] == 1000 and len(kept) <= 101
    assert thin([1, 2, 3], 100) == [1, 2, 3]


def test_reused_figure_gets_new_data_and_stays_light():
    history = [{"kind": "step", "epoch": i / 100, "step": i, "recon": 1.0, "kl": 1.0, "total": 2.0} for i in range(5000)]
    first = loss_curves(history[:10])
    again = loss_curves(history, reuse=first)
    assert again is first
    assert len(again.data[0].x) <= MAX_CURVE_POINTS + 1 and again.data[0].x[-1] == pytest.approx(49.99)
