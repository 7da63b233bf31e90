"""Plotly figures built from plain data (histories, codes, images). No streamlit here:
pages call these and only place the result."""
from __future__ import annotations

import base64
import html
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae.render.axes import format_tick, grid_cell_edges, grid_plot_coords, prior_contour, round_ticks
from vae.render.images import png_bytes
from vae.render.palette import CONTINUOUS_SCALE, PALETTE, class_color, class_marker

CURVES = (("recon", "Reconstruction (nats)"), ("kl", "KL divergence (nats)"), ("total", "Total: negative ELBO (nats)"))
FONT = dict(size=15)
HOVER_FONT_PX = 16


def ema(values: list[float], alpha: float = 0.3) -> list[float]:
    """Exponential moving average, alpha = weight of the newest value; NaNs are carried over."""
    out, acc = [], None
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(acc if acc is not None else float("nan"))
            continue
        acc = v if acc is None else alpha * v + (1 - alpha) * acc
        out.append(acc)
    return out


def curve_series(history: list[dict]) -> dict[str, dict[str, list[float]]]:
    """Splits a history into per-step (smoothed) and per-epoch test series, x in epochs.

    Step records carry recon/kl/total of training batches; epoch records carry test_recon,
    test_kl and test_elbo (the test total is the unweighted negative ELBO).
    """
    steps = [r for r in history if r.get("kind") == "step"]
    epochs = [r for r in history if r.get("kind") == "epoch" and "test_elbo" in r]
    series = {"train_x": [r["epoch"] for r in steps], "test_x": [r["epoch"] for r in epochs]}
    for key, _ in CURVES:
        series[f"train_{key}"] = ema([r[key] for r in steps])
        series[f"test_{key}"] = [r["test_elbo" if key == "total" else f"test_{key}"] for r in epochs]
    return series


MAX_CURVE_POINTS = 400  # per trace: a long run stays light to send and to redraw every second


def thin(values: list, max_points: int = MAX_CURVE_POINTS) -> list:
    """Every k-th value (and always the last) so that at most about max_points remain."""
    if len(values) <= max_points:
        return list(values)
    stride = math.ceil(len(values) / max_points)
    kept = values[::stride]
    return kept if (len(values) - 1) % stride == 0 else kept + [values[-1]]


CHANGE_COLOUR = "#C2185B"  # a setting changed mid-run: a dashed vertical line on each panel, labelled


def loss_curves(history: list[dict], height: int = 340, reuse: go.Figure | None = None,
                marks: list[tuple[float, str]] = ()) -> go.Figure:
    """Three panels (reconstruction, KL, total) with smoothed training curves and test points; marks: (epoch,
    label) of each setting changed mid-run, drawn as a labelled vertical line on every panel.

    Building the panels is slow next to replacing their data, so a live view that redraws often
    passes its last figure as `reuse`, and only the data (and the marks) are replaced.
    """
    s = curve_series(history)
    series = []
    for key, _ in CURVES:
        series += [(thin(s["train_x"]), thin(s[f"train_{key}"])), (s["test_x"], s[f"test_{key}"])]
    fig = reuse if reuse is not None and len(reuse.data) == len(series) else _empty_curves(height)
    with fig.batch_update():
        for trace, (x, y) in zip(fig.data, series):
            trace.x, trace.y = x, y
        fig.layout.shapes = [
            dict(type="line", xref=f"x{col if col > 1 else ''}", yref=f"y{col if col > 1 else ''} domain", x0=x, x1=x,
                 y0=0, y1=1, line=dict(color=CHANGE_COLOUR, width=2, dash="dash"),
                 label=dict(text=text, textposition="end", textangle=0, xanchor="left", yanchor="top",
                            font=dict(size=13, color=CHANGE_COLOUR)))
            for x, text in marks for col in range(1, len(CURVES) + 1)]
    return fig


