"""A model's decoder and encoder as the browser runs them (vae/browser/programs.js): a short program of ops
(vae/browser/ops.py) over the model's own weights, and the choice of float16 or float32 for sending them.
The latent pad (vae/browser/pad.py) packs them into its payload."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vae.browser.ops import CONV, CONV_T, LINEAR, RELU, RESHAPE, SIGMOID
from vae.nets.model import VAE

# Weights a browser can run on every pointer move and receive every few seconds while a job trains:
# the default MLP decoder has 0.6 M, the default conv decoder 1.6 M.
MAX_BROWSER_PARAMS = 3_000_000


# Weights go as float16 (half the bytes) when that moves the decoded pictures by less than this, mean
# absolute difference per pixel in [0, 1] over FLOAT16_PROBE codes (a grey level is 1/255 = 3.9e-3);
# otherwise as float32.
FLOAT16_TOLERANCE = 5e-5
FLOAT16_PROBE = 64
# The encoder's weights go as float16 when that moves the posterior means by less than this, mean absolute
# difference in latent units over FLOAT16_PROBE inputs: a thousandth of the prior's sigma, under a tenth of a
# pixel on the pad.
ENCODER_FLOAT16_TOLERANCE = 1e-3


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


@torch.no_grad()
def encoder_float16_error(model: VAE, probe: int = FLOAT16_PROBE) -> float:
    """Mean absolute change of the posterior means (latent units) at `probe` fixed inputs in [0, 1] (mostly
    blank, as drawings are) when the encoder's weights are rounded to float16 and back."""
    g = torch.Generator().manual_seed(0)
    shape = (probe, *model.config.image_shape)
    x = torch.where(torch.rand(shape, generator=g) < 0.8, torch.zeros(()), torch.rand(shape, generator=g))

    def means(rounding: bool) -> torch.Tensor:  # functional calls: the model itself, maybe shared, is not touched
        def params(module: nn.Module) -> dict:
            return {n: (p.detach().half().float() if rounding else p.detach()) for n, p in module.named_parameters()}

        h = torch.func.functional_call(model.encoder, params(model.encoder), (x,))
        return torch.func.functional_call(model.to_mu, params(model.to_mu), (h,))

    mu, rounded = means(False), means(True)
    return float((mu - rounded).abs().mean())


def _fits_float16(program: Program) -> bool:
    return all(np.abs(t).max(initial=0.0) <= np.finfo(np.float16).max for t in program.tensors)


def choose_dtype(model: VAE, program: Program) -> str:
    """The decoder's: float16 when it fits every weight and keeps the pictures within FLOAT16_TOLERANCE, else
    float32."""
    return "float16" if _fits_float16(program) and float16_error(model) <= FLOAT16_TOLERANCE else "float32"


def choose_encoder_dtype(model: VAE, program: Program) -> tuple[str, float]:
    """The encoder's dtype, as choose_dtype, against ENCODER_FLOAT16_TOLERANCE; and the change float16 makes
    to the posterior means (0.0 for float32)."""
    error = encoder_float16_error(model) if _fits_float16(program) else float("inf")
    return ("float16", error) if error <= ENCODER_FLOAT16_TOLERANCE else ("float32", 0.0)
