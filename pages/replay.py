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
from vae.checkpoint.format import changes_of, describe_change
from vae.checkpoint.replay import frame_plane, replay_extent, replay_from_extras

ROW_PX = 700  # a 1-D model's manifold, one row of tiles, is enlarged to about this width
FRAME_SECONDS = 0.8  # Play shows each epoch this long (the GIF: GIF_FRAME_MS)


def change_marks(history: list[dict], epochs: list[int]) -> dict[int, list[str]]:
    """The settings changed mid-run, by the first replay epoch that shows the model after each change."""
    marks: dict[int, list[str]] = {}
    for record in changes_of(history):
        after = next((e for e in epochs if e > record["epoch"]), None)  # a frame after a batch of the new value
        if after is not None:
            marks.setdefault(after, []).append(describe_change(record))
    return marks


def pick_frame(epochs: list[int], live: bool, marks: dict[int, list[str]]) -> int:
    """The scrubber and its Play button; while the model trains the scrubber follows the newest epoch unless
    told to hold. Playing, each run of the frames' fragment (one every FRAME_SECONDS) shows the next epoch.
    marks: epochs that come after a setting was changed, marked ◆ on the scrubber and named under it."""
    follow = live and st.toggle("Follow the newest epoch", value=True, key="rp_follow")
    playing = st.session_state.get("rp_playing", False) and not follow
    pressed = st.session_state.get("rp_play", False)  # Play or Pause: this run answers the button, it is no tick
    if follow or st.session_state.get("rp_epoch") not in epochs:
        st.session_state["rp_epoch"] = epochs[-1]  # also when thinning dropped the epoch that was shown
    elif playing and not pressed and not st.session_state.pop("rp_play_started", False):
        following = epochs.index(st.session_state["rp_epoch"]) + 1
        st.session_state["rp_epoch"] = epochs[min(following, len(epochs) - 1)]
        if following >= len(epochs) - 1:  # the last epoch: stop, and one full rerun ends the fragment's timer
            st.session_state["rp_playing"] = False
            st.rerun()
    play, scrub = st.columns([1, 5], vertical_alignment="bottom")
    if play.button("Pause" if playing else "Play", key="rp_play", width="stretch", disabled=follow or len(epochs) < 2,
                   icon=":material/pause:" if playing else ":material/play_arrow:",
                   help=f"Shows the epochs one after another, {FRAME_SECONDS:g} s each."):
        if not playing and st.session_state["rp_epoch"] == epochs[-1]:
            st.session_state["rp_epoch"] = epochs[0]  # from the start again
        st.session_state.update(rp_playing=not playing, rp_play_started=not playing)
        st.rerun()  # the whole page, so the frames' fragment starts (or stops) its timer
    epoch = scrub.select_slider("Epoch", options=epochs, key="rp_epoch", disabled=follow or playing,
                                format_func=lambda e: f"{e} ◆" if e in marks else str(e),
                                help="Epoch 0 is the untrained model. Long runs keep an even selection of epochs.")
    if marks:
        st.caption("◆ changed while it trained: " + "; ".join(
            f"{text} (shown from epoch {e})" for e, texts in sorted(marks.items()) for text in texts) + ".")
    return epochs.index(epoch)


def replay_section(view, was_live: bool) -> None:
    replay = replay_from_extras(view.extras)
    if replay is None:
        st.info("This model has no replay: it was trained with `--no-replay` or saved before replays were recorded. "
                "Train one on the Train page or with `python -m vae train`, and its epochs are kept.")
        return
    playing = st.session_state.get("rp_playing", False)
    st.fragment(draw_frame, run_every=FRAME_SECONDS if playing else None)(view, replay)
    st.download_button(
        f"Download GIF ({len(replay)} epochs)", lambda: replay_gif(replay, view.class_names, title=view.name),
        file_name=f"replay-{view.name}.gif", mime="image/gif", key="rp_gif", on_click="ignore",
        icon=":material/download:",
    )


def draw_frame(view, replay) -> None:
    """The scrubber, then the chosen epoch's manifold and test codes; a fragment of its own, so playing
    redraws only this."""
    epochs = [int(e) for e in replay.epochs]
    frame = pick_frame(epochs, view.live, change_marks(view.history, epochs))
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


def usage_section(view) -> None:
    encoded = encoded_test_set(view, EXPLORE_CODES)
    if encoded is None:
        return
    usage = latent_usage(encoded.mu, encoded.logvar, epochs=view.epochs)
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
