"""Home: the current model at a glance (its decoded manifold), three ways to get a model (train, load from
checkpoints/, upload), and the data folder."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import math

import streamlit as st

from pages.ui.common import MAX_UPLOAD_MB, ModelRef, checkpoint_dir, current_view, data_dir, use_source
from vae import checkpoint as ckpt_io
from vae.data import DATASET_NAMES, DataFolderRefused, check_data_dir, dataset_available
from vae.latent import manifold_picture, upscale_factor, upscale_nearest

PREVIEW_CELLS, PREVIEW_RADIUS, PREVIEW_PX = 12, 2.5, 360  # the current model's manifold: cells a side, |z|, px
EXPLORE_LINKS = [("pages/sliders.py", "Drag through its latent space", ":material/tune:"),
                 ("pages/scatter.py", "See where each class lands", ":material/scatter_plot:"),
                 ("pages/manifold.py", "The whole manifold", ":material/grid_on:")]

st.title("Latent Explorer")
st.markdown(
    "See inside a **Variational AutoEncoder** (Kingma & Welling, 2013): train one live, then drag through its "
    "latent space, look at the decoded manifold and at where each class lands."
)


def current_model() -> None:
    """The tab's model at a glance, first on the page: its decoded manifold and the way to explore it."""
    view = current_view()
    if view is None:
        st.info("No model is loaded yet: train one, or load one below.")
        return
    picture_col, text_col = st.columns([1, 2], gap="large", vertical_alignment="center")
    picture = manifold_picture(view.model, PREVIEW_CELLS, PREVIEW_RADIUS)
    d = view.model_config.latent_dim
    axes = "z1" if d == 1 else "z1, z2" + (" (the others at 0)" if d > 2 else "")
    picture_col.image(upscale_nearest(picture, upscale_factor(max(picture.shape[:2]), PREVIEW_PX)), width="content",
                      output_format="PNG", caption=f"What it decodes over {axes} in [−{PREVIEW_RADIUS:g}, "
                                                   f"{PREVIEW_RADIUS:g}]")
    with text_col:
        live = " (training live)" if view.live else ""
        st.markdown(f"**Current model:** {view.name}{live} · {view.dataset} · latent dim "
                    f"{view.model_config.latent_dim}. Explore it:")
        for path, label, icon in EXPLORE_LINKS:
            st.page_link(path, label=label, icon=icon)
        if view.notes:
            st.caption(view.notes)


if "model_error" in st.session_state:
    st.error(st.session_state.pop("model_error"))
if "model_notice" in st.session_state:
    st.success(st.session_state.pop("model_notice"))
current_model()

train_col, load_col, upload_col = st.columns(3, gap="large")

with train_col, st.container(border=True):
    st.subheader("① Train a new model")
    st.markdown("Pick a dataset and settings, press Start, and watch the loss curves move while it trains.")
    st.page_link("pages/train.py", label="Go to the Train page", icon=":material/model_training:")


def _label(info: ckpt_io.CheckpointInfo) -> str:
    if info.error:
        return f"{info.name} (unreadable)"
    elbo = "—" if math.isnan(info.test_elbo) else f"{info.test_elbo:.1f}"
    return f"{info.name} · {info.dataset} · z={info.latent_dim} · {info.epochs} ep · −ELBO {elbo}"


infos = ckpt_io.list_checkpoints(checkpoint_dir())
readable = [i for i in infos if not i.error]

with load_col, st.container(border=True):
    st.subheader("② Load a checkpoint")
    if not readable:
        st.info(f"No checkpoints in {checkpoint_dir()} yet; train one first.")
    else:
        choice = st.selectbox("Checkpoint", readable, format_func=_label, key="ckpt_choice",
                              help="Every saved model is listed, with its date, under these three cards.")
        if st.button("Load", key="load_ckpt", type="primary"):
            use_source(ModelRef("path", choice.path))
            st.session_state["model_notice"] = f"Loaded {choice.name}."
            st.rerun()
    broken = [i for i in infos if i.error]
    if broken:
        st.caption(f"{len(broken)} unreadable file(s) skipped: " + "; ".join(f"{i.name}: {i.error}" for i in broken[:3]))

with upload_col, st.container(border=True):
    st.subheader("③ Upload a checkpoint")
    uploaded = st.file_uploader(f"A .pt file saved by Latent Explorer (≤ {MAX_UPLOAD_MB} MB)", type=["pt"],
                                key="upload", max_upload_size=MAX_UPLOAD_MB)
    if uploaded is not None and st.session_state.get("upload_seen") != uploaded.file_id:
        st.session_state["upload_seen"] = uploaded.file_id
        st.session_state.pop("upload_error", None)
        if uploaded.size > MAX_UPLOAD_MB * 10**6:  # MB as the browser counts them, as config.toml gives it
            st.session_state["upload_error"] = f"{uploaded.name} is over {MAX_UPLOAD_MB} MB; upload a smaller checkpoint."
        else:
            try:
                # Only the safe loader ever sees the bytes: weights_only=True, then key-by-key checks.
                ckpt = ckpt_io.load(uploaded.getvalue(), label=uploaded.name)
                ckpt.path = ""
                st.session_state["uploaded_checkpoint"] = ckpt
                use_source(ModelRef("upload", uploaded.file_id))
                st.session_state["model_notice"] = f"Loaded the uploaded model {uploaded.name}."
                st.rerun()
            except ckpt_io.CheckpointError as e:
                st.session_state["upload_error"] = str(e)
    if st.session_state.get("upload_error"):
        st.error(st.session_state["upload_error"], icon=":material/block:")
        st.caption("The current model is unchanged.")

if readable:  # full width, so every column reads on a projector (in the card it was cut off)
    st.markdown(f"**Saved checkpoints** ({len(readable)}): pick one in card ② to load it.",
                help=f"The folder: {checkpoint_dir()} (set by $VAE_CHECKPOINT_DIR).")
    st.dataframe(
        [{"checkpoint": i.name, "dataset": i.dataset, "latent dim": i.latent_dim, "epochs": i.epochs,
          "test −ELBO (nats)": None if math.isnan(i.test_elbo) else round(i.test_elbo, 1),
          "saved (UTC)": i.created[:16].replace("T", " ")} for i in readable],
        hide_index=True, key="ckpt_table", width="stretch", height=min(35 * (len(readable) + 1) + 3, 250),
    )

with st.expander("Data folder"):
    folder = st.text_input("Folder with torchvision datasets", str(data_dir()), key="data_dir_input",
                           help="The folder that holds MNIST/raw, FashionMNIST/raw, KMNIST/raw: the server's data folder "
                                "($VAE_DATA_DIR) or one below it ($VAE_DATA_DIRS allows more).")
    if folder != str(data_dir()):
        try:
            st.session_state["data_dir"] = str(check_data_dir(folder))
            st.rerun()
        except DataFolderRefused as e:
            st.error(str(e), icon=":material/folder_off:")
    st.markdown("  \n".join(
        f"{':material/check_circle:' if dataset_available(name, data_dir()) else ':material/radio_button_unchecked:'} {name}"
        for name in DATASET_NAMES if name != "folder"
    ))
    st.caption("Missing datasets are downloaded when you train on them, if this machine has a network; "
               "the built-in shapes never need one. Your own images: the Train page's \"Your own images\".")
