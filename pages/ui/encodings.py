"""A model's codes of its data, cached per model version: the test set's posterior (with images and labels)
and the training set's means, encoded from the data on this machine, else the codes stored with the model
(vae/checkpoint/codes.py); which data that is (data_source) and how much of it (test_set_size)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from pages.ui.places import data_dir
from vae.analysis.encoding import encode_dataset
from vae.checkpoint.codes import stored_codes_from_extras
from vae.config import TrainConfig
from vae.data import (DataFolderRefused, DatasetUnavailable, InMemoryDataset, check_data_dir, dataset_names,
                      load_dataset, load_for)
from vae.training.view import ModelView


@dataclass
class Encoded:
    """A test subset and its posterior codes under one model version: encoded from the data here, or the
    codes stored with the model (vae/checkpoint/codes.py) when the data is not on this machine."""

    mu: np.ndarray  # (N, D)
    logvar: np.ndarray  # (N, D)
    labels: np.ndarray  # (N,)
    factors: dict[str, np.ndarray]
    class_names: list[str]
    images: "object"  # torch float tensor (N, C, H, W); None for stored codes
    missing: str = ""  # for stored codes: one sentence, where the images would be read from

    @property
    def stored(self) -> bool:
        return self.images is None


def data_source(view: ModelView) -> tuple[str, str, int, int]:
    """(dataset, folder, image size, channels) of the model's images here: the session's data folder, or, for
    a model of the user's own image folder, that folder when the server allows it (never a path a file
    names blindly). DatasetUnavailable (one sentence) for an unknown dataset or a folder not allowed."""
    cfg = view.train_config or TrainConfig(dataset=view.dataset if view.dataset in dataset_names() else "shapes")
    if view.dataset not in dataset_names():
        load_dataset(view.dataset)  # an unknown name: its one sentence
    if cfg.dataset != "folder":
        return cfg.dataset, str(data_dir()), cfg.image_size, cfg.channels
    folder = cfg.data_dir if isinstance(cfg.data_dir, str) else ""  # a config checks it; a page never trusts it
    try:
        return cfg.dataset, str(check_data_dir(folder)), cfg.image_size, cfg.channels
    except DataFolderRefused as e:
        raise DatasetUnavailable(f"This model's images were in {cfg.data_dir}: {e}") from None


def _load(view: ModelView, split: str, source: tuple[str, str, int, int]) -> InMemoryDataset:
    """A split of the model's data from data_source's answer; DatasetUnavailable when it is not here or its
    images are not the model's shape."""
    dataset, folder, size, channels = source
    cfg = TrainConfig(dataset=dataset, image_size=size, channels=channels)
    return load_for(cfg, split, folder, image_shape=view.model_config.image_shape)


@st.cache_resource(max_entries=8, show_spinner=False)
def _encoded(_view: ModelView, key: str, source: tuple, n: int) -> Encoded:
    data = _load(_view, "test", source).subset(n)
    x = data.float_images()
    mu, logvar = encode_dataset(_view.model, x)
    factors = {k: v.numpy() for k, v in data.factors.items()}
    return Encoded(mu, logvar, data.labels.numpy(), factors, data.class_names, x)


def test_set_size(view: ModelView) -> int | None:
    """How many test images the model's dataset has here, else how many codes it stores (None: neither)."""
    try:
        return len(_load(view, "test", data_source(view)))
    except DatasetUnavailable:
        stored = stored_codes_from_extras(view.extras)
        return None if stored is None else len(stored)


def _stored_encoded(view: ModelView, n: int, missing: str) -> Encoded | None:
    """The first n codes the model stores, as Encoded (no images), or None when it stores none."""
    stored = stored_codes_from_extras(view.extras)
    if stored is None:
        return None
    return Encoded(stored.mu[:n], stored.logvar[:n], stored.labels[:n], {k: v[:n] for k, v in stored.factors.items()},
                   view.class_names, None, missing)


def encoded_test_set(view: ModelView, n: int = 5000) -> Encoded | None:
    """Test codes for the current model version, cached: re-encodes only when the weights change. Without
    the dataset on this machine, the codes the model stores; without those either, one readable sentence
    and None.
    """
    try:
        return _encoded(view, view.key, data_source(view), n)
    except DatasetUnavailable as e:
        first = str(e).split(". ")[0] + "."
        encoded = _stored_encoded(view, n, first)
        if encoded is None:
            st.warning(first + " The decoded views still work; the scatter needs the test images.")
        return encoded


def stored_caption(encoded: Encoded) -> None:
    """The one line a page shows under what it drew from stored codes (nothing for codes of the data here)."""
    if encoded.stored:
        st.caption(f"Codes stored with the model, with their labels: {encoded.missing} The original images need "
                   f"those files; what you see is decoded from the codes.")


@st.cache_resource(max_entries=4, show_spinner=False)
def _train_codes(_view: ModelView, key: str, source: tuple, n: int) -> tuple[np.ndarray, np.ndarray]:
    data = _load(_view, "train", source).subset(n)
    return encode_dataset(_view.model, data.float_images())[0], data.labels.numpy()


def encoded_train_codes(view: ModelView, n: int = 5000) -> tuple[np.ndarray, np.ndarray] | None:
    """Posterior means (n, D) and labels of the first n training images, cached per model version
    (for the label map), else the ones the model stores; None, after one sentence, when neither is here."""
    try:
        return _train_codes(view, view.key, data_source(view), n)
    except DatasetUnavailable as e:
        stored = stored_codes_from_extras(view.extras)
        if stored is not None and len(stored.train_mu):
            return stored.train_mu[:n], stored.train_labels[:n]
        st.warning(str(e).split(". ")[0] + ". The label map needs the training images.")
        return None
