"""What the latent pad sends to the browser, which decodes the latent plane on every pointer move and
encodes what is drawn on every stroke (the JS sources below): the decoder and the encoder as programs of
ops over the model's own weights (vae/browser/programs.py), the model's likelihood, a bounded set of test
codes with their labels and thumbnails, packed as one binary payload.

A payload (little-endian) is b"LPAD", uint32 format, uint32 header length, the header as UTF-8 JSON
padded to 4 bytes, then the sections it points at, each 4-byte aligned: the decoder's weights and the
encoder's (float16 or float32), a per-pixel log sigma (float32, (C*H*W,)), the codes (float32, (N, D)), the
labels (int32, (N,)) and the thumbnails (one PNG).
"""
from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from vae.browser.programs import Program, choose_dtype, choose_encoder_dtype, weights_blob
from vae.nets.model import VAE
from vae.render.images import png_bytes
from vae.render.palette import class_marker

MAGIC = b"LPAD"
FORMAT = 1

# The pad's browser side, plain files with no build step, in the order they join into one ES module: the
# programs and the posterior's arithmetic, the input panel, the posterior's view, the pad. One source for every host.
PAD_JS_FILES = tuple(Path(__file__).with_name(name) for name in ("programs.js", "input_panel.js", "posterior_view.js",
                                                                     "latent_pad.js"))
PAD_CSS = Path(__file__).with_name("latent_pad.css")


def pad_js() -> str:
    """The pad's module: its files joined (each declares distinct names; only the last has a default export)."""
    return "\n".join(f.read_text() for f in PAD_JS_FILES)


SPRITE_COLUMNS = 40


