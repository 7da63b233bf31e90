"""The Directions page in a real browser, on the shipped MNIST default with no dataset and no network: two classes
chosen on the page give the walk's strip and the pad's arrow, and the pad's α slider decodes in the page at every
move; two groups lassoed on the Latent scatter make a direction too. Writes docs/screenshots/directions.png."""
from __future__ import annotations

import time

import numpy as np
import pytest

from bench.harness import ROOT, serve_app

from .conftest import assert_clean, local_only, require_browser, wait_for_app_idle, wait_until
from .test_colour import doc_screenshot
from .test_encoder_panel import SEVEN, _stroke
from .test_teacher_loop import MAIN, go, main_text, plot_drawn

pytestmark = pytest.mark.e2e

MNIST_2D = ROOT / "checkpoints" / "default-mnist-2d.pt"
PAD = f"document.querySelector('{MAIN} .lp-root').latentPad"


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    require_browser()
    with serve_app(tmp_path_factory.mktemp("directions"), shipped=(MNIST_2D,)) as server:
        yield server


@pytest.fixture(scope="module")
def foreign():
    return []


@pytest.fixture(scope="module")
def page(open_page, foreign):
    return open_page("", before=lambda context, _tab: context.route("**/*", local_only(foreign)))


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app_idle(page)


def thumb_at(page, alpha: float) -> tuple[float, float]:
    """Where the α slider's thumb sits at alpha (Chromium's thumb: 16 CSS px wide)."""
    box = page.locator(f"{MAIN} input.lp-alpha-range").bounding_box()
    low, high = (float(v) for v in page.evaluate(f"() => [{PAD}.direction.min, {PAD}.direction.max]"))
    return box["x"] + 8 + (alpha - low) / (high - low) * (box["width"] - 16), box["y"] + box["height"] / 2


def pad_direction(page) -> str | None:
    return page.evaluate(f"() => {{ const r = document.querySelector('{MAIN} .lp-root'); "
                         "return r && r.latentPad && r.latentPad.header ? (r.dataset.direction ?? null) : null; }")


@pytest.mark.timeout(180)
def test_two_classes_give_the_strip_the_arrow_and_an_alpha_that_decodes_in_the_page(page, app_server, foreign,
                                                                                    console_errors):
    go(page, "directions", "Directions")
    choose(page, "From class (A)", "2")
    choose(page, "To class (B)", "6")
    wait_until(lambda: pad_direction(page) == "2 → 6", 30, lambda: f"the pad shows {pad_direction(page)!r}", page=page)
    choose(page, "From class (A)", "1")
    choose(page, "To class (B)", "7")
    wait_until(lambda: pad_direction(page) == "1 → 7" and plot_drawn(page, 0), 30, lambda: (
        f"the pad shows {pad_direction(page)!r}; the page says {main_text(page)[-300:]!r}"), page=page)
    strip = page.evaluate(f"""() => document.querySelectorAll('{MAIN} .js-plotly-plot')[0]._fullLayout.xaxis.ticktext""")
    assert len(strip) == 9 and strip[0] == "−0.5" and strip[-1] == "1.5", strip
    arrow = page.evaluate(f"() => {PAD}.arrow")
    assert arrow and np.hypot(arrow["to"][0] - arrow["from"][0], arrow["to"][1] - arrow["from"][1]) > 20, arrow
    page.locator(f"{MAIN} input.lp-alpha-range").scroll_into_view_if_needed()
    before = page.evaluate(f"() => {PAD}.stats.distinct")
    page.mouse.move(*thumb_at(page, 0.0))
    page.mouse.down()
    t0 = time.perf_counter()
    while (t := time.perf_counter() - t0) < 2.0:
        page.mouse.move(*thumb_at(page, 1.4 * np.sin(2 * np.pi * t / 1.3)))
    page.mouse.up()
    drawn = page.evaluate(f"() => {PAD}.stats.distinct") - before
    assert drawn >= 30, f"{drawn} distinct pictures in a 2 s drag of alpha"
    assert "1 → 7" in main_text(page) and "|v| = " in main_text(page)
    # A drawn input's code as the start: Point to mu, then the strip walks from the pad's point.
    page.locator(f"{MAIN} .latent-draw").scroll_into_view_if_needed()
    _stroke(page, SEVEN)
    wait_until(lambda: page.evaluate(f"() => !!{PAD}.post.q"), 10, "the drawn 7 got no posterior", page=page)
    page.locator(f"{MAIN} button.lp-to-mu").click()
    mu = page.evaluate(f"() => Array.from({PAD}.post.q.mu)")
    assert page.evaluate(f"() => {PAD}.point") == pytest.approx(mu, abs=1e-6)
    wait_until(lambda: page.get_by_text("the pad's point", exact=True).count() > 0, 20,
               "the pad's released point is not offered as a start", page=page)
    page.get_by_text("the pad's point", exact=True).click()
    wait_until(lambda: "From the pad's point." in main_text(page), 20, "the walk did not start from the pad", page=page)
    page.locator(f"{MAIN} .lp-root").scroll_into_view_if_needed()
    doc_screenshot(page, "directions")
    assert not foreign, f"the page asked for {foreign[:5]}"
    assert_clean(page, "/directions", app_server, console_errors)


def lasso(page, corners: list[tuple[float, float]]) -> None:
    """A lasso over the scatter's plot area, through corners given as fractions of it (x right, y down)."""
    box = page.locator(f"{MAIN} .js-plotly-plot .nsewdrag").first.bounding_box()
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in corners]
    page.mouse.move(*points[0])
    page.mouse.down()
    for a, b in zip(points, points[1:] + points[:1]):
        for s in np.linspace(0, 1, 6)[1:]:
            page.mouse.move(a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1]))
    page.mouse.up()
    wait_for_app_idle(page)


@pytest.mark.timeout(180)
def test_two_groups_lassoed_on_the_scatter_make_a_direction(page, app_server, console_errors):
    go(page, "scatter", "Latent scatter")
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the scatter never drew", page=page)
    page.get_by_text("Select a group", exact=True).click()
    wait_for_app_idle(page)
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the lasso chart never drew", page=page)
    for name, corners in (("A", [(0.3, 0.6), (0.5, 0.6), (0.5, 0.85), (0.3, 0.85)]),
                          ("B", [(0.5, 0.2), (0.7, 0.2), (0.7, 0.45), (0.5, 0.45)])):
        lasso(page, corners)
        wait_until(lambda: "codes selected" in main_text(page) and "**0 codes" not in main_text(page), 20,
                   "the lasso selected nothing", page=page)
        page.get_by_role("button", name=f"Use as group {name}").click()
        wait_for_app_idle(page)
    assert "Walk from A to B on Directions" in main_text(page)
    go(page, "directions", "Directions")
    page.get_by_text("groups lassoed on the scatter", exact=True).click()
    wait_until(lambda: (pad_direction(page) or "").startswith("A ("), 30,
               lambda: f"the pad shows {pad_direction(page)!r}", page=page)
    assert_clean(page, "/directions (lassoed groups)", app_server, console_errors)
