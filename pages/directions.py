"""Directions: a direction in the latent space that means something. An attribute vector v = mean(codes of group B)
- mean(codes of group A) (White 2016, "Sampling Generative Networks"; Carter & Nielsen 2017), from two classes, a
known factor's low and high thirds, or two groups lassoed on the Latent scatter; a walk z + α·v decoded in one batch;
the same walk on the latent pad, where α is a slider decoded in the page and v an arrow on the plane; the lengths of
several directions and the cosines between them, beside MIG; and analogies a - b + c."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import numpy as np
import streamlit as st

from pages.ui.direction_groups import selection_groups
from pages.ui.encodings import encoded_test_set
from pages.ui.explore import EXPLORE_CODES, PAD_LIMIT, explore_page, live_fragment
from pages.ui.latent_pad import browser_decoder, browser_encoder, latent_pad
from vae.analysis.directions import (DirectionError, analogy, attribute_vector, class_groups, compare_directions,
                                     factor_groups, factor_vectors, group_mask, majority_label, nearest_labels,
                                     plane_of, walk_codes)
from vae.analysis.disentangle import mutual_info_gap
from vae.analysis.encoding import decode_codes
from vae.browser.pad import PadCodes, PadDirection, pad_payload
from vae.browser.programs import UnsupportedDecoder
from vae.render.figures import cosine_figure, traversal_figure
from vae.render.images import tile_images, to_uint8, upscale_factor, upscale_nearest
from vae.render.palette import class_color

PAD_CODES = 1000  # test codes on the pad, as on Latent sliders
ALPHA_LIMIT = 3.0  # the walk's α range is chosen within +/- this
SOURCES = {"classes": "two classes", "factor": "a known factor's thirds", "selection": "groups lassoed on the scatter"}
STARTS = {"A": "group A's mean", "image": "a test image", "pad": "the pad's point", "prior": "the prior's centre (0)"}
PICTURE_PX = 110  # each analogy picture's side
# The pad here is about one direction: its samples from the prior (Latent sliders has them) would push the rest down.
PAD_STYLE = "<style>.st-key-dir_pad_box .lp-prior { display: none; }</style>"


# --- the groups and their vector ------------------------------------------------------------------------

def choose_groups(encoded) -> tuple[np.ndarray, np.ndarray, str, str] | None:
    """The two groups (boolean masks over the test codes) and their names, from the controls; None after one
    sentence when they cannot be made."""
    sources = [k for k in SOURCES if k != "factor" or encoded.factors]
    if "selection" in sources and not all(selection_groups().get(g) for g in "AB"):
        sources.remove("selection")
    source = st.radio("Groups from", sources, format_func=SOURCES.get, horizontal=True, key="dir_source",
                      help="Group A is where the direction starts, group B where it points.")
    try:
        if source == "classes":
            return _class_choice(encoded)
        if source == "factor":
            names = list(encoded.factors)
            name = st.selectbox("Factor", names, key="dir_factor", index=names.index("scale") if "scale" in names else 0,
                                help="Group A: the codes whose factor is in its lowest third; group B: its highest.")
            a, b = factor_groups(encoded.factors, name)
            return a, b, f"low {name}", f"high {name}"
        groups = selection_groups()
        a, b = (group_mask(groups[g], len(encoded.mu), g) for g in "AB")
        return a, b, f"A ({len(groups['A'])} lassoed)", f"B ({len(groups['B'])} lassoed)"
    except DirectionError as e:
        st.warning(str(e))
        return None


def _class_choice(encoded) -> tuple[np.ndarray, np.ndarray, str, str]:
    names = encoded.class_names
    default_b = names.index("7") if "7" in names else min(1, len(names) - 1)
    a_col, b_col = st.columns(2)
    a = a_col.selectbox("From class (A)", range(len(names)), format_func=names.__getitem__, key="dir_a",
                        index=names.index("1") if "1" in names else 0)
    b = b_col.selectbox("To class (B)", range(len(names)), format_func=names.__getitem__, key="dir_b", index=default_b)
    in_a, in_b = class_groups(encoded.labels, a, b)
    return in_a, in_b, names[a], names[b]


def pad_code(latent_dim: int) -> np.ndarray | None:
    """The full code at the pad's point, as it last sent it (on release), or None."""
    point = (st.session_state.get("dir_pad") or {}).get("point") or {}
    code = point.get("code")
    return np.asarray(code, np.float32) if isinstance(code, list) and len(code) == latent_dim else None


