"""The numbers behind issue 7's teaching views: active units and KL per dimension, the kNN label
map, the training replay (capture, storage, checkpoint round trip, GIF), rate and distortion, the
math filled in with a model's numbers, and the three-variant job."""
import io
import math
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_dataset
from vae import checkpoint as ckpt_io
from vae import jobs as jobs_mod
from vae.config import ModelConfig, TrainConfig
from vae.figures import kl_per_dim_figure, latent_scatter, rate_distortion_figure, rate_distortion_points
from vae.jobs import JobLimitReached, JobRegistry, VariantsJob
from vae.latent import (active_units, encode_dataset, kl_per_dimension, knn_label_map, latent_usage,
                        square_extent)
from vae.loss import kl_divergence
from vae.pictures import MarkablePanel, mark_point, replay_frame_image, replay_gif, scatter_panel
from vae.replay import PACKED_VERSION, REPLAY_KEY, Replay, ReplayError, ReplayRecorder, check_replay, crowded_frame, pack_replay, planned_epochs, replay_extent, replay_from_extras
from vae.teaching import LECTURE_VARIANTS, lecture_variants, loss_numbers, math_lines, variant_of
from vae.train import Trainer


def _trainer(tiny_data, latent_dim=2, epochs=2, **train) -> Trainer:
    model_cfg = ModelConfig(arch="mlp", latent_dim=latent_dim, hidden=(32,))
    train_cfg = TrainConfig(**{**dict(dataset="shapes", epochs=epochs, batch_size=16, seed=0, log_every=2,
                                      device="cpu"), **train})
    return Trainer(model_cfg, train_cfg, *tiny_data)


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
    from vae.latent import LatentUsage

    usage = LatentUsage(np.array(kl), np.array(active))
    assert words in usage.sentence()
    assert usage.collapsed == (words == "posterior collapse")


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


# --- replay ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_replay_has_one_frame_per_epoch_with_fixed_shapes(tiny_data, latent_dim):
    trainer = _trainer(tiny_data, latent_dim, epochs=3)
    ReplayRecorder(n_codes=20, grid=4).attach(trainer)
    trainer.run()
    raw = trainer.extras[REPLAY_KEY]
    check_replay(raw, latent_dim, n_classes=3)
    replay = replay_from_extras(trainer.extras)
    p, rows = min(latent_dim, 2), 4 if latent_dim >= 2 else 1
    assert list(replay.epochs) == [0, 1, 2, 3]
    assert replay.codes.shape == (4, 20, p) and replay.manifolds.shape == (4, rows * 28, 4 * 28)
    assert raw["codes"].dtype == torch.float16 and raw["manifolds"].dtype == torch.uint8
    assert np.isnan(replay.metrics[0]).all() and np.isfinite(replay.metrics[1:]).all()
    # The last frame is the trained model's own codes of the fixed test images.
    x = tiny_data[1].float_images()[torch.from_numpy(replay.indices)]
    mu, _ = encode_dataset(trainer.model, x)
    np.testing.assert_allclose(replay.codes[-1], mu[:, :p], atol=2e-3, rtol=1e-3)  # float16
    np.testing.assert_array_equal(replay.labels, tiny_data[1].labels.numpy()[replay.indices])
    assert not np.array_equal(replay.codes[0], replay.codes[-1]), "training moved the codes"


def test_replay_changes_nothing_in_training(tiny_data):
    plain, recorded = _trainer(tiny_data), _trainer(tiny_data)
    ReplayRecorder(n_codes=16, grid=3).attach(recorded)
    plain.run()
    recorded.run()
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, recorded.model.state_dict()[key]), key
    assert [r.get("test_elbo") for r in plain.history] == [r.get("test_elbo") for r in recorded.history]


