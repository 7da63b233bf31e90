"""Form inputs made from the settings vae/config.py declares: each input's label, range, step, choices
and help come from its Setting, so the Train and Compare forms, the CLI and the checks agree."""
from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from vae.config import ConfigError, ModelConfig, Setting, TrainConfig, configs_from, settings_of


def _default(config: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(config) if f.name == name)


def setting_input(config: type, name: str, where=st, key: str = "") -> Any:
    """The input for one setting of a config class, in `where` (a column, say); returns its value as the
    config takes it (None for an optional number left at 0)."""
    s: Setting = settings_of(config)[name]
    default, key, help_ = _default(config, name), key or f"f_{name}", s.describe()
    if s.kind == "choice" or s.choices:  # an int setting with choices (channels) gives its value as text
        return where.selectbox(s.label, s.choices, index=s.choices.index(str(default)), format_func=s.label_of, key=key,
                               help=help_)
    if s.kind == "switch":
        return where.checkbox(s.label, value=bool(default), key=key, help=help_)
    if s.kind == "int" and s.optional:
        value = where.number_input(f"{s.label} (0: all)", 0, int(s.hi), 0, step=1000, key=key, help=help_)
        return int(value) or None
    if s.kind == "int":
        return int(where.number_input(s.label, int(s.lo), int(s.hi), int(default), key=key, help=help_))
    if s.kind == "float" and s.example:  # spans decades (a learning rate): typed, checked by the config
        shown = s.example if float(s.example) == default else f"{default:g}"
        return where.text_input(s.label, shown, key=key, help=help_)
    if s.kind == "float":
        return where.number_input(s.label, float(s.lo), float(s.hi), float(default), step=s.step, key=key, help=help_)
    return where.text_input(s.label, str(default), key=key, help=help_)


def form_settings(advanced: bool) -> list[str]:
    """The settings a form shows together: the main ones (advanced False) or those folded under "More
    settings", as each Setting says; the training settings first, then the model's, each in declaration
    order. A setting for one dataset alone (a folder's image size) is asked for beside that data instead."""
    settings = {**settings_of(TrainConfig), **settings_of(ModelConfig)}
    return [name for name, s in settings.items() if s.advanced == advanced and not s.only_for]


def settings_inputs(names: list[str], columns: list, prefix: str = "f_") -> dict[str, Any]:
    """Inputs for these settings (of either config), laid out across the columns in turn."""
    values = {}
    for i, name in enumerate(names):
        config = ModelConfig if name in settings_of(ModelConfig) else TrainConfig
        values[name] = setting_input(config, name, columns[i % len(columns)], f"{prefix}{name}")
    return values


def build_configs(values: dict[str, Any], **train_extra) -> tuple[ModelConfig, TrainConfig] | None:
    """Both configs from the inputs' values (settings not given keep their defaults); on a bad value, its
    sentence as an error and None."""
    try:
        return configs_from(values, **train_extra)
    except ConfigError as e:
        st.error(str(e))
        return None
