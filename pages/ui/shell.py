"""The app's shell: page config, the navigation over the page scripts, the sidebar card. app.py runs it,
and so does a page script that Streamlit runs on its own.

A page script runs on its own only in a fresh server's first script run: a folder named pages/ beside
app.py puts that run in Streamlit's legacy one-file-per-page mode, which runs the requested
pages/<name>.py directly (a bookmarked /sliders) under a navigation of every *.py at the top of pages/.
So pages/ holds page scripts only (what they share lives here, in pages/ui/), and each page script
starts with `enter_app()`: in that run it hands over to this shell at the same page, before importing
anything heavy, and the app's own navigation replaces the legacy one at once. st.navigation ends the
legacy mode for the whole server process; a page script tells the two apart by whether run_app is
running on its thread (not by Streamlit's process-wide flag, which another run may clear meanwhile).
"""
from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

# A local icon: a :material/…: page icon makes the browser fetch the tab's icon from the internet.
ICON = Path(__file__).resolve().parents[2] / ".streamlit" / "icon.png"


def navigation() -> dict[str, list[st.Page]]:
    """The app's pages by section (built per run: a Page holds per-run state)."""
    return {
        "Model": [
            st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
            st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        ],
        "Explore": [
            st.Page("pages/sliders.py", title="Latent sliders", icon=":material/tune:"),
            st.Page("pages/manifold.py", title="Manifold", icon=":material/grid_on:"),
            st.Page("pages/scatter.py", title="Latent scatter", icon=":material/scatter_plot:"),
            st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
            st.Page("pages/traversals.py", title="Traversals", icon=":material/view_week:"),
        ],
        "Teach": [
            st.Page("pages/compare.py", title="Compare", icon=":material/view_column:"),
            st.Page("pages/replay.py", title="Training replay", icon=":material/replay:"),
        ],
    }


# Whether this script thread is inside run_app now: a page script that finds it is not was started by
# Streamlit's legacy mode. Streamlit's own flag for that mode is process-wide, and a first run that has just
# called st.navigation clears it while a second request (a click on a legacy link) already runs in it.
_inside = threading.local()


def run_app() -> None:
    """Page config, the navigation (sent before the heavy imports), the sidebar card, then the page."""
    _inside.app = True
    try:
        st.set_page_config(page_title="Latent Explorer", page_icon=str(ICON), layout="wide")
        page = st.navigation(navigation())
        from pages.ui.common import page_style, sidebar_card  # torch and plotly: after the navigation is out

        page_style()
        sidebar_card()
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
