"""What a tab can take away: the current model as a checkpoint file (Home and the sidebar card) and the model's
explorer as one HTML file that opens from disk, offline (Latent sliders; vae/browser/share.py writes it). Both are
made when the button is pressed, on Streamlit's download thread, so a page that shows them costs nothing."""
from __future__ import annotations

from functools import partial

import streamlit as st
import torch

from vae.browser.share import SHARED_CODES, NotShareable, explorer_html, shareable
from vae.render.images import to_uint8
from vae.training.view import ModelView


def model_download(view: ModelView, key: str) -> None:
    """A button that downloads the current model: a loaded checkpoint's own file, a live job's latest weights or
    an upload, as a .pt file that Home's upload and `python -m vae` read back."""
    st.download_button("Download model", data=view.file_bytes, file_name=f"{view.file_stem}.pt",
                       mime="application/octet-stream", on_click="ignore", icon=":material/download:", key=key,
                       help="The model as a checkpoint file: load it on Home on any machine, or share it as a "
                            "page with `python -m vae share`." + (" While the job trains, its latest weights."
                                                                   if view.live else ""))


def _explorer_file(view: ModelView, images: torch.Tensor | None) -> str:
    return explorer_html(view.as_checkpoint(), None if images is None else to_uint8(images.numpy()))


def explorer_download(view: ModelView, images: torch.Tensor | None) -> None:
    """A button that downloads this model's explorer (the pad, the input panel, the manifold and a model card) as one
    HTML file; with a box to include the test images' thumbnails where `images` ((N, C, H, W) in [0, 1], the first
    test images, in the order of the stored codes) are on this machine. A model the page cannot run gets one
    sentence."""
    refused = _refusal(view)
    if refused:
        st.caption(refused)
        return
    with_images = images is not None and st.checkbox(
        "With the test images", key="share_images",
        help="Puts thumbnails of the test images whose codes the file shows in it (hovering a dot then shows its "
             "image). Without it, the file holds no image of the dataset.")
    st.download_button("Download this explorer", data=partial(_explorer_file, view, images[:SHARED_CODES] if with_images else None),
                       file_name=f"{view.file_stem}-explorer.html", mime="text/html", on_click="ignore",
                       icon=":material/share:", key="share_explorer",
                       help="One HTML file that opens from disk in any current browser, with no network and no "
                            "server: this pad, its input panel, the decoded manifold and a model card. Hand it out "
                            "to a class; nothing to install.")


def _refusal(view: ModelView) -> str:
    """'' when the page can run this model's programs, else the one sentence saying why not (kept per version)."""
    kept = st.session_state.get("_share_refusal")
    if kept is None or kept[0] != view.key:
        try:
            shareable(view.model, view.name)
            kept = (view.key, "")
        except NotShareable as e:
            kept = (view.key, str(e))
        st.session_state["_share_refusal"] = kept
    return kept[1]
