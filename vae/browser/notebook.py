"""The latent pad in a notebook (Jupyter, JupyterLab, VS Code, Colab): `LatentPad(model_or_checkpoint_path)`, an
anywidget whose front end is the pad's own module (pad.py's pad_js, the one the app and the exported page run) and a
small adapter (notebook.js). The point the pad commits and the drawn input's posterior come back as traits; assigning
`model` again, even the same module after more training, swaps the weights in the same widget.

anywidget is not among the app's requirements: without it, importing this module raises ImportError with the line
that installs it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import torch

try:
    import anywidget
    import traitlets
except ImportError:
    raise ImportError("The notebook widget needs anywidget: pip install anywidget") from None

from vae.browser.pad import PAD_CSS, pad_js
from vae.browser.share import model_payload
from vae.checkpoint import load as load_checkpoint
from vae.checkpoint.codes import stored_codes_from_extras
from vae.checkpoint.format import Checkpoint
from vae.nets.model import VAE

ADAPTER_JS = Path(__file__).with_name("notebook.js")
# JupyterLab's output area lays description lists out as floats (dt bold and 20% wide, dd 80%): the pad's numbers
# are a two-column grid (latent_pad.css), so those rules are undone inside the pad.
HOST_CSS = """
.lp-root .lp-numbers dl { display: grid; width: auto; overflow: visible; }
.lp-root .lp-numbers dt, .lp-root .lp-numbers dd { display: block; float: none; width: auto; }
.lp-root .lp-numbers dt { font-weight: normal; }
"""


def widget_esm() -> str:
    """The widget's module: the pad's module as the string PAD_MODULE, then the adapter that imports it."""
    return f"const PAD_MODULE = {json.dumps(pad_js())};\n{ADAPTER_JS.read_text()}"


def loaded_model(value) -> VAE | Checkpoint:
    """What the `model` trait holds for an assigned value: a VAE or a Checkpoint as given, a path loaded with the
    safe loader (CheckpointError, one sentence, for a bad file); TypeError, one sentence, for anything else."""
    if isinstance(value, (str, os.PathLike)):
        return load_checkpoint(value)
    if isinstance(value, (VAE, Checkpoint)):
        return value
    raise TypeError(f"LatentPad takes a VAE, a Checkpoint or a checkpoint's path, not a {type(value).__name__}.")


def weights_digest(model: VAE) -> str:
    """A hash of every tensor the model holds: new weights give the pad a new model key (it swaps them), the same
    weights the same payload (nothing is sent)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def notebook_payload(value: VAE | Checkpoint) -> bytes:
    """The pad's payload (share.model_payload) for a VAE, or a Checkpoint with its stored codes and class names.
    A model on a GPU is copied to the CPU: the programs and their float16 checks read CPU tensors."""
    ckpt = value if isinstance(value, Checkpoint) else None
    model = ckpt.model if ckpt else value
    if any(p.device.type != "cpu" for p in model.parameters()):
        model = copy.deepcopy(model).cpu()
    key = f"notebook:{weights_digest(model)}"
    if ckpt is None:
        return model_payload(model, name="This model", key=key)
    return model_payload(model, name=ckpt.name, key=key, class_names=ckpt.class_names,
                         stored=stored_codes_from_extras(ckpt.extras))


class LatentPad(anywidget.AnyWidget):
    """The latent pad and the input panel for a model: LatentPad(vae), LatentPad(checkpoint) or
    LatentPad("checkpoints/default-mnist-2d.pt").

    model: the VAE or Checkpoint shown (a path is loaded into its Checkpoint); assigning it again re-sends the
    payload when the weights changed, and the pad swaps them in place. point: what the pad last committed (on
    release, or once the arrow keys rest), {"dims": the plane's dimensions, "z": the point on them, "code": the
    full code}, or None before the first. mu, sigma: the drawn input's posterior q(z|x) over every latent
    dimension, [] while nothing is drawn."""

    _esm = widget_esm()
    _css = PAD_CSS.read_text() + HOST_CSS

    model = traitlets.Any()  # not synced: the page gets the payload built from it
    payload = traitlets.Bytes(b"").tag(sync=True)
    point = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    mu = traitlets.List(traitlets.Float()).tag(sync=True)
    sigma = traitlets.List(traitlets.Float()).tag(sync=True)

    def __init__(self, model, **kwargs):
        super().__init__(model=model, **kwargs)

    # The payload is built here rather than in an observer: traitlets calls a validator on every assignment,
    # including the same module again after training it in place (an observer hears only a different object), and
    # a model the page cannot run raises before the trait changes.
    @traitlets.validate("model")
    def _send_model(self, proposal):
        value = loaded_model(proposal["value"])
        self.payload = notebook_payload(value)
        return value
