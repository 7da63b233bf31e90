"""Latent Explorer's library: a VAE (Kingma & Welling 2013), its data, training, checkpoints and the
pictures of its latent space; no Streamlit. What a script or a notebook needs is here (README.md, "From
Python"); the rest lives in the subpackages, bottom first: data, config, nets, render, analysis, checkpoint,
training, browser."""
from vae.analysis.encoding import decode_codes, encode_dataset
from vae.checkpoint import Checkpoint, CheckpointError
from vae.checkpoint import load as load_checkpoint
from vae.checkpoint import save as save_checkpoint
from vae.config import ConfigError, ModelConfig, TrainConfig
from vae.data import DatasetUnavailable, InMemoryDataset, load_dataset
from vae.nets.model import VAE
from vae.render.images import png_bytes, tile_images
from vae.training.trainer import Trainer

__all__ = ["VAE", "Checkpoint", "CheckpointError", "ConfigError", "DatasetUnavailable", "InMemoryDataset", "ModelConfig",
           "TrainConfig", "Trainer", "decode_codes", "encode_dataset", "load_checkpoint", "load_dataset", "png_bytes",
           "save_checkpoint", "tile_images"]
