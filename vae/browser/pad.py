"""What the latent pad sends to the browser, which decodes the latent plane on every pointer move
(latent_pad.js, beside this file): the decoder as a short program of ops (vae/browser/ops.py) over its
own weights, a bounded set of test codes with their labels and thumbnails, packed as one binary payload.

A payload (little-endian) is b"LPAD", uint32 format, uint32 header length, the header as UTF-8 JSON
padded to 4 bytes, then the sections it points at, each 4-byte aligned: the weights (float16 or
float32), the codes (float32, (N, D)), the labels (int32, (N,)) and the thumbnails (one PNG).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vae.browser.ops import CONV, CONV_T, LINEAR, RELU, RESHAPE, SIGMOID
from vae.nets.model import VAE
from vae.render.images import png_bytes

MAGIC = b"LPAD"
FORMAT = 1

# The pad's browser side, plain files with no build step: the module that reads the payload and runs
# the ops, and its style.
PAD_JS = Path(__file__).with_name("latent_pad.js")
PAD_CSS = Path(__file__).with_name("latent_pad.css")


# Weights a browser can run on every pointer move and receive every few seconds while a job trains:
# the default MLP decoder has 0.6 M, the default conv decoder 1.6 M.
MAX_BROWSER_PARAMS = 3_000_000


# Weights go as float16 (half the bytes) when that moves the decoded pictures by less than this, mean
# absolute difference per pixel in [0, 1] over FLOAT16_PROBE codes (a grey level is 1/255 = 3.9e-3);
# otherwise as float32.
FLOAT16_TOLERANCE = 5e-5
FLOAT16_PROBE = 64
SPRITE_COLUMNS = 40


class UnsupportedDecoder(ValueError):
    """The browser cannot run this decoder; the message is the sentence the page shows."""


class UnsupportedEncoder(ValueError):
    """The browser cannot run this encoder; the message is the sentence the page shows."""


@dataclass
class Program:
    """A model's decoder or encoder as the browser runs it: layer descriptions (JSON) and their tensors, in
    order, over this model's image shape and latent size."""

    ops: list[dict]  # each made by its vae.browser.ops.Op
    tensors: list[np.ndarray]  # float32, in the layout each op names
    image_shape: tuple[int, int, int]  # (C, H, W) of the output
    latent_dim: int

    @property
    def n_params(self) -> int:
        return int(sum(t.size for t in self.tensors))


def _layers(module: nn.Module) -> list[nn.Module]:
    """The leaf modules of nested nn.Sequential containers, in the order they run."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _layers(child)]
    return [module]


def _bias(layer: nn.Module, size: int) -> np.ndarray:
    """The layer's bias (size,), zeros when it has none."""
    return np.zeros(size, np.float32) if layer.bias is None else layer.bias.detach().float().cpu().numpy()


def _conv_transpose_op(layer: nn.ConvTranspose2d, shape: tuple[int, ...], tensors: list) -> tuple[dict, tuple]:
    """(op, output shape (C, H, W)) for a ConvTranspose2d on an input of shape (C, H, W)."""
    if layer.groups != 1 or layer.padding_mode != "zeros" or not isinstance(layer.padding, tuple):
        raise UnsupportedDecoder("its decoder has a grouped or specially padded transposed convolution")
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    (dh, dw), (oph, opw) = layer.dilation, layer.output_padding
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    weight = layer.weight.detach().float().cpu().numpy()  # (C_in, C_out, kh, kw), as torch keeps it
    op = CONV_T.make(tensors, (weight, _bias(layer, layer.out_channels)),
                     {"cin": c, "cout": layer.out_channels, "in": [h, w], "out": [out_h, out_w], "k": [kh, kw],
                      "stride": [sh, sw], "pad": [ph, pw], "dil": [dh, dw]})
    return op, (layer.out_channels, out_h, out_w)


