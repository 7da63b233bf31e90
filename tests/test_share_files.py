"""What a user takes away: `python -m vae share --with-images` (the test images' thumbnails, in the stored codes'
order, only on request), the model as a checkpoint file from a view (a loaded file's own bytes, a live snapshot
written as one), and the names those files get. The exported page itself is tested in Chromium
(tests/e2e/test_share.py)."""
from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT
from tests.test_cli import TINY
from vae import checkpoint as ckpt_io
from vae.browser.pad import SPRITE_COLUMNS, unpack
from vae.cli import main
from vae.data import load_dataset
from vae.render.images import to_uint8
from vae.training.view import ModelView

SHIPPED = ROOT / "checkpoints" / "default-mnist-2d.pt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny shapes model (which stores its test codes) and the data folder its shapes are in."""
    folder = tmp_path_factory.mktemp("share")
    data = folder / "data"
    out = folder / "tiny.pt"
    assert main(["train", *TINY, "--data-dir", str(data), "--out", str(out)]) == 0
    return out, data


def _payload(path) -> tuple[dict, dict, str]:
    text = path.read_text()
    payload = json.loads(re.search(r'<script type="application/json" id="lx-payload">(.*?)</script>', text).group(1))
    header, sections = unpack(base64.b64decode(payload))
    return header, sections, text


def test_with_images_puts_the_first_test_images_in_the_stored_codes_order(trained, tmp_path, capsys):
    checkpoint, data = trained
    out = tmp_path / "with.html"
    assert main(["share", str(checkpoint), "--out", str(out), "--with-images", "--data-dir", str(data), "--json"]) == 0
    header, sections, text = _payload(out)
    n = header["codes"]["count"]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"] == n > 0
    sheet = np.asarray(Image.open(io.BytesIO(sections["sprite"])))  # (rows * H, columns * W) grey
    images = to_uint8(load_dataset("shapes", "test", data).float_images()[:n].numpy())[:, 0]  # (n, H, W)
    h, w = images.shape[1:]
    for i in (0, 1, n - 1):
        r, c = divmod(i, SPRITE_COLUMNS)
        np.testing.assert_array_equal(sheet[r * h:(r + 1) * h, c * w:(c + 1) * w], images[i])
    stored = ckpt_io.load(checkpoint).extras["codes"]["mu"][:n].float().numpy()
    codes = np.frombuffer(sections["codes"], np.float32).reshape(n, -1)
    np.testing.assert_allclose(codes, stored, atol=1e-6)
    assert "Test images" in text


def test_without_images_the_file_holds_no_thumbnails(trained, tmp_path):
    checkpoint, _ = trained
    out = tmp_path / "plain.html"
    assert main(["share", str(checkpoint), "--out", str(out)]) == 0
    header, sections, text = _payload(out)
    assert "sprite" not in sections and "sprite" not in header["codes"] and "Test images" not in text


def test_with_images_where_the_data_is_not_here_is_one_sentence_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.html"
    assert main(["share", str(SHIPPED), "--out", str(out), "--with-images", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0 and "--data-dir" in err and not out.exists()


def test_with_images_of_a_model_that_stores_no_codes_is_one_sentence(trained, tmp_path, capsys):
    checkpoint, data = trained
    ckpt = ckpt_io.load(checkpoint)
    payload = ckpt_io.build_payload(ckpt.model, train_config=ckpt.train_config, dataset=ckpt.dataset,
                                    class_names=ckpt.class_names, history=ckpt.history, extras={})
    bare = ckpt_io.save(payload, tmp_path / "bare.pt")
    assert main(["share", str(bare), "--out", str(tmp_path / "b.html"), "--with-images", "--data-dir", str(data)]) == 2
    assert "without --with-images" in capsys.readouterr().err


def test_a_loaded_checkpoint_downloads_as_its_own_file():
    view = ModelView.from_checkpoint(ckpt_io.load(SHIPPED))
    assert view.file_bytes() == SHIPPED.read_bytes() and view.file_stem == "default-mnist-2d"


def test_a_live_snapshot_downloads_as_a_checkpoint_the_loader_reads_back():
    ckpt = ckpt_io.load(SHIPPED)
    view = ModelView.from_checkpoint(ckpt)
    view.live, view.name = True, "my run: β=4 / epoch 3"
    back = ckpt_io.load(view.file_bytes())
    for key, value in ckpt.model.state_dict().items():
        torch.testing.assert_close(back.model.state_dict()[key], value, rtol=0, atol=0)
    assert back.epoch == ckpt.epoch and back.class_names == ckpt.class_names and back.optimizer_state is None
    assert "codes" in back.extras and view.file_stem == "my-run-4-epoch-3"
