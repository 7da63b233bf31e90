"""The classroom default in a real browser, with no MNIST and no network: the server has the shipped
checkpoints and an empty data folder, and the tab's every request to a host other than 127.0.0.1 fails.
A fresh session opens the MNIST default; the scatter shows its 10 classes with their counts, from the
codes the checkpoint stores; a click on a code shows its reconstruction and says the original needs the
dataset; the label map, the pad, a hand-drawn digit's posterior, the manifold, the replay and Compare work;
the 20-D default shows its PCA plane. Writes docs/screenshots/offline-home.png, offline-scatter.png,
offline-manifold.png, encoder.png and encoder-1024.png.
"""
from __future__ import annotations

import json
import re

import numpy as np

import pytest

from bench.harness import DEFAULT_SHAPES, ROOT, serve_app

from .conftest import assert_clean, local_only, require_browser, wait_for_app_idle, wait_until
from .test_colour import DOC_SHOTS, click_scatter_point_and_wait, doc_screenshot
from .test_encoder_panel import _stroke
from .test_latent_pad import PAD
from .test_teacher_loop import MAIN, go, image_srcs, main_text, plot_drawn

pytestmark = pytest.mark.e2e

MNIST_2D, MNIST_20D = ROOT / "checkpoints" / "default-mnist-2d.pt", ROOT / "checkpoints" / "default-mnist-20d.pt"
DIGITS = [str(d) for d in range(10)]
SHOWN = 5000  # the scatter's test codes


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """The app with the shipped checkpoints, MNIST absent."""
    require_browser()
    if not (MNIST_2D.exists() and MNIST_20D.exists()):
        pytest.fail(f"the shipped MNIST defaults are missing from {MNIST_2D.parent}", pytrace=False)
    with serve_app(tmp_path_factory.mktemp("offline"), shipped=(MNIST_2D, MNIST_20D, DEFAULT_SHAPES)) as server:
        assert not any(server.data_dir.iterdir())
        yield server


@pytest.fixture(scope="module")
def blocked():
    return []


@pytest.fixture(scope="module")
def page(open_page, blocked):
    """A fresh tab whose requests outside 127.0.0.1 fail, as on a classroom's dead network."""
    return open_page("", before=lambda context, _tab: context.route("**/*", local_only(blocked)))


def sidebar_card(page) -> str:
    return page.locator(".st-key-model_card").inner_text()


@pytest.mark.timeout(120)
def test_1_a_fresh_session_opens_the_mnist_default(page, state, app_server, console_errors):
    wait_until(lambda: image_srcs(page), 30, "/: the current model's manifold never drew", page=page)
    text = main_text(page)
    assert "Current model: default-mnist-2d" in text and "mnist" in text, text[:400]
    assert "Dataset: mnist" in sidebar_card(page), sidebar_card(page)
    DOC_SHOTS.mkdir(parents=True, exist_ok=True)
    doc_screenshot(page, "offline-home")
    assert_clean(page, "/", app_server, console_errors)
    state["open"] = True


def needs_open(state):
    if not state.get("open"):
        pytest.skip("needs the fresh session on the MNIST default")


def legend_entries(page) -> list[str]:
    return page.locator(f"{MAIN} .legend .legendtext").all_text_contents()


@pytest.mark.timeout(120)
def test_2_the_scatter_shows_ten_classes_with_their_counts_and_a_click_its_reconstruction(page, state, app_server,
                                                                                           console_errors):
    needs_open(state)
    go(page, "scatter", "Latent scatter")
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the scatter never drew", page=page)
    entries = [e for e in legend_entries(page) if " · " in e]
    names = [e.split(" · ")[0] for e in entries]
    counts = [int(e.split(" · ")[1].replace(",", "")) for e in entries]
    assert names == DIGITS and sum(counts) == SHOWN and min(counts) > 300, entries
    assert f"Posterior means of {SHOWN:,} test images (stored with the model)" in main_text(page)
    index = click_scatter_point_and_wait(page)
    text = main_text(page)
    assert re.search(rf"#{index}: \d", text) and "its reconstruction, from the stored code" in text, text[-600:]
    assert "The original image needs the dataset: MNIST is not in" in text, text[-600:]
    assert len(image_srcs(page)) == 1, "the reconstruction (and only it) is drawn"
    doc_screenshot(page, "offline-scatter")
    assert_clean(page, "/scatter", app_server, console_errors)
    state["scatter"] = True


