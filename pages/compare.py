"""Compare: two or three models side by side (loaded checkpoints or live jobs), their scatters and
manifolds on the same axes, and one click that trains three models together on the same data and seed:
the lecture's variants (reconstruction only, KL only, the full ELBO) or a β sweep (β = 1, 4, 8 in 10-D
codes, with each model's MIG)."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import math
from pathlib import Path

import numpy as np
import streamlit as st

from pages.ui.class_legend import class_legend
from pages.ui.current_model import ModelRef, ModelUnavailable, open_model
from pages.ui.encodings import encoded_test_set, test_set_size
from pages.ui.explore import EXPLORE_POLL_SECONDS
from pages.ui.places import checkpoint_dir, data_dir, registry
from pages.ui.explain import math_expander, numbers_rows, usage_note
from pages.ui.forms import build_configs, settings_inputs
from pages.ui.job_access import session_id, stop_button
from pages.ui.job_controls import job_controls
from vae import checkpoint as ckpt_io
from vae.config import ConfigError
from vae.data import dataset_available
from vae.render.figures import latent_scatter, manifold_figure, rate_distortion_figure
from vae.training.registry import JobLimitReached
from vae.training.jobs import VariantsJob
from vae.training.view import ModelView
from vae.analysis.encoding import decode_codes, decode_grid, reconstruct
from vae.render.axes import grid_cell_edges
from vae.analysis.usage import latent_usage
from vae.analysis.geometry import plane_of, robust_extent, share_outside
from vae.render.images import tile_images, tile_rows, to_pictures, upscale_factor, upscale_nearest
from vae.analysis.disentangle import mutual_info_gap
from vae.analysis.teaching import (BETA_SWEEP, BETA_SWEEP_LATENT, BETA_SWEEP_NAME, LECTURE_NAME, LECTURE_VARIANTS,
    beta_sweep_variants, lecture_variants, loss_numbers, variant_of)

MAX_MODELS = 3
CODES = 2000  # test codes per model: enough to see the shape of the space, light to send three times
AXES = {"fit": "Fit every model's codes (98%)", "prior": "The prior's region, [-3, 3]"}  # the first is the default
PRIOR_HALF = 3.0
PLOT_HEIGHT = {1: 460, 2: 400, 3: 260}  # px, by the number of models: near a column's width, so a square plot fills it
RECON_IMAGES = 6  # test images every model reconstructs, the same ones in each column
RECON_PX = 480  # the strip is enlarged (nearest neighbour) to about this width, then fits its column

st.title("Compare")
st.caption("Models side by side, on the same axes. The lecture's three: train on reconstruction alone and the codes "
           "go anywhere; on the KL alone they all fall onto the prior; on the ELBO, both at once, they land in between.")


# --- which models ---------------------------------------------------------------------------------

def model_options() -> dict[str, str]:
    """{option key: label}: this tab's own model, every job of this server (members of a group of
    variants one by one), then the checkpoints on disk that no listed job writes."""
    options, written = {}, set()
    source = st.session_state.get("model_source")
    source = ModelRef(*source) if source else None
    if source and source.kind == "upload" and st.session_state.get("uploaded_checkpoint") is not None:
        options[source.key] = "the uploaded model"
    elif source and source.kind == "path":
        options[source.key] = f"{Path(source.ref).stem} (this tab's model)"
    for job in registry().jobs():
        for member in getattr(job, "members", [job]):
            state = member.state()
            written.add(state.checkpoint_path)
            status = "training live" if state.active else state.status
            options[ModelRef("job", member.job_id).key] = f"{member.name} ({status})"
    for info in ckpt_io.list_checkpoints(checkpoint_dir()):
        key = ModelRef("path", info.path).key
        if not info.error and info.path not in written and key not in options:
            options[key] = f"{info.name} · {info.dataset} · z={info.latent_dim} · {info.epochs} ep"
    return options


def resolve(option: str) -> tuple[ModelView | None, str]:
    """The model an option stands for, or None and why (a job still loading, an unreadable file)."""
    try:
        return open_model(ModelRef.parse(option)), ""
    except ModelUnavailable as e:
        return None, str(e)
    except ckpt_io.CheckpointError as e:
        return None, f"The checkpoint could not be opened: {e}"


def pick_models() -> list[str]:
    options = model_options()
    chosen = [o for o in st.session_state.get("cmp_models", []) if o in options]
    if "cmp_models" not in st.session_state:  # first visit: start from this tab's model
        source = st.session_state.get("model_source")
        first = ModelRef(*source).key if source else None
        chosen = [first] if first in options else []
    st.session_state["cmp_models"] = chosen[:MAX_MODELS]  # jobs the server forgot drop out of the choice
    return st.multiselect("Models", list(options), format_func=options.get, max_selections=MAX_MODELS,
                          key="cmp_models", placeholder="Pick two or three models, or train the lecture's three below")


# --- the preset -----------------------------------------------------------------------------------

PRESETS = {  # what a preset trains together: its title, what the form says, the codes' size
    "lecture": ("The lecture's three variants",
                "**The lecture's three variants**, trained together, one epoch of each in turn: "
                + "; ".join(v.title for v in LECTURE_VARIANTS) + ". Same data, same seed, 2-D codes.", 2),
    "sweep": (f"β sweep (β = {', '.join(f'{b:g}' for b in BETA_SWEEP)})",
              f"**A β sweep** (Higgins et al. 2017), trained together: the full ELBO at β = "
              f"{', '.join(f'{b:g}' for b in BETA_SWEEP)}, same data, same seed, {BETA_SWEEP_LATENT}-D codes. A larger "
              "β pays reconstruction for dimensions that follow the data's factors one by one: on shapes, the table "
              "below gives each model's MIG beside its −ELBO.", BETA_SWEEP_LATENT),
}


def preset() -> None:
    """One click: the lecture's three variants, or the β sweep, as one job on the same data and seed, each model
    to its own checkpoint."""
    kind = st.radio("Train together", list(PRESETS), format_func=lambda k: PRESETS[k][0], horizontal=True,
                    key="cmp_preset_kind")
    with st.form("cmp_preset", border=True):
        st.markdown(PRESETS[kind][1])
        values = settings_inputs(["dataset", "epochs", "seed", "train_limit"], st.columns(4), prefix="cmp_")
        pressed = st.form_submit_button("Train all three", type="primary", key="cmp_start", icon=":material/play_arrow:")
    if pressed:
        start_preset(values, kind)


def start_preset(values: dict, kind: str = "lecture") -> None:
    folder = st.session_state.get("own_folder") if values["dataset"] == "folder" else str(data_dir())
    if folder is None:
        st.error("Choose the folder of your images on the Train page (\"Your own images\"), then come back.")
        return
    if not dataset_available(values["dataset"], folder):
        st.error(f"{values['dataset']} is not in {data_dir()}; train once on the Train page to download it, or pick shapes.")
        return
    own = {k: st.session_state[f"f_{k}"] for k in ("image_size", "channels") if f"f_{k}" in st.session_state}
    configs = build_configs({**values, **own, "latent_dim": PRESETS[kind][2]}, data_dir=folder)
    if configs is None:
        return
    variants = lecture_variants(configs[1]) if kind == "lecture" else beta_sweep_variants(configs[1])
    name = LECTURE_NAME if kind == "lecture" else BETA_SWEEP_NAME
    try:
        job = registry().start_variants(configs[0], variants, name=f"{name}-{values['dataset']}", owner=session_id())
    except (JobLimitReached, ckpt_io.CheckpointError, ConfigError) as e:
        st.error(str(e))
        return
    st.session_state["cmp_group"] = job.job_id
    st.session_state["cmp_models"] = [ModelRef("job", m.job_id).key for m in job.members]
    st.rerun()


def group_status(group: VariantsJob) -> None:
    state = group.state()
    head, stop = st.columns([5, 1])
    head.progress(state.fraction, text=f"{state.name}: {state.status} · epoch {min(int(state.epoch) + 1, state.epochs)}"
                  f"/{state.epochs} of each · step {state.step}/{state.total_steps}"
                  + (" · paused" if state.paused else "") if state.active else f"{state.name}: {state.message}")
    if state.active:
        stop_button(group, stop, key="cmp_stop")  # or, for a tab that did not start it, who may stop it
        job_controls(group, key="cmp")  # all the models at once: they share one Control


# --- side by side ---------------------------------------------------------------------------------

def model_header(view: ModelView) -> None:
    badge = ":green-badge[● training live]" if view.live else ":gray-badge[checkpoint]"
    st.markdown(f"**{view.name}** {badge}")
    cfg, variant = view.train_config, variant_of(view.train_config)
    weights = f"β {cfg.beta:g}, recon weight {cfg.recon_weight:g} · " if cfg else ""
    elbo = view.test_metrics.get("elbo", math.nan)
    st.caption(f"{weights}{view.dataset} · z = {view.model_config.latent_dim} · {view.epochs} epochs"
               + ("" if math.isnan(elbo) else f" · test −ELBO {elbo:.1f}")
               + (f"  \n*{variant.expect}*" if variant else ""))


def row(resolved: list, draw) -> None:
    """One row of the side-by-side: draw(index, view) in each model's column (rows keep plots aligned)."""
    for i, (column, (view, _)) in enumerate(zip(st.columns(len(resolved), gap="medium"), resolved)):
        if view is not None:
            with column:
                draw(i, view)


