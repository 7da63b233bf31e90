"""The groups of codes a tab lassoed on the Latent scatter for a direction (group A and group B, as test image
numbers), kept in the tab's session for the model they were chosen on: a new model forgets them."""
from __future__ import annotations

import streamlit as st

KEY = "direction_groups"  # {"model": the tab's model_source, "A": [test image #], "B": [...]}


def selection_groups() -> dict[str, list[int]]:
    """The tab's groups for its current model ({} when none, or when they belong to another model)."""
    kept = st.session_state.get(KEY)
    source = st.session_state.get("model_source")
    if not kept or kept.get("model") != source:
        return {}
    return {name: kept[name] for name in ("A", "B") if kept.get(name)}


def keep_selection_group(name: str, indices: list[int]) -> None:
    """Keeps `indices` as group `name` ("A" or "B") for the tab's current model."""
    source = st.session_state.get("model_source")
    kept = st.session_state.get(KEY)
    if not kept or kept.get("model") != source:
        kept = {"model": source}
    st.session_state[KEY] = {**kept, name: [int(i) for i in indices]}