def _empty_curves(height: int) -> go.Figure:
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title in CURVES], horizontal_spacing=0.07)
    for col in range(1, 4):
        fig.add_trace(go.Scatter(
            mode="lines", name="train (smoothed)", line=dict(color=PALETTE[0], width=3),
            showlegend=col == 1, legendgroup="train",
        ), row=1, col=col)
        fig.add_trace(go.Scatter(
            mode="lines+markers", name="test, per epoch", line=dict(color=PALETTE[3], width=2, dash="dot"),
            marker=dict(size=9), showlegend=col == 1, legendgroup="test",
        ), row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="curves",
        legend=dict(orientation="h", yanchor="bottom", y=-0.38, x=0),
    )
    fig.update_annotations(font=FONT)  # the panel titles
    return readable(fig)


PRIOR_LINE = dict(color="#333333", width=2.5, dash="dash")
HIGHLIGHT = dict(size=24, color="#000000", symbol="star", line=dict(color="#FFFFFF", width=2))


def readable(fig: go.Figure) -> go.Figure:
    """FONT on ticks, axis titles, legend and hover labels: streamlit's chart theme shrinks a figure-wide font
    (and plotly's hover text, 13 px, is hard to read across a classroom)."""
    fig.update_xaxes(tickfont=FONT, title_font=FONT)
    fig.update_yaxes(tickfont=FONT, title_font=FONT)
    return fig.update_layout(font=FONT, legend_font=FONT, hoverlabel_font_size=HOVER_FONT_PX)


def _code_traces(xy: np.ndarray, labels: np.ndarray, class_names: list[str], indices: np.ndarray,
                 color: np.ndarray | None, color_title: str, marker_size: float, opacity: float,
                 trace=go.Scattergl, counts: bool = False) -> list:
    """One WebGL trace per class present (customdata = index of each point), or one trace on a
    continuous colour scale when `color` holds a value per point. trace=go.Scatter draws SVG instead;
    counts=True names each class's trace with its number of points ("3 · 1,010")."""
    if color is not None:
        return [trace(
            x=xy[:, 0], y=xy[:, 1], mode="markers", name=color_title, customdata=indices, showlegend=False,
            marker=dict(size=marker_size, color=color, colorscale=CONTINUOUS_SCALE, opacity=opacity,
                        colorbar=dict(title=dict(text=color_title), thickness=18)),
            hovertemplate=f"#%{{customdata}}<br>{color_title} %{{marker.color:.2f}}<extra></extra>",
        )]
    traces = []
    for label in np.unique(labels):
        mask = labels == label
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        traces.append(trace(
            x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=f"{name} · {mask.sum():,}" if counts else name,
            customdata=indices[mask], marker=dict(size=marker_size, color=class_color(label),
                                                  symbol=class_marker(label), opacity=opacity),
            hovertemplate="#%{customdata}<br>(%{x:.2f}, %{y:.2f})<extra>" + html.escape(name) + "</extra>",
        ))
    return traces


def _prior_traces(centre: tuple[float, float], trace=go.Scattergl) -> list:
    """The prior N(0, I)'s 1- and 2-sigma circles, dashed; WebGL like the points, so they draw on top."""
    traces = []
    for n_sigma in (1, 2):
        cx, cy = prior_contour(n_sigma)
        traces.append(trace(
            x=cx + centre[0], y=cy + centre[1], mode="lines", line=PRIOR_LINE, hoverinfo="skip",
            name="prior N(0, I): 1σ, 2σ" if n_sigma == 1 else f"prior {n_sigma}σ",
            legendgroup="prior", showlegend=n_sigma == 1,
        ))
    return traces


def class_centres(xy: np.ndarray, labels: np.ndarray) -> list[tuple[int, float, float]]:
    """(label, x, y) per class present: the median of its points, which a few stray codes do not pull
    off the cluster as they would a mean."""
    return [(int(label), *(float(v) for v in np.median(xy[labels == label], axis=0))) for label in np.unique(labels)]


NAME_FONT = dict(size=16, weight="bold", color="#31333F")


def _class_name_annotations(xy: np.ndarray, labels: np.ndarray, class_names: list[str]) -> list[dict]:
    """Each class's name at its centre, so the class reads without its colour: dark on a white label outlined in
    the class's colour (the centre is where that colour is densest: a name in the colour itself vanishes)."""
    return [dict(x=x, y=y, text=html.escape(class_names[label] if 0 <= label < len(class_names) else str(label)),
                 showarrow=False, font=NAME_FONT, bgcolor="rgba(255, 255, 255, 0.88)", bordercolor=class_color(label),
                 borderwidth=2, borderpad=2, name=f"class {label}")
            for label, x, y in class_centres(xy, labels)]


