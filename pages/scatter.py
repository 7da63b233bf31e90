"""Latent scatter: the test set's posterior means, colored by label (or, for shapes, by a
generative factor), with the prior's 1 and 2 sigma circles. Click a point, or type its number,
to see the image, its reconstruction, its label and its code."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import numpy as np
import streamlit as st

from pages.ui.encodings import encoded_test_set, encoded_train_codes, test_set_size
from pages.ui.explore import EXPLORE_CODES, explore_page, live_fragment, pick_dims
from pages.ui.view_link import show
from pages.ui.direction_groups import keep_selection_group, selection_groups
from vae.render.figures import latent_scatter, selected_index, selected_indices
from vae.analysis.encoding import decode_codes, reconstruct
from vae.analysis.usage import kl_per_dimension
from vae.analysis.geometry import knn_label_map, pca_2d, pca_prior_centre, project_like, square_extent
from vae.render.images import tile_rows, to_pictures, upscale_factor, upscale_nearest

FACTOR_TITLES = {"label": "label", "scale": "scale (radius, px)", "rotation": "rotation (radians)",
                 "x": "x (column, px)", "y": "y (row, px)"}
DETAIL_PX = 140  # each image of the detail panel is enlarged to about this size (28 px: 5x)
LABEL_MAP_CODES, LABEL_MAP_K, LABEL_MAP_CELLS = 5000, 15, 120  # training codes, neighbours, grid cells per side
# Selecting a group needs only plotly's lasso and box tools (and its reset).
GROUP_TOOLS_REMOVED = ["zoom2d", "pan2d", "zoomIn2d", "zoomOut2d", "autoScale2d", "toImage"]


def pick_from_chart() -> None:
    """on_select callback: a clicked point's number goes into the number input, which then rules."""
    index = selected_index(st.session_state["sc_chart"]["selection"])
    if index is not None:
        st.session_state["sc_index"] = index


def plane(encoded, dims) -> tuple[np.ndarray, tuple[str, str], tuple[float, float], str]:
    """(N, 2) points, axis titles, where the prior's centre lands, and a caption for the plane."""
    if dims is None:
        xy, components, mean, ratio = pca_2d(encoded.mu)
        titles = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)")
        return xy, titles, tuple(pca_prior_centre(components, mean)), (
            f"PCA plane of the codes, explaining {ratio.sum():.0%} of their variance; its axes are orthonormal, "
            "so the prior still shows as circles.")
    return encoded.mu[:, list(dims)], (f"z{dims[0] + 1}", f"z{dims[1] + 1}"), (0.0, 0.0), ""


def controls(view) -> tuple[int, str, tuple[int, int] | None | bool, bool, bool]:
    top = min(EXPLORE_CODES, test_set_size(view) or EXPLORE_CODES)  # shapes has 4,000 test images
    count = int(st.number_input("Test images", min(100, top), top, top, step=500, key="sc_count"))
    color_by = "label"
    if view.dataset == "shapes":
        color_by = st.selectbox("Color by", list(FACTOR_TITLES), format_func=FACTOR_TITLES.get, key="sc_color",
                                help="The label, or one of the factors the shapes were drawn from.")
    shade = color_by == "label" and st.checkbox(
        "Label map", key="sc_labelmap", help=f"Shade the plane by the majority label of the {LABEL_MAP_K} nearest "
                                             f"training codes: where the encoder puts each class.")
    names = st.toggle("Names on the clusters", value=True, key="sc_names",
                      help="Each class's name at the median of its dots: the class reads without its colour.")
    grouping = st.toggle("Select a group", key="sc_grouping",
                         help="Lasso (or box) a group of codes, then keep it as group A or B of a direction: the "
                              "Directions page walks from A's mean towards B's.")
    return count, color_by, pick_dims(view.model_config.latent_dim, "sc", allow_pca=True), shade, names, grouping


def group_buttons(indices: list[int]) -> None:
    """The lassoed codes as group A or B of the Directions page (pages/ui/direction_groups.py keeps them)."""
    groups = selection_groups()
    st.markdown(f"**{len(indices):,} codes selected.** " + " · ".join(
        f"{name}: {len(groups[name]):,}" for name in ("A", "B") if groups.get(name)))
    a, b = st.columns(2)
    for column, name in ((a, "A"), (b, "B")):
        if column.button(f"Use as group {name}", key=f"sc_group_{name}", disabled=not indices):
            keep_selection_group(name, indices)
            st.rerun(scope="fragment")
    if groups.get("A") and groups.get("B"):
        st.page_link("pages/directions.py", label="Walk from A to B on Directions", icon=":material/north_east:")


