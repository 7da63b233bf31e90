"""A fresh server's first load, five times over: whatever the first request (the root or a bookmarked
page) and whatever is clicked as soon as its link appears, Streamlit's own listing of the pages is never
on screen, not for one frame, the sidebar holds the app's own links (the site map's titles, in order), and
no exception or server traceback appears. (A folder named pages/ beside app.py puts a fresh server's
first run in Streamlit's legacy one-file-per-page mode, which listed every pages/*.py in the sidebar until
the app's navigation replaced it; client.showSidebarNavigation = false hides that listing, and the app
draws its own links: pages/ui/shell.py.)"""
from __future__ import annotations

import pytest

from pages.ui.sitemap import PAGES, page as entry

from .conftest import (NAV_LINKS, VIEWPORT, chromium, assert_no_exception, exception_texts, nav_link, require_browser,
                       serve_app, wait_for_app_idle, wait_until)

pytestmark = pytest.mark.e2e

TITLES = [p.title for p in PAGES]
# (first request, the page clicked first) for each fresh server.
STARTS = [("", "compare"), ("sliders", "manifold"), ("", "replay"), ("compare", "scatter"), ("train", "sliders")]
# Streamlit's own listings of pages: its sidebar navigation (the legacy mode's, or st.navigation's) and its top bar.
STREAMLIT_NAV = '[data-testid="stSidebarNav"] a, [data-testid="stSidebarNavLink"], [data-testid="stTopNavLink"]'
LABELS_JS = r"""(selector) => Array.from(document.querySelectorAll(selector))
    .map((a) => a.innerText.trim().split(/\s*\n\s*/).pop())"""
# From the page's first script on, every animation frame: any listing of Streamlit's own, kept as [listing,
# frames shown], and the frames before the app's own links were all there.
WATCH_NAV_JS = r"""
window.__foreign = [];
window.__framesToLinks = null;
(() => {
    const labels = (selector) => Array.from(document.querySelectorAll(selector))
        .map((a) => a.innerText.trim().split(/\s*\n\s*/).pop());
    let frames = 0;
    const tick = () => {
        frames += 1;
        const links = labels(%(streamlit)s).join('|');
        const last = window.__foreign[window.__foreign.length - 1];
        if (links && last && last[0] === links) last[1] += 1;
        else if (links) window.__foreign.push([links, 1]);
        if (window.__framesToLinks === null && document.querySelectorAll(%(own)s).length === %(count)d)
            window.__framesToLinks = frames;
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
})();
"""


@pytest.mark.timeout(600)
def test_a_fresh_servers_first_load_is_the_apps_own(tmp_path):
    require_browser()
    watch = WATCH_NAV_JS % {"streamlit": repr(STREAMLIT_NAV), "own": repr(NAV_LINKS), "count": len(PAGES)}
    foreign_frames, frames_to_links = [], []
    with chromium() as browser:
        for i, (first, click) in enumerate(STARTS):
            title = entry(click).title
            with serve_app(tmp_path / f"server-{i}") as server:
                page = browser.new_page(viewport=VIEWPORT)
                page.add_init_script(watch)
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{server.url}/{first}")
                where = f"fresh server {i + 1}, first request /{first}"
                # As soon as the sidebar offers the page, click it.
                link = nav_link(page, click)
                wait_until(lambda: link.count() > 0, 60, f"{where}: no sidebar link to /{click} appeared",
                           page=page, interval=0.02)
                link.click()

                def arrived() -> bool:
                    return page.locator('[data-testid="stMain"] h1').count() > 0 and title in \
                        page.locator('[data-testid="stMain"] h1').first.inner_text()

                wait_until(arrived, 60,
                           lambda: f"{where}: clicking {click} did not show {title!r}; the tab is at {page.url}, "
                                   f"its headings {page.locator('[data-testid=stMain] h1').all_inner_texts()}, its "
                                   f"links {page.evaluate(LABELS_JS, NAV_LINKS)}, exceptions {exception_texts(page)}; "
                                   f"server log: {server.log()[-1500:]}", page=page)
                wait_for_app_idle(page)
                assert page.evaluate(LABELS_JS, NAV_LINKS) == TITLES, \
                    f"{where}: the sidebar's links are {page.evaluate(LABELS_JS, NAV_LINKS)}"
                foreign = page.evaluate("() => window.__foreign")
                foreign_frames.append(sum(frames for _, frames in foreign))
                assert not foreign, f"{where}: Streamlit's own listing of pages was on screen: {foreign}"
                frames_to_links.append(page.evaluate("() => window.__framesToLinks"))
                assert_no_exception(page, f"{where}, then /{click}")
                assert not errors, f"{where}: page errors {errors}"
                assert not server.tracebacks(), f"{where}: {server.tracebacks()}"
                page.close()
    print(f"frames with a listing of Streamlit's own on screen, per fresh server: {foreign_frames}; frames until "
          f"the app's {len(PAGES)} links were all there: {frames_to_links}")
