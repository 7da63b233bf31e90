"""Checkpoints: round trips, hostile files and names, and uploads to the Home page (the size limit,
pickles that try to run code)."""
from __future__ import annotations

import contextlib
import io
import math
import os
import pickle
import tempfile
import time
import tomllib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from tests.conftest import (ROOT, CodeRunningPickle, app_test, assert_one_sentence, malicious_files, trainer_with,
                            zip_bomb)
from vae import checkpoint as ckpt_io
from vae.checkpoint.format import CheckpointError
from vae.config import ModelConfig, TrainConfig
from vae.training.trainer import Trainer


# ---- checkpoints -----------------------------------------------------------------------

def _saved(tiny_data, tiny_cfg, tmp_path, **payload_kw):
    trainer = trainer_with(tiny_data, tiny_cfg)
    trainer.run()
    path = ckpt_io.save(trainer.checkpoint_payload(**payload_kw), tmp_path / "model.pt")
    return trainer, path


def test_checkpoint_round_trip_equal_on_every_key(tiny_data, tiny_cfg, tmp_path):
    trainer, path = _saved(tiny_data, tiny_cfg, tmp_path, notes="tiny")
    ckpt = ckpt_io.load(path)
    state = trainer.model.state_dict()
    assert set(ckpt.model.state_dict()) == set(state)
    for k, v in ckpt.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert ckpt.model_config == trainer.model_cfg
    assert ckpt.train_config == trainer.cfg
    assert ckpt.history == trainer.history
    assert ckpt.test_metrics == trainer.latest_test_metrics()
    assert (ckpt.epoch, ckpt.step, ckpt.notes, ckpt.dataset) == (2, 8, "tiny", "shapes")
    assert ckpt.class_names == ["a", "b", "c"]
    assert not ckpt.model.training


def test_resume_continues_exactly_like_an_uninterrupted_run(tiny_data, tiny_cfg, tmp_path):
    model_cfg, train_cfg = tiny_cfg
    full = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 3}), *tiny_data)
    full.run()
    first = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 1}), *tiny_data)
    first.run()
    path = ckpt_io.save(first.checkpoint_payload(), tmp_path / "half.pt")
    resumed = Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), "epochs": 3}), *tiny_data)
    resumed.restore(ckpt_io.load(path))
    resumed.run()
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v)
    assert [r["epoch"] for r in resumed.history if r["kind"] == "epoch"] == [1, 2, 3]


def test_save_is_atomic_and_failed_save_is_readable(tiny_data, tiny_cfg, tmp_path, monkeypatch):
    trainer, path = _saved(tiny_data, tiny_cfg, tmp_path)
    good = path.read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match="No space left on device"):
        ckpt_io.save(trainer.checkpoint_payload(), path)
    assert path.read_bytes() == good, "a failed save must leave the previous checkpoint intact"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"], "no temp files left behind"


def test_save_into_unwritable_folder_is_readable(tiny_data, tiny_cfg, tmp_path):
    trainer = trainer_with(tiny_data, tiny_cfg)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="Could not save"):
        ckpt_io.save(trainer.checkpoint_payload(), blocker / "x.pt")