def latent_scatter(
    xy: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    *,
    indices: np.ndarray | None = None,
    color: np.ndarray | None = None,
    color_title: str = "",
    highlight: tuple[float, float] | None = None,
    highlight_name: str = "selected",
    prior_centre: tuple[float, float] | None = (0.0, 0.0),
    axis_titles: tuple[str, str] = ("z1", "z2"),
    axis_range: tuple[float, float] | None = None,
    height: int = 640,
    marker_size: float = 6,
    opacity: float = 0.75,
    show_legend: bool = True,
    legend_below: bool = False,
    legend_above: bool = False,
    uirevision: str = "scatter",
    label_map: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    webgl: bool = True,
    names_at_centres: bool = False,
) -> go.Figure:
    """Posterior means in a plane, coloured by class (legend: class names and counts) or by a continuous
    value, with the prior's 1 and 2 sigma circles and an optional big marker at `highlight`.

    xy: (N, 2); labels: (N,) ints; indices: (N,) ids carried as customdata (default 0..N-1), so a
    clicked point tells which item it is. prior_centre None leaves the circles out. legend_below
    (implied by `color`) puts the legend under the plot, where it takes no width from it; legend_above,
    in a row over it, in sight on a 1280 x 800 projector before any scrolling.
    label_map: (xs, ys, labels (len(ys), len(xs))) from latent.knn_label_map, shaded behind the points.
    webgl=False draws SVG: for several scatters on one page (a browser gives few WebGL contexts).
    names_at_centres: each class's name written at the median of its points (class_centres).
    """
    trace = go.Scattergl if webgl else go.Scatter
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    labels = np.asarray(labels).astype(int)
    indices = np.arange(len(xy)) if indices is None else np.asarray(indices)
    fig = go.Figure(_code_traces(xy, labels, class_names, indices, color, color_title, marker_size, opacity, trace,
                                 counts=True))
    if label_map is not None:
        fig.add_trace(label_map_trace(*label_map, class_names))
    if prior_centre is not None:
        fig.add_traces(_prior_traces(prior_centre, trace))
    if highlight is not None:
        fig.add_trace(trace(
            x=[highlight[0]], y=[highlight[1]], mode="markers", name=highlight_name, marker=HIGHLIGHT,
            hovertemplate=f"{highlight_name} (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        ))
    legend = dict(itemsizing="constant", title_text="")
    if legend_above:
        legend.update(orientation="h", yanchor="bottom", y=1.01, x=0)
    elif legend_below or color is not None:  # a colour bar takes the right-hand side
        legend.update(orientation="h", yanchor="top", y=-0.12 if height >= 600 else -0.18, x=0)
    # constrain="domain": equal units on both axes by shrinking the plot area, not by widening a range.
    fig.update_xaxes(title_text=axis_titles[0], zeroline=False, range=axis_range, constrain="domain")
    fig.update_yaxes(title_text=axis_titles[1], zeroline=False, range=axis_range, constrain="domain",
                     scaleanchor="x", scaleratio=1)
    fig.update_layout(
        height=height, margin=dict(l=10, r=10, t=10, b=10), uirevision=uirevision,
        showlegend=show_legend, legend=legend,
        clickmode="event+select", dragmode="pan",
        annotations=_class_name_annotations(xy, labels, class_names) if names_at_centres and len(xy) else [],
    )
    return readable(fig)


# Over white, each class's tint must stay apart from the others as the colours do (tests/test_palette.py);
# at 0.28 the tints of the darker colours ran together.
LABEL_MAP_OPACITY = 0.4


def label_map_trace(xs: np.ndarray, ys: np.ndarray, grid_labels: np.ndarray, class_names: list[str]) -> go.Heatmap:
    """The plane shaded by the majority label of the nearest training codes, in the classes' colours.

    A heatmap is drawn under the WebGL points whatever its place in the trace list."""
    n = max(len(class_names), int(np.max(grid_labels)) + 1)
    scale = []  # a stepwise scale: label i takes [i / n, (i + 1) / n]
    for i in range(n):
        scale += [[i / n, class_color(i)], [(i + 1) / n, class_color(i)]]
    return go.Heatmap(
        x=np.asarray(xs, np.float32), y=np.asarray(ys, np.float32), z=np.asarray(grid_labels, np.int16),
        zmin=-0.5, zmax=n - 0.5, colorscale=scale, showscale=False, opacity=LABEL_MAP_OPACITY,
        name="label map (k nearest training codes)", hoverinfo="skip",
    )


def _point_id(point: dict) -> int | None:
    """A chosen point's customdata id: a scalar, or a list whose first entry is the id; None without one (the
    prior circles) or for one that is not a whole number."""
    data = point.get("customdata")
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
    try:
        return None if data is None else int(data)
    except (TypeError, ValueError):
        return None


def selected_index(selection: dict | None) -> int | None:
    """The customdata id of the first chosen point in st.plotly_chart's selection state, or None. Points arrive
    as dicts (streamlit's snake_case keys); points without an id are skipped."""
    return next(iter(selected_indices(selection)), None)


def selected_indices(selection: dict | None) -> list[int]:
    """The customdata ids of every chosen point (a lasso or box selection), in order, each once."""
    ids = (_point_id(point) for point in (selection or {}).get("points", []) or [])
    return list(dict.fromkeys(i for i in ids if i is not None))


def _png_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def _grid_axis_layout(values: np.ndarray, spacing: str, title: str, max_labels: int) -> dict:
    """Labelled ticks at round values of z (as on the scatter's axes, so the two compare at a glance) and
    small unlabelled ticks at every cell centre. With Gaussian spacing both sit where Phi(z) puts them."""
    centres = grid_plot_coords(values, spacing)
    lo, hi = grid_cell_edges(centres)
    if spacing == "linear":
        labelled = round_ticks(lo, hi, max_labels)
    else:  # the axis is Phi(z): half-integers of z read well, and the outer cells' z bound them
        labelled = round_ticks(float(values[0]), float(values[-1]), max_labels)
    at = grid_plot_coords(labelled, spacing)
    keep = (at >= lo) & (at <= hi)
    return dict(
        title_text=title, tickmode="array", tickvals=at[keep].tolist(),
        ticktext=[format_tick(v) for v in labelled[keep]], range=[lo, hi], showgrid=False, zeroline=False,
        ticks="outside", ticklen=7, minor=dict(tickmode="array", tickvals=centres.tolist(), ticks="outside",
                                                ticklen=3, showgrid=False),
    )


def manifold_axis_title(dim: int, spacing: str) -> str:
    """dim is 0-based; people read z1, z2, ..."""
    if spacing == "gaussian":
        return f"z{dim + 1}  (Gaussian quantiles: equal prior mass per cell)"
    return f"z{dim + 1}"


def manifold_figure(
    tiled: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    spacing: str = "linear",
    dims: tuple[int, int] = (0, 1),
    *,
    overlay: tuple[np.ndarray, np.ndarray, list[str]] | None = None,
    height: int = 780,
    max_labels: int = 11,
) -> go.Figure:
    """The decoded grid as one crisp image on axes in latent coordinates.

    tiled: uint8 (len(ys)*h, len(xs)*w[, 3]) from tile_images(decode_grid(...)), top row = largest y.
    The axes are z for linear spacing and the prior CDF Phi(z) for gaussian spacing (where the
    quantile cells are even), labelled at round values of z, with a small tick at every cell centre. overlay:
    (codes (N, 2) in z, labels, class names), mapped the same way so dots land on their cells.
    """
    w = tiled.shape[1] // len(xs)  # cell width, pixels
    x_lo, x_hi = grid_cell_edges(grid_plot_coords(xs, spacing))
    y_lo, y_hi = grid_cell_edges(grid_plot_coords(ys, spacing))
    dx, dy = (x_hi - x_lo) / tiled.shape[1], (y_hi - y_lo) / tiled.shape[0]
    hover = "z%{meta[0]}=%{x:.2f}, z%{meta[1]}=%{y:.2f}<extra></extra>" if spacing == "linear" else None
    # On an upward y axis plotly puts pixel row r at y0 + r * dy, so the source goes in bottom row first.
    fig = go.Figure(go.Image(
        source=_png_uri(np.ascontiguousarray(tiled[::-1])), x0=x_lo + dx / 2, dx=dx, y0=y_lo + dy / 2, dy=dy,
        name=f"{len(ys)} x {len(xs)} decoded grid ({w} px cells)", meta=[dims[0] + 1, dims[1] + 1],
        hovertemplate=hover, hoverinfo=None if hover else "skip",
    ))
    if overlay is not None:
        codes, labels, class_names = overlay
        xy = np.stack([grid_plot_coords(codes[:, 0], spacing), grid_plot_coords(codes[:, 1], spacing)], axis=1)
        fig.add_traces(_code_traces(xy, np.asarray(labels).astype(int), class_names, np.arange(len(xy)),
                                    None, "", 5, 0.6))
    fig.update_xaxes(**_grid_axis_layout(xs, spacing, manifold_axis_title(dims[0], spacing), max_labels))
    cell_ratio = dx / dy  # keeps every pixel square on screen, so a 20x28 face keeps its shape
    fig.update_yaxes(**_grid_axis_layout(ys, spacing, manifold_axis_title(dims[1], spacing), max_labels),
                     autorange=False, constrain="domain", scaleanchor="x", scaleratio=cell_ratio)
    fig.update_xaxes(constrain="domain")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), uirevision="manifold",
                      legend=dict(itemsizing="constant"), dragmode="pan")
    return readable(fig)


