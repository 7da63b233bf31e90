"""Reconstructions and interpolation: test images above decode(mu(x)), and the decoded straight
path between the codes of two test images."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import numpy as np
import streamlit as st

from pages.ui.encodings import encoded_test_set, stored_caption
from pages.ui.explore import EXPLORE_CODES, explore_page, live_fragment
from vae.analysis.encoding import decode_codes, interpolate, reconstruct, sample_indices
from vae.render.images import tile_rows, to_pictures, upscale_factor, upscale_nearest

STRIP = 10  # test images in the reconstruction strip
GAP = 2  # px between tiles, before enlarging
TARGET_PX = 1100  # widest strip we draw, so it fits a wide page without the browser rescaling it


def crisp(strip: np.ndarray) -> np.ndarray:
    """Enlarged by the largest whole factor that fits, nearest neighbour."""
    return upscale_nearest(strip, upscale_factor(strip.shape[1], TARGET_PX))


def draw_reconstructions(view, indices: np.ndarray) -> None:
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if encoded is None:
        return
    names = ', '.join(f'#{i}' for i in indices)
    if encoded.stored:
        strip = tile_rows([decode_codes(view.model, encoded.mu[indices])], gap=GAP)
        st.image(crisp(strip), caption=f"The reconstructions decode(mu(x)) of test images {names}, from their stored "
                 "codes.", width="content", output_format="PNG")
        stored_caption(encoded)
        return
    originals = encoded.images[indices]  # (k, C, H, W)
    strip = tile_rows([to_pictures(originals), reconstruct(view.model, originals)], gap=GAP)
    st.image(crisp(strip), caption=f"Top: test images {names}. Bottom: their reconstructions decode(mu(x)).",
             width="content", output_format="PNG")


def draw_path(view, a: int, b: int, steps: int) -> None:
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if encoded is None:
        return
    path = decode_codes(view.model, interpolate(encoded.mu[a], encoded.mu[b], steps))  # (steps, H, W[, 3]), one pass
    along = f"the decoder along the straight line from mu(#{a}) to mu(#{b}), {steps} evenly spaced codes, ends included."
    if encoded.stored:
        st.image(crisp(tile_rows([path], gap=GAP)), width="content", output_format="PNG", caption=f"From test image "
                 f"#{a} to #{b}: {along}")
        return
    ends = to_pictures(encoded.images[[a, b]])
    strip = tile_rows([np.concatenate([ends[:1], path, ends[1:]])], gap=GAP)
    st.image(crisp(strip), width="content", output_format="PNG",
             caption=f"Outer images: test images #{a} and #{b}. Between them: {along}")


view = explore_page("Reconstructions", "How well the model redraws test images from their codes, and what lies on "
                    "the straight path between two codes.")
encoded = encoded_test_set(view, EXPLORE_CODES)
if encoded is None:
    st.stop()
n = len(encoded.mu)
k = min(STRIP, n)
c1, c2, _ = st.columns([3, 2, 4], gap="medium")
which = c1.radio("Which test images", ["consecutive", "random"], horizontal=True, key="rc_which")
if which == "consecutive":
    start = int(c2.number_input("First test image #", 0, n - k, 0, key="rc_start"))
    indices = np.arange(start, start + k)
else:
    indices = sample_indices(n, k, int(c2.number_input("Seed", 0, 2**31 - 1, 0, key="rc_seed")))
live_fragment(draw_reconstructions, view, indices)

st.subheader("Interpolation")
i1, i2, i3, _ = st.columns([2, 2, 3, 2], gap="medium")
a = int(i1.number_input("From test image #", 0, n - 1, 0, key="rc_from"))
b = int(i2.number_input("To test image #", 0, n - 1, min(1, n - 1), key="rc_to"))
steps = int(i3.slider("Steps", 3, 20, 10, key="rc_steps"))
live_fragment(draw_path, view, a, b, steps)