def _corrupt_files(tmp_path, good: bytes):
    marker = tmp_path / "PWNED"
    evil_zip = io.BytesIO()
    torch.save({"format": ckpt_io.FORMAT, "x": CodeRunningPickle(marker)}, evil_zip)
    return marker, {
        "empty": b"",
        "random bytes": os.urandom(4096),
        "text": b"hello, this is not a model\n",
        "truncated": good[: len(good) // 2],
        "bit-flipped zip": good[:200] + bytes(b ^ 0xFF for b in good[200:260]) + good[260:],
        "malicious torch.save": evil_zip.getvalue(),
        "malicious raw pickle": pickle.dumps(CodeRunningPickle(marker)),
        "foreign tensor dict": _torch_bytes({"weight": torch.zeros(3)}),
        "foreign plain list": _torch_bytes([1, 2, 3]),
    }


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_hostile_and_broken_files_raise_checkpoint_error(tiny_data, tiny_cfg, tmp_path):
    _, path = _saved(tiny_data, tiny_cfg, tmp_path)
    marker, files = _corrupt_files(tmp_path, path.read_bytes())
    for label, data in files.items():
        f = tmp_path / f"{label.replace(' ', '_')}.pt"
        f.write_bytes(data)
        for source in (f, data):
            with pytest.raises(CheckpointError) as info:
                ckpt_io.load(source)
            message = str(info.value)
            assert message.endswith(".") and "\n" not in message, (label, message)
            assert "Traceback" not in message
    assert not marker.exists(), "the pickle's payload ran"


def test_malicious_pickle_message_says_it_was_refused(tmp_path):
    marker = tmp_path / "PWNED"
    with pytest.raises(CheckpointError, match="refused"):
        ckpt_io.load(pickle.dumps(CodeRunningPickle(marker)))
    assert not marker.exists()


def _tampered(tiny_data, tiny_cfg, tmp_path, edit):
    trainer = trainer_with(tiny_data, tiny_cfg)
    payload = trainer.checkpoint_payload()
    edit(payload)
    return _torch_bytes(payload)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda p: p.pop("state_dict"), "missing"),
        (lambda p: p.update(format_version=99), "format version"),
        (lambda p: p["model_config"].update(latent_dim=500), "settings"),
        (lambda p: p["state_dict"].pop("to_mu.bias"), "different architecture"),
        (lambda p: p["state_dict"].update({"to_mu.bias": torch.zeros(7)}), "wrong shape"),
        (lambda p: p["state_dict"].update({"to_mu.bias": torch.zeros(2, dtype=torch.float64)}), "wrong shape or type"),
        (lambda p: p["state_dict"]["to_mu.bias"].fill_(float("nan")), "NaN"),
        (lambda p: p.update(history="oops"), "history"),
        (lambda p: p.update(class_names=[1, 2]), "class names"),
    ],
)
def test_tampered_checkpoints_are_refused(tiny_data, tiny_cfg, tmp_path, edit, words):
    with pytest.raises(CheckpointError, match=words):
        ckpt_io.load(_tampered(tiny_data, tiny_cfg, tmp_path, edit))


def test_oversized_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("vae.checkpoint.files.MAX_CHECKPOINT_BYTES", 10)
    (tmp_path / "big.pt").write_bytes(b"x" * 11)
    with pytest.raises(CheckpointError, match="limit"):
        ckpt_io.load(tmp_path / "big.pt")


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "", "x" * 65, "a\\b", "con fig", "/etc/passwd", "ok.pt/x"])
def test_unsafe_checkpoint_names_are_refused(tmp_path, name):
    with pytest.raises(CheckpointError, match="name"):
        ckpt_io.checkpoint_path(name, tmp_path)


def test_safe_names_stay_inside_and_never_overwrite(tmp_path):
    path = ckpt_io.checkpoint_path("mnist-2d.pt", tmp_path)
    assert path == (tmp_path / "mnist-2d.pt").resolve()
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="already exists"):
        ckpt_io.checkpoint_path("mnist-2d", tmp_path)
    with ckpt_io.unique_checkpoint_path("mnist-2d", tmp_path) as reserved:
        assert reserved.path.name == "mnist-2d-2.pt"


def test_a_free_name_is_reserved_as_it_is_found(tmp_path):
    """Two runs asking for a free name before either has saved get two names: the first one's is reserved."""
    with ckpt_io.unique_checkpoint_path("mnist-2d", tmp_path) as first, \
            ckpt_io.unique_checkpoint_path("mnist-2d", tmp_path) as second:
        assert (first.path.name, second.path.name) == ("mnist-2d.pt", "mnist-2d-2.pt")
        with pytest.raises(ckpt_io.CheckpointInUse):
            ckpt_io.reserve_checkpoint("mnist-2d", tmp_path)
    with ckpt_io.unique_checkpoint_path("mnist-2d", tmp_path) as again:  # released, and nothing was saved
        assert again.path.name == "mnist-2d.pt"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [3, [1, 2], 1.5, True, "da\0ta", "x" * 5000])
