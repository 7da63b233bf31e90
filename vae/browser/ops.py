"""The ops a program may hold, declared once: what vae/browser/programs.py emits for a model's decoder and its
encoder, what the browser (vae/browser/programs.js, its `OPS`) runs, and what tests/e2e/test_pad_ops.py
checks the two agree on, op by op.

An op travels in the payload's header as JSON: {"op": name, then its fields, then its tensors}, each
tensor named by its index into the program's tensors (flat float32 or float16, in the layout given).
The activation x is one flat float32 buffer of the shape the meaning gives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Op:
    name: str
    fields: tuple[str, ...]  # settings, in the order the header writes them
    tensors: tuple[str, ...]  # tensor indices it carries, written after the fields
    meaning: str  # what it computes, with shapes

    def make(self, tensors: list[np.ndarray], carried: Sequence[np.ndarray] = (), fields: dict | None = None) -> dict:
        """This op's JSON with `fields` (name -> value, one per self.fields); the `carried` tensors (one per
        name in self.tensors) are appended to the program's `tensors` and named by their indices there."""
        fields = fields or {}
        if OPS.get(self.name) is not self:
            raise ValueError(f"{self.name!r} is not an op of vae/browser/ops.py's OPS")
        if set(fields) != set(self.fields) or len(carried) != len(self.tensors):
            raise ValueError(f"op {self.name!r} takes fields {self.fields} and tensors {self.tensors}, "
                             f"got {tuple(fields)} and {len(carried)} tensors")
        start = len(tensors)
        tensors.extend(carried)
        return {"op": self.name, **{f: fields[f] for f in self.fields},
                **{t: start + i for i, t in enumerate(self.tensors)}}


LINEAR = Op("linear", ("in", "out"), ("w", "b"),
            "x (in,) -> x @ w + b (out,); w is torch's weight transposed, (in, out), so the browser skips "
            "the rows of the zeros a ReLU left; b (out,)")
RELU = Op("relu", (), (), "x -> max(x, 0), elementwise, any shape")
RESHAPE = Op("reshape", ("shape",), (), "x (n,) -> x as shape [C, H, W] or [n] (n = C * H * W); the buffer is "
             "unchanged")
CONV_T = Op("convT", ("cin", "cout", "in", "out", "k", "stride", "pad", "dil"), ("w", "b"),
            "torch's ConvTranspose2d, x (cin, *in) -> (cout, *out), in/out/k/stride/pad/dil as [h, w]; "
            "w (cin, cout, *k) as torch keeps it, b (cout,); output padding is implied by out")
CONV = Op("conv2d", ("cin", "cout", "in", "out", "k", "stride", "pad", "dil"), ("w", "b"),
          "torch's Conv2d, x (cin, *in) -> (cout, *out), in/out/k/stride/pad/dil as [h, w], zero padding; "
          "w (cout, cin, *k) as torch keeps it, b (cout,)")
SIGMOID = Op("sigmoid", (), (), "x -> 1 / (1 + exp(-x)), elementwise: the picture's mean in [0, 1]")

OPS: dict[str, Op] = {op.name: op for op in (LINEAR, RELU, RESHAPE, CONV_T, CONV, SIGMOID)}
