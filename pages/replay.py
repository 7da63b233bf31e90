"""Training replay: scrub through the epochs and watch the latent space organise itself (the decoded
manifold and the test codes of each epoch), download it as a GIF; then the model's rate and
distortion per epoch, which dimensions it uses, and the math with its own numbers."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import streamlit as st

from pages.ui.encodings import encoded_test_set
from pages.ui.explore import EXPLORE_CODES, explore_page, live_fragment
from pages.ui.explain import math_expander, usage_note
from vae.render.figures import kl_per_dim_figure, latent_scatter, manifold_figure, rate_distortion_figure
from vae.analysis.usage import latent_usage
from vae.render.images import upscale_factor, upscale_nearest
from vae.training.replay import replay_gif
from vae.checkpoint.replay import frame_plane, replay_extent, replay_from_extras

ROW_PX = 700  # a 1-D model's manifold, one row of tiles, is enlarged to about this width


def pick_frame(epochs: list[int], live: bool) -> int:
    """The scrubber; while the model trains it follows the newest epoch unless told to hold."""
    follow = live and st.toggle("Follow the newest epoch", value=True, key="rp_follow")
    if follow or st.session_state.get("rp_epoch") not in epochs:
        st.session_state["rp_epoch"] = epochs[-1]  # also when thinning dropped the epoch that was shown
    epoch = st.select_slider("Epoch", options=epochs, key="rp_epoch", disabled=follow,
                             help="Epoch 0 is the untrained model. Long runs keep an even selection of epochs.")
    return epochs.index(epoch)


def replay_section(view, was_live: bool) -> None:
    replay = replay_from_extras(view.extras)
    if replay is None:
        st.info("This model has no replay: it was trained with `--no-replay` or saved before replays were recorded. "
                "Train one on the Train page or with `python -m vae train`, and its epochs are kept.")
        return
    frame = pick_frame([int(e) for e in replay.epochs], view.live)
    extent = replay_extent(replay)
    recon, kl = replay.metrics[frame]
    left, right = st.columns(2, gap="large")
    with left:
        manifold = replay.manifolds[frame]
        if view.model_config.latent_dim >= 2:
            st.plotly_chart(manifold_figure(manifold, replay.grid, replay.grid, height=480, max_labels=8),
                            key="rp_manifold", config={"displayModeBar": False})
        else:
            st.image(upscale_nearest(manifold, upscale_factor(manifold.shape[1], ROW_PX)), output_format="PNG")
        st.caption(f"What the decoder drew at epoch {replay.epochs[frame]} over z1, z2 in "
                   f"[{replay.grid[0]:g}, {replay.grid[-1]:g}].")
    with right:
        st.plotly_chart(latent_scatter(
            frame_plane(replay, frame), replay.labels, view.class_names, axis_range=extent, height=480,
            marker_size=5, opacity=0.7, legend_below=True, uirevision="replay",
            axis_titles=("z1", "z2" if view.model_config.latent_dim > 1 else ""),
        ), key="rp_scatter", config={"displayModeBar": False})
        terms = "before training" if replay.epochs[frame] == 0 else f"test reconstruction {recon:.1f}, KL {kl:.2f} nats"
        st.caption(f"The same {len(replay.labels):,} test images at every epoch ({terms}); one range for all epochs.")
    st.download_button(
        f"Download GIF ({len(replay)} epochs)", lambda: replay_gif(replay, view.class_names, title=view.name),
        file_name=f"replay-{view.name}.gif", mime="image/gif", key="rp_gif", on_click="ignore",
        icon=":material/download:",
    )


def usage_section(view) -> None:
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if encoded is None:
        return
    usage = latent_usage(encoded.mu, encoded.logvar)
    usage_note(usage, quiet=st.markdown)
    if view.model_config.latent_dim > 2:
        st.plotly_chart(kl_per_dim_figure(usage.kl, usage.active), key="rp_kl_dims", config={"displayModeBar": False})
    st.caption(f"Over {len(encoded.mu):,} test images. A dimension is active when its posterior mean varies over the "
               "data (variance above 0.01, Burda et al. 2015); an inactive one is the prior whatever the image.")


def draw(view) -> None:
    replay_section(view, view.live)
    st.subheader("Rate and distortion")
    st.plotly_chart(rate_distortion_figure({view.name: view.history}), key="rp_rd", config={"displayModeBar": False})
    st.caption("One point per epoch: the KL (rate) against the reconstruction (distortion), on the test set. Early on "
               "the KL often rises while the total still falls: the encoder starts to spend nats on the code because "
               "each one buys more than a nat of reconstruction.")
    st.subheader("Which latent dimensions carry information")
    usage_section(view)
    math_expander(view.history, view.test_metrics, view.train_config, view.model_config.latent_dim)


view = explore_page("Training replay", "How the latent space organised itself, epoch by epoch: the decoder's "
                    "manifold and where the test images landed, then what the loss terms did.")
live_fragment(draw, view)