def walk_controls(n: int, pad_start: bool) -> tuple[str, int, tuple[float, float], int]:
    starts = [k for k in STARTS if k != "pad" or pad_start]
    start = st.radio("Walk from", starts, format_func=STARTS.get, horizontal=True, key="dir_start",
                     help="The pad's point: where you last released it (Point to μ puts it on a drawn input's code).")
    index = int(st.number_input("Test image #", 0, n - 1, 0, key="dir_index")) if start == "image" else 0
    alphas = st.slider("α from, to", -ALPHA_LIMIT, ALPHA_LIMIT, (-0.5, 1.5), 0.25, key="dir_alpha",
                       help="The walk decodes z + α·v: α = 0 is the start, α = 1 one whole vector further.")
    steps = st.slider("Steps", 5, 15, 9, key="dir_steps")
    return start, index, alphas, steps


# --- what the page draws ------------------------------------------------------------------------------

def draw_walk(view, v: np.ndarray, start: np.ndarray, alphas: np.ndarray, title: str) -> None:
    """The strip of decodes of start + α·v, one batch, α under each picture."""
    pictures = decode_codes(view.model, walk_codes(start, v, alphas))  # (S, H, W[, 3])
    tiled = tile_images(pictures[None])
    st.plotly_chart(traversal_figure(tiled, 1, alphas, [title], x_title="α: the walk decodes z + α·v",
                                     height=int(90 + 900 * tiled.shape[0] / tiled.shape[1])),
                    key="dir_strip", config={"displayModeBar": False})


def draw_pad(view, encoded, v: np.ndarray, start: np.ndarray, name: str, alphas: tuple[float, float]) -> None:
    """The latent pad on the plane where v is longest, the other dimensions held at the start, with v as an arrow
    and α as a slider decoded in the page."""
    dims = plane_of(v)
    key = (view.key, v.tobytes(), start.tobytes(), alphas, dims)
    kept = st.session_state.get("_dir_pad")
    if kept is None or kept[0] != key:  # the programs only for a new payload: a kept one's decoder runs here
        try:
            program = browser_decoder(view)
        except UnsupportedDecoder as e:
            st.info(f"The walk above is all this page can show of this model: {e}.")
            return
        encoder, note = browser_encoder(view)
        n = min(PAD_CODES, len(encoded.mu))
        payload = pad_payload(view.model, program, model_key=view.key, dims=dims, base=start,
                              point=[float(start[d]) for d in dims], limit=PAD_LIMIT,
                              classes=[(c, class_color(i)) for i, c in enumerate(encoded.class_names)],
                              codes=PadCodes(encoded.mu[:n], encoded.labels[:n], None), sprite=None,
                              encoder=encoder, encoder_note=note,
                              direction=PadDirection(name, v.astype(np.float32), *alphas))
        st.session_state["_dir_pad"] = kept = (key, payload)
    with st.container(key="dir_pad_box"):
        st.html(PAD_STYLE)
        latent_pad(kept[1], key="dir_pad")
    planes = " and ".join(f"z{d + 1}" for d in dims)
    st.caption(f"The plane of {planes}, where v is longest; the arrow is v from the point, the ring the walked code. "
               "Drag α and the page decodes z + α·v at every move; drag the point to start the walk elsewhere.")


def draw_comparison(view, encoded, kept: dict[str, np.ndarray]) -> None:
    """Lengths, cosines and axis alignment of several directions; for known factors, beside MIG."""
    if len(kept) < 2:
        st.caption("Keep two or more directions (the button above) to compare them here.")
        return
    result = compare_directions(kept)
    mig = mutual_info_gap(encoded.mu, encoded.factors) if encoded.factors else None
    left, right = st.columns([3, 2], gap="large")
    left.plotly_chart(cosine_figure(result.names, result.cosines), key="dir_cosines", config={"displayModeBar": False})
    gaps = {} if mig is None else dict(zip(mig.factors, mig.gaps))
    right.dataframe([{"direction": n, "length |v|": round(float(norm), 2), "nearest axis": f"z{int(axis) + 1}",
                      "|cos| with it": round(float(align), 2),
                      **({"MIG gap": round(float(gaps[n]), 2)} if n in gaps else {})}
                     for n, norm, axis, align in zip(result.names, result.norms, result.nearest_axes,
                                                     result.axis_alignment)],
                    hide_index=True, key="dir_table")
    off = np.abs(result.cosines[~np.eye(len(kept), dtype=bool)])
    text = (f"Mean |cos| between two directions: {off.mean():.2f}; mean |cos| with the nearest axis: "
            f"{np.mean(result.axis_alignment):.2f}.")
    if mig is not None:
        text += (f" MIG here is {mig.mig:.2f}. A disentangled model's factor directions are near orthogonal (|cos| "
                 "near 0) and each near one axis (|cos| with it near 1): MIG measures the second from mutual "
                 "information, dimension by dimension; a direction can mean something without being an axis.")
    st.caption(text)


