"""Shared fixtures: tiny in-memory datasets and configs so tests never download anything."""
from pathlib import Path

import pytest
import torch

from vae.config import ModelConfig, TrainConfig
from vae.data import InMemoryDataset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def tiny_dataset(n: int = 64, split: str = "train", seed: int = 0) -> InMemoryDataset:
    """n random blob images with 3 labels: enough to exercise every code path in a second."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = (torch.rand(n, 1, 28, 28, generator=g) * 255 * (labels.view(-1, 1, 1, 1) + 1) / 3).to(torch.uint8)
    return InMemoryDataset("shapes", split, images, labels, ["a", "b", "c"], {}, "tiny test data")


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