def decoder_program(model: VAE) -> Program:
    """The model's decoder, z (D,) -> sigmoid(logits) (C, H, W), as the browser ops of
    vae/browser/ops.py: linear, relu, reshape and convT per layer, and a final sigmoid (the picture's
    mean under either likelihood, as VAE.decode).

    Raises UnsupportedDecoder, with the sentence to show, for any other layer or a decoder too large
    to run on every pointer move."""
    d = model.config.latent_dim
    shape: tuple[int, ...] = (d,)
    ops: list[dict] = []
    tensors: list[np.ndarray] = []
    for layer in _layers(model.decoder):
        if isinstance(layer, nn.Linear) and len(shape) == 1 and shape[0] == layer.in_features:
            ops.append(_linear_op(layer, tensors))
            shape = (layer.out_features,)
        elif isinstance(layer, nn.ReLU):
            ops.append(RELU.make(tensors))
        elif isinstance(layer, nn.Unflatten) and layer.dim == 1 and int(np.prod(layer.unflattened_size)) == int(np.prod(shape)):
            shape = tuple(int(s) for s in layer.unflattened_size)
            ops.append(RESHAPE.make(tensors, (), {"shape": list(shape)}))
        elif isinstance(layer, nn.ConvTranspose2d) and len(shape) == 3 and shape[0] == layer.in_channels:
            op, shape = _conv_transpose_op(layer, shape, tensors)
            ops.append(op)
        else:
            raise UnsupportedDecoder(f"its decoder has a layer the browser cannot run ({type(layer).__name__})")
    if int(np.prod(shape)) != int(np.prod(model.config.image_shape)):
        raise UnsupportedDecoder("its decoder's output does not have the image's shape")
    ops.append(SIGMOID.make(tensors))
    program = Program(ops, [np.ascontiguousarray(t, np.float32) for t in tensors],
                             tuple(model.config.image_shape), d)
    if program.n_params > MAX_BROWSER_PARAMS:
        raise UnsupportedDecoder(f"its decoder has {program.n_params / 1e6:.1f} M weights, more than the browser "
                                 f"can run on every pointer move (up to {MAX_BROWSER_PARAMS / 1e6:.0f} M)")
    return program


def _conv_op(layer: nn.Conv2d, shape: tuple[int, ...], tensors: list) -> tuple[dict, tuple]:
    """(op, output shape (C, H, W)) for a Conv2d on an input of shape (C, H, W)."""
    if layer.groups != 1 or layer.padding_mode != "zeros" or not isinstance(layer.padding, tuple):
        raise UnsupportedEncoder("its encoder has a grouped or specially padded convolution")
    c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    out_h, out_w = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    op = CONV.make(tensors, (layer.weight.detach().float().cpu().numpy(), _bias(layer, layer.out_channels)),
                   {"cin": c, "cout": layer.out_channels, "in": [h, w], "out": [out_h, out_w], "k": [kh, kw],
                    "stride": [sh, sw], "pad": [ph, pw], "dil": [dh, dw]})
    return op, (layer.out_channels, out_h, out_w)


def encoder_program(model: VAE) -> Program:
    """The model's encoder, x (C, H, W) in [0, 1] -> [mu (D), logvar (D)], as the browser ops of
    vae/browser/ops.py: reshape, conv2d, relu and linear per layer, then the two heads to_mu and to_logvar as
    one linear of 2D outputs (the posterior q(z|x) = N(mu, diag(exp(logvar))), Kingma & Welling 2013).

    Raises UnsupportedEncoder, with the sentence to show, for any other layer or an encoder too large to
    run on every stroke."""
    shape: tuple[int, ...] = tuple(model.config.image_shape)
    ops: list[dict] = []
    tensors: list[np.ndarray] = []
    for layer in _layers(model.encoder):
        if isinstance(layer, nn.Flatten) and layer.start_dim == 1:
            shape = (int(np.prod(shape)),)
            ops.append(RESHAPE.make(tensors, (), {"shape": list(shape)}))
        elif isinstance(layer, nn.Conv2d) and len(shape) == 3 and shape[0] == layer.in_channels:
            op, shape = _conv_op(layer, shape, tensors)
            ops.append(op)
        elif isinstance(layer, nn.ReLU):
            ops.append(RELU.make(tensors))
        elif isinstance(layer, nn.Linear) and len(shape) == 1 and shape[0] == layer.in_features:
            ops.append(_linear_op(layer, tensors))
            shape = (layer.out_features,)
        else:
            raise UnsupportedEncoder(f"its encoder has a layer the browser cannot run ({type(layer).__name__})")
    heads = [model.to_mu, model.to_logvar]
    if shape != (heads[0].in_features,):
        raise UnsupportedEncoder("its encoder's output does not fit the posterior's heads")
    weight = torch.cat([h.weight for h in heads]).detach().float().cpu().numpy().T.copy()  # (in, 2D)
    bias = np.concatenate([_bias(h, h.out_features) for h in heads])
    ops.append(LINEAR.make(tensors, (weight, bias), {"in": shape[0], "out": 2 * model.config.latent_dim}))
    program = Program(ops, [np.ascontiguousarray(t, np.float32) for t in tensors], tuple(model.config.image_shape),
                      model.config.latent_dim)
    if program.n_params > MAX_BROWSER_PARAMS:
        raise UnsupportedEncoder(f"its encoder has {program.n_params / 1e6:.1f} M weights, more than the browser "
                                 f"can run on every stroke (up to {MAX_BROWSER_PARAMS / 1e6:.0f} M)")
    return program