def test_a_data_folder_that_is_not_a_path_is_refused_by_the_loader(tiny_data, tiny_cfg, tmp_path, value):
    """train_config.data_dir is a folder path as text, or None; anything else makes the file one sentence."""
    _, path = _saved(tiny_data, tiny_cfg, tmp_path)
    payload = torch.load(path, weights_only=True)
    payload["train_config"]["data_dir"] = value
    ckpt_io.save(payload, path)
    with pytest.raises(CheckpointError) as refused:
        ckpt_io.load(path)
    assert_one_sentence(str(refused.value))
    assert str(refused.value).startswith("model.pt has settings this app cannot use: Data folder"), refused.value


def test_list_checkpoints_reports_metadata_and_errors(tiny_data, tiny_cfg, tmp_path):
    _saved(tiny_data, tiny_cfg, tmp_path)
    (tmp_path / "broken.pt").write_bytes(b"nope")
    infos = {i.name: i for i in ckpt_io.list_checkpoints(tmp_path)}
    assert infos["model"].dataset == "shapes" and infos["model"].latent_dim == 2 and infos["model"].epochs == 2
    assert math.isfinite(infos["model"].test_elbo)
    assert infos["broken"].error and not infos["broken"].dataset
    assert ckpt_io.list_checkpoints(tmp_path / "missing") == []


@pytest.mark.parametrize("hidden", [(32,), (64, 32), (48, 32, 16)])
@pytest.mark.parametrize("beta, recon_weight", [(1.0, 1.0), (0.0, 1.0), (4.0, 0.5), (1.0, 0.0)])
def test_the_mlp_fast_step_gives_autogradss_loss_and_gradients(hidden, beta, recon_weight):
    """vae/nets/mlp_step.py writes the MLP's backward out by hand: its loss sums and every gradient equal
    autograd's on vae/nets/loss.py's terms, in float64 to rounding."""
    from vae.nets.loss import elbo_terms
    from vae.nets.mlp_step import MLPStep
    from vae.nets.model import VAE

    torch.manual_seed(0)
    model = VAE(ModelConfig(hidden=hidden, latent_dim=3)).double()
    x = torch.rand(8, 1, 28, 28, dtype=torch.float64)
    assert MLPStep.applies(model, torch.device("cpu"))
    sums, grads = MLPStep(model)(x, beta, recon_weight, torch.Generator().manual_seed(7))
    terms = elbo_terms(model, x, model(x, torch.Generator().manual_seed(7)), beta, recon_weight)
    terms.total.mean().backward()
    expected = torch.stack([terms.recon.sum(), terms.kl.sum(), terms.total.sum()]).detach()
    torch.testing.assert_close(torch.as_tensor(sums, dtype=torch.float64), expected, rtol=1e-12, atol=1e-9)
    assert {id(p) for p, _ in grads} == {id(p) for p in model.parameters()}
    for param, grad in grads:
        torch.testing.assert_close(grad, param.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", [ModelConfig(arch="conv", hidden=(32,)), ModelConfig(hidden=(32,), likelihood="gaussian")])
def test_other_models_train_through_autograd(config):
    from vae.nets.mlp_step import MLPStep
    from vae.nets.model import VAE

    assert not MLPStep.applies(VAE(config), torch.device("cpu"))


def test_the_fast_step_and_autograd_train_the_same_weights(tiny_data, tiny_cfg):
    """A whole epoch each way, float32: the weights agree to float32 rounding accumulated over the steps."""
    fast, plain = trainer_with(tiny_data, tiny_cfg), trainer_with(tiny_data, tiny_cfg)
    plain.fast_step = None
    assert fast.fast_step is not None
    fast.run_epoch(), plain.run_epoch()
    for (name, a), b in zip(fast.model.state_dict().items(), plain.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)


# ---- names users give for checkpoints ------------------------------------------------------------

HOSTILE_NAMES = ["../x", "../../etc/passwd", "/etc/passwd", ".hidden", "a/b", "a\\b", "..", ".", "", " ", "~",
                 "x" * 65, "x" * 10_000, "mnist\x00.pt", "a\n", "a\n.pt", "résumé", "模型", "ｆｕｌｌ", "con fig",
                 "-rf", "taken", "taken.pt", "TAKEN.PT", "link", "link.pt", "ok.pt/x", "ok.pt.pt", "$(touch x)"]


@pytest.fixture
def checkpoint_folder(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "taken.pt").write_bytes(b"an older checkpoint")
    (tmp_path / "outside.pt").write_bytes(b"not ours")
    (folder / "link.pt").symlink_to(tmp_path / "outside.pt")  # a name that resolves outside the folder
    return folder


def _check_name(name: str, folder: Path) -> None:
    """A name either gives a new file directly in folder, or one sentence and no path."""
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    try:
        path = ckpt_io.checkpoint_path(name, folder)
    except CheckpointError as e:
        assert_one_sentence(str(e))
        return
    assert path.parent == folder.resolve(), path
    assert path.suffix == ".pt" and not path.name.startswith(".") and "\n" not in path.name, path
    assert not path.exists() and not path.is_symlink(), f"{name!r} would overwrite {path}"
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_stay_inside_and_never_overwrite(checkpoint_folder, name):
    _check_name(name, checkpoint_folder)


@pytest.mark.parametrize("name", ["taken", "taken.pt", "link", "../x", "a\n.pt", "x" * 65])
def test_hostile_names_are_refused(checkpoint_folder, name):
    with pytest.raises(CheckpointError):
        ckpt_io.checkpoint_path(name, checkpoint_folder)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=hs.text(max_size=80) | hs.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-/\\~ ]{0,70}", fullmatch=True))
