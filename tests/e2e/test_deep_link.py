"""A bookmarked page as the very first request a fresh server gets (a teacher's link to /sliders,
opened right after `streamlit run app.py`). This module has a server of its own, so its first
request really is the deep link: Streamlit's legacy pages/ mode used to run the page without
app.py then, under a navigation that listed every file in pages/ (common, explain, ...) and with
no model card.
"""
from __future__ import annotations

import pytest

from pages.ui.sitemap import PAGES

from .conftest import NAV_LINKS, assert_clean

pytestmark = pytest.mark.e2e

# The sidebar's links (their labels, without the icon's ligature) and Streamlit's own listing, if any.
NAV_LINKS_JS = """(selector) => Array.from(document.querySelectorAll(selector))
    .map(a => a.innerText.trim().split(/\\s*\\n\\s*/).pop())"""
STREAMLIT_NAV = '[data-testid="stSidebarNav"], [data-testid="stSidebarNavLink"]'


def test_a_deep_link_as_the_first_request_gets_the_apps_navigation_and_card(open_page, app_server, console_errors):
    page = open_page("sliders")
    page.wait_for_function("() => { const r = document.querySelector('[data-testid=\"stMain\"] .lp-root');"
                           " return r && r.latentPad && r.latentPad.header; }", timeout=60_000)  # the pad drew
    assert page.evaluate(NAV_LINKS_JS, NAV_LINKS) == [p.title for p in PAGES]
    assert page.locator(STREAMLIT_NAV).count() == 0, page.evaluate(NAV_LINKS_JS, STREAMLIT_NAV)
    assert "Latent sliders" in page.locator('[data-testid="stMain"] h1').first.inner_text()
    card = page.locator('[data-testid="stSidebar"] .st-key-model_card')
    assert card.count() == 1 and "Dataset:" in card.inner_text()
    assert_clean(page, "/sliders as the first request", app_server, console_errors)
