"""The app's shell: page config, the navigation over the page scripts (pages/ui/sitemap.py) with the
sidebar's links to them, the sidebar card, then the page. app.py runs it, and so does a page script that
Streamlit runs on its own.

A page script runs on its own only in a fresh server's first script run: a folder named pages/ beside
app.py puts that run in Streamlit's legacy one-file-per-page mode, which runs the requested
pages/<name>.py directly (a bookmarked /sliders) under a navigation of every *.py at the top of pages/.
So pages/ holds page scripts only (what they share lives here, in pages/ui/), and each page script
starts with `enter_app()`: in that run it hands over to this shell at the same page, before importing
anything heavy. st.navigation ends the legacy mode for the whole server process; a page script tells the
two apart by whether run_app is running on its thread (not by Streamlit's process-wide flag, which another
run may clear meanwhile).

Streamlit's own listing of the pages is never shown: client.showSidebarNavigation = false
(.streamlit/config.toml) hides the legacy mode's listing of pages/*.py, which a fresh server's first run
drew before any of the app's code ran, and it would hide st.navigation's sidebar listing as well. The app's
navigation is hidden, and the shell draws the links itself, at the top of the sidebar, under their
sections: one st.page_link per page in the container keyed "app_nav", the current page highlighted.
"""
from __future__ import annotations

import gc
import threading
from pathlib import Path

import streamlit as st

from pages.ui.presentation import presentation_toggle
from pages.ui.sitemap import by_section

# A local icon: a :material/…: page icon makes the browser fetch the tab's icon from the internet.
ICON = Path(__file__).resolve().parents[2] / ".streamlit" / "icon.png"
NAV_KEY = "app_nav"  # the sidebar's links: a container with the class st-key-app_nav

# Streamlit's progress bar slides to each new value (a CSS transform transition). Redrawn every second
# by the live view, that animation was much of what a software-rendered browser spent on a polling page
# (docs/benchmarks.md), CPU the training threads share on a laptop. The bar jumps to its new value instead.
# The sidebar's links read as Streamlit's own navigation: small, semibold, a little faded section headings
# nearer their own links than the section above, and a rule under the last one without the wide margins
# of st.divider's. The page starts under the header's height, not 6rem down, and keeps narrower side margins
# on a projector's width, so that each page's main picture is above the fold at 1024 x 768; headings in columns
# (Home's cards) wrap between words, a size smaller on a narrow window, instead of breaking one.
PAGE_STYLE = ("<style>[data-testid='stProgress'] * { transition: none !important; }"
              "[data-testid='stMainBlockContainer'] { padding-top: 2.75rem; }"
              "@media (max-width: 1366px) { [data-testid='stMainBlockContainer'] "
              "{ padding-left: 2.25rem; padding-right: 2.25rem; } }"
              "[data-testid='stColumn'] h3 { overflow-wrap: normal; word-break: normal; }"
              "@media (max-width: 1100px) { [data-testid='stColumn'] h3 { font-size: 1.25rem; } }"
              f".st-key-{NAV_KEY} [data-testid='stCaptionContainer'] p "
              "{ font-weight: 600; opacity: 0.8; margin-bottom: 8px; }"
              f".st-key-{NAV_KEY} hr {{ margin: 0; }}</style>")


def navigation() -> dict[str, list[st.Page]]:
    """The app's pages by section, from the site map (built per run: a Page holds per-run state)."""
    return {section: [st.Page(p.script, title=p.title, icon=p.icon, url_path=p.path, default=p.default)
                      for p in entries]
            for section, entries in by_section().items()}


def page_style() -> None:
    """The app's few CSS rules; a style-only st.html goes to Streamlit's event container, taking no space."""
    st.html(PAGE_STYLE)


def navigation_links(sections: dict[str, list[st.Page]]) -> None:
    """The sidebar's links to every page, under their sections' headings; st.page_link highlights the page
    shown (a shaded background, its label in bold)."""
    with st.sidebar.container(key=NAV_KEY, gap=24):
        for section, pages in sections.items():
            with st.container(gap=14):  # 14 px: links 34 px apart, as in Streamlit's own navigation
                st.caption(section)
                for page in pages:
                    st.page_link(page, width="stretch")
        st.divider()


# A full gc.collect() walks the hundreds of thousands of objects torch, plotly and streamlit create at
# import, with the GIL held, while the training thread stalls. Streamlit's own collection after every
# rerun is off (.streamlit/config.toml, runner.postScriptGC); Python's automatic full collections
# remain, so once per server process, after the heavy imports, everything alive moves into the permanent
# generation, and those collections walk only what the pages create since.
_freeze_lock = threading.Lock()
_heap_frozen = False


def freeze_import_heap() -> None:
    """Imports what every page uses (torch through vae/, plotly, pages/ui/), then freezes the heap: once per
    server process, whichever session's first run gets here first."""
    global _heap_frozen
    with _freeze_lock:
        if _heap_frozen:
            return
        # Imported here, under the lock, so their objects are frozen too, and so two sessions' first runs never
        # import one of them at once: pandas, which st.dataframe imports on first use, is otherwise found
        # half-initialized by a second thread importing it at the same moment.
        import pandas  # noqa: F401
        import plotly.graph_objects  # noqa: F401

        import pages.ui.encodings  # noqa: F401
        import pages.ui.explore  # noqa: F401
        import pages.ui.sidebar  # noqa: F401

        gc.collect()
        gc.freeze()
        _heap_frozen = True


# Whether this script thread is inside run_app now: a page script that finds it is not was started by
# Streamlit's legacy mode. Streamlit's own flag for that mode is process-wide, and a first run that has just
# called st.navigation clears it while a second request (another tab's first load) already runs in it.
_inside = threading.local()


def run_app() -> None:
    """Page config, the navigation and its links (sent before the heavy imports), the view a link records
    (pages/ui/view_link.py), the sidebar card, then the page."""
    _inside.app = True
    try:
        st.set_page_config(page_title="Latent Explorer", page_icon=str(ICON), layout="wide")
        sections = navigation()
        page = st.navigation(sections, position="hidden")
        page_style()
        navigation_links(sections)
        presentation_toggle()
        freeze_import_heap()  # torch and plotly: after the links are out
        from pages.ui.sidebar import sidebar_card
        from pages.ui.view_link import keep_url, open_link

        open_link(page.url_path)  # a link's model first: the card shows it
        sidebar_card()
        keep_url()
        page.run()
    finally:
        _inside.app = False


def enter_app() -> None:
    """The first line of every page script: nothing, when the app's navigation runs the page; when
    Streamlit's legacy mode runs the script on its own (a fresh server's first run), the app runs instead,
    at this page, and this script stops there."""
    if not getattr(_inside, "app", False):
        run_app()
        st.stop()