def label_map(view, encoded, dims, xy: np.ndarray):
    """((xs, ys, labels grid) over the plotted plane from the training codes, the axis range, a caption);
    (None, None, '') when the training images are not here."""
    train = encoded_train_codes(view, LABEL_MAP_CODES)
    if train is None:
        return None, None, ""
    train_xy = project_like(train[0], encoded.mu, dims)
    lo, hi = square_extent(xy)
    axis = np.linspace(lo, hi, LABEL_MAP_CELLS, dtype=np.float32)
    grid, _ = knn_label_map(train_xy, train[1], axis, axis, k=LABEL_MAP_K, n_classes=len(encoded.class_names))
    return (axis, axis, grid), (lo, hi), (f" Shading: the majority label of the {LABEL_MAP_K} nearest of "
                                          f"{len(train_xy):,} training codes.")


def details(view, encoded, index: int) -> None:
    """The chosen test image beside its reconstruction, its label and its code."""
    if encoded.stored:
        picture = decode_codes(view.model, encoded.mu[index:index + 1])[0]
        st.image(upscale_nearest(picture, upscale_factor(max(picture.shape[:2]), DETAIL_PX)), width="content",
                 caption="its reconstruction, from the stored code", output_format="PNG")
    else:
        original = encoded.images[index:index + 1]  # (1, C, H, W)
        strip = tile_rows([np.concatenate([to_pictures(original), reconstruct(view.model, original)])], gap=2)
        st.image(upscale_nearest(strip, upscale_factor(max(strip.shape[:2]) // 2, DETAIL_PX)), width="content",
                 caption="the test image | its reconstruction", output_format="PNG")
    label = int(encoded.labels[index])
    name = encoded.class_names[label] if label < len(encoded.class_names) else str(label)
    st.markdown(f"**#{index}: {name}**  \ncode μ = ({', '.join(f'{v:.2f}' for v in encoded.mu[index])})")
    if encoded.factors:
        st.caption(" · ".join(f"{k} {float(v[index]):.2f}" for k, v in encoded.factors.items() if k != "shape"))
    if encoded.stored:
        st.caption(f"The original image needs the dataset: {encoded.missing}")


def draw(view) -> None:
    chart, side = st.columns([3, 1], gap="large")
    with side:
        count, color_by, dims, shade, names, grouping = controls(view)
    if dims is False:
        return
    encoded = encoded_test_set(view, count)
    if encoded is None:
        return
    xy, titles, centre, note = plane(encoded, dims)
    n = len(xy)
    index = min(int(st.session_state.get("sc_index") or 0), n - 1)
    st.session_state["sc_index"] = index  # fewer images than before: the pick moves to the last one
    show("dot", index)
    continuous = color_by != "label" and color_by in encoded.factors
    shading, axis_range, shading_note = label_map(view, encoded, dims, xy) if shade else (None, None, "")
    note += shading_note
    fig = latent_scatter(
        xy, encoded.labels, encoded.class_names, color=encoded.factors[color_by] if continuous else None,
        color_title=FACTOR_TITLES.get(color_by, color_by), highlight=tuple(xy[index]),
        highlight_name=f"test image #{index}", prior_centre=centre, axis_titles=titles, height=590,
        label_map=shading, axis_range=axis_range, legend_above=True,  # beside the plot, at 1280 px, it took a third of its width
        names_at_centres=names,
    )
    with chart:
        if grouping:
            fig.update_layout(dragmode="lasso")
            st.plotly_chart(fig, key="sc_group_chart", on_select="rerun", selection_mode=("lasso", "box"),
                            config={"displaylogo": False, "modeBarButtonsToRemove": GROUP_TOOLS_REMOVED})
        else:
            st.plotly_chart(fig, key="sc_chart", on_select=pick_from_chart, selection_mode="points",
                            config={"displayModeBar": False})
        stored = " (stored with the model)" if encoded.stored else ""
        st.caption(f"Posterior means of {n:,} test images{stored}; dashed: the prior N(0, I) at 1σ and 2σ. {note}")
    with side:
        if grouping:
            group_buttons(selected_indices(st.session_state.get("sc_group_chart", {}).get("selection")))
        st.number_input("or pick test image #", 0, n - 1, key="sc_index", help="Clicking a point fills this in.",
                        persist_state="session")
        details(view, encoded, index)
        if view.model_config.latent_dim > 2:
            kl = kl_per_dimension(encoded.mu, encoded.logvar)
            top = ", ".join(f"z{d + 1} {kl[d]:.1f}" for d in np.argsort(-kl)[:4])
            st.caption(f"Most informative dimensions (mean KL, nats): {top}")


view = explore_page("Latent scatter", "Where the encoder puts each test image: its posterior mean, one dot per "
                    "image. Click a dot to see it.")
live_fragment(draw, view)