def draw_analogy(view, encoded) -> None:
    """a − b + c of three class means, decoded, with the class its nearest test codes say it is."""
    names = encoded.class_names
    cols = st.columns(3)
    defaults = [names.index(c) if c in names else i % len(names) for i, c in enumerate(("7", "1", "4"))]
    picks = [col.selectbox(f"{role}: the mean code of", range(len(names)), format_func=names.__getitem__,
                           index=defaults[i], key=f"dir_analogy_{i}")
             for i, (col, role) in enumerate(zip(cols, ("a", "b", "c")))]
    means = [encoded.mu[encoded.labels == k].mean(0) for k in picks]
    result = analogy(*means)
    pictures = to_uint8(decode_codes(view.model, np.stack([*means, result])))
    scale = upscale_factor(pictures.shape[1], PICTURE_PX)
    shown = st.columns(4)
    for col, picture, caption in zip(shown, pictures, [f"a: {names[picks[0]]}", f"b: {names[picks[1]]}",
                                                       f"c: {names[picks[2]]}", "a − b + c"]):
        col.image(upscale_nearest(picture, scale), caption=caption, width="content", output_format="PNG")
    label, votes = majority_label(nearest_labels(result, encoded.mu, encoded.labels))
    st.caption(f"a − b + c = {names[picks[0]]} − {names[picks[1]]} + {names[picks[2]]}: its 25 nearest test codes "
               f"are mostly {names[label]} ({votes} of 25).")


def draw(view) -> None:
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if encoded is None:
        return
    controls, walk = st.columns([1, 2], gap="large")
    with controls:
        groups = choose_groups(encoded)
        if groups is None:
            return
        in_a, in_b, name_a, name_b = groups
        at_pad = pad_code(view.model_config.latent_dim)
        start_kind, index, alphas, steps = walk_controls(len(encoded.mu), at_pad is not None)
    try:
        v = attribute_vector(encoded.mu, in_a, in_b)
    except DirectionError as e:
        controls.warning(str(e))
        return
    name = f"{name_a} → {name_b}"
    start = {"A": lambda: encoded.mu[in_a].mean(0), "image": lambda: encoded.mu[index], "pad": lambda: at_pad,
             "prior": lambda: np.zeros(view.model_config.latent_dim)}[start_kind]().astype(np.float32)
    with walk:
        draw_walk(view, v, start, np.linspace(*alphas, steps, dtype=np.float32), name)
        st.caption(f"v = mean of {in_b.sum():,} codes of {name_b} − mean of {in_a.sum():,} codes of {name_a}; "
                   f"|v| = {np.linalg.norm(v):.2f}. From {STARTS[start_kind]}"
                   + (f" #{index}" if start_kind == "image" else "") + ".")
        if st.button("Keep this direction to compare", key="dir_keep", icon=":material/add:"):
            keep_direction(view, name, v)
    draw_pad(view, encoded, v, start, name, alphas)
    st.subheader("Compare directions")
    kept = kept_directions(view)
    if encoded.factors:
        kept = {**factor_vectors(encoded.mu, encoded.factors), **kept}
    draw_comparison(view, encoded, kept)
    st.subheader("Analogies: a − b + c")
    draw_analogy(view, encoded)


def kept_directions(view) -> dict[str, np.ndarray]:
    kept = st.session_state.get("dir_kept")
    return kept[1] if kept and kept[0] == view.name else {}


def keep_direction(view, name: str, v: np.ndarray) -> None:
    st.session_state["dir_kept"] = (view.name, {**kept_directions(view), name: v})


view = explore_page("Directions", "A direction that means something: from the mean code of one group to the mean "
                    "code of another. Walk along it, drag along it on the pad, compare it with others, and add and "
                    "subtract codes.")
live_fragment(draw, view)