def _linear_op(layer: nn.Linear, tensors: list) -> dict:
    """A Linear as the browser's linear op: its weight sent transposed, (in, out)."""
    weight = layer.weight.detach().float().cpu().numpy().T.copy()
    return LINEAR.make(tensors, (weight, _bias(layer, layer.out_features)),
                       {"in": layer.in_features, "out": layer.out_features})


@torch.no_grad()
def float16_error(model: VAE, probe: int = FLOAT16_PROBE, radius: float = 3.0) -> float:
    """Mean absolute change per pixel (pixels in [0, 1]) of the decoded pictures at `probe` fixed codes
    in [-radius, radius]^D when the decoder's weights are rounded to float16 and back."""
    z = torch.linspace(-radius, radius, probe)[:, None] * torch.cos(torch.arange(model.config.latent_dim) + 1.0)
    params = {name: p.detach().cpu() for name, p in model.decoder.named_parameters()}
    rounded = {name: p.half().float() for name, p in params.items()}
    exact = torch.sigmoid(torch.func.functional_call(model.decoder, params, (z,)))
    approx = torch.sigmoid(torch.func.functional_call(model.decoder, rounded, (z,)))
    return float((exact - approx).abs().mean())


def weights_blob(program: Program, dtype: str) -> tuple[bytes, list[int]]:
    """Every tensor of the program, flat and concatenated in `dtype` ('float16' or 'float32'), and the
    element offset where each starts."""
    offsets = np.cumsum([0] + [t.size for t in program.tensors])[:-1].tolist()
    flat = np.concatenate([t.ravel() for t in program.tensors]) if program.tensors else np.zeros(0, np.float32)
    return flat.astype("<f2" if dtype == "float16" else "<f4").tobytes(), [int(o) for o in offsets]


def choose_dtype(model: VAE, program: Program) -> str:
    """float16 when it fits every weight and keeps the pictures within FLOAT16_TOLERANCE, else float32."""
    fits = all(np.abs(t).max(initial=0.0) <= np.finfo(np.float16).max for t in program.tensors)
    return "float16" if fits and float16_error(model) <= FLOAT16_TOLERANCE else "float32"


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


def pad_payload(model: VAE, program: Program, *, model_key: str, dims: tuple[int, ...],
                base: np.ndarray | None, point: tuple[float, ...], limit: float, classes: list[tuple[str, str]],
                codes: PadCodes | None, sprite: bytes | None = None, dtype: str | None = None) -> bytes:
    """Everything the pad needs for one model version and plane, as one payload.

    dims: the one or two latent dimensions the pad spans (0-based); base: (D,) the code the other
    dimensions are held at (zeros when None); point: the pad's starting point in those dimensions;
    classes: (name, colour) per label; sprite: thumbnail_sprite of codes.images (made here when None).
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
        "classes": [{"name": name, "color": color} for name, color in classes],
        "codes": None,
    }
    if codes is not None and len(codes.mu):
        sections["codes"] = np.ascontiguousarray(codes.mu, "<f4").tobytes()
        sections["labels"] = np.ascontiguousarray(codes.labels, "<i4").tobytes()
        header["codes"] = {"count": int(len(codes.mu))}
        if sprite is not None or codes.images is not None:
            sections["sprite"] = sprite if sprite is not None else thumbnail_sprite(codes.images)
            header["codes"]["sprite"] = {"columns": SPRITE_COLUMNS}
    return pack(header, sections)
