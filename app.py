"""Latent Explorer: page config, the shared sidebar card, and navigation. Nothing else."""
import streamlit as st

from pages.common import sidebar_card

st.set_page_config(page_title="Latent Explorer", page_icon=":material/explore:", layout="wide")

PAGES = {
    "Model": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ],
    "Explore": [
        st.Page("pages/sliders.py", title="Latent sliders", icon=":material/tune:"),
        st.Page("pages/manifold.py", title="Manifold", icon=":material/grid_on:"),
        st.Page("pages/scatter.py", title="Latent scatter", icon=":material/scatter_plot:"),
        st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    ],
}

page = st.navigation(PAGES)
sidebar_card()
page.run()