def rate_distortion_points(history: list[dict]) -> dict[str, list[float]]:
    """Per epoch: rate = KL and distortion = reconstruction, in nats (test set when measured, else
    the epoch's training batches), with the epoch numbers."""
    points = {"epoch": [], "kl": [], "recon": []}
    for r in history:
        if r.get("kind") != "epoch":
            continue
        kl, recon = (r.get("test_kl"), r.get("test_recon")) if "test_kl" in r else (r.get("train_kl"), r.get("train_recon"))
        if kl is None or recon is None:
            continue
        points["epoch"].append(r["epoch"])
        points["kl"].append(kl)
        points["recon"].append(recon)
    return points


def rate_distortion_figure(histories: dict[str, list[dict]], height: int = 420) -> go.Figure:
    """KL (rate) against reconstruction (distortion), one point per epoch and one line per model,
    the first and last epochs labelled. Lines of equal -ELBO = recon + KL run at -45 degrees."""
    fig = go.Figure()
    for i, (name, history) in enumerate(histories.items()):
        p = rate_distortion_points(history)
        if not p["epoch"]:
            continue
        labels = [""] * len(p["epoch"])
        labels[0], labels[-1] = f"ep {p['epoch'][0]:g}", f"ep {p['epoch'][-1]:g}"
        fig.add_trace(go.Scatter(
            x=p["kl"], y=p["recon"], mode="lines+markers+text", name=name, text=labels,
            textposition="top right", textfont=dict(size=13, color=PALETTE[i % len(PALETTE)]),
            line=dict(color=PALETTE[i % len(PALETTE)], width=2), marker=dict(size=8),
            customdata=np.stack([p["epoch"], np.add(p["recon"], p["kl"])], axis=1),
            hovertemplate="epoch %{customdata[0]:g}<br>KL %{x:.2f} nats<br>reconstruction %{y:.2f} nats"
                          "<br>−ELBO %{customdata[1]:.2f} nats<extra>%{fullData.name}</extra>",
        ))
    recon = [y for trace in fig.data for y in trace.y if y > 0]
    log_y = bool(recon) and max(recon) > 4 * min(recon)  # e.g. a KL-only model beside trained ones
    fig.update_xaxes(title_text="rate: KL divergence (nats)", rangemode="tozero")
    fig.update_yaxes(title_text="distortion: reconstruction (nats" + (", log scale)" if log_y else ")"),
                     type="log" if log_y else "linear")
    if log_y:  # plotly labels a log axis 2, 3, ... 9 between decades; these read as the numbers they are
        ticks = [m * 10**e for e in range(-1, 6) for m in (1, 2, 5)]
        fig.update_yaxes(tickmode="array", tickvals=[t for t in ticks if min(recon) / 2 <= t <= max(recon) * 2])
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), uirevision="rate-distortion",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return readable(fig)


