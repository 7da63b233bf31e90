"""A model's explorer as one HTML file that opens from disk with no network and no server: the latent pad's own
module and style (pad.py's pad_js and PAD_CSS, the very files the app serves), the model's payload inlined as
base64 (the decoder's and the encoder's weights, the codes the checkpoint stores and their labels; no image of
any dataset unless asked for), a model card, and a manifold decoded in the page."""
from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence

import numpy as np

from vae.browser.pad import PAD_CSS, PadCodes, pad_js, pad_payload, thumbnail_sprite
from vae.browser.programs import Program, UnsupportedDecoder, UnsupportedEncoder, decoder_program, encoder_program
from vae.checkpoint.codes import StoredCodes, stored_codes_from_extras
from vae.checkpoint.format import Checkpoint
from vae.data import UnknownDataset, dataset_spec
from vae.nets.model import VAE
from vae.render.palette import class_color

LIMIT = 4.0  # the pad spans +/- 4 prior standard deviations, as the app's
SHARED_CODES = 1000  # stored test codes on the pad, as the app's Latent sliders


class NotShareable(ValueError):
    """The model cannot be explored in a page; the message is one sentence."""


def shareable(model: VAE, name: str) -> tuple[Program, Program]:
    """The decoder's and the encoder's programs, or NotShareable: one sentence naming the model."""
    try:
        return decoder_program(model), encoder_program(model)
    except (UnsupportedDecoder, UnsupportedEncoder) as e:
        raise NotShareable(f"{name} cannot be explored in a page on its own: {e}.") from None


def model_payload(model: VAE, *, name: str, key: str, class_names: Sequence[str] = (),
                  stored: StoredCodes | None = None, images: np.ndarray | None = None) -> bytes:
    """The pad's payload for a model: both programs, up to SHARED_CODES of its stored codes and labels (none when
    stored is None), and their thumbnails only when `images` is given: uint8 (N, C, H, W), the first N test images,
    in the order the codes were stored. key names this version of the weights: the pad swaps weights when it
    changes. NotShareable, one sentence naming the model, when the page cannot run its programs."""
    decoder, encoder = shareable(model, name)
    codes = sprite = None
    if stored is not None:
        n = SHARED_CODES if images is None else min(SHARED_CODES, len(images), len(stored))
        codes = PadCodes(stored.mu[:n], stored.labels[:n], None)
        sprite = None if images is None else thumbnail_sprite(images[:n])
    d = model.config.latent_dim
    dims = (0,) if d == 1 else (0, 1)
    return pad_payload(model, decoder, model_key=key, dims=dims, base=None, point=[0.0] * len(dims), limit=LIMIT,
                       classes=[(n, class_color(i)) for i, n in enumerate(class_names)], codes=codes, sprite=sprite,
                       encoder=encoder)


def explorer_payload(ckpt: Checkpoint, images: np.ndarray | None = None) -> bytes:
    """The pad's payload for the checkpoint (model_payload, with its stored codes and class names, and their test
    images' thumbnails when `images` is given)."""
    return model_payload(ckpt.model.eval(), name=ckpt.name, key=f"share:{ckpt.name}:{ckpt.created}",
                         class_names=ckpt.class_names, stored=stored_codes_from_extras(ckpt.extras), images=images)