def draw_columns(chosen: list[str], axes: str, n: int, was_live: bool) -> None:
    resolved = [resolve(option) for option in chosen]
    views = [v for v, _ in resolved if v is not None]
    encoded = {v.key: encoded_test_set(v, min(CODES, test_set_size(v) or CODES)) for v in views}
    points = {key: plane_of(e.mu) for key, e in encoded.items() if e is not None}
    if axes == "prior" or not points:
        lo, hi = -PRIOR_HALF, PRIOR_HALF
    else:
        lo, hi = robust_extent(*points.values())
    xs = ys = np.linspace(lo, hi, n, dtype=np.float32)  # the manifold's cell centres
    edges = grid_cell_edges(xs)  # both plots of every model show exactly this range

    for column, (view, why) in zip(st.columns(len(chosen), gap="medium"), resolved):
        with column:
            if view is None:
                st.info(why)
            else:
                model_header(view)
    codes = [e for e in encoded.values() if e is not None]
    one_key = len({tuple(e.class_names) for e in codes}) == 1  # the same classes: say once which colour is which
    if one_key:
        st.markdown(class_legend(np.concatenate([e.labels for e in codes]), codes[0].class_names)
                    + " &nbsp; ╌ the prior N(0, I), 1σ and 2σ", unsafe_allow_html=True)
    height = PLOT_HEIGHT[min(len(chosen), MAX_MODELS)]
    titled = len(chosen) < MAX_MODELS  # three narrow columns: the axes' names go to the caption, their room to the plot

    def fitted(fig):
        return fig if titled else fig.update_xaxes(title_text=None).update_yaxes(title_text=None)

    def scatter(i: int, view: ModelView) -> None:
        enc = encoded.get(view.key)
        if enc is None:
            return
        st.plotly_chart(fitted(latent_scatter(
            points[view.key], enc.labels, enc.class_names, axis_range=edges, height=height, marker_size=4,
            opacity=0.6, show_legend=not one_key, legend_below=True, uirevision=f"cmp-scatter-{i}", webgl=False,
        )), key=f"cmp_scatter_{i}", config={"displayModeBar": False})
        outside = share_outside(points[view.key], edges)
        if outside >= 0.01:
            st.caption(f"{outside:.0%} of these codes lie outside the range shown.")

    def manifold(i: int, view: ModelView) -> None:
        if view.model_config.latent_dim >= 2:
            tiled = tile_images(decode_grid(view.model, xs, ys))  # (n*H, n*W[, 3]) uint8, one forward pass
            st.plotly_chart(fitted(manifold_figure(tiled, xs, ys, height=height, max_labels=5)),
                            key=f"cmp_manifold_{i}", config={"displayModeBar": False})

    def reconstructions(i: int, view: ModelView) -> None:
        enc = encoded.get(view.key)
        if enc is None or not len(enc.mu):
            return
        k = min(RECON_IMAGES, len(enc.mu))
        if enc.stored:  # no images here: the decoded stored codes of the same test images
            rows, said = [decode_codes(view.model, enc.mu[:k])], "decoded from the codes stored with the model"
        else:
            rows = [to_pictures(enc.images[:k]), reconstruct(view.model, enc.images[:k])]
            said = "top: the images, bottom: decode(mu(x))"
        strip = tile_rows(rows, gap=1)
        st.image(upscale_nearest(strip, upscale_factor(strip.shape[1], RECON_PX)), width="stretch",
                 output_format="PNG", caption=f"{view.name}: test images #0-#{k - 1}, {said}")

    def usage(i: int, view: ModelView) -> None:
        enc = encoded.get(view.key)
        if enc is None:
            return
        usage_note(latent_usage(enc.mu, enc.logvar, epochs=view.epochs))

    for draw in (scatter, manifold, reconstructions, usage):
        row(resolved, draw)
    st.caption(f"Every scatter and manifold spans z1 (across) and z2 (up) in [{edges[0]:.1f}, {edges[1]:.1f}]; dashed "
               f"circles: the prior N(0, I) at 1σ and 2σ. Scatters: posterior means of up to {CODES:,} test images."
               + (" Models with more than two latent dimensions show z1, z2, the others held at 0."
                  if any(v.model_config.latent_dim > 2 for v in views) else ""))
    if views:
        st.subheader("Rate and distortion")
        st.plotly_chart(rate_distortion_figure({v.name: v.history for v in views}), key="cmp_rd",
                        config={"displayModeBar": False})
        st.caption("One point per epoch: KL (rate, what the code costs) against reconstruction (distortion). Down is "
                   "better reconstruction, left is a code closer to the prior; -ELBO = recon + KL.")
        lines = numbers_rows({v.name: loss_numbers(v.history, v.test_metrics, v.train_config) for v in views})
        for line, view in zip(lines, views):
            enc = encoded.get(view.key)
            if enc is not None and enc.factors and view.model_config.latent_dim > 1:
                line["MIG"] = round(mutual_info_gap(enc.mu, enc.factors).mig, 3)
        st.dataframe(lines, hide_index=True, key="cmp_numbers")
        if any("MIG" in line for line in lines):
            st.caption(f"MIG (Chen et al. 2018) over the same up to {CODES:,} test codes: how much each known factor "
                       "lives in one dimension of its own, 0 to 1; the Traversals page shows it per factor.")
        math_expander(views[-1].history, views[-1].test_metrics, views[-1].train_config,
                      views[-1].model_config.latent_dim)
    if was_live and not any(v.live for v in views) and not any(v is None and "starting" in why for v, why in resolved):
        st.rerun()  # every followed job has ended: one full rerun draws the page without polling


