"""A bookmarked page as the very first request a fresh server gets (a teacher's link to /sliders,
opened right after `streamlit run app.py`). This module has a server of its own, so its first
request really is the deep link: Streamlit's legacy pages/ mode used to run the page without
app.py then, under a navigation that listed every file in pages/ (common, explain, ...) and with
no model card.
"""
from __future__ import annotations

import pytest

from .conftest import assert_clean

pytestmark = pytest.mark.e2e

NAV_LINKS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stSidebarNav"] a'))
    .map(a => a.innerText.replace(/\\s+/g, ' ').trim())"""


def test_a_deep_link_as_the_first_request_gets_the_apps_navigation_and_card(open_page, app_server, console_errors):
    page = open_page("sliders")
    page.wait_for_function("() => { const r = document.querySelector('[data-testid=\"stMain\"] .lp-root');"
                           " return r && r.latentPad && r.latentPad.header; }", timeout=60_000)  # the pad drew
    links = page.evaluate(NAV_LINKS_JS)
    assert any(link.endswith("Latent sliders") for link in links), links
    assert not any(link.split(" ")[-1] in {"common", "explain", "app", "pad", "plot"} for link in links), links
    assert "Latent sliders" in page.locator('[data-testid="stMain"] h1').first.inner_text()
    card = page.locator('[data-testid="stSidebar"] .st-key-model_card')
    assert card.count() == 1 and "Dataset:" in card.inner_text()
    assert_clean(page, "/sliders as the first request", app_server, console_errors)