def kl_per_dim_figure(kl: np.ndarray, active: np.ndarray, height: int = 320) -> go.Figure:
    """One bar per latent dimension: its mean KL in nats, blue when active, grey when collapsed."""
    kl, active = np.asarray(kl, np.float64), np.asarray(active, bool)
    names = [f"z{d + 1}" for d in range(len(kl))]
    fig = go.Figure(go.Bar(
        x=names, y=kl, marker_color=[PALETTE[0] if a else "#B0B0B0" for a in active],
        customdata=np.where(active, "active", "inactive (collapsed to the prior)"),
        hovertemplate="%{x}: KL %{y:.3f} nats, %{customdata}<extra></extra>",
    ))
    fig.update_xaxes(title_text="latent dimension", type="category")
    fig.update_yaxes(title_text="mean KL (nats)", rangemode="tozero")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False, bargap=0.2)
    return readable(fig)


def traversal_figure(tiled: np.ndarray, rows: int, values: np.ndarray, row_labels: list[str],
                     height: int | None = None, x_title: str = "value of the swept dimension") -> go.Figure:
    """A traversal grid as one crisp image: tiled uint8 (rows * h, S * w[, 3]) from tile_images, one row per
    latent dimension (row_labels, top first), one column per swept value (values (S,), the x ticks)."""
    h, w = tiled.shape[0] // rows, tiled.shape[1] // len(values)
    fig = go.Figure(go.Image(source=_png_uri(tiled), hoverinfo="skip"))
    fig.update_xaxes(tickmode="array", tickvals=[(s + 0.5) * w - 0.5 for s in range(len(values))],
                     ticktext=[format_tick(float(v)) for v in values], title_text=x_title,
                     showgrid=False, zeroline=False)
    fig.update_yaxes(tickmode="array", tickvals=[(r + 0.5) * h - 0.5 for r in range(rows)], ticktext=row_labels,
                     showgrid=False, zeroline=False)
    # As tall as the picture is at about 640 px wide, so no band of empty plot is left above and below it.
    fig.update_layout(height=height or int(min(1400, 70 + 640 * tiled.shape[0] / tiled.shape[1])),
                      margin=dict(l=10, r=10, t=10, b=10), dragmode=False)
    return readable(fig)


