"""The latent pad's payload (vae/browser/pad.py): the decoder and the encoder as browser ops
(vae/browser/programs.py, vae/browser/ops.py), float16 only where it is harmless, the binary layout, the
thumbnails, the likelihood, and the input a page sends for the server to encode. The browser's arithmetic over
these is tested in tests/e2e/test_latent_pad_js.py (whole decoders) and tests/e2e/test_pad_ops.py (each op)."""
import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from vae.config import ModelConfig
from vae.render.images import to_uint8
from vae.nets.model import VAE
from vae.browser.ops import LINEAR, OPS, Op
from vae.browser.pad import (PadCodes, PadDirection, pack, pad_payload, sent_input, server_posterior,
                             thumbnail_sprite, unpack)
from vae.browser.programs import (MAX_BROWSER_PARAMS, UnsupportedDecoder, UnsupportedEncoder, choose_dtype,
                                  decoder_program, encoder_program, float16_error, weights_blob)


def _model(arch: str = "mlp", latent_dim: int = 2, hidden=(32, 16), seed: int = 0, **kw) -> VAE:
    return VAE(ModelConfig(arch=arch, latent_dim=latent_dim, hidden=hidden, **kw), torch.Generator().manual_seed(seed)).eval()


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_an_mlp_decoder_becomes_linear_relu_ops_with_transposed_weights(latent_dim):
    model = _model(latent_dim=latent_dim)
    program = decoder_program(model)
    assert [op["op"] for op in program.ops] == ["linear", "relu", "linear", "relu", "linear", "reshape", "sigmoid"]
    first = program.ops[0]
    assert (first["in"], first["out"]) == (latent_dim, 16)
    linear = model.decoder[0][0]
    np.testing.assert_array_equal(program.tensors[first["w"]], linear.weight.detach().numpy().T)  # (in, out)
    np.testing.assert_array_equal(program.tensors[first["b"]], linear.bias.detach().numpy())
    assert program.ops[-2]["shape"] == [1, 28, 28]
    assert program.n_params == sum(p.numel() for p in model.decoder.parameters())


def test_a_conv_decoder_becomes_linear_and_transposed_convolution_ops():
    model = _model("conv", hidden=(48,))
    program = decoder_program(model)
    assert [op["op"] for op in program.ops] == ["linear", "relu", "linear", "relu", "reshape", "convT", "relu", "convT",
                                                "sigmoid"]
    first, last = program.ops[5], program.ops[7]
    assert (first["cin"], first["cout"], first["in"], first["out"]) == (64, 32, [7, 7], [14, 14])
    assert (first["k"], first["stride"], first["pad"], first["dil"]) == ([4, 4], [2, 2], [1, 1], [1, 1])
    assert (last["cin"], last["cout"], last["out"]) == (32, 1, [28, 28])
    np.testing.assert_array_equal(program.tensors[last["w"]], model.decoder[7].weight.detach().numpy())  # (in, out, kh, kw)
    assert program.n_params == sum(p.numel() for p in model.decoder.parameters())


@pytest.mark.parametrize("arch, hidden", [("mlp", (32, 16)), ("conv", (48,))])
def test_every_op_emitted_is_declared_with_exactly_its_fields_and_tensors(arch, hidden):
    model = _model(arch, hidden=hidden)
    for program in (decoder_program(model), encoder_program(model)):
        for op in program.ops:
            spec = OPS[op["op"]]
            assert list(op) == ["op", *spec.fields, *spec.tensors]
            assert all(0 <= op[t] < len(program.tensors) for t in spec.tensors)
        assert sorted(op[t] for op in program.ops for t in OPS[op["op"]].tensors) == list(range(len(program.tensors)))


