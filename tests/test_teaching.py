"""The lecture: rate and distortion, the math filled in with a model's numbers, the three variants as
one job, and their command line."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_dataset
from vae import checkpoint as ckpt_io
from vae.training import jobs as jobs_mod
from vae.config import ModelConfig, TrainConfig
from vae.render.figures import rate_distortion_figure, rate_distortion_points
from vae.training.registry import JobLimitReached, JobRegistry
from vae.training.jobs import VariantsJob
from vae.training.replay import planned_epochs
from vae.checkpoint.replay import replay_from_extras
from vae.analysis.teaching import LECTURE_VARIANTS, lecture_variants, loss_numbers, math_lines, variant_of


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
    monkeypatch.setattr("vae.data.loading.load_dataset", lambda name, split, *args, **kwargs: data[split])
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
    from vae.analysis.geometry import project_codes, project_like

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
    from vae.analysis.geometry import robust_extent

    rng = np.random.default_rng(0)
    wide, small = rng.uniform(-10, 10, size=(1000, 2)), rng.normal(0, 0.1, size=(500, 2))
    wide[:5] = 1000.0  # 0.5% strays
    lo, hi = robust_extent(wide, small)
    assert -11 < lo < -9 and 9 < hi < 11
    assert robust_extent(np.zeros((10, 2))) == (-1.0, 1.0)  # min_half


@pytest.mark.parametrize("seed", range(5))
def test_robust_extent_holds_98_percent_of_every_models_codes_in_the_plane(seed):
    """Heavy tails on both axes (Cauchy): trimming 1% per axis and side would lose up to 4% of the points."""
    from vae.analysis.geometry import robust_extent, share_outside

    rng = np.random.default_rng(seed)
    models = [rng.standard_cauchy(size=(2000, 2)) * 5, rng.normal(0, 0.5, size=(2000, 2)),
              rng.normal(3, 1, size=(300, 2)), rng.normal(-2, 2, size=(50, 2))]
    extent = robust_extent(*models)
    assert all(share_outside(xy, extent) <= 0.02 for xy in models), [share_outside(xy, extent) for xy in models]
    assert extent[1] - extent[0] < 1000  # yet the far Cauchy strays do not set the range


def test_share_outside():
    from vae.analysis.geometry import share_outside

    xy = np.array([[0, 0], [5, 0], [0, -5], [1, 1]])
    assert share_outside(xy, (-3, 3)) == 0.5 and share_outside(np.zeros((0, 2)), (-1, 1)) == 0.0


def test_rate_distortion_goes_log_when_one_model_reconstructs_nothing():
    dead = [{"kind": "epoch", "epoch": 1, "test_recon": 900.0, "test_kl": 0.0}]
    fig = rate_distortion_figure({"a": HISTORY, "kl-only": dead})
    assert fig.layout.yaxis.type == "log" and 1000 in fig.layout.yaxis.tickvals and 100 in fig.layout.yaxis.tickvals
    assert rate_distortion_figure({"a": HISTORY}).layout.yaxis.type == "linear"