def test_replay_thins_long_runs_keeping_first_last_and_the_early_epochs(tiny_data):
    trainer = _trainer(tiny_data, epochs=12, train_limit=16)
    ReplayRecorder(n_codes=8, grid=2, max_frames=5).attach(trainer)
    trainer.run()
    epochs = [int(e) for e in replay_from_extras(trainer.extras).epochs]
    assert epochs == sorted(planned_epochs(12, 5)) == [0, 1, 3, 6, 12]  # about even in log(1 + epoch)
    assert crowded_frame(np.array([0, 1, 2, 6, 10])) == 1


@pytest.mark.parametrize("total, frames", [(20, 6), (20, 8), (50, 50), (100, 50), (1000, 50), (1, 2), (7, 3)])
def test_planned_epochs_fit_the_budget_and_favour_early_epochs(total, frames):
    planned = sorted(planned_epochs(total, frames))
    assert len(planned) == min(total + 1, frames) and planned[0] == 0 and planned[-1] == total
    gaps = np.diff(planned)
    assert (gaps >= 1).all() and (np.diff(gaps) >= -1).all()  # gaps widen (give or take rounding), never shrink much
    assert sorted(planned_epochs(20, 6)) == [0, 1, 2, 5, 10, 20]


def test_a_stopped_run_keeps_the_frame_of_the_epoch_it_stopped_at(tiny_data):
    trainer = _trainer(tiny_data, epochs=20, train_limit=16)
    ReplayRecorder(n_codes=8, grid=2, max_frames=4).attach(trainer)  # plans 0, 2, 7, 20
    trainer.add_callback("on_epoch_end", lambda tr, rec: tr.stop_event.set() if tr.epoch == 4 else None)
    trainer.run()
    replay = replay_from_extras(trainer.extras)
    assert [int(e) for e in replay.epochs] == [0, 2, 4]
    assert np.isfinite(replay.metrics[-1]).all()  # epoch 4's test figures


def test_replay_survives_a_checkpoint_round_trip_and_resume(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, epochs=2)
    ReplayRecorder(n_codes=20, grid=4).attach(trainer)
    trainer.run()
    path = ckpt_io.save(trainer.checkpoint_payload(), tmp_path / "r.pt")
    ckpt = ckpt_io.load(path)  # weights_only=True inside
    saved = ckpt.extras[REPLAY_KEY]
    assert set(saved) == set(trainer.extras[REPLAY_KEY]) and saved["version"] == 1
    on_disk = torch.load(path, weights_only=True)["extras"][REPLAY_KEY]  # packed: the manifolds as one zlib stream
    assert on_disk["version"] == PACKED_VERSION and on_disk["manifolds"].dim() == 1
    assert len(on_disk["manifolds"]) < saved["manifolds"].numel()  # ~a fifth for real pictures; noise here
    for key, value in trainer.extras[REPLAY_KEY].items():
        if isinstance(value, torch.Tensor):  # exact, dtype included; the epoch-0 metrics are NaN
            torch.testing.assert_close(saved[key], value, rtol=0, atol=0, equal_nan=True)
    resumed = _trainer(tiny_data, epochs=4)
    resumed.restore(ckpt)
    ReplayRecorder(n_codes=20, grid=4).attach(resumed)
    resumed.run()
    replay = replay_from_extras(resumed.extras)
    assert list(replay.epochs) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(replay.indices, replay_from_extras(ckpt.extras).indices)


def test_replay_costs_little_next_to_an_epoch(tiny_data):
    trainer = _trainer(tiny_data, epochs=3)
    recorder = ReplayRecorder().attach(trainer)  # the defaults: 500 codes (all 32 here), 8 x 8 grid
    trainer.run()
    assert recorder.seconds < 5.0  # the real ratio on MNIST is measured in the report, not asserted here


def _good_replay(tiny_data) -> dict:
    trainer = _trainer(tiny_data, epochs=1)
    ReplayRecorder(n_codes=10, grid=3).attach(trainer)
    trainer.run()
    return trainer, dict(trainer.extras[REPLAY_KEY])


