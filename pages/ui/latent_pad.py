"""The latent pad: a Streamlit v2 component that decodes the latent plane in the browser on every
pointer move and encodes a drawn input on every stroke (vae/browser/*.js, joined by vae.browser.pad.pad_js,
styled by vae/browser/latent_pad.css; plain files, no build step, kept with the library so the app, an
exported page and a notebook share one source).

Python hands it one binary payload per model version and plane (vae/browser/pad.py: the decoder's
weights, test codes, labels and thumbnails); Streamlit sends an element whose payload is unchanged as
a reference to the copy the browser holds, so a rerun with the same model costs no weights. The pad
sends its point back only when the pointer is released (or the arrow keys rest), and a drawn input only
when the server must encode it (an encoder the page cannot run).
"""
from __future__ import annotations

import os

import streamlit as st

from vae.browser.pad import PAD_CSS, pad_js
from vae.browser.programs import (Program, UnsupportedDecoder, UnsupportedEncoder, decoder_program,
                                  encoder_program)

# Inline source, not paths: st.components.v2 resolves paths only under a packaged component's asset_dir.
_component = st.components.v2.component(
    "latent_explorer.latent_pad", js=pad_js(), css=PAD_CSS.read_text(),
    isolate_styles=False,  # tests and the page's own CSS reach the pad's elements (class latent-pad)
)


def latent_pad(payload: bytes, key: str) -> tuple[dict | None, dict | None]:
    """Draws the pad for a vae.browser.pad.pad_payload; returns the point it last sent, {"dims": [i, j],
    "z": [zi, zj], "code": the full code}, or None before the first release; and the input it last sent for
    the server to encode (vae.browser.pad.sent_input reads it), or None."""
    result = _component(key=key, data=payload, default={"point": None, "input": None},
                        on_point_change=lambda: None, on_input_change=lambda: None)
    return result.point, result.input


def browser_decoder(view) -> Program:
    """The decoder's program for the page; UnsupportedDecoder, saying why, when the server sets
    VAE_BROWSER_DECODE=0 (the picture is then drawn on the server, as before the pad: for a browser that cannot
    run it, or to compare the two) or the page cannot run this decoder."""
    if os.environ.get("VAE_BROWSER_DECODE", "1").strip() == "0":
        raise UnsupportedDecoder("VAE_BROWSER_DECODE is 0 on this server")
    return decoder_program(view.model)


def browser_encoder(view) -> tuple[Program | None, str]:
    """The encoder's program for the page, or None and the sentence saying the server encodes instead
    (VAE_BROWSER_ENCODE=0, or an encoder the page cannot run)."""
    try:
        if os.environ.get("VAE_BROWSER_ENCODE", "1").strip() == "0":
            raise UnsupportedEncoder("VAE_BROWSER_ENCODE is 0 on this server")
        return encoder_program(view.model), ""
    except UnsupportedEncoder as e:
        return None, f"This model's encoder runs on the server ({e}): the posterior appears when you lift the pen."
