"""Latent Explorer: page config, the shared sidebar card, and navigation. Nothing else."""
import streamlit as st

from pages.common import sidebar_card

st.set_page_config(page_title="Latent Explorer", page_icon="🧭", layout="wide")

PAGES = {
    "Model": [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/train.py", title="Train", icon="🏋️"),
    ],
    "Explore": [
        st.Page("pages/sliders.py", title="Latent sliders", icon="🎚️"),
        st.Page("pages/manifold.py", title="Manifold", icon="🗺️"),
        st.Page("pages/scatter.py", title="Latent scatter", icon="✨"),
        st.Page("pages/reconstructions.py", title="Reconstructions", icon="🔁"),
    ],
}

page = st.navigation(PAGES)
sidebar_card()
page.run()