@pytest.mark.parametrize("damage", [
    lambda r: r.pop("codes"),
    lambda r: r.update(codes=r["codes"].float()),
    lambda r: r.update(codes=r["codes"][:, :5]),
    lambda r: r.update(manifolds=r["manifolds"][:, :10]),
    lambda r: r.update(epochs=r["epochs"].flip(0)),
    lambda r: r.update(labels=r["labels"] + 7),
    lambda r: r.update(codes=torch.full_like(r["codes"], float("nan"))),
    lambda r: r.update(version=99),
    lambda r: r.update(grid="not a tensor"),
])
def test_a_damaged_replay_is_refused_with_a_sentence(tiny_data, tmp_path, damage):
    trainer, replay = _good_replay(tiny_data)
    damage(replay)
    with pytest.raises(ReplayError):
        check_replay(replay, 2, n_classes=3)
    path = ckpt_io.save(trainer.checkpoint_payload(extras={REPLAY_KEY: replay}), tmp_path / "bad.pt")
    with pytest.raises(ckpt_io.CheckpointError, match="bad.pt holds a training replay that cannot be used"):
        ckpt_io.load(path)


def test_an_unpacked_replay_from_an_older_file_still_loads(tiny_data, tmp_path):
    trainer, replay = _good_replay(tiny_data)
    payload = trainer.checkpoint_payload()
    payload["extras"][REPLAY_KEY] = replay  # as files were written before the manifolds were packed
    ckpt = ckpt_io.load(ckpt_io.save(payload, tmp_path / "v1.pt"))
    assert torch.equal(ckpt.extras[REPLAY_KEY]["manifolds"], replay["manifolds"])


def _zlib_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


