"""Shared fixtures: tiny in-memory datasets and configs so tests never download anything."""
import base64
import io
import os
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch

from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.data import InMemoryDataset
from vae.training.trainer import Trainer

# Under pytest-xdist (README's test command runs the tests outside tests/e2e on two workers, one per core) each
# worker's torch keeps to one thread, so the two do not fight over both cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def tiny_dataset(n: int = 64, split: str = "train", seed: int = 0, channels: int = 1, size: tuple[int, int] = (28, 28),
                 name: str = "") -> InMemoryDataset:
    """n random blob images (C, H, W) = (channels, *size) with 3 labels: enough to exercise every code path in
    a second. name: its dataset (shapes, or shapes-color for 3 channels, by default)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, channels, *size, generator=g) * 255 * (labels.view(-1, 1, 1, 1) + 1) / 3).to(torch.uint8)
    name = name or ("shapes" if channels == 1 else "shapes-color")
    return InMemoryDataset(name, split, images, labels, ["a", "b", "c"], {}, "tiny test data")


@pytest.fixture
def tiny_data():
    return tiny_dataset(64, "train", 0), tiny_dataset(32, "test", 1)


@pytest.fixture
def tiny_cfg():
    return ModelConfig(arch="mlp", latent_dim=2, hidden=(32,)), TrainConfig(
        dataset="shapes", epochs=2, batch_size=16, lr=1e-3, seed=0, log_every=2, device="cpu"
    )


@pytest.fixture(autouse=True, scope="session")
def _apptest_uses_navigation():
    """Keeps AppTest in st.navigation mode across reruns.

    AppTest resets PagesManager.uses_pages_directory to None before every run, and a folder
    named pages/ then switches it to the legacy one-file-per-page mode, which runs a page
    script without app.py. A real server resets it once, when app.py calls st.navigation
    (a page script hands over to the app then, pages/ui/shell.py). The subclass absorbs AppTest's reset.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class _NavigationPages(PagesManager):
        pass

    original = app_test.PagesManager
    app_test.PagesManager = _NavigationPages
    PagesManager.uses_pages_directory = False
    yield
    app_test.PagesManager = original


# --- AppTest helpers shared by the page tests -------------------------------------------------------

APP = ROOT / "app.py"


def app_test(source=None, timeout: float = 60):
    """AppTest of app.py, run once; the tab's model is set to source (("path" | "job" | "upload", ref))
    first when given, as a user's earlier choice would have."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if source is not None:
        at.session_state["model_source"] = source
    return at.run()


def assert_no_exception(at, where: str = "") -> None:
    assert not at.exception, f"{where + ': ' if where else ''}{[e.value for e in at.exception]}"


def open_page(page: str, source=None, timeout: float = 60):
    """app_test, then page (e.g. "pages/sliders.py"), checked free of exceptions."""
    at = app_test(source, timeout).switch_page(page).run()
    assert_no_exception(at, page)
    return at


# --- shared by several test files --------------------------------------------------------------------

def plotly_array(value) -> np.ndarray:
    """An array of a figure's JSON (a chart element's proto.spec): a plain list, or {'dtype', 'bdata'} base64."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def assert_one_sentence(message: str, capital: bool = False, max_len: int | None = None) -> None:
    """What a person reads: one line, a full stop last, no traceback. A sentence may start with a
    file name ('evil.pt was refused …'); settings messages start with the setting's name (capital)."""
    assert message and message == message.strip(), repr(message)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert message.endswith("."), repr(message)
    assert "Traceback" not in message and 'File "' not in message, repr(message)
    if capital:
        assert message[0].isupper(), repr(message)
    if max_len is not None:  # values are quoted shortened; file and folder names in full (they say what to fix)
        assert len(message) <= max_len, f"{len(message)} characters: {message[:200]}…"


def trainer_with(tiny_data, tiny_cfg, **train_overrides) -> Trainer:
    """A Trainer on the tiny data with the tiny configs, some training settings changed."""
    model_cfg, train_cfg = tiny_cfg
    return Trainer(model_cfg, TrainConfig(**{**train_cfg.to_dict(), **train_overrides}), *tiny_data)


def small_trainer(tiny_data, latent_dim: int = 2, epochs: int = 2, **train) -> Trainer:
    """A Trainer of a 32-unit MLP on the tiny data."""
    train_cfg = TrainConfig(**{**dict(dataset="shapes", epochs=epochs, batch_size=16, seed=0, log_every=2,
                                      device="cpu"), **train})
    return Trainer(ModelConfig(arch="mlp", latent_dim=latent_dim, hidden=(32,)), train_cfg, *tiny_data)


def tiny_checkpoint(folder: Path, name: str = "good") -> Path:
    """A checkpoint of a tiny model trained for one epoch on the tiny data."""
    trainer = Trainer(ModelConfig(hidden=(32,)), TrainConfig(dataset="shapes", epochs=1, batch_size=16, log_every=2,
                                                             device="cpu"), tiny_dataset(64, "train"), tiny_dataset(32, "test", 1))
    trainer.run()
    return ckpt_io.save(trainer.checkpoint_payload(), folder / f"{name}.pt")


class CodeRunningPickle:
    """A pickle that runs `touch marker` when unpickled: the proof that a file ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_files(marker: Path) -> dict[str, bytes]:
    """The payload as raw pickles and as a torch.save zip (what a booby-trapped .pt really looks like)."""
    zipped = io.BytesIO()
    torch.save({"format": ckpt_io.FORMAT, "state_dict": CodeRunningPickle(marker)}, zipped)
    return {"raw pickle": pickle.dumps(CodeRunningPickle(marker)), "raw pickle protocol 2": pickle.dumps(CodeRunningPickle(marker), 2),
            "torch.save zip": zipped.getvalue()}


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """The app on an empty checkpoints folder and a tmp data folder, caches and jobs cleared around it."""
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "data"))
    st.cache_resource.clear()
    yield tmp_path
    from pages.ui.places import registry

    registry().stop_all()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("good"), "current")


def zip_bomb(inflated_mb: int = 300) -> bytes:
    """A torch.save archive whose entries are re-packed with deflate: a few hundred kB on disk that
    torch.load would inflate to `inflated_mb` MB of zeros before any check of its own."""
    stored = io.BytesIO()
    torch.save({"format": ckpt_io.FORMAT, "x": torch.zeros(inflated_mb * 2**20, dtype=torch.uint8)}, stored)
    bomb = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(stored.getvalue())) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return bomb.getvalue()


@pytest.fixture
def read_only_folder(tmp_path, monkeypatch):
    """A folder no file can be created in: mode 0o555, and, for root (whom modes do not stop), os.open
    refusing to create anything there as a read-only filesystem does."""
    import errno

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real_open = os.open

        def refusing(path, flags, *args, **kwargs):
            if flags & os.O_CREAT and Path(os.path.realpath(os.path.dirname(os.path.abspath(path)))) == folder.resolve():
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing)
    yield folder
    folder.chmod(0o755)


def thread_cpu_ticks(native_id: int) -> int:
    """utime + stime of one thread of this process, in clock ticks of 10 ms (Linux /proc)."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_held(control, timeout: float = 30.0, alive=lambda: True) -> None:
    """Until the training thread behind `control` (vae/training/control.py) waits at its gate; alive() False
    (a job that ended) fails at once."""
    deadline = time.monotonic() + timeout
    while not control.waiting:
        assert time.monotonic() < deadline and alive(), "the training thread never held at the gate"
        time.sleep(0.005)