def model_card(ckpt: Checkpoint) -> list[tuple[str, str]]:
    """(label, value) rows: the dataset and its credit, the images, the latent size, the architecture, how it was
    trained, its test -ELBO."""
    cfg, train = ckpt.model_config, ckpt.train_config
    try:
        spec = dataset_spec(ckpt.dataset)
        dataset, credit = spec.title, spec.credit
    except UnknownDataset:
        dataset, credit = ckpt.dataset, ""
    c, h, w = cfg.image_shape
    elbo = ckpt.test_metrics.get("elbo", math.nan)
    rows = [("Dataset", dataset), ("Images", f"{h}x{w} {'colour' if c == 3 else 'grey'}"),
            ("Latent dimensions", str(cfg.latent_dim)),
            ("Architecture", f"{cfg.arch} {'-'.join(map(str, cfg.hidden))}, {cfg.likelihood} likelihood"),
            ("Epochs", str(ckpt.epoch)),
            ("Test −ELBO", "—" if math.isnan(elbo) else f"{elbo:.1f} nats per image")]
    if train is not None:
        rows.append(("Trained with", f"batch {train.batch_size}, learning rate {train.lr:g}, β {train.beta:g}, "
                                     f"reconstruction weight {train.recon_weight:g}, seed {train.seed}"))
    if credit:
        rows.append(("Images from", credit))
    return rows


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; img-src blob: data:">
<title>{title} · Latent Explorer</title>
<style>
body {{ margin: 28px 36px; font-family: system-ui, "Source Sans", sans-serif; color: #31333F; }}
h1 {{ font-size: 28px; margin: 0 0 4px; }} h2 {{ font-size: 19px; margin: 28px 0 8px; }}
.lx-lead {{ opacity: 0.75; margin: 0 0 20px; font-size: 15px; }}
.lx-card {{ display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; font-size: 15px; margin: 0; }}
.lx-card dt {{ opacity: 0.7; }} .lx-card dd {{ margin: 0; font-weight: 600; }}
.lx-manifold {{ image-rendering: pixelated; image-rendering: crisp-edges; display: block; }}
.lx-note {{ font-size: 14px; opacity: 0.7; }}
{css}
</style></head><body>
<h1>{title}</h1>
<p class="lx-lead">A variational autoencoder's latent space, explored in this page: drag the point and the decoder draws
it; draw an input and the encoder shows its posterior. Everything runs here, from this file, with no network.</p>
<div id="host"></div>
<h2>The manifold</h2>
<canvas class="lx-manifold"></canvas>
<p class="lx-note" id="lx-manifold-note"></p>
<h2>The model</h2>
<dl class="lx-card">{card}</dl>
<script type="application/json" id="lx-module">{module}</script>
<script type="application/json" id="lx-payload">{payload}</script>
<script type="module">
const text = (id) => JSON.parse(document.getElementById(id).textContent);
const pad = await import(URL.createObjectURL(new Blob([text("lx-module")], {{type: "text/javascript"}})));
const bytes = Uint8Array.from(atob(text("lx-payload")), (c) => c.charCodeAt(0));
window.__pad = pad;
pad.default({{data: bytes, parentElement: document.getElementById("host"), setStateValue: () => {{}}}});
pad.drawManifold(document.querySelector(".lx-manifold"), bytes, {manifold});
document.getElementById("lx-manifold-note").textContent =
  "A {n} x {n} grid over [−{radius}, {radius}] on the pad's two dimensions, decoded in this page.";
</script>
</body></html>
"""
MANIFOLD = {"n": 16, "radius": 3.0, "px": 560}


def explorer_html(ckpt: Checkpoint, images: np.ndarray | None = None) -> str:
    """The whole page for a checkpoint, with the test images' thumbnails only when `images` is given (see
    explorer_payload); NotShareable, in one sentence, for a model whose programs the page cannot run. JSON inside
    <script> cannot close the tag: '<' is written as \\u003c."""
    payload = base64.b64encode(explorer_payload(ckpt, images)).decode()
    rows = model_card(ckpt) + ([("Test images", f"thumbnails of the first {min(len(images), SHARED_CODES):,} "
                                                  "(hover a dot)")] if images is not None else [])
    card = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)

    def script_json(value) -> str:
        return json.dumps(value).replace("<", "\\u003c")

    return PAGE.format(title=html.escape(ckpt.name), css=PAD_CSS.read_text(), card=card,
                       module=script_json(pad_js()), payload=script_json(payload), manifold=json.dumps(MANIFOLD),
                       n=MANIFOLD["n"], radius=f"{MANIFOLD['radius']:g}")
