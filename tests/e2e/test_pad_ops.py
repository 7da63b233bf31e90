"""The ops of vae/browser/ops.py in a real Chromium, without Streamlit: the browser
(vae/browser/programs.js) runs exactly the ops Python declares, no fewer and no more, and each one
alone, as a one-op program through the page's compileProgram, gives torch's numbers for that op."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.e2e import pad_harness as harness
from vae.browser.ops import CONV, CONV_T, LINEAR, OPS, RELU, RESHAPE, SIGMOID
from vae.browser.programs import Program, weights_blob

pytestmark = pytest.mark.e2e

# |JS - torch| for outputs up to ~16: both sum in float32, in different orders (a float32 ulp at 16 is 1.9e-6;
# the cases differ by at most that).
ATOL, RTOL = 1e-5, 1e-6


@dataclass
class Case:
    """A one-op program: the op's JSON, its tensors, an input x (flat) and torch's output for it (flat),
    of shape (C, H, W)."""

    op: dict
    tensors: list[np.ndarray]
    x: np.ndarray
    want: np.ndarray
    shape: tuple[int, int, int]


def _input(rng, n: int, scale: float = 2.0) -> np.ndarray:
    """n float32 values around 0 with about a third exactly 0, as a ReLU leaves them (the JS skips those)."""
    x = rng.normal(0, scale, n).astype(np.float32)
    x[rng.random(n) < 0.3] = 0.0
    return x


def _linear(rng) -> Case:
    n_in, n_out = 7, 5
    weight, bias = rng.normal(size=(n_out, n_in)).astype(np.float32), rng.normal(size=n_out).astype(np.float32)
    x, tensors = _input(rng, n_in), []
    op = LINEAR.make(tensors, (weight.T.copy(), bias), {"in": n_in, "out": n_out})  # w sent as (in, out)
    want = F.linear(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias))
    return Case(op, tensors, x, want.numpy(), (1, 1, n_out))


def _relu(rng) -> Case:
    x, tensors = _input(rng, 40), []
    return Case(RELU.make(tensors), tensors, x, F.relu(torch.from_numpy(x)).numpy(), (1, 5, 8))


def _reshape(rng) -> Case:
    x, tensors = _input(rng, 24), []
    return Case(RESHAPE.make(tensors, (), {"shape": [2, 3, 4]}), tensors, x, x.copy(), (2, 3, 4))


def _sigmoid(rng) -> Case:
    x, tensors = np.concatenate([_input(rng, 30, 4.0), [-40.0, 40.0]]).astype(np.float32), []
    return Case(SIGMOID.make(tensors), tensors, x, torch.sigmoid(torch.from_numpy(x)).numpy(), (1, 1, 32))


def _conv_t(cin: int, cout: int, size, k, stride, pad, dil, out_pad) -> Callable:
    """A ConvTranspose2d case; every geometry argument is (h, w)."""
    def case(rng) -> Case:
        weight = rng.normal(size=(cin, cout, *k)).astype(np.float32)  # as torch keeps it
        bias = rng.normal(size=cout).astype(np.float32)
        x, tensors = _input(rng, cin * size[0] * size[1]), []
        want = F.conv_transpose2d(torch.from_numpy(x).reshape(1, cin, *size), torch.from_numpy(weight),
                                  torch.from_numpy(bias), stride, pad, out_pad, 1, dil)[0]
        fields = {"cin": cin, "cout": cout, "in": list(size), "out": list(want.shape[1:]), "k": list(k),
                  "stride": list(stride), "pad": list(pad), "dil": list(dil)}
        op = CONV_T.make(tensors, (weight, bias), fields)
        return Case(op, tensors, x, want.numpy().ravel(), tuple(want.shape))
    return case


def _conv(cin: int, cout: int, size, k, stride, pad, dil) -> Callable:
    """A Conv2d case (zero padding); every geometry argument is (h, w)."""
    def case(rng) -> Case:
        weight = rng.normal(size=(cout, cin, *k)).astype(np.float32)  # as torch keeps it
        bias = rng.normal(size=cout).astype(np.float32)
        x, tensors = _input(rng, cin * size[0] * size[1]), []
        want = F.conv2d(torch.from_numpy(x).reshape(1, cin, *size), torch.from_numpy(weight), torch.from_numpy(bias),
                        stride, pad, dil)[0]
        fields = {"cin": cin, "cout": cout, "in": list(size), "out": list(want.shape[1:]), "k": list(k),
                  "stride": list(stride), "pad": list(pad), "dil": list(dil)}
        return Case(CONV.make(tensors, (weight, bias), fields), tensors, x, want.numpy().ravel(), tuple(want.shape))
    return case


# A reference for every declared op; several for the ops with geometry.
CASES: dict[str, list[Callable]] = {
    "linear": [_linear],
    "relu": [_relu],
    "reshape": [_reshape],
    "convT": [
        _conv_t(3, 2, size=(4, 5), k=(3, 2), stride=(2, 1), pad=(1, 0), dil=(1, 1), out_pad=(1, 0)),
        _conv_t(2, 3, size=(3, 3), k=(2, 3), stride=(1, 2), pad=(0, 1), dil=(2, 1), out_pad=(0, 1)),
        _conv_t(4, 1, size=(7, 7), k=(4, 4), stride=(2, 2), pad=(1, 1), dil=(1, 1), out_pad=(0, 0)),  # the default decoder's
    ],
    "conv2d": [
        _conv(3, 2, size=(9, 7), k=(3, 2), stride=(2, 1), pad=(1, 0), dil=(1, 1)),
        _conv(2, 3, size=(8, 9), k=(2, 3), stride=(1, 2), pad=(0, 1), dil=(2, 1)),
        _conv(1, 4, size=(28, 20), k=(4, 4), stride=(2, 2), pad=(1, 1), dil=(1, 1)),  # the default encoder's
    ],
    "sigmoid": [_sigmoid],
}

_RUN_JS = """([model, b64, x]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const [run] = window.__pad.compileProgram(model.ops, model.offsets, window.__pad.weightsOf(model, bytes),
                                              model.latentDim, "one-op program");
    return Array.from(run(Float32Array.from(x)));
}"""


def _run(page, case: Case) -> np.ndarray:
    """The page's program runner (compileProgram, under compileDecoder and compileEncoder), compiled from the
    one-op program, at case.x; float32 weights, as a payload sends them."""
    program = Program([case.op], case.tensors, case.shape, len(case.x))
    blob, offsets = weights_blob(program, "float32")
    model = {"latentDim": len(case.x), "shape": list(case.shape), "dtype": "float32", "ops": [case.op], "offsets": offsets}
    got = page.evaluate(_RUN_JS, [model, base64.b64encode(blob).decode(), case.x.astype(float).tolist()])
    return np.asarray(got, np.float32)


@pytest.fixture(scope="module")
def page():
    with harness.module_page() as page:
        yield page


def test_the_browser_runs_exactly_the_ops_python_declares(page):
    js = set(page.evaluate("() => Object.keys(window.__pad.OPS)"))
    assert js == set(OPS), (f"declared in vae/browser/ops.py but not in programs.js's OPS: {sorted(set(OPS) - js)}; "
                            f"in the JS but never declared: {sorted(js - set(OPS))}")


@pytest.mark.parametrize("name", list(OPS))
def test_each_declared_op_gives_torchs_numbers_in_the_browser(page, name):
    assert name in CASES, f"op {name!r} is declared in vae/browser/ops.py but has no reference case here"
    for i, make_case in enumerate(CASES[name]):
        case = make_case(np.random.default_rng(i))
        assert case.op["op"] == name
        got = _run(page, case)
        assert got.shape == case.want.shape, f"{name} case {i}: {got.shape} values, torch gives {case.want.shape}"
        np.testing.assert_allclose(got, case.want, atol=ATOL, rtol=RTOL, err_msg=f"{name} case {i}")
    assert not page.errors, page.errors
