"""The training replay: capture, storage, checkpoint round trip, and the pictures drawn from it
(the scatter panel, a frame, the GIF)."""
import io
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import small_trainer
from vae import checkpoint as ckpt_io
from vae.analysis.encoding import encode_dataset
from vae.render.pictures import MarkablePanel, mark_point, scatter_panel
from vae.training.replay import replay_frame_image, replay_gif
from vae.checkpoint.replay import (PACKED_VERSION, REPLAY_KEY, Replay, ReplayError, check_replay, pack_replay,
    replay_extent, replay_from_extras)
from vae.training.replay import ReplayRecorder, crowded_frame, planned_epochs


# --- replay ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_replay_has_one_frame_per_epoch_with_fixed_shapes(tiny_data, latent_dim):
    trainer = small_trainer(tiny_data, latent_dim, epochs=3)
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
    plain, recorded = small_trainer(tiny_data), small_trainer(tiny_data)
    ReplayRecorder(n_codes=16, grid=3).attach(recorded)
    plain.run()
    recorded.run()
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, recorded.model.state_dict()[key]), key
    assert [r.get("test_elbo") for r in plain.history] == [r.get("test_elbo") for r in recorded.history]


def test_replay_thins_long_runs_keeping_first_last_and_the_early_epochs(tiny_data):
    trainer = small_trainer(tiny_data, epochs=12, train_limit=16)
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
    trainer = small_trainer(tiny_data, epochs=20, train_limit=16)
    ReplayRecorder(n_codes=8, grid=2, max_frames=4).attach(trainer)  # plans 0, 2, 7, 20
    trainer.add_callback("on_epoch_end", lambda tr, rec: tr.stop_event.set() if tr.epoch == 4 else None)
    trainer.run()
    replay = replay_from_extras(trainer.extras)
    assert [int(e) for e in replay.epochs] == [0, 2, 4]
    assert np.isfinite(replay.metrics[-1]).all()  # epoch 4's test figures


def test_replay_survives_a_checkpoint_round_trip_and_resume(tiny_data, tmp_path):
    trainer = small_trainer(tiny_data, epochs=2)
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
    resumed = small_trainer(tiny_data, epochs=4)
    resumed.restore(ckpt)
    ReplayRecorder(n_codes=20, grid=4).attach(resumed)
    resumed.run()
    replay = replay_from_extras(resumed.extras)
    assert list(replay.epochs) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(replay.indices, replay_from_extras(ckpt.extras).indices)


def test_replay_costs_little_next_to_an_epoch(tiny_data):
    trainer = small_trainer(tiny_data, epochs=3)
    recorder = ReplayRecorder().attach(trainer)  # the defaults: 500 codes (all 32 here), 8 x 8 grid
    trainer.run()
    assert recorder.seconds < 5.0  # the real ratio on MNIST is measured in the report, not asserted here


def _good_replay(tiny_data) -> dict:
    trainer = small_trainer(tiny_data, epochs=1)
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
    trainer = small_trainer(tiny_data, epochs=1)
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


# --- the scatter panel (replay GIF, Latent sliders) -------------------------------------------------

def test_scatter_panel_puts_each_code_in_its_class_colour_where_it_lies():
    from vae.render.palette import PALETTE

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