def test_the_encoder_program_ends_in_both_posterior_heads():
    """The last op is to_mu and to_logvar as one linear: its 2D outputs are mu, then logvar."""
    model = _model("conv")
    program = encoder_program(model)
    head = program.ops[-1]
    d = model.config.latent_dim
    assert head["op"] == "linear" and head["out"] == 2 * d
    weight = program.tensors[head["w"]]
    np.testing.assert_array_equal(weight[:, :d], model.to_mu.weight.detach().numpy().T)
    np.testing.assert_array_equal(weight[:, d:], model.to_logvar.weight.detach().numpy().T)


def test_an_encoder_layer_the_browser_cannot_run_is_named_in_one_sentence():
    model = _model()
    model.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, model.to_mu.in_features), nn.Tanh())
    with pytest.raises(UnsupportedEncoder, match=r"a layer the browser cannot run \(Tanh\)"):
        encoder_program(model)


def test_an_op_outside_the_table_or_with_other_fields_is_refused():
    with pytest.raises(ValueError, match="not an op of"):
        Op("tanh", (), (), "x -> tanh(x)").make([])
    with pytest.raises(ValueError, match="takes fields"):
        LINEAR.make([], (np.zeros((2, 3)), np.zeros(3)), {"in": 2})


def test_a_layer_the_browser_cannot_run_is_named_in_one_sentence():
    model = _model()
    model.decoder = nn.Sequential(nn.Linear(2, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    with pytest.raises(UnsupportedDecoder, match=r"a layer the browser cannot run \(Tanh\)"):
        decoder_program(model)


def test_a_decoder_too_large_for_every_pointer_move_is_refused_with_its_size():
    model = _model(hidden=(1400, 1400))
    assert sum(p.numel() for p in model.decoder.parameters()) > MAX_BROWSER_PARAMS
    with pytest.raises(UnsupportedDecoder, match=r"3\.1 M weights, more than the browser can run on every pointer move"):
        decoder_program(model)


def test_float16_is_chosen_when_harmless_and_float32_when_a_weight_would_overflow():
    model = _model()
    assert float16_error(model) < 1e-4
    assert choose_dtype(model, decoder_program(model)) == "float16"
    with torch.no_grad():
        model.decoder[0][0].bias[0] = 1e6  # beyond float16's 65504
    assert choose_dtype(model, decoder_program(model)) == "float32"


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_the_weights_blob_holds_every_tensor_at_its_offset(dtype):
    program = decoder_program(_model())
    blob, offsets = weights_blob(program, dtype)
    flat = np.frombuffer(blob, "<f2" if dtype == "float16" else "<f4").astype(np.float32)
    assert len(flat) == program.n_params
    for tensor, offset in zip(program.tensors, offsets):
        got = flat[offset:offset + tensor.size]
        np.testing.assert_allclose(got, tensor.ravel(), rtol=1e-3 if dtype == "float16" else 0, atol=1e-4 if dtype == "float16" else 0)


@pytest.mark.parametrize("lengths", [[], [3], [4, 1, 7], [0, 5]])
def test_pack_aligns_every_section_and_unpack_reads_them_back(lengths):
    sections = {f"s{i}": bytes(range(i, i + n)) for i, n in enumerate(lengths)}
    payload = pack({"title": "é ok"}, sections)
    assert payload[:4] == b"LPAD"
    header, read = unpack(payload)
    assert header["title"] == "é ok" and read == sections
    start = len(payload) - sum(n + (-n % 4) for n in lengths)
    assert start % 4 == 0
    assert all((start + offset) % 4 == 0 for offset, _ in header["sections"].values())


def test_unpack_refuses_what_is_not_a_payload():
    with pytest.raises(ValueError, match="Not a latent pad payload"):
        unpack(b"PK\x03\x04" + bytes(20))


@pytest.mark.parametrize("channels", [1, 3])
def test_the_thumbnail_sprite_tiles_the_images_row_major(channels):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (45, channels, 6, 5), dtype=np.uint8)
    sheet = np.asarray(Image.open(io.BytesIO(thumbnail_sprite(images, columns=8))))
    assert sheet.shape[:2] == (6 * 6, 8 * 5)
    sheet = sheet.reshape(sheet.shape[0], sheet.shape[1], -1)
    for k in (0, 7, 8, 44):
        r, c = divmod(k, 8)
        np.testing.assert_array_equal(sheet[r * 6:(r + 1) * 6, c * 5:(c + 1) * 5], images[k].transpose(1, 2, 0))


def test_a_payload_carries_the_plane_the_codes_and_the_model_version():
    model = _model(latent_dim=4)
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(30, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    images = to_uint8(rng.random((30, 1, 28, 28)))
    base = mu[5]
    payload = pad_payload(model, decoder_program(model), model_key="job:1:7", dims=(2, 3), base=base, point=(0.5, -1.0),
                          limit=4.0, classes=[("a", "#000000"), ("b", "#111111"), ("c", "#222222")],
                          codes=PadCodes(mu, labels, images))
    header, sections = unpack(payload)
    assert header["model"]["key"] == "job:1:7" and header["model"]["latentDim"] == 4
    assert header["model"]["shape"] == [1, 28, 28] and header["model"]["dtype"] == "float16"
    assert header["plane"] == {"dims": [2, 3], "names": ["z3", "z4"], "limit": 4.0, "base": pytest.approx(base.tolist())}
    assert header["point"] == [0.5, -1.0]
    assert header["codes"]["count"] == 30 and [c["name"] for c in header["classes"]] == ["a", "b", "c"]
    np.testing.assert_array_equal(np.frombuffer(sections["codes"], "<f4").reshape(30, 4), mu)
    np.testing.assert_array_equal(np.frombuffer(sections["labels"], "<i4"), labels)
    assert sections["sprite"] == thumbnail_sprite(images)
    assert len(sections["weights"]) == 2 * decoder_program(model).n_params


def test_a_payload_without_codes_still_carries_the_decoder():
    model = _model()
    header, sections = unpack(pad_payload(model, decoder_program(model), model_key="k", dims=(0, 1), base=None,
                                          point=(0.0, 0.0), limit=4.0, classes=[], codes=None))
    assert header["codes"] is None and set(sections) == {"weights"}
    assert header["plane"]["base"] == [0.0, 0.0]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-pixel"])
def test_a_payload_carries_the_encoder_and_the_likelihood_the_page_needs_for_the_elbo(likelihood):
    model = _model(latent_dim=3, likelihood=likelihood)
    encoder = encoder_program(model)
    header, sections = unpack(pad_payload(model, decoder_program(model), model_key="k", dims=(0, 1), base=None,
                                          point=(0.0, 0.0), limit=4.0, classes=[], codes=None, encoder=encoder))
    enc = header["encoder"]
    assert enc["ops"] == encoder.ops and enc["latentDim"] == 3 and enc["shape"] == [1, 28, 28]
    width = 2 if enc["dtype"] == "float16" else 4
    assert len(sections["encoderWeights"]) == width * encoder.n_params
    assert enc["dtype"] == "float16" and 0 < enc["float16Error"] <= 1e-3  # a small model: float16 is harmless
    assert header["likelihood"]["kind"] == likelihood and header["posterior"] is None
    if likelihood == "gaussian":
        assert header["likelihood"]["logSigma"] == pytest.approx(float(model.log_sigma.detach()))
    if likelihood == "gaussian-pixel":
        np.testing.assert_array_equal(np.frombuffer(sections["logSigma"], "<f4"),
                                      model.log_sigma.detach().numpy().ravel())
    else:
        assert "logSigma" not in sections


def test_without_an_encoder_the_payload_says_why_and_carries_the_servers_posterior():
    model = _model(latent_dim=2)
    x = np.zeros((1, 28, 28), np.uint8)
    x[0, 8:20, 12:15] = 255
    sent = {"input": 3, "shape": [1, 28, 28], "pixels": base64.b64encode(x.tobytes()).decode()}
    posterior = server_posterior(model, sent)
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(x.astype(np.float32) / 255)[None])
    assert posterior.input == 3
    np.testing.assert_allclose(posterior.mu, mu[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(posterior.logvar, logvar[0].numpy(), atol=1e-6)
    header, sections = unpack(pad_payload(model, decoder_program(model), model_key="k", dims=(0, 1), base=None,
                                          point=(0.0, 0.0), limit=4.0, classes=[], codes=None,
                                          encoder_note="The server encodes.", posterior=posterior))
    assert header["encoder"] is None and header["encoderNote"] == "The server encodes."
    assert header["posterior"]["input"] == 3 and header["posterior"]["mu"] == pytest.approx(mu[0].tolist(), abs=1e-6)
    assert "encoderWeights" not in sections


@pytest.mark.parametrize("sent", [
    None, [], "pixels", {"input": 1, "shape": [1, 28, 28]},
    {"input": 1, "shape": [3, 28, 28], "pixels": base64.b64encode(bytes(3 * 784)).decode()},  # another shape
    {"input": 1, "shape": [1, 28, 28], "pixels": base64.b64encode(bytes(783)).decode()},  # one byte short
    {"input": 1, "shape": [1, 28, 28], "pixels": "not base64 at all!"},
    {"input": "1", "shape": [1, 28, 28], "pixels": base64.b64encode(bytes(784)).decode()},
    {"input": 1, "shape": [1, 28, 28], "pixels": "A" * 10_000_000},  # far too long: refused before decoding
], ids=["none", "list", "str", "no-pixels", "other-shape", "short", "bad-base64", "bad-number", "huge"])
def test_what_the_page_sends_for_the_server_to_encode_is_checked_not_trusted(sent):
    assert sent_input(_model(), sent) is None and server_posterior(_model(), sent) is None


def _direction_payload(model: VAE, direction) -> bytes:
    return pad_payload(model, decoder_program(model), model_key="k", dims=(0, 1), base=None, point=(0.0, 0.0),
                       limit=4.0, classes=[], codes=None, direction=direction)


def test_a_direction_travels_in_the_header_with_its_alpha_range():
    model = _model(latent_dim=3)
    v = np.array([0.5, -1.25, 2.0], np.float32)
    header, _ = unpack(_direction_payload(model, PadDirection("1 \u2192 7", v, -1.5, 3.0)))
    assert header["direction"] == {"name": "1 \u2192 7", "vector": [0.5, -1.25, 2.0], "alpha": [-1.5, 3.0]}
    assert unpack(_direction_payload(model, PadDirection("d", v)))[0]["direction"]["alpha"] == [-2.0, 2.0]


def test_without_a_direction_the_payload_is_byte_for_byte_what_it_was():
    model = _model(latent_dim=3)
    plain = pad_payload(model, decoder_program(model), model_key="k", dims=(0, 1), base=None, point=(0.0, 0.0),
                        limit=4.0, classes=[], codes=None)
    assert _direction_payload(model, None) == plain
    assert "direction" not in unpack(plain)[0]


@pytest.mark.parametrize("vector, low, high, message", [
    ([0.0, np.nan, 1.0], -2.0, 2.0, "NaN or infinite"),
    ([0.0, np.inf, 1.0], -2.0, 2.0, "NaN or infinite"),
    ([1.0, 2.0], -2.0, 2.0, "3 dimensions"),
    ([[1.0, 2.0, 3.0]], -2.0, 2.0, "3 dimensions"),
    ([1.0, 2.0, 3.0], 1.0, 1.0, "min < max"),
    ([1.0, 2.0, 3.0], 2.0, -2.0, "min < max"),
    ([1.0, 2.0, 3.0], -np.inf, 2.0, "min < max"),
], ids=["nan", "inf", "short", "2-d", "empty-range", "reversed-range", "infinite-bound"])
def test_a_direction_the_page_cannot_walk_is_refused_in_one_sentence(vector, low, high, message):
    direction = PadDirection("d", np.asarray(vector, np.float32), low, high)
    with pytest.raises(ValueError, match=message) as error:
        _direction_payload(_model(latent_dim=3), direction)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")
