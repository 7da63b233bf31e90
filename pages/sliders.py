"""Latent sliders: the latent pad. A point dragged over the latent plane, decoded in the browser at
every pointer move (pages/ui/latent_pad.py), among the label-coloured test codes; hovering a code
shows its test image and reconstruction. Beside it, the encoder's side: an input drawn, dropped or taken
from a test image is encoded in the browser at every stroke, its posterior drawn on the plane with its
samples, and samples from the prior below. The page lives in a fragment: while a job trains it polls
and hands each new weights snapshot to the pad, which keeps its point and its input. A decoder the
browser cannot run falls back to server-drawn sliders, an encoder to encoding on the server, each with one
sentence saying why."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py


import numpy as np
import streamlit as st

from pages.ui.class_legend import class_legend
from pages.ui.downloads import explorer_download
from pages.ui.encodings import data_source, encoded_test_set, stored_caption
from pages.ui.explore import EXPLORE_CODES, PAD_LIMIT, explore_page, live_fragment, pick_dims
from pages.ui.latent_pad import browser_decoder, browser_encoder, latent_pad
from pages.ui.view_link import HOLD_IMAGE, show
from vae.render.palette import class_color
from vae.analysis.encoding import decode_codes, grid_codes
from vae.render.images import to_uint8, upscale_factor, upscale_nearest
from vae.browser.pad import PadCodes, Posterior, pad_payload, server_posterior, thumbnail_sprite, unpack
from vae.browser.programs import UnsupportedDecoder
from vae.render.pictures import MarkablePanel, scatter_panel

LIMIT = PAD_LIMIT  # the plane and the sliders span +/- 4 prior standard deviations
PAD_CODES = 1000  # test codes on the pad, each with its thumbnail for hovering
STEP = 0.05  # the server fallback's sliders
PICTURE_PX = 336  # the decoded picture is enlarged (nearest neighbour) to about this size: 28 px, 12x
SIDE_POINTS = 2000  # test codes on the fallback's small scatter: enough to see the clusters
SIDE_PX = 360  # the small scatter's side in pixels


def held_code(view, encoded, dims: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """For latent_dim > 2: the code the other dimensions are held at, and a caption saying which."""
    d = view.model_config.latent_dim
    if d <= 2:
        return None, ""
    others = ", ".join(f"z{i + 1}" for i in range(d) if i not in dims)
    choices = ["0 (the prior's centre)"] + ([HOLD_IMAGE] if encoded is not None else [])
    hold = st.radio(f"Hold {others} at", choices, horizontal=True, key="sl_hold", persist_state="session")
    index = None if hold == choices[0] else int(
        st.number_input("Test image #", 0, len(encoded.mu) - 1, key="sl_base_index", persist_state="session"))
    show("hold", index)
    if index is None:
        return np.zeros(d, np.float32), f"{others} held at 0"
    return encoded.mu[index], f"{others} held at the code of test image #{index}"


# --- the pad ----------------------------------------------------------------------------------------

@st.cache_resource(max_entries=4, show_spinner=False)
def _sprite(source: tuple, n: int, _images) -> bytes:
    """The thumbnails of the pad's first n test images as one PNG; the same for every model version."""
    return thumbnail_sprite(to_uint8(_images[:n].numpy()))


def pad_data(view, encoded, program, dims: tuple[int, ...], base: np.ndarray | None,
             posterior: Posterior | None) -> bytes:
    """The pad's payload for this model version, plane and held code (and the server's posterior of the
    input the page sent, where the server encodes), kept in the tab's session: a rerun that changes none of
    them hands the pad the very same bytes (which Streamlit then does not resend)."""
    n = 0 if encoded is None else min(PAD_CODES, len(encoded.mu))
    # A page sends an input only to a server that encodes it: the answer is part of what the payload holds.
    answer = None if posterior is None else (posterior.input, posterior.mu.tobytes())
    key = (view.key, tuple(dims), None if base is None else base.tobytes(), n, view.dataset, answer)
    kept = st.session_state.get("_sl_pad")
    if kept is not None and kept[0] == key:
        return kept[1]
    encoder, note = browser_encoder(view)  # the encoder's program, built only for a new payload
    codes = sprite = None
    if n:
        codes = PadCodes(encoded.mu[:n], encoded.labels[:n], None)
        sprite = None if encoded.stored else _sprite(data_source(view), n, encoded.images)
    names = encoded.class_names if encoded is not None else view.class_names
    released = st.session_state.get("latent_point") or {}
    point = released.get("z") if released.get("dims") == list(dims) else None
    payload = pad_payload(view.model, program, model_key=view.key, dims=dims, base=base,
                          point=point or [0.0] * len(dims), limit=LIMIT,
                          classes=[(name, class_color(i)) for i, name in enumerate(names)], codes=codes, sprite=sprite,
                          encoder=encoder, encoder_note=note, posterior=None if encoder is not None else posterior)
    st.session_state["_sl_pad"] = (key, payload)
    return payload


def payload_sizes(payload: bytes) -> tuple[int, int, int, str]:
    """(decoder weight bytes, encoder weight bytes, code and thumbnail bytes, the decoder's weight dtype) of a pad
    payload, for the caption."""
    header, sections = unpack(payload)
    decoder, encoder = len(sections["weights"]), len(sections.get("encoderWeights", b""))
    return decoder, encoder, len(payload) - decoder - encoder, header["model"]["dtype"]