@pytest.mark.parametrize("damage", [
    lambda r: r.update(manifolds=_zlib_tensor(b"not zlib at all")),
    lambda r: r.update(manifolds=r["manifolds"][: len(r["manifolds"]) // 2]),  # cut short
    lambda r: r.update(manifolds=_zlib_tensor(zlib.compress(bytes(10_000_000)))),  # inflates far past its frames
    lambda r: r.update(manifolds=torch.cat([r["manifolds"], r["manifolds"]])),  # a second stream after the first
    lambda r: r.update(manifolds=r["manifolds"].float()),
    lambda r: r.update(epochs=torch.zeros(10_000, dtype=torch.int64)),  # more frames than any run keeps
])
def test_a_damaged_packed_replay_is_refused_with_a_sentence(tiny_data, tmp_path, damage):
    trainer, replay = _good_replay(tiny_data)
    packed = dict(pack_replay(replay))
    damage(packed)
    with pytest.raises(ReplayError):
        check_replay(packed, 2, n_classes=3)
    payload = trainer.checkpoint_payload()
    payload["extras"][REPLAY_KEY] = packed
    path = ckpt_io.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ckpt_io.CheckpointError, match="bad.pt holds a training replay that cannot be used"):
        ckpt_io.load(path)


def test_a_replay_for_another_latent_size_is_refused(tiny_data):
    _, replay = _good_replay(tiny_data)
    with pytest.raises(ReplayError):
        check_replay(replay, 1)


def test_checkpoints_without_a_replay_still_load(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, epochs=1)
    trainer.run()
    ckpt = ckpt_io.load(ckpt_io.save(trainer.checkpoint_payload(), tmp_path / "plain.pt"))
    assert replay_from_extras(ckpt.extras) is None


def _replay(frames=3, n=40, latent=2) -> Replay:
    rng = np.random.default_rng(0)
    return Replay(
        epochs=np.arange(frames), indices=np.arange(n), labels=np.arange(n) % 5,
        codes=rng.normal(size=(frames, n, min(latent, 2))).astype(np.float32) * np.linspace(0.2, 1, frames)[:, None, None],
        manifolds=rng.integers(0, 256, size=(frames, 4 * 28 if latent > 1 else 28, 4 * 28), dtype=np.uint8),
        grid=np.linspace(-3, 3, 4, dtype=np.float32), metrics=np.full((frames, 2), 5.0, np.float32),
    )


@pytest.mark.parametrize("latent", [1, 2])
def test_replay_gif_is_a_valid_multi_frame_gif(latent):
    data = replay_gif(_replay(4, latent=latent), ["a", "b", "c", "d", "e"], title="test")
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.n_frames == 4 and gif.is_animated
    assert gif.info.get("loop") == 0
    gif.seek(3)
    assert gif.info["duration"] > 1000  # the last frame lingers
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    assert not np.array_equal(frames[0], frames[-1])


def test_replay_frame_image_draws_both_panels_on_one_range():
    replay = _replay(2)
    image = replay_frame_image(replay, 1, ["a"] * 5)
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[1] > image.shape[0]
    lo, hi = replay_extent(replay)
    assert lo == -hi and hi >= 3.0 + 0.5 * 6 / 3  # at least the manifold's cells


def test_replay_gif_refuses_an_empty_replay():
    with pytest.raises(ReplayError):
        replay_gif(_replay(0), ["a"])


# --- rate and distortion, the math ----------------------------------------------------------------

HISTORY = [
    {"kind": "step", "epoch": 0.5, "step": 1, "recon": 200.0, "kl": 1.0, "total": 200.5, "beta": 0.5},
    {"kind": "epoch", "epoch": 1, "step": 2, "train_recon": 190.0, "train_kl": 2.0, "test_recon": 180.0,
     "test_kl": 3.0, "test_elbo": 183.0},
    {"kind": "epoch", "epoch": 2, "step": 4, "test_recon": 150.0, "test_kl": 6.0, "test_elbo": 156.0},
    {"kind": "epoch", "epoch": 2.5, "step": 5, "partial": 1, "test_recon": 149.0, "test_kl": 6.5, "test_elbo": 155.5},
]


def test_rate_distortion_has_one_point_per_epoch_in_order():
    p = rate_distortion_points(HISTORY)
    assert p == {"epoch": [1, 2, 2.5], "kl": [3.0, 6.0, 6.5], "recon": [180.0, 150.0, 149.0]}
    assert rate_distortion_points([{"kind": "epoch", "epoch": 1, "train_kl": 1.0, "train_recon": 9.0}])["kl"] == [1.0]
    fig = rate_distortion_figure({"a": HISTORY, "empty": []})
    assert len(fig.data) == 1 and list(fig.data[0].x) == [3.0, 6.0, 6.5]
    assert fig.data[0].text[0] == "ep 1" and fig.data[0].text[-1] == "ep 2.5"


def test_loss_numbers_use_the_newest_test_epoch_and_the_current_beta():
    numbers = loss_numbers(HISTORY, {}, TrainConfig(beta=2.0, recon_weight=0.5))
    assert (numbers.recon, numbers.kl, numbers.beta, numbers.recon_weight) == (149.0, 6.5, 0.5, 0.5)
    assert numbers.neg_elbo == 155.5 and numbers.objective == pytest.approx(0.5 * 149 + 0.5 * 6.5)
    assert "after epoch 2.5" in numbers.source
    early = loss_numbers(HISTORY[:1], {}, None)
    assert early.recon == 200.0 and "training batches" in early.source
    assert loss_numbers([], {"recon": 1.0, "kl": 2.0}).neg_elbo == 3.0
    assert loss_numbers([], {}) is None


def test_math_lines_carry_the_model_numbers():
    numbers = loss_numbers(HISTORY, {}, TrainConfig(beta=0.0))
    text = " ".join(latex for _, latex in math_lines(numbers, latent_dim=4))
    assert "149.0" in text and "6.50" in text and "155.5" in text  # recon, KL, -ELBO
    assert r"\sum_{d=1}^{4}" in text and r"\varepsilon" in text and r"\times" in text
    assert len(math_lines(None, 2)) == 3  # the equations alone, without numbers


def test_lecture_variants_share_everything_but_the_weights():
    base = TrainConfig(dataset="shapes", epochs=3, seed=7, warmup_epochs=2.0)
    variants = lecture_variants(base)
    assert [s for s, _ in variants] == ["recon-only", "kl-only", "elbo"]
    assert [(c.beta, c.recon_weight) for _, c in variants] == [(0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    assert {(c.seed, c.epochs, c.dataset, c.warmup_epochs) for _, c in variants} == {(7, 3, "shapes", 0.0)}
    assert [variant_of(c).suffix for _, c in variants] == [v.suffix for v in LECTURE_VARIANTS]


# --- the three variants as one job ----------------------------------------------------------------

@pytest.fixture
def tiny_loader(monkeypatch):
    data = {"train": tiny_dataset(128, "train", 0), "test": tiny_dataset(48, "test", 1)}
    monkeypatch.setattr(jobs_mod, "load_dataset", lambda name, split, data_dir=None: data[split])
    return data


def _variants(epochs=2):
    base = TrainConfig(dataset="shapes", epochs=epochs, batch_size=32, seed=3, log_every=2, device="cpu")
    return ModelConfig(hidden=(32,)), lecture_variants(base)


def test_variants_train_as_one_job_each_to_its_own_checkpoint(tmp_path, tiny_loader):
    registry = JobRegistry(tmp_path, max_running=1)
    group = registry.start_variants(*_variants(), name="lecture-shapes")
    assert isinstance(group, VariantsJob) and len(registry.running()) == 1
    with pytest.raises(JobLimitReached):  # the group is the one job this machine allows
        registry.start(*_variants()[:1], lecture_variants(TrainConfig())[0][1])
    group.join(60)
    state = group.state()
    assert state.status == "finished" and state.step == state.total_steps == 3 * 2 * 4, state.message
    names = [m.name for m in group.members]
    assert names == ["lecture-shapes-recon-only", "lecture-shapes-kl-only", "lecture-shapes-elbo"]
    ckpts = [ckpt_io.load(tmp_path / f"{n}.pt") for n in names]
    assert [(c.train_config.beta, c.train_config.recon_weight) for c in ckpts] == [(0, 1), (1, 0), (1, 1)]
    assert all(list(replay_from_extras(c.extras).epochs) == [0, 1, 2] for c in ckpts)
    assert all(c.optimizer_state is None for c in ckpts)  # finished variants are saved slim (~1/3 the size)
    # Same seed, same data: one initial model, so the epoch-0 frames agree.
    first = [replay_from_extras(c.extras) for c in ckpts]
    np.testing.assert_array_equal(first[0].codes[0], first[2].codes[0])
    np.testing.assert_array_equal(first[0].manifolds[0], first[1].manifolds[0])
    # KL only never trains the decoder (its manifold stays the untrained one); with beta = 0 nothing
    # holds the posterior near the prior, so reconstruction only pays the largest KL.
    np.testing.assert_array_equal(first[1].manifolds[0], first[1].manifolds[-1])
    assert not np.array_equal(first[2].manifolds[0], first[2].manifolds[-1])
    assert ckpts[0].test_metrics["kl"] > ckpts[2].test_metrics["kl"] > ckpts[1].test_metrics["kl"]
    assert registry.get(group.members[1].job_id) is group.members[1]
    assert registry.get(group.job_id).view().name == names[-1]
    second = registry.start_variants(*_variants(epochs=1), name="lecture-shapes")
    second.join(60)
    assert second.members[0].name == "lecture-shapes-2-recon-only", "never overwrites an earlier run"


def test_variants_stop_together_and_save(tmp_path, tiny_loader):
    group = JobRegistry(tmp_path).start_variants(*_variants(epochs=1000), name="lec")
    deadline = time.time() + 30
    while group.state().step < 6 and time.time() < deadline:
        time.sleep(0.02)
    group.stop()
    group.join(10)
    assert group.state().status == "stopped"
    assert {m.state().status for m in group.members} == {"stopped"}
    assert all(ckpt_io.load(m.checkpoint_path).step == m.state().step for m in group.members)
    assert all(ckpt_io.load(m.checkpoint_path).optimizer_state for m in group.members)  # stopped: can resume


def test_one_diverging_variant_does_not_stop_the_others(tmp_path, tiny_loader, monkeypatch):
    real_step = jobs_mod.Trainer._train_step

    def poisoned(self, x, beta):
        if self.cfg.recon_weight == 0:
            with torch.no_grad():
                self.model.to_logvar.bias.fill_(float("nan"))
        return real_step(self, x, beta)

    monkeypatch.setattr(jobs_mod.Trainer, "_train_step", poisoned)
    group = JobRegistry(tmp_path).start_variants(*_variants(), name="lec")
    group.join(60)
    assert [m.state().status for m in group.members] == ["finished", "failed", "finished"]
    assert group.state().status == "finished" and "lec-kl-only failed" in group.state().message


def test_variants_fail_together_when_the_data_is_missing(tmp_path):
    model_cfg, variants = _variants()
    variants = [(s, TrainConfig(**{**c.to_dict(), "dataset": "mnist", "data_dir": str(tmp_path / "none")}))
                for s, c in variants]
    group = JobRegistry(tmp_path).start_variants(model_cfg, variants, name="lec")
    group.join(30)
    assert group.state().status == "failed" and str(tmp_path / "none") in group.state().message
    assert {m.state().status for m in group.members} == {"failed"}


@pytest.mark.parametrize("dims", [(2, 0), None])
def test_project_like_places_other_codes_on_the_same_plane(dims):
    from vae.latent import project_codes, project_like

    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 4)).astype(np.float32) * [3, 1, 0.5, 0.1]
    np.testing.assert_allclose(project_like(reference, reference, dims), project_codes(reference, dims), atol=1e-5)
    other = rng.normal(size=(7, 4)).astype(np.float32)
    assert project_like(other, reference, dims).shape == (7, 2)


# --- the command line -----------------------------------------------------------------------------

def test_cli_records_a_replay_and_exports_the_gif(tmp_path, monkeypatch, capsys):
    import json

    from vae.cli import main

    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    tiny = ["--dataset", "shapes", "--epochs", "2", "--train-limit", "256", "--batch-size", "64", "--hidden", "32",
            "--quiet", "--device", "cpu", "--json"]
    out = tmp_path / "r.pt"
    assert main(["train", *tiny, "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # both are timed and reported; how they compare is a benchmark's business (a tiny run on a fast machine
    # trains in 10 ms, less than drawing one replay frame), so the test only checks they are there
    assert result["replay_seconds"] > 0 and result["train_seconds"] > 0
    assert list(replay_from_extras(ckpt_io.load(out).extras).epochs) == [0, 1, 2]
    assert main(["train", *tiny, "--epochs", "3", "--resume", str(out)]) == 0  # a resumed run extends it
    capsys.readouterr()
    assert list(replay_from_extras(ckpt_io.load(out).extras).epochs) == [0, 1, 2, 3]
    gif = tmp_path / "out" / "r.gif"
    assert main(["replay", str(out), "--gif", str(gif), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported["frames"] == 4 and Image.open(gif).n_frames == 4 and exported["bytes"] == gif.stat().st_size
    plain = tmp_path / "plain.pt"
    assert main(["train", *tiny, "--no-replay", "--out", str(plain)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["replay_seconds"] is None
    assert main(["replay", str(plain), "--gif", str(tmp_path / "x.gif")]) == 2
    assert "holds no training replay" in capsys.readouterr().err
    few = tmp_path / "few.pt"  # --replay-frames: the planned epochs only, as the shipped defaults were saved
    assert main(["train", *tiny, "--epochs", "6", "--replay-frames", "3", "--out", str(few)]) == 0
    assert [int(e) for e in replay_from_extras(ckpt_io.load(few).extras).epochs] == sorted(planned_epochs(6, 3))


def test_robust_extent_ignores_a_few_far_codes_but_holds_every_model():
    from vae.latent import robust_extent

    rng = np.random.default_rng(0)
    wide, small = rng.uniform(-10, 10, size=(1000, 2)), rng.normal(0, 0.1, size=(500, 2))
    wide[:5] = 1000.0  # 0.5% strays
    lo, hi = robust_extent(wide, small)
    assert -11 < lo < -9 and 9 < hi < 11
    assert robust_extent(np.zeros((10, 2))) == (-1.0, 1.0)  # min_half


def test_share_outside():
    from vae.latent import share_outside

    xy = np.array([[0, 0], [5, 0], [0, -5], [1, 1]])
    assert share_outside(xy, (-3, 3)) == 0.5 and share_outside(np.zeros((0, 2)), (-1, 1)) == 0.0


def test_rate_distortion_goes_log_when_one_model_reconstructs_nothing():
    dead = [{"kind": "epoch", "epoch": 1, "test_recon": 900.0, "test_kl": 0.0}]
    fig = rate_distortion_figure({"a": HISTORY, "kl-only": dead})
    assert fig.layout.yaxis.type == "log" and 1000 in fig.layout.yaxis.tickvals and 100 in fig.layout.yaxis.tickvals
    assert rate_distortion_figure({"a": HISTORY}).layout.yaxis.type == "linear"


# --- the scatter panel (replay GIF, Latent sliders) -------------------------------------------------

def test_scatter_panel_puts_each_code_in_its_class_colour_where_it_lies():
    from vae.figures import PALETTE

    xy = np.array([[-2.0, 3.0], [2.5, -1.5]], np.float32)
    panel = scatter_panel(xy, np.array([0, 1]), (-4.0, 4.0), size=201, dot=3)
    assert panel.shape == (201, 201, 3) and panel.dtype == np.uint8
    for (x, y), label in zip(xy, (0, 1)):
        col, row = round((x + 4) * 25), round((4 - y) * 25)  # 200 px over 8 units, z2 upwards
        assert tuple(panel[row, col]) == tuple(int(PALETTE[label][i:i + 2], 16) for i in (1, 3, 5))


def test_markable_panel_png_is_mark_points_picture_and_falls_back_to_rgb():
    from PIL import Image

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(300, 2)).astype(np.float32)
    panel = scatter_panel(xy, rng.integers(0, 10, 300), (-4.0, 4.0), size=181)
    marked = MarkablePanel(panel, (-4.0, 4.0))
    assert marked.fills is not None  # a dozen or so colours: held as a palette image
    for point in ((0.3, -1.2), (9.0, 9.0), (-4.0, 2.5)):
        png = marked.png(point)
        shown = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        np.testing.assert_array_equal(shown, mark_point(panel, point, (-4.0, 4.0)))
    noisy = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)  # thousands of colours: kept as RGB
    fallback = MarkablePanel(noisy, (-4.0, 4.0))
    assert fallback.fills is None
    shown = np.asarray(Image.open(io.BytesIO(fallback.png((1.0, 1.0)))).convert("RGB"))
    np.testing.assert_array_equal(shown, mark_point(noisy, (1.0, 1.0), (-4.0, 4.0)))


def test_mark_point_marks_a_copy_and_holds_outside_points_at_the_edge():
    panel = scatter_panel(np.zeros((0, 2), np.float32), np.zeros(0, int), (-4.0, 4.0), size=201)
    before = panel.copy()
    a, b = mark_point(panel, (1.0, 2.0), (-4.0, 4.0)), mark_point(panel, (-3.0, -1.0), (-4.0, 4.0))
    np.testing.assert_array_equal(panel, before)  # the cached panel is never drawn on
    assert tuple(a[50, 125]) == (0, 0, 0) and tuple(b[50, 125]) != (0, 0, 0)  # (1, 2) -> col 125, row 50
    assert tuple(a[50, 125 + 5]) == (255, 255, 255)  # the white ring around the black centre
    edge = mark_point(panel, (9.0, 0.0), (-4.0, 4.0))
    assert tuple(edge[100, 200]) == (0, 0, 0)  # clipped to z1 = 4: the right edge, still visible