def cosine_figure(names: list[str], cosines: np.ndarray, height: int | None = None) -> go.Figure:
    """The cosine between each pair of directions (cosines (K, K) in [-1, 1]), written in the cells; red for
    directions that agree, blue for opposite ones, white for orthogonal ones."""
    k = len(names)
    fig = go.Figure(go.Heatmap(
        z=cosines, x=names, y=names, zmin=-1.0, zmax=1.0, colorscale="RdBu_r", text=np.round(cosines, 2),
        texttemplate="%{text:.2f}", colorbar=dict(title=dict(text="cos"), thickness=18),
        hovertemplate="cos(%{y}, %{x}) = %{z:.3f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    fig.update_layout(height=height or 120 + 48 * k, margin=dict(l=10, r=10, t=10, b=10))
    return readable(fig)


def mig_figure(mi: np.ndarray, factors: list[str], gaps: np.ndarray, height: int | None = None) -> go.Figure:
    """Normalised mutual information, factor x latent dimension (mi (K, D) in [0, 1]), each factor's row
    labelled with its gap (Chen et al. 2018's MIG term), the values written in the cells."""
    k, d = mi.shape
    fig = go.Figure(go.Heatmap(
        z=mi, x=[f"z{i + 1}" for i in range(d)], y=[f"{name} · gap {gap:.2f}" for name, gap in zip(factors, gaps)],
        zmin=0.0, zmax=1.0, colorscale=CONTINUOUS_SCALE, text=np.round(mi, 2), texttemplate="%{text:.2f}",
        colorbar=dict(title=dict(text="I(z; v) / H(v)"), thickness=18),
        hovertemplate="%{y}, %{x}: %{z:.3f} of the factor's entropy<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", title_text="latent dimension")
    fig.update_layout(height=height or 80 + 44 * k, margin=dict(l=10, r=10, t=10, b=10))
    return readable(fig)
