"""The notebook widget (vae/browser/notebook.py) without a browser: what it accepts as its model, the payload it sends
and when it sends a new one, the traits the front end sets, its module (the pad's own, plus the adapter) and each
mistake a user can make, in one sentence. In JupyterLab and Chromium: tests/e2e/test_notebook.py."""
import importlib
import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("anywidget", reason="the notebook widget needs anywidget (requirements-dev.txt)")

from tests.conftest import ROOT
from vae import checkpoint as ckpt_io
from vae.browser.notebook import LatentPad
from vae.browser.pad import PAD_CSS, pad_js, unpack
from vae.browser.share import NotShareable
from vae.config import ModelConfig
from vae.nets.model import VAE

SHIPPED = ROOT / "checkpoints" / "default-mnist-2d.pt"


def _model(latent_dim: int = 2, hidden=(32, 16), seed: int = 0) -> VAE:
    return VAE(ModelConfig(latent_dim=latent_dim, hidden=hidden), torch.Generator().manual_seed(seed)).eval()


def _header(widget: LatentPad) -> dict:
    return unpack(widget.payload)[0]


def _first_decoder_weights(widget: LatentPad) -> np.ndarray:
    """The first linear's weight (in, out) as the payload carries it, in float32."""
    header, sections = unpack(widget.payload)
    model = header["model"]
    flat = np.frombuffer(sections["weights"], "<f2" if model["dtype"] == "float16" else "<f4").astype(np.float32)
    op = model["ops"][0]
    start = model["offsets"][op["w"]]
    return flat[start:start + op["in"] * op["out"]].reshape(op["in"], op["out"])


@pytest.fixture(scope="module")
def shipped():
    return ckpt_io.load(SHIPPED)


@pytest.mark.parametrize("given", ["str", "path", "checkpoint"])
def test_a_checkpoint_or_its_path_gives_its_model_codes_and_classes(shipped, given):
    value = {"str": str(SHIPPED), "path": SHIPPED, "checkpoint": shipped}[given]
    widget = LatentPad(value)
    assert widget.model is shipped if given == "checkpoint" else widget.model.path == str(SHIPPED)
    header = _header(widget)
    assert header["model"]["key"].startswith("notebook:") and header["model"]["latentDim"] == 2
    assert header["encoder"] is not None and header["codes"]["count"] == 1000
    assert [c["name"] for c in header["classes"]] == shipped.class_names
    assert widget.payload == LatentPad(shipped).payload  # the same weights, the same payload


def test_a_bare_vae_module_gives_its_programs_without_codes():
    model = _model(latent_dim=5)
    widget = LatentPad(model)
    header = _header(widget)
    assert widget.model is model
    assert header["model"]["latentDim"] == 5 and header["plane"]["dims"] == [0, 1] and header["codes"] is None
    np.testing.assert_allclose(_first_decoder_weights(widget), model.decoder[0][0].weight.detach().numpy().T, atol=2e-3)


def test_the_traits_start_empty_and_take_what_the_front_end_sends():
    widget = LatentPad(_model())
    assert widget.point is None and widget.mu == [] and widget.sigma == []
    point = {"dims": [0, 1], "z": [1.25, -0.5], "code": [1.25, -0.5]}
    widget.set_state({"point": point, "mu": [0.5, -1.0], "sigma": [0.1, 0.2]})  # what a comm message from the page does
    assert widget.point == point and widget.mu == [0.5, -1.0] and widget.sigma == [0.1, 0.2]
    state = widget.get_state()
    assert {"payload", "point", "mu", "sigma"} <= state.keys() and "model" not in state  # the module stays here


def test_training_the_same_module_and_assigning_it_again_sends_new_weights_to_the_same_widget():
    model, sent = _model(), []
    widget = LatentPad(model)
    widget.observe(lambda change: sent.append(change["new"]), "payload")
    before = _header(widget)["model"]["key"]
    widget.model = model  # unchanged weights: nothing to send
    assert sent == []
    with torch.no_grad():  # stands in for more training
        for p in model.parameters():
            p.add_(0.1)
    widget.model = model
    assert len(sent) == 1 and _header(widget)["model"]["key"] != before
    np.testing.assert_allclose(_first_decoder_weights(widget), model.decoder[0][0].weight.detach().numpy().T, atol=2e-3)


def test_another_model_swaps_in_and_its_latent_size_comes_with_it(shipped):
    widget = LatentPad(shipped)
    widget.model = _model(latent_dim=1)
    header = _header(widget)
    assert header["model"]["latentDim"] == 1 and header["plane"]["dims"] == [0] and header["codes"] is None


def test_a_missing_checkpoint_is_one_sentence_and_leaves_the_widget_as_it_was(tmp_path):
    with pytest.raises(ckpt_io.CheckpointError) as e:
        LatentPad(tmp_path / "missing.pt")
    message = str(e.value)
    assert message.startswith("missing.pt could not be read") and message.endswith("check that the file exists.")
    assert "\n" not in message
    model = _model()
    widget = LatentPad(model)
    payload = widget.payload
    with pytest.raises(ckpt_io.CheckpointError):
        widget.model = str(tmp_path / "missing.pt")
    assert widget.model is model and widget.payload == payload


def test_something_that_is_not_a_model_is_refused_in_one_sentence():
    with pytest.raises(TypeError, match=r"^LatentPad takes a VAE, a Checkpoint or a checkpoint's path, not a dict\.$"):
        LatentPad({"state_dict": {}})


def test_a_model_the_page_cannot_run_is_refused_in_one_sentence():
    with pytest.raises(NotShareable, match=r"^This model cannot be explored in a page on its own: its decoder has "
                                           r"[\d.]+ M weights, more than the browser can run"):
        LatentPad(_model(hidden=(1400, 1400)))


def test_the_widgets_module_is_the_pads_own_module_and_the_adapter():
    first, adapter = LatentPad._esm.split("\n", 1)
    assert first.startswith("const PAD_MODULE = ") and first.endswith(";")
    assert json.loads(first[len("const PAD_MODULE = "):-1]) == pad_js()  # the very source, not a copy
    assert "export default { render };" in adapter and "export default" not in adapter.replace("export default {", "")
    assert LatentPad._css.startswith(PAD_CSS.read_text())


def test_without_anywidget_the_import_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)  # what an import sees when the package is absent
    monkeypatch.delitem(sys.modules, "vae.browser.notebook")
    with pytest.raises(ImportError, match=r"^The notebook widget needs anywidget: pip install anywidget$"):
        importlib.import_module("vae.browser.notebook")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_on_the_gpu_is_sent_from_a_cpu_copy_and_stays_on_the_gpu():
    model = _model().cuda()
    widget = LatentPad(model)
    assert next(model.parameters()).is_cuda
    np.testing.assert_allclose(_first_decoder_weights(widget), model.decoder[0][0].weight.detach().cpu().numpy().T,
                               atol=2e-3)