@pytest.mark.timeout(120)
def test_3_the_label_map_shades_the_plane_from_the_stored_training_codes(page, state, app_server, console_errors):
    if not state.get("scatter"):
        pytest.skip("needs the scatter")
    page.get_by_text("Label map", exact=True).click()
    wait_until(lambda: "nearest of 2,000 training codes" in main_text(page), 30, lambda: (
        f"/scatter: the label map did not draw; the page says {main_text(page)[-400:]!r}"), page=page)
    wait_for_app_idle(page)
    heatmaps = page.evaluate("""() => document.querySelector('[data-testid="stMain"] .js-plotly-plot')._fullData
        .filter((t) => t.type === 'heatmap').length""")
    assert heatmaps == 1
    assert_clean(page, "/scatter (label map)", app_server, console_errors)


@pytest.mark.timeout(120)
def test_4_the_manifold_draws_digits(page, state, app_server, console_errors):
    needs_open(state)
    go(page, "manifold", "Manifold")
    wait_until(lambda: plot_drawn(page), 30, "/manifold: the manifold chart never drew", page=page)
    wait_for_app_idle(page)
    doc_screenshot(page, "offline-manifold")
    assert_clean(page, "/manifold", app_server, console_errors)


@pytest.mark.timeout(120)
def test_5_the_pad_drags_over_the_stored_codes_and_hovers_show_reconstructions(page, state, app_server,
                                                                              console_errors):
    needs_open(state)
    go(page, "sliders", "Latent sliders")
    wait_until(lambda: page.evaluate("() => { const p = document.querySelector('.lp-root'); return !!(p && "
                                     "p.latentPad && p.latentPad.header); }"), 30,
               "/sliders: the latent pad never received its model", page=page)
    page.locator(".latent-pad").scroll_into_view_if_needed()
    codes = page.evaluate(f"() => {PAD}.header.codes.count")
    assert codes == 1000, codes
    box = page.locator(".latent-pad canvas").first.bounding_box()
    before = page.evaluate(f"() => {PAD}.stats.distinct")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.02 * i), box["y"] + box["height"] * (0.3 + 0.015 * i))
    page.mouse.up()
    assert page.evaluate(f"() => {PAD}.stats.distinct") - before >= 15
    # A hover shows the reconstruction alone: the test images are not on this machine.
    k, x, y = page.evaluate(f"""() => {{ const p = {PAD}, d = p.dots, r = p.el.pad.getBoundingClientRect();
        for (let k = 0; k < d.length / 2; k++) if (isFinite(d[2 * k])) return [k, r.left + d[2 * k], r.top + d[2 * k + 1]];
        return [-1, 0, 0]; }}""")
    page.mouse.move(x + 25, y + 25)
    page.mouse.move(x, y)
    wait_until(lambda: page.evaluate("() => document.querySelector('.lp-root').dataset.hovered") not in (None, "-1"),
               5, f"hovering test code #{k} did not pick it", page=page)
    assert page.locator(".lp-original").is_hidden() and page.locator(".lp-recon").is_visible()
    assert "what you see is decoded from the codes" in main_text(page)
    assert_clean(page, "/sliders", app_server, console_errors)


ZERO = [(0.5 + 0.22 * np.sin(t), 0.5 - 0.28 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 17)]


