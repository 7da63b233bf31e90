"""Home: the current model at a glance (its decoded manifold), three ways to get a model (train, load from
checkpoints/, upload), and the data folder."""
from __future__ import annotations

from pages.ui.shell import enter_app

enter_app()  # first: see pages/ui/shell.py

import math

import streamlit as st

from pages.ui.current_model import ModelRef, current_view, use_source
from pages.ui.downloads import model_download
from pages.ui.places import MAX_UPLOAD_MB, checkpoint_dir, data_dir
from pages.ui.sitemap import PAGES, page
from vae import checkpoint as ckpt_io
from vae.data import dataset_names, DataFolderRefused, check_data_dir, dataset_available
from vae.analysis.encoding import manifold_picture
from vae.render.images import upscale_factor, upscale_nearest

PREVIEW_CELLS, PREVIEW_RADIUS, PREVIEW_PX = 12, 2.5, 360  # the current model's manifold: cells a side, |z|, px
TRAIN = page("train")
EXPLORE_LINKS = [p for p in PAGES if p.section == "Explore" and p.pitch]  # each with its pitch (pages/ui/sitemap.py)

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
        for link in EXPLORE_LINKS:
            st.page_link(link.script, label=link.pitch, icon=link.icon)
        model_download(view, key="home_download")
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
    st.page_link(TRAIN.script, label=f"Go to the {TRAIN.title} page", icon=TRAIN.icon)


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
        for name in dataset_names() if name != "folder"
    ))
    st.caption("Missing datasets are downloaded when you train on them, if this machine has a network; "
               "the built-in shapes never need one. Your own images: the Train page's \"Your own images\".")