def fmt_code(values) -> str:
    shown = ", ".join(f"{v:.2f}" for v in list(values)[:6]).replace("-", "−")
    return f"({shown}{', …' if len(values) > 6 else ''})"


def draw_pad(view, encoded, program, dims: tuple[int, ...], base, held: str) -> None:
    sent = (st.session_state.get("latent_pad") or {}).get("input")  # the component's state, before it redraws
    payload = pad_data(view, encoded, program, dims, base, server_posterior(view.model, sent) if sent else None)
    point, _ = latent_pad(payload, key="latent_pad")
    if point:
        st.session_state["latent_point"] = point
    released = st.session_state.get("latent_point") or {}
    show("point", released["z"] if released.get("dims") == list(dims) else None)
    decoder, encoder, rest, dtype = payload_sizes(payload)
    where = (f"Released at z = {fmt_code(point['code'])}. " if point else "Drag the point, or click where it should go. ")
    runs = "The decoder and the encoder run" if encoder else "The decoder runs"
    st.caption(
        where + (f"{held}. " if held else "")
        + f"{runs} in this tab: the {view.model_config.arch.upper()}'s weights come once per model version "
        f"({(decoder + encoder) / 1e6:.2f} MB as {dtype}, with {rest / 1e6:.2f} MB of test codes and thumbnails)"
        + (", a new one with each snapshot while the job trains." if view.live else "."),
        help="The server sends the weights to the browser once per model version (every few seconds while a job "
             "trains); the page decodes the point on every pointer move and encodes the input on every stroke. "
             f"Dots: posterior means of {0 if encoded is None else min(PAD_CODES, len(encoded.mu)):,} test images, "
             "by label. Dashed: the prior's 1σ and 2σ contours. Magenta: the drawn input's posterior, its 1σ and 2σ "
             "ellipses, its mean (the cross) and its 16 samples (sample 1 ringed).")
    if encoded is None:
        st.caption("The test codes are not shown: the test images are not on this machine.")
    else:
        stored_caption(encoded)
    explorer_download(view, None if encoded is None or encoded.stored else encoded.images)


# --- the server fallback ----------------------------------------------------------------------------

def side_scatter(view, encoded, dims: tuple[int, int], k: int, point: tuple[float, float]) -> bytes:
    """The small scatter as a PNG (vae/pictures.py's scatter_panel, as in the replay GIF): the codes are
    drawn once per model, dims and size, and kept in this tab's session as a MarkablePanel; a move
    only marks the point on a copy."""
    key = (view.key, tuple(dims), k)
    kept = st.session_state.get("_sl_panel")
    if kept is None or kept[0] != key:
        panel = scatter_panel(encoded.mu[:k][:, list(dims)], encoded.labels[:k], (-LIMIT, LIMIT), size=SIDE_PX)
        st.session_state["_sl_panel"] = kept = (key, MarkablePanel(panel, (-LIMIT, LIMIT)))
    return kept[1].png(point)


def draw_server_sliders(view, encoded, dims: tuple[int, int], base, held: str) -> None:
    d = view.model_config.latent_dim
    controls, picture, scatter = st.columns([4, 4, 5], gap="large")
    with controls:
        names = (f"z{dims[0] + 1}", f"z{dims[1] + 1}")
        v1 = st.slider(names[0] if d > 2 else "z1", -LIMIT, LIMIT, 0.0, STEP, key="z1")
        v2 = st.slider(names[1] if d > 2 else "z2", -LIMIT, LIMIT, 0.0, STEP, key="z2") if d > 1 else 0.0
    if d == 1:
        code = np.array([[v1]], np.float32)
    else:
        code = grid_codes(np.array([v1], np.float32), np.array([v2], np.float32), d, dims, base)  # (1, D)
    decoded = to_uint8(decode_codes(view.model, code)[0])  # (H, W[, 3])
    image = upscale_nearest(decoded, upscale_factor(max(decoded.shape[:2]), PICTURE_PX))
    with picture:
        st.image(image, caption=f"decode(z) at z = {fmt_code(code[0])}", width="content", output_format="PNG")
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
        st.markdown(class_legend(encoded.labels[:k], encoded.class_names), unsafe_allow_html=True)
        st.caption(f"Dots: posterior means of {k:,} test images, by label.")


def draw(view) -> None:
    d = view.model_config.latent_dim
    dims = pick_dims(d, "sl")
    if dims is False:
        return
    show("plane", dims if d > 2 else None)
    encoded = encoded_test_set(view, EXPLORE_CODES)
    base, held = held_code(view, encoded, dims)
    try:
        program = browser_decoder(view)
    except UnsupportedDecoder as e:
        st.info(f"This model's picture is drawn on the server, when you release a slider: {e}.")
        draw_server_sliders(view, encoded, dims, base, held)
        return
    draw_pad(view, encoded, program, dims[:1] if d == 1 else dims, base, held)


view = explore_page("Latent sliders", "Drag the point through the latent plane and the decoder, running in this "
                    "page, draws the image at every point it passes. Draw an input on the left (or click a dot to "
                    "take its test image) and the encoder, also in this page, draws its posterior q(z|x) on the "
                    "plane at every stroke, with samples z = μ + σ·ε and their pictures.")
live_fragment(draw, view)