def test_any_name_stays_inside_and_never_overwrites(checkpoint_folder, name):
    _check_name(name, checkpoint_folder)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(taken=hs.lists(hs.integers(1, 12), max_size=12, unique=True))
def test_unique_names_skip_every_existing_file(tmp_path, taken):
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for i in taken:
        (folder / ("mnist-2d.pt" if i == 1 else f"mnist-2d-{i}.pt")).write_bytes(b"x")
    with ckpt_io.unique_checkpoint_path("mnist-2d", folder) as reserved:
        path = reserved.path
    assert path.parent == folder.resolve() and not path.exists()
    free = min(set(range(1, 14)) - set(taken))
    assert path.name == ("mnist-2d.pt" if free == 1 else f"mnist-2d-{free}.pt")


_app = app_test


@pytest.mark.parametrize("name", ["../../outside", "/etc/passwd", ".hidden", "taken"])
def test_train_page_refuses_a_hostile_name_and_starts_nothing(app_env, name):
    folder = app_env / "checkpoints"
    folder.mkdir()
    (folder / "taken.pt").write_bytes(b"an older checkpoint")
    at = _app().switch_page("pages/train.py").run()
    at.text_input(key="f_name").set_value(name)
    at.button(key="start").click().run()
    assert not at.exception
    assert len(at.error) == 1
    assert_one_sentence(at.error[0].value)
    assert "job_id" not in at.session_state
    assert sorted(p.name for p in folder.iterdir()) == ["taken.pt"]
    assert (folder / "taken.pt").read_bytes() == b"an older checkpoint"
    assert not (app_env / "outside.pt").exists()


# ---- uploads: the size limit and pickles that try to run code --------------------------------------

def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload").upload(name, data, "application/octet-stream")
    return at.run()


def test_upload_limit_is_the_same_in_config_toml_and_the_app(app_env):
    from pages.ui.places import MAX_UPLOAD_MB

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == MAX_UPLOAD_MB
    at = _app()
    assert at.file_uploader(key="upload").proto.max_upload_size_mb == MAX_UPLOAD_MB  # what the browser enforces