@pytest.mark.timeout(120)
def test_5b_a_hand_drawn_digit_shows_its_posterior_samples_and_elbo(page, state, app_server, console_errors):
    """Drawing needs no dataset: a 0 drawn on the input panel gets its posterior on the plane, the samples'
    strip and the numbers; docs/screenshots/encoder.png (1400 px wide) and encoder-1024.png (a projector's 1024)."""
    needs_open(state)
    page.locator(".latent-draw").scroll_into_view_if_needed()
    _stroke(page, ZERO, steps=6)
    wait_until(lambda: page.evaluate(f"() => !!{PAD}.post.q"), 10, "the drawn 0 got no posterior", page=page)
    page.evaluate(f"() => {{ {PAD}.post.strip.flush(); {PAD}.post.showNumbers(); }}")
    mu, sigma = (json.loads(page.locator(".latent-pad").get_attribute(a)) for a in ("data-mu", "data-sigma"))
    assert len(mu) == 2 and all(s > 0 for s in sigma)
    numbers = page.locator(".lp-numbers").inner_text()
    assert "KL" in numbers and "ELBO" in numbers and "…" not in numbers, numbers
    for width, name in ((1400, "encoder"), (1024, "encoder-1024")):
        doc_screenshot(page, name, width)
    assert_clean(page, "/sliders (drawn input)", app_server, console_errors)


@pytest.mark.timeout(120)
def test_5c_the_explorer_and_the_model_download_from_the_page(page, state, app_server, console_errors, tmp_path):
    """Download this explorer, opened from disk with every request blocked, draws this model; Download model (the
    sidebar card) gives the checkpoint's own file. No dataset here: the file holds no image."""
    needs_open(state)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download this explorer").click()
    explorer = tmp_path / download.value.suggested_filename
    download.value.save_as(explorer)
    assert explorer.name == "default-mnist-2d-explorer.html" and "lx-payload" in explorer.read_text()
    assert explorer.stat().st_size <= 4_000_000 and '"sprite"' not in explorer.read_text()
    with page.expect_download(timeout=60_000) as download:
        page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Download model").click()
    model = tmp_path / download.value.suggested_filename
    download.value.save_as(model)
    assert model.name == "default-mnist-2d.pt" and model.read_bytes() == MNIST_2D.read_bytes()
    context = page.context.browser.new_context()
    context.route("**/*", lambda r: r.continue_() if r.request.url == f"file://{explorer}" else r.abort())
    opened = context.new_page()
    opened.goto(f"file://{explorer}")
    opened.wait_for_function(f"() => {PAD} && {PAD}.header && {PAD}.stats.draws > 0")
    assert opened.evaluate(f"() => {PAD}.header.codes.count") == 1000
    context.close()
    assert_clean(page, "/sliders (downloads)", app_server, console_errors)


@pytest.mark.timeout(120)
def test_6_the_replay_and_compare_work(page, state, app_server, console_errors):
    needs_open(state)
    go(page, "replay", "Training replay")
    wait_until(lambda: plot_drawn(page), 30, "/replay: the replay never drew", page=page)
    assert "Over 5,000 test images" in main_text(page)
    assert_clean(page, "/replay", app_server, console_errors)
    go(page, "compare", "Compare")
    wait_for_app_idle(page)
    assert_clean(page, "/compare", app_server, console_errors)


@pytest.mark.timeout(120)
def test_7_the_20d_default_shows_its_pca_plane(page, state, app_server, console_errors):
    needs_open(state)
    go(page, "", "Latent Explorer")
    page.get_by_label("Checkpoint", exact=True).click()
    page.get_by_role("option", name=re.compile(r"^default-mnist-20d ")).click()
    page.locator(".st-key-load_ckpt button").click()
    wait_until(lambda: "Current model: default-mnist-20d" in main_text(page), 30, "the 20-D default did not load",
               page=page)
    go(page, "scatter", "Latent scatter")
    page.get_by_text("PCA of the codes", exact=True).click()
    wait_until(lambda: "PCA plane of the codes" in main_text(page), 30, "/scatter: no PCA plane", page=page)
    wait_for_app_idle(page)
    assert "Most informative dimensions" in main_text(page)
    assert_clean(page, "/scatter (20-D)", app_server, console_errors)


def test_8_nothing_was_asked_of_another_host(state, blocked):
    needs_open(state)
    assert not blocked, f"requests outside 127.0.0.1: {blocked[:10]}"
