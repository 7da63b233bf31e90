"""Latent traversals: what each latent dimension does. One row per dimension, sorted by its KL (inactive ones
marked), that dimension swept over [-r, r] while the others stay at the code of one test image (or at the
prior's centre); one batched decode. For data with known factors (the built-in shapes), how the factors land
in the dimensions: the Mutual Information Gap (Chen et al. 2018) as a factor x dimension heat map, and a
linear probe per factor."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import numpy as np
import streamlit as st

from pages.ui.encodings import encoded_test_set, test_set_size
from pages.ui.explore import EXPLORE_CODES, explore_page, live_fragment
from pages.ui.view_link import PRIOR, START_IMAGE, START_PRIOR, show
from vae.analysis.disentangle import mutual_info_gap, probe_scores
from vae.analysis.traversals import traversal_order
from vae.render.figures import mig_figure, traversal_figure
from vae.analysis.traversals import decode_traversals
from vae.analysis.encoding import grid_axis
from vae.analysis.usage import latent_usage
from vae.render.images import png_bytes, tile_images, upscale_factor, upscale_nearest
from vae.render.pictures import traversal_gif

MAX_ROWS = 16  # dimensions shown, the most informative first
PNG_PX = 1400  # the downloaded PNG's width at most
SPACINGS = {"linear": "Linear over [-r, r]", "gaussian": "Gaussian quantiles"}


def controls(view, n: int) -> tuple[int | None, float, int, str]:
    """(test image # or None for the prior's centre, radius, steps, spacing)."""
    start = st.radio("Start from", [START_IMAGE, START_PRIOR], key="tv_start", horizontal=True,
                     help="The code every row starts from: a test image's posterior mean, or 0.", persist_state="session")
    index = int(st.number_input("Test image #", 0, n - 1, key="tv_index", persist_state="session")) if (
        start == START_IMAGE and n) else None
    show("start", PRIOR if start == START_PRIOR else index)
    radius = st.slider("Radius r", 1.0, 4.0, 3.0, 0.5, key="tv_radius", help="Each row sweeps its dimension over [-r, r].")
    steps = st.slider("Steps", 5, 15, 9, key="tv_steps")
    spacing = st.radio("Spacing", list(SPACINGS), format_func=SPACINGS.get, key="tv_spacing",
                       help="Gaussian quantiles: each step holds the same prior mass (Kingma & Welling 2013, Fig. 4).")
    return index, radius, steps, spacing


def row_labels(dims: np.ndarray, kl: np.ndarray, active: np.ndarray) -> list[str]:
    return [f"z{d + 1} · {kl[d]:.2f} nats" + ("" if active[d] else " · inactive") for d in dims]


def draw_traversals(view, index: int | None, radius: float, steps: int, spacing: str) -> None:
    encoded = encoded_test_set(view, EXPLORE_CODES)
    d = view.model_config.latent_dim
    if encoded is not None:
        usage = latent_usage(encoded.mu, encoded.logvar)
        kl, active = usage.kl, usage.active
    else:  # no codes here: every dimension in order, none known to be inactive
        kl, active = np.zeros(d, np.float32), np.ones(d, bool)
    dims = traversal_order(kl)[:MAX_ROWS]
    base = encoded.mu[index] if encoded is not None and index is not None else np.zeros(d, np.float32)
    values = grid_axis(steps, radius, spacing)
    grid = decode_traversals(view.model, base, dims, values)  # (R, S, H, W[, 3])
    tiled = tile_images(grid)
    st.plotly_chart(traversal_figure(tiled, len(dims), values, row_labels(dims, kl, active)), key="tv_grid",
                    config={"displayModeBar": False})
    start = f"test image #{index}" if index is not None else "the prior's centre (0)"
    shown = f"the {len(dims)} of {d} with the most KL" if len(dims) < d else f"all {d}"
    st.caption(f"Rows: {shown} latent dimensions, by mean KL over {len(encoded.mu) if encoded is not None else 0:,} "
               f"test codes (a dimension is inactive when its mean hardly varies over the data, Burda et al. 2015). "
               f"Each row sweeps its dimension; the others stay at the code of {start}.")
    name = f"traversals-{view.name}"
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("Download PNG", png_bytes(upscale_nearest(tiled, upscale_factor(tiled.shape[1], PNG_PX))),
                       file_name=f"{name}.png", mime="image/png", key="tv_png", on_click="ignore",
                       icon=":material/download:")
    c2.download_button("Download GIF", lambda: traversal_gif(grid), file_name=f"{name}.gif", mime="image/gif",
                       key="tv_gif", on_click="ignore", icon=":material/download:")


def draw_factors(view) -> None:
    if not test_set_size(view):  # the grid above has said why there are no codes
        return
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if not encoded.factors:
        st.info(f"{view.dataset} has no known generative factors; train on the built-in shapes to measure how "
                "each factor lands in the latent dimensions.")
        return
    result = mutual_info_gap(encoded.mu, encoded.factors)
    probes = probe_scores(encoded.mu, encoded.factors)
    st.markdown(f"**MIG {result.mig:.2f}** (Chen et al. 2018): for each factor, the gap between the two dimensions "
                "that know the most about it, as a share of what there is to know; 1 when each factor lives in one "
                "dimension of its own, 0 when none singles it out.")
    st.plotly_chart(mig_figure(result.mi, result.factors, result.gaps), key="tv_mig", config={"displayModeBar": False})
    st.dataframe([{"factor": f, "MIG gap": round(float(g), 3), "best dimension": f"z{int(b) + 1}",
                   "linear probe R²": round(probes.get(f, float("nan")), 3)}
                  for f, g, b in zip(result.factors, result.gaps, result.best_dims)], hide_index=True, key="tv_probe")
    st.caption(f"Over {len(encoded.mu):,} test codes, each dimension and factor in 20 bins; with this many codes a "
               "perfect code scores about 0.98, not 1. Linear probe: R² on half the codes of a least-squares fit on "
               "the other half; it sees a factor spread over several dimensions, which MIG does not reward.")


view = explore_page("Latent traversals", "What each latent dimension does: one row per dimension, most informative "
                    "first; along a row, that dimension sweeps while the others stay fixed.")
count = min(EXPLORE_CODES, test_set_size(view) or 0)  # the grid's fragment encodes them (and says if it cannot)
grid_col, side = st.columns([3, 1], gap="large")
with side:
    settings = controls(view, count)
with grid_col:
    live_fragment(draw_traversals, view, *settings)
st.subheader("Factors and dimensions")
live_fragment(draw_factors, view)
