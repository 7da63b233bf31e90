"""The latent pad: a Streamlit v2 component that decodes the latent plane in the browser on every
pointer move (pages/ui/latent_pad.js, styled by pages/ui/latent_pad.css; plain files, no build step).

Python hands it one binary payload per model version and plane (vae/pad.py: the decoder's weights,
test codes, labels and thumbnails); Streamlit sends an element whose payload is unchanged as a
reference to the copy the browser holds, so a rerun with the same model costs no weights. The pad
sends its point back only when the pointer is released (or the arrow keys rest).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

_HERE = Path(__file__).parent
_component = st.components.v2.component(
    "latent_explorer.latent_pad", js=(_HERE / "latent_pad.js").read_text(), css=(_HERE / "latent_pad.css").read_text(),
    isolate_styles=False,  # tests and the page's own CSS reach the pad's elements (class latent-pad)
)


def latent_pad(payload: bytes, key: str) -> dict | None:
    """Draws the pad for a vae.pad.pad_payload; returns the point it last sent, {"dims": [i, j], "z": [zi, zj],
    "code": the full code}, or None before the first release."""
    result = _component(key=key, data=payload, default={"point": None}, on_point_change=lambda: None)
    return result.point