def test_an_upload_over_the_limit_is_refused_and_the_model_stays(app_env, good_checkpoint):
    """AppTest hands the bytes to the page without the server's own size check, so this is the app's."""
    from pages.ui.places import MAX_UPLOAD_MB

    at = _app(("path", str(good_checkpoint)))
    at = _upload(at, "huge.pt", bytes(MAX_UPLOAD_MB * 10**6 + 1))
    assert not at.exception
    assert [e.value for e in at.error] == [f"huge.pt is over {MAX_UPLOAD_MB} MB; upload a smaller checkpoint."]
    assert at.session_state["model_source"] == ("path", str(good_checkpoint))
    assert "uploaded_checkpoint" not in at.session_state
    assert any("current model is unchanged" in c.value for c in at.caption)


def test_an_upload_at_the_limit_is_read_not_refused_for_size(app_env, good_checkpoint):
    from pages.ui.places import MAX_UPLOAD_MB

    at = _upload(_app(("path", str(good_checkpoint))), "exact.pt", bytes(MAX_UPLOAD_MB * 10**6))
    assert not at.exception
    assert len(at.error) == 1 and "MB" not in at.error[0].value and "run code" not in at.error[0].value
    assert at.session_state["model_source"] == ("path", str(good_checkpoint))


@pytest.mark.parametrize("kind", ["raw pickle", "raw pickle protocol 2", "torch.save zip"])
def test_a_malicious_upload_is_refused_and_its_payload_never_runs(app_env, good_checkpoint, tmp_path, kind):
    marker = tmp_path / "PWNED"
    data = malicious_files(marker)[kind]
    at = _upload(_app(("path", str(good_checkpoint))), "evil.pt", data)
    assert not at.exception
    assert len(at.error) == 1 and "refused" in at.error[0].value
    assert_one_sentence(at.error[0].value)
    assert at.session_state["model_source"] == ("path", str(good_checkpoint))
    assert not marker.exists(), "the upload ran the pickle's code"
    # The control: the same bytes do run code when unpickled the unsafe way, so the marker would show it.
    with contextlib.suppress(Exception):
        torch.load(io.BytesIO(data), weights_only=False) if kind.startswith("torch") else pickle.loads(data)
    assert marker.exists()


# ---- archives that inflate: the directory is read before any entry -----------------------------

def _peak_rss_mb() -> float:
    """This process's resident memory peak since the last reset (/proc/self/status VmHWM)."""
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak memory is read from /proc")
def test_a_zip_bomb_is_refused_in_milliseconds_without_inflating(tmp_path):
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(zip_bomb(300))
    assert bomb.stat().st_size < 2 * 2**20  # the file itself is small
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    before = _peak_rss_mb()
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError) as refused:
        ckpt_io.load(bomb)
    seconds, grown = time.perf_counter() - t0, _peak_rss_mb() - before
    assert seconds < 1.0 and grown < 100, (seconds, grown)
    assert "unpack to far more than the file holds" in str(refused.value)
    assert_one_sentence(str(refused.value))


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak memory is read from /proc")
def test_a_small_file_asking_for_a_huge_model_is_refused_before_any_model_is_built(tiny_data, tiny_cfg, tmp_path):
    raw = _tampered(tiny_data, tiny_cfg, tmp_path, lambda p: p["model_config"].update(hidden=[4096] * 6))
    assert len(raw) < 2**20
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _peak_rss_mb()
    with pytest.raises(CheckpointError) as refused:
        ckpt_io.load(raw, "huge.pt")
    assert _peak_rss_mb() - before < 50  # [4096] * 6 is 174 M weights, 700 MB of float32 once built
    assert "weights" in str(refused.value) and "at most 8 M" in str(refused.value), refused.value
    assert_one_sentence(str(refused.value))


