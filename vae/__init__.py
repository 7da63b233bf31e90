"""Latent Explorer's library: a VAE (Kingma & Welling 2013), its losses, datasets, trainer,
checkpoints and latent-space tools. It never imports streamlit."""

__version__ = "0.1.0"
