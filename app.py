"""Latent Explorer: page config, the shared sidebar card, and navigation. Nothing else."""
from pathlib import Path

import streamlit as st

from pages.common import page_style, sidebar_card

# A local icon: a :material/…: page icon makes the browser fetch the tab icon from the internet.
ICON = Path(__file__).parent / ".streamlit" / "icon.png"
st.set_page_config(page_title="Latent Explorer", page_icon=str(ICON), layout="wide")
page_style()

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
    "Teach": [
        st.Page("pages/compare.py", title="Compare", icon=":material/view_column:"),
        st.Page("pages/replay.py", title="Training replay", icon=":material/replay:"),
    ],
}

page = st.navigation(PAGES)
sidebar_card()
page.run()