@pytest.mark.parametrize("edit", ["too many entries", "an entry larger than the file"])
def test_archive_directories_a_checkpoint_never_has_are_refused(tmp_path, edit):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        if edit == "too many entries":
            for i in range(ckpt_io.MAX_ARCHIVE_ENTRIES + 1):
                z.writestr(f"archive/data/{i}", b"")
        else:
            z.writestr("archive/data.pkl", b"x" * 100)
    raw = bytearray(out.getvalue())
    if edit == "an entry larger than the file":  # the central directory claims 1 GB uncompressed
        at = raw.rfind(b"PK\x01\x02")
        raw[at + 24:at + 28] = (2**30).to_bytes(4, "little")
    with pytest.raises(CheckpointError, match="unpack to far more than the file holds"):
        ckpt_io.load(bytes(raw), "crafted.pt")


def _largest_model_config() -> ModelConfig:
    """The widest two-layer MLP (latent 64) the weight budget allows: the biggest file the app can write."""
    from vae.config import MAX_PARAMS, ConfigError

    lo, hi = 1, 4096
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            ModelConfig(arch="mlp", latent_dim=64, hidden=(mid, mid))
            lo = mid
        except ConfigError:
            hi = mid - 1
    cfg = ModelConfig(arch="mlp", latent_dim=64, hidden=(lo, lo))
    assert cfg.n_params > 0.99 * MAX_PARAMS
    return cfg


def test_the_largest_model_the_settings_allow_saves_loads_and_resumes(tiny_data, tmp_path):
    from vae.checkpoint.replay import MAX_FRAMES, TILE
    from vae.checkpoint.replay import REPLAY_CODES, REPLAY_GRID
    from vae.training.replay import ReplayRecorder

    train_cfg = TrainConfig(dataset="shapes", epochs=3, batch_size=32, seed=0, log_every=1, device="cpu")
    first = Trainer(_largest_model_config(), TrainConfig(**{**train_cfg.to_dict(), "epochs": 1}), *tiny_data)
    ReplayRecorder(seed=0).attach(first)
    first.run()
    path = ckpt_io.save(first.checkpoint_payload(), tmp_path / "largest.pt")
    # room left for what a long run adds: a full replay (its frames' codes and uncompressed manifolds)
    full_replay = MAX_FRAMES * (REPLAY_CODES * 2 * 2 + (REPLAY_GRID * TILE) ** 2)
    assert path.stat().st_size + full_replay < ckpt_io.MAX_CHECKPOINT_BYTES, path.stat().st_size
    ckpt = ckpt_io.load(path)
    assert ckpt.optimizer_state is not None
    resumed = Trainer(ckpt.model_config, train_cfg, *tiny_data)
    resumed.restore(ckpt)
    resumed.run()
    assert resumed.epoch == 3
    assert ckpt_io.load(ckpt_io.save(resumed.checkpoint_payload(), path)).epoch == 3


# ---- writes that fail, and what a killed save leaves --------------------------------------------

def test_a_save_that_fails_mid_write_is_one_sentence_and_leaves_no_temp_file(tmp_path, monkeypatch, good_checkpoint):
    target = tmp_path / "model.pt"
    target.write_bytes(good_checkpoint.read_bytes())

    def disk_full(obj, f, *args, **kwargs):
        f.write(bytes(1000))
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError) as failed:
        ckpt_io.save({"format": ckpt_io.FORMAT}, target)
    assert "the disk is full or the file could not be written" in str(failed.value)
    assert_one_sentence(str(failed.value))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temp file; the old checkpoint stays
    assert target.read_bytes() == good_checkpoint.read_bytes()


def test_listing_a_folder_removes_what_killed_saves_left_behind(tmp_path, good_checkpoint):
    (tmp_path / "model.pt").write_bytes(good_checkpoint.read_bytes())
    old, fresh = tmp_path / ".model-ab12cd.tmp", tmp_path / ".model-ef34gh.tmp"
    for tmp in (old, fresh):
        tmp.write_bytes(bytes(100))
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    assert [i.name for i in ckpt_io.list_checkpoints(tmp_path)] == ["model"]
    assert not old.exists() and fresh.exists()  # a save may still be writing the fresh one