def body(chosen: list[str], axes: str, n: int, was_live: bool) -> None:
    group = registry().get(st.session_state.get("cmp_group"))
    if not isinstance(group, VariantsJob):  # one started from another tab
        group = next((j for j in registry().running() if isinstance(j, VariantsJob)), None)
    if group is not None:
        group_status(group)
    draw_columns(chosen, axes, n, was_live)


preset()
chosen = pick_models()
if not chosen:
    st.info("Pick two or three models above, or press **Train all three** to watch the lecture's variants form.")
    st.stop()
c1, c2 = st.columns([2, 1])
axes = c1.radio("Axes", list(AXES), format_func=AXES.get, horizontal=True, key="cmp_axes",
                help="Fit: one square that holds at least 98% of every model's codes, so an autoencoder's far-flung "
                     "codes show beside a VAE's. The prior's region: where a VAE's codes should be.")
n = c2.slider("Manifold grid n", 6, 20, 12, key="cmp_n", help="n x n decoded images per model, one forward pass each.")
jobs = [registry().get(ref.ref) for ref in map(ModelRef.parse, chosen) if ref.kind == "job"]
live = any(job is not None and job.state().active for job in jobs)
st.fragment(body, run_every=EXPLORE_POLL_SECONDS if live else None)(chosen, axes, n, live)
