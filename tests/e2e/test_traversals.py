"""The Traversals page in a real browser: a 10-D shapes model (β = 4, trained here) loaded on Home, its
traversal grid (one row per dimension, sorted by KL) and its MIG heat map drawn with no exception.
Writes docs/screenshots/traversals.png and mig.png."""
from __future__ import annotations

import re

import pytest

from vae import checkpoint as ckpt_io
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.training.trainer import Trainer

from .conftest import assert_clean, wait_for_app_idle, wait_until
from .test_colour import DOC_SHOTS
from .test_own_images_browser import element_screenshot
from .test_teacher_loop import MAIN, go, main_text, plot_drawn

pytestmark = pytest.mark.e2e

NAME = "shapes-10d-beta4"


@pytest.fixture(scope="module")
def model(app_server):
    """A 10-D shapes model with β = 4, a few epochs: enough for its dimensions to take factors apart."""
    train, test = load_dataset("shapes", "train"), load_dataset("shapes", "test")
    trainer = Trainer(ModelConfig(latent_dim=10, hidden=(256, 128)),
                      TrainConfig(epochs=4, beta=4.0, batch_size=128, device="cpu"), train, test)
    trainer.run()
    return ckpt_io.save(trainer.checkpoint_payload(include_optimizer=False), app_server.checkpoint_dir / f"{NAME}.pt")


@pytest.fixture(scope="module")
def page(open_page, model):
    return open_page("")


@pytest.mark.timeout(180)
def test_the_traversal_grid_and_the_mig_heat_map_render(page, app_server, console_errors):
    page.get_by_label("Checkpoint", exact=True).click()
    page.get_by_role("option", name=re.compile(rf"^{NAME} ")).click()
    page.locator(".st-key-load_ckpt button").click()
    wait_until(lambda: f"Current model: {NAME}" in main_text(page), 30, "the 10-D model did not load", page=page)
    go(page, "traversals", "Latent traversals")
    wait_until(lambda: plot_drawn(page, 0) and plot_drawn(page, 1), 60, lambda: (
        f"/traversals: the grid and the heat map did not both draw; the page says {main_text(page)[-400:]!r}"), page=page)
    wait_for_app_idle(page)
    rows = page.evaluate("""() => document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')[0]
        ._fullLayout.yaxis.ticktext""")
    assert len(rows) == 10 and all(re.match(r"^z\d+ · \d+\.\d\d nats", r) for r in rows), rows
    kl = [float(r.split(" · ")[1].split()[0]) for r in rows]
    assert kl == sorted(kl, reverse=True), rows
    factors = page.evaluate("""() => document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')[1]
        ._fullData[0].y""")
    assert [f.split(" · ")[0] for f in factors] == ["shape", "scale", "rotation", "x", "y"], factors
    assert re.search(r"MIG \d\.\d\d", main_text(page))
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    element_screenshot(page, f'{MAIN} [data-testid="stHorizontalBlock"]:has(.js-plotly-plot)', DOC_SHOTS / "traversals.png")
    element_screenshot(page, f'{MAIN} [data-testid="stPlotlyChart"]:has(.st-key-tv_mig), {MAIN} .st-key-tv_mig',
                       DOC_SHOTS / "mig.png")
    assert_clean(page, "/traversals", app_server, console_errors)