def thumbnail_sprite(images: np.ndarray, columns: int = SPRITE_COLUMNS) -> bytes:
    """uint8 (N, C, H, W) images tiled row-major into one PNG, `columns` wide (grey for C = 1, RGB for 3)."""
    n, c, h, w = images.shape
    rows = max(1, -(-n // columns))
    sheet = np.zeros((rows * h, columns * w, c), np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        sheet[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i].transpose(1, 2, 0)
    return png_bytes(sheet[:, :, 0] if c == 1 else sheet)


def pack(header: dict, sections: dict[str, bytes]) -> bytes:
    """b"LPAD", format, header length, the header JSON, then the body: the sections, each on a 4-byte
    boundary. header["sections"] gets each one's [offset, length] in bytes from the body's start,
    which is the first 4-byte boundary after the header."""
    placed, body, offset = {}, [], 0
    for name, blob in sections.items():
        placed[name] = [offset, len(blob)]
        body.append(blob + b"\0" * (-len(blob) % 4))
        offset += len(body[-1])
    text = json.dumps(dict(header, sections=placed), separators=(",", ":")).encode()
    text += b" " * (-(12 + len(text)) % 4)
    return MAGIC + struct.pack("<II", FORMAT, len(text)) + text + b"".join(body)


def unpack(payload: bytes) -> tuple[dict, dict[str, bytes]]:
    """The header and sections of a payload made by `pack` (tests read payloads back with it)."""
    if payload[:4] != MAGIC:
        raise ValueError("Not a latent pad payload.")
    fmt, length = struct.unpack("<II", payload[4:12])
    if fmt != FORMAT:
        raise ValueError(f"Latent pad payload format {fmt}, expected {FORMAT}.")
    header, start = json.loads(payload[12:12 + length]), 12 + length
    return header, {name: payload[start + o:start + o + n] for name, (o, n) in header["sections"].items()}


@dataclass
class PadCodes:
    """The test codes the pad draws: posterior means (N, D), labels (N,), their images (N, C, H, W) uint8."""

    mu: np.ndarray
    labels: np.ndarray
    images: np.ndarray | None


@dataclass
class Posterior:
    """q(z|x) of an input the page sent (its `input` number), encoded by the server: mu, logvar (D,) each."""

    input: int
    mu: np.ndarray
    logvar: np.ndarray


class PadDirection(NamedTuple):
    """A direction to walk along from the pad's code: the picture shows decode(code + alpha * vector), alpha on a
    slider from alpha_min to alpha_max. vector: (D,) float32 over the full latent space; name: e.g. "1 → 7"."""

    name: str
    vector: np.ndarray
    alpha_min: float = -2.0
    alpha_max: float = 2.0


def direction_header(direction: PadDirection, latent_dim: int) -> dict:
    """The header's "direction": {"name", "vector": D floats, "alpha": [min, max]}, once the direction is checked."""
    vector = np.asarray(direction.vector, np.float32)
    if vector.shape != (latent_dim,):
        raise ValueError(f"The direction {direction.name!r} has shape {vector.shape}, but this model's codes have "
                         f"{latent_dim} dimensions: give one value per latent dimension.")
    if not np.isfinite(vector).all():
        raise ValueError(f"The direction {direction.name!r} holds NaN or infinite values: give finite numbers only.")
    low, high = float(direction.alpha_min), float(direction.alpha_max)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"The direction's alpha range [{low}, {high}] is empty: give finite bounds with min < max.")
    return {"name": str(direction.name), "vector": [float(v) for v in vector], "alpha": [low, high]}


# The most bytes a drawn input the page sends may have: a 64x64 colour image is 12,288.
MAX_SENT_PIXELS = 3 * 128 * 128


def sent_input(model: VAE, sent) -> tuple[int, torch.Tensor] | None:
    """The input the page sent for the server to encode, {"input": n, "shape": [C, H, W], "pixels": base64 of
    C*H*W uint8 in channel planes}, as (n, x (1, C, H, W) in [0, 1]); None for anything else (the page is
    another process: what it sends is checked, never trusted)."""
    if not isinstance(sent, dict) or list(sent.get("shape") or []) != list(model.config.image_shape):
        return None
    number, text = sent.get("input"), sent.get("pixels")
    size = int(np.prod(model.config.image_shape))
    if not isinstance(number, int) or not isinstance(text, str) or size > MAX_SENT_PIXELS or len(text) > 4 * size:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size:
        return None
    x = torch.from_numpy(np.frombuffer(raw, np.uint8).astype(np.float32) / 255.0)
    return number, x.reshape(1, *model.config.image_shape)


@torch.no_grad()
def server_posterior(model: VAE, sent) -> Posterior | None:
    """The posterior of the input the page sent (sent_input), encoded here by the model's own encode: for an
    encoder the page cannot run. None when what was sent is not an input of this model's shape."""
    got = sent_input(model, sent)
    if got is None:
        return None
    mu, logvar = model.encode(got[1])
    return Posterior(got[0], mu[0].numpy(), logvar[0].numpy())


def likelihood_spec(model: VAE) -> tuple[dict, bytes | None]:
    """The model's p(x|z) as the page computes the reconstruction term: {"kind": bernoulli | gaussian |
    gaussian-pixel, "logSigma": the shared log sigma or None}, and the per-pixel log sigma (float32, (C*H*W,))
    for gaussian-pixel."""
    kind = model.config.likelihood
    log_sigma = getattr(model, "log_sigma", None)
    if kind == "gaussian-pixel":
        return {"kind": kind, "logSigma": None}, log_sigma.detach().float().cpu().numpy().astype("<f4").tobytes()
    return {"kind": kind, "logSigma": None if log_sigma is None else float(log_sigma.detach())}, None


def pad_payload(model: VAE, program: Program, *, model_key: str, dims: tuple[int, ...],
                base: np.ndarray | None, point: tuple[float, ...], limit: float, classes: list[tuple[str, str]],
                codes: PadCodes | None, sprite: bytes | None = None, dtype: str | None = None,
                encoder: Program | None = None, encoder_note: str = "", posterior: Posterior | None = None,
                direction: PadDirection | None = None) -> bytes:
    """Everything the pad needs for one model version and plane, as one payload.

    dims: the one or two latent dimensions the pad spans (0-based); base: (D,) the code the other
    dimensions are held at (zeros when None); point: the pad's starting point in those dimensions;
    classes: (name, colour) per label, each sent with its label's marker (palette.class_marker); sprite:
    thumbnail_sprite of codes.images (made here when None).
    encoder: the encoder's program (programs.encoder_program), or None with encoder_note saying why the server
    encodes instead (then posterior holds its answer for the input the page last sent).
    direction: a direction the page walks along with its alpha slider (header["direction"]; no key when None).
    """
    d = model.config.latent_dim
    dtype = dtype or choose_dtype(model, program)
    weights, offsets = weights_blob(program, dtype)
    sections = {"weights": weights}
    header = {
        "model": {"key": model_key, "shape": list(program.image_shape), "latentDim": d, "dtype": dtype,
                  "params": program.n_params, "ops": program.ops, "offsets": offsets},
        "plane": {"dims": list(dims), "names": [f"z{i + 1}" for i in dims], "limit": float(limit),
                  "base": [float(v) for v in (np.zeros(d) if base is None else base)]},
        "point": [float(v) for v in point],
        "classes": [{"name": name, "color": color, "marker": class_marker(label)}
                    for label, (name, color) in enumerate(classes)],
        "codes": None,
        "encoder": None, "encoderNote": encoder_note,
        "posterior": None if posterior is None else {"input": posterior.input, "mu": posterior.mu.tolist(),
                                                     "logvar": posterior.logvar.tolist()},
    }
    if direction is not None:
        header["direction"] = direction_header(direction, d)
    header["likelihood"], per_pixel = likelihood_spec(model)
    if per_pixel is not None:
        sections["logSigma"] = per_pixel
    if encoder is not None:
        enc_dtype, enc_error = choose_encoder_dtype(model, encoder)
        sections["encoderWeights"], enc_offsets = weights_blob(encoder, enc_dtype)
        header["encoder"] = {"shape": list(encoder.image_shape), "latentDim": d, "dtype": enc_dtype,
                             "params": encoder.n_params, "ops": encoder.ops, "offsets": enc_offsets,
                             "float16Error": enc_error}
    if codes is not None and len(codes.mu):
        sections["codes"] = np.ascontiguousarray(codes.mu, "<f4").tobytes()
        sections["labels"] = np.ascontiguousarray(codes.labels, "<i4").tobytes()
        header["codes"] = {"count": int(len(codes.mu))}
        if sprite is not None or codes.images is not None:
            sections["sprite"] = sprite if sprite is not None else thumbnail_sprite(codes.images)
            header["codes"]["sprite"] = {"columns": SPRITE_COLUMNS}
    return pack(header, sections)
