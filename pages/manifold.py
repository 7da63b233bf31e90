"""Manifold: an n x n grid of decoded images over the latent plane (Kingma & Welling 2013,
Fig. 4), one forward pass, drawn on axes in latent coordinates so it compares with the scatter."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import streamlit as st

from pages.ui.encodings import encoded_test_set
from pages.ui.explore import EXPLORE_CODES, explore_page, live_fragment, pick_dims
from vae.render.figures import manifold_figure
from vae.analysis.encoding import decode_grid, grid_axis
from vae.render.images import png_bytes, tile_images

SPACINGS = {"linear": "Linear over [-r, r]", "gaussian": "Gaussian quantiles"}
OVERLAY_POINTS = 2000
MANIFOLD_PX = 540  # the chart's height: under the title and caption, it ends above the fold of a 1280 x 720 screen


def controls(latent_dim: int) -> tuple[int, float, str, tuple[int, int] | bool, bool]:
    n = st.slider("Grid size n", 5, 30, 20, key="mf_n", help="n x n decoded images, one forward pass.")
    spacing = st.radio("Spacing", list(SPACINGS), format_func=SPACINGS.get, key="mf_spacing",
                       help="Gaussian quantiles: the inverse normal CDF of evenly spaced probabilities, so every "
                            "cell holds the same prior mass (Kingma & Welling 2013, Fig. 4).")
    radius = st.slider("Radius r", 0.5, 6.0, 3.0, 0.5, key="mf_radius", disabled=spacing != "linear",
                       help="Linear spacing covers [-r, r] on both axes.")
    overlay = st.checkbox("Test codes", value=False, key="mf_overlay",
                          help="Overlay the posterior means of test images, colored by label, on the same axes.")
    dims = pick_dims(latent_dim, "mf")
    if latent_dim > 2 and dims:
        st.caption(f"The other {latent_dim - 2} dimensions are held at 0.")
    return int(n), float(radius), spacing, dims, overlay


def overlay_codes(view, dims: tuple[int, int]):
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if encoded is None:
        return None
    k = min(OVERLAY_POINTS, len(encoded.mu))
    return encoded.mu[:k][:, list(dims)], encoded.labels[:k], encoded.class_names


def caption(spacing: str, overlaid: bool) -> str:
    if spacing == "gaussian":
        return ("Cells sit at Gaussian quantiles: each holds the same prior mass, so the axes are not linear in z; "
                "the labels give z, the small ticks mark cell centres." + (
                    " Test codes are placed through the normal CDF, so each dot lands on the cell of its z."
                    if overlaid else ""))
    return "Small ticks mark cell centres; hover a cell for its z." + (
        " Dots: posterior means of test images on the same axes." if overlaid else "")


def draw(view) -> None:
    side, main = st.columns([1, 3], gap="large")
    with side:
        n, radius, spacing, dims, overlay = controls(view.model_config.latent_dim)
    if dims is False:
        return
    xs = ys = grid_axis(n, radius, spacing)
    tiled = tile_images(decode_grid(view.model, xs, ys, dims))  # (n*H, n*W[, 3]) uint8, one forward pass
    codes = overlay_codes(view, dims) if overlay else None
    with main:
        st.plotly_chart(manifold_figure(tiled, xs, ys, spacing, dims, overlay=codes, height=MANIFOLD_PX),
                        key="mf_chart", config={"displayModeBar": False})
    with side:
        st.caption(caption(spacing, codes is not None))
        st.download_button(
            "Download PNG", png_bytes(tiled), help=f"The grid alone, {tiled.shape[1]} x {tiled.shape[0]} px.",
            file_name=f"manifold-{view.name}-{n}x{n}-{spacing}.png", mime="image/png", key="mf_download",
            on_click="ignore", icon=":material/download:",
        )


view = explore_page("Manifold", "What the decoder draws at every point of a grid over the latent plane: nearby points "
                    "decode to similar images.")
if view.model_config.latent_dim < 2:
    st.info("The manifold needs a latent space of at least two dimensions; this model has one. "
            "The Latent sliders page shows its single axis.")
    st.stop()
live_fragment(draw, view)
