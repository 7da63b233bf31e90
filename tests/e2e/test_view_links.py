"""Links that reopen a view, in a real browser: a link copied after picking a plane of the 20-D default, dragging
the pad and clicking a scatter dot, opened in a fresh browser context (a classmate's tab, a new session), shows the
same model, plane, point and dot (pages/ui/view_link.py)."""
from __future__ import annotations

import re
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.harness import ROOT
from tests.e2e.conftest import assert_clean, wait_for_app_idle, wait_until
from tests.e2e.test_colour import choose_option, click_scatter_point_and_wait, pad_point_on_page
from tests.e2e.test_teacher_loop import CARD, MAIN, SIDEBAR, go, main_text, plot_drawn

pytestmark = pytest.mark.e2e

NAME = "default-mnist-20d"  # it stores its test codes: it explores without MNIST, as on this server
PLANE = ("z3", "z7")
TARGET = (1.5, -0.75)  # where the drag ends, on that plane
PAD = f"document.querySelector('{MAIN} .lp-root').latentPad"


@pytest.fixture(scope="module")
def page(open_page, app_server):
    shutil.copy2(ROOT / "checkpoints" / f"{NAME}.pt", app_server.checkpoint_dir)
    return open_page("")


def pad_view(page) -> dict | None:
    """The pad's plane (0-based dims) and point, once it has its model."""
    return page.evaluate(f"() => {{ const p = {PAD}; return p && p.header ? "
                         "{dims: p.header.plane.dims, point: p.point} : null; }")


def card_name(page) -> str:
    return page.locator(f"{SIDEBAR} {CARD}").first.inner_text().split("\n")[0]


def url_values(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def load_model(page) -> None:
    page.get_by_label("Checkpoint", exact=True).click()
    page.get_by_role("option", name=re.compile(rf"^{NAME} ")).click()
    page.locator(".st-key-load_ckpt button").click()
    wait_until(lambda: f"Current model: {NAME}" in main_text(page), 30, f"{NAME} did not load", page=page)


def drag_pad(page, z: tuple[float, float]) -> list[float]:
    """Drags the pad's point from the centre to z and releases it; the point the pad holds."""
    start, end = pad_point_on_page(page, (0.0, 0.0)), pad_point_on_page(page, z)
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(start[0] + i / 20 * (end[0] - start[0]), start[1] + i / 20 * (end[1] - start[1]))
    page.mouse.up()
    wait_until(lambda: "Released at z" in main_text(page), 30, "/sliders: the release did not reach the page", page=page)
    wait_for_app_idle(page)
    return pad_view(page)["point"]


@pytest.mark.timeout(240)
def test_a_copied_link_opens_the_same_model_plane_point_and_dot(page, open_page, app_server, console_errors):
    load_model(page)
    go(page, "sliders", "Latent sliders")
    choose_option(page, "Horizontal axis", PLANE[0])
    wait_for_app_idle(page)
    choose_option(page, "Vertical axis", PLANE[1])
    wait_until(lambda: (pad_view(page) or {}).get("dims") == [2, 6], 30,
               lambda: f"/sliders: the pad did not move to the plane {PLANE}: {pad_view(page)}", page=page)
    page.locator(f"{MAIN} .latent-pad").scroll_into_view_if_needed()
    point = drag_pad(page, TARGET)
    assert max(abs(a - b) for a, b in zip(point, TARGET)) < 0.05, point
    go(page, "scatter", "Latent scatter")
    wait_until(lambda: plot_drawn(page), 30, "/scatter: the scatter never drew", page=page)
    dot = click_scatter_point_and_wait(page)
    wait_until(lambda: url_values(page).get("dot") == str(dot), 10,
               lambda: f"the URL did not take the clicked dot #{dot}: {page.url}", page=page)
    link = page.url
    assert url_values(page)["model"] == NAME and url_values(page)["plane"] == "3,7", link
    assert_clean(page, "the tab the link was copied from", app_server, console_errors)

    fresh = open_page(link[len(app_server.url):])  # a new browser context: a new session, nothing shared
    wait_until(lambda: plot_drawn(fresh) and f"#{dot}: " in main_text(fresh), 60, lambda: (
        f"the link did not show test image #{dot}; the page says {main_text(fresh)[-300:]!r}"), page=fresh)
    assert card_name(fresh) == card_name(page) and card_name(fresh).startswith(NAME), card_name(fresh)
    assert fresh.get_by_label("or pick test image #", exact=True).input_value() == str(dot)
    go(fresh, "sliders", "Latent sliders")
    wait_until(lambda: pad_view(fresh), 30, "/sliders: the pad never received its model", page=fresh)
    opened = pad_view(fresh)
    assert opened["dims"] == [2, 6], opened
    assert max(abs(a - b) for a, b in zip(opened["point"], point)) < 1e-3, (opened["point"], point)
    for label, name in zip(("Horizontal axis", "Vertical axis"), PLANE):
        assert fresh.get_by_role("combobox", name=label, exact=True).input_value() == name
    assert url_values(fresh) == url_values(page), (fresh.url, link)
    assert_clean(fresh, "the link opened in a fresh context", app_server, console_errors)
