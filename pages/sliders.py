"""Latent sliders: two sliders pick a point of the latent plane and the decoder draws it; the
point is marked among the test codes. The widgets live in a fragment, so a slider move reruns
only this part (and, while a job trains, it polls and follows the newest snapshot)."""
from __future__ import annotations

import html

import numpy as np
import streamlit as st

from pages.common import EXPLORE_CODES, encoded_test_set, explore_fragment, follow_model, pick_dims, require_model
from vae.figures import class_color
from vae.latent import decode_codes, grid_codes, to_uint8, upscale_nearest
from vae.replay import MarkablePanel, scatter_panel

LIMIT = 4.0  # slider range: +/- 4 prior standard deviations
STEP = 0.05
ZOOM = 12  # 28 px -> 336 px, nearest neighbour: crisp on a projector
SIDE_POINTS = 2000  # test codes on the small scatter: enough to see the clusters
SIDE_PX = 360  # the small scatter's side in pixels


def held_code(view, encoded, dims: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """For latent_dim > 2: the code the other dimensions are held at, and a caption saying which."""
    d = view.model_config.latent_dim
    if d <= 2:
        return None, ""
    others = ", ".join(f"z{i + 1}" for i in range(d) if i not in dims)
    choices = ["0 (the prior's centre)"] + (["the code of a test image"] if encoded is not None else [])
    hold = st.radio(f"Hold {others} at", choices, horizontal=True, key="sl_hold")
    if hold == choices[0]:
        return np.zeros(d, np.float32), f"{others} held at 0"
    index = int(st.number_input("Test image #", 0, len(encoded.mu) - 1, 0, key="sl_base_index"))
    return encoded.mu[index], f"{others} held at the code of test image #{index}"


def side_scatter(view, encoded, dims: tuple[int, int], k: int, point: tuple[float, float]) -> bytes:
    """The small scatter as a PNG (vae/replay.py's scatter_panel, as in the replay GIF): the codes are
    drawn once per model, dims and size, and kept in this tab's session as a MarkablePanel; a move
    marks the point on a copy, about half a millisecond. A plotly chart redrawn on every move held the
    browser 150-300 ms before the decoded image could show (docs/benchmarks.md, Explore latency)."""
    key = (view.key, tuple(dims), k)
    kept = st.session_state.get("_sl_panel")
    if kept is None or kept[0] != key:
        panel = scatter_panel(encoded.mu[:k][:, list(dims)], encoded.labels[:k], (-LIMIT, LIMIT), size=SIDE_PX)
        st.session_state["_sl_panel"] = kept = (key, MarkablePanel(panel, (-LIMIT, LIMIT)))
    return kept[1].png(point)


def legend(labels: np.ndarray, class_names: list[str]) -> str:
    """One coloured dot and name per class present, as HTML (names escaped)."""
    present = sorted(set(int(v) for v in np.unique(labels)))
    return " &nbsp; ".join(
        f'<span style="color:{class_color(i)};font-size:1.3em">●</span> '
        f'{html.escape(class_names[i] if i < len(class_names) else str(i))}' for i in present)


def draw(was_live: bool) -> None:
    view = follow_model(was_live)
    if view is None:
        st.info("The model is gone: load or train one on the Home page.")
        return
    d = view.model_config.latent_dim
    controls, picture, scatter = st.columns([4, 4, 5], gap="large")
    with controls:
        dims = pick_dims(d, "sl")
        if dims is False:
            return
        encoded = encoded_test_set(view, EXPLORE_CODES)
        base, held = held_code(view, encoded, dims)
        names = (f"z{dims[0] + 1}", f"z{dims[1] + 1}")
        v1 = st.slider(names[0] if d > 2 else "z1", -LIMIT, LIMIT, 0.0, STEP, key="z1")
        v2 = st.slider(names[1] if d > 2 else "z2", -LIMIT, LIMIT, 0.0, STEP, key="z2") if d > 1 else 0.0
    if d == 1:
        code = np.array([[v1]], np.float32)
    else:
        code = grid_codes(np.array([v1], np.float32), np.array([v2], np.float32), d, dims, base)  # (1, D)
    image = upscale_nearest(to_uint8(decode_codes(view.model, code)[0]), ZOOM)  # (336, 336) uint8
    with picture:
        st.image(image, caption=f"decode(z) at z = ({', '.join(f'{v:.2f}' for v in code[0][:6])}"
                 f"{', …' if d > 6 else ''})", width="content", output_format="PNG")
        if held:
            st.caption(held)
    with scatter:
        if encoded is None or d == 1:
            st.caption("The test codes are not shown: " + ("the test images are not on this machine."
                       if encoded is None else "a 1-D latent space has no plane to draw."))
            return
        k = min(SIDE_POINTS, len(encoded.mu))
        st.image(side_scatter(view, encoded, dims, k, (v1, v2)), width="content", output_format="PNG",
                 caption=f"{names[0]} → right, {names[1]} ↑, over [−{LIMIT:g}, {LIMIT:g}]; grey lines: the axes "
                         f"through 0. Ringed dot: the slider point. Dashed: the prior's 1σ and 2σ circles.")
        st.markdown(legend(encoded.labels[:k], encoded.class_names), unsafe_allow_html=True)
        st.caption(f"Dots: posterior means of {k:,} test images, by label.")


st.title("Latent sliders")
view = require_model()
if view is None:
    st.stop()
st.caption("Each point of the latent space is an image: move the sliders and the decoder draws the one at that point.")
explore_fragment(draw, view.live)(view.live)
