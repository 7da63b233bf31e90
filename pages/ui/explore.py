"""What the Explore pages share: the page's head (title, the tab's model or the hint to get one, caption),
the fragment that follows a training job's snapshots, and the pick of a 2-D plane in a larger latent
space."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from pages.ui.current_model import current_view, require_model
from vae.training.view import ModelView

EXPLORE_POLL_SECONDS = 3.0  # a live job publishes weights every epoch (and every few seconds mid-epoch)
EXPLORE_CODES = 5000  # test images encoded for the explore pages; one cache entry serves them all
PAD_LIMIT = 4.0  # the latent pad's plane spans +/- this many prior standard deviations


def explore_page(title: str, caption: str) -> ModelView:
    """An Explore page's head: its title, the tab's model (without one the page says how to get one and
    stops here) and its caption."""
    st.title(title)
    view = require_model()
    if view is None:
        st.stop()
    st.caption(caption)
    return view


def live_fragment(draw: Callable, view: ModelView, *args) -> None:
    """draw(model, *args) in a fragment: while the model trains it polls, so the page follows each new
    snapshot, and one full rerun ends the polling when the job does; otherwise it reruns only when its
    own widgets change. A model that is gone in the meantime gets one sentence instead."""

    def body(was_live: bool, *args) -> None:
        current = current_view()
        if was_live and (current is None or not current.live):
            st.rerun()
        if current is None:
            st.info("The model is gone: load or train one on the Home page.")
            return
        draw(current, *args)

    st.fragment(body, run_every=EXPLORE_POLL_SECONDS if view.live else None)(view.live, *args)


def pick_dims(latent_dim: int, key: str, allow_pca: bool = False) -> tuple[int, int] | None | bool:
    """Which plane of a latent space > 2-D to show: two dimensions (0-based), or None for the PCA
    plane of the codes (when allow_pca). Returns False (after saying why) when both axes are the same."""
    if latent_dim <= 2:
        return (0, 1) if latent_dim == 2 else (0, 0)
    if allow_pca:
        plane = st.radio("Plane", ["two dimensions", "PCA of the codes"], horizontal=True, key=f"{key}_plane",
                         help="PCA shows the plane in which the test codes spread the most.")
        if plane != "two dimensions":
            return None
    options = list(range(latent_dim))
    c1, c2 = st.columns(2)
    # Kept for the session: a page switch and back (or a link, pages/ui/view_link.py) finds the same plane.
    dx = c1.selectbox("Horizontal axis", options, index=0, format_func=lambda d: f"z{d + 1}", key=f"{key}_dim_x",
                      persist_state="session")
    dy = c2.selectbox("Vertical axis", options, index=1, format_func=lambda d: f"z{d + 1}", key=f"{key}_dim_y",
                      persist_state="session")
    if dx == dy:
        st.warning("Pick two different dimensions for the two axes.")
        return False
    return (dx, dy)
