"""vae/data/matfile.py against MAT-files written here by a small Level 5 writer (MathWorks, "MAT-File
Format"): both byte orders, plain and miCOMPRESSED, small data elements; the Frey Face layout; and
every refusal as one sentence."""
from __future__ import annotations

import os
import re
import struct
import threading
import time
import zlib

import numpy as np
import pytest

from tests.matwriter import (MI, MI_COMPRESSED, MI_INT8, MI_INT32, MI_MATRIX, MI_UINT32, MX, MX_CHAR, compressed,
                             element, header, matrix, write_mat)
from vae.data.matfile import FREY_FILE, FREY_SHAPE, MatFileError, load_frey_faces, read_mat_variable


def one_sentence(message: str) -> None:
    assert isinstance(message, str) and message
    assert "\n" not in message and message.endswith("."), message
    assert not re.search(r"\.\s", message), f"more than one sentence: {message}"


def refusal(data: bytes | str, name: str = "x", **kw) -> str:
    with pytest.raises(MatFileError) as info:
        read_mat_variable(data, name, **kw)
    one_sentence(str(info.value))
    return str(info.value)


def face(j: int) -> np.ndarray:
    """A 28 x 20 uint8 face: bright top rows, a dark bottom, column-dependent shading, and j
    in the corner so every face differs."""
    img = np.zeros(FREY_SHAPE, dtype=np.uint8)
    img[:7] = 250
    img[7:21] = (np.arange(20) * 10)[None, :]
    img[27, 19] = j
    return img


# ---- round trips ----

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
def test_round_trip(dtype: str, order: str, compress: bool) -> None:
    arr = (np.arange(15).reshape(3, 5) * 7 - (20 if dtype != "uint8" else 0)).astype(dtype)
    if dtype.startswith("float"):
        arr = arr / 4
    got = read_mat_variable(write_mat({"longname": arr}, order, compress), "longname")
    assert got.dtype == arr.dtype and got.shape == (3, 5)
    np.testing.assert_array_equal(got, arr)
    assert got.flags.writeable


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("order", ["<", ">"])
def test_three_dimensional(order: str, compress: bool) -> None:
    arr = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    got = read_mat_variable(write_mat({"cube": arr}, order, compress), "cube")
    assert got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, arr)


def test_column_major_order_element_by_element() -> None:
    # MATLAB stores A(1,1), A(2,1), A(1,2), ...: bytes 1..6 for a 2 x 3 matrix mean [[1 3 5], [2 4 6]].
    raw = matrix("A", np.zeros((2, 3), np.uint8), data=bytes([1, 2, 3, 4, 5, 6]))
    got = read_mat_variable(header() + raw, "A")
    assert got.shape == (2, 3)
    for (r, c), v in {(0, 0): 1, (1, 0): 2, (0, 1): 3, (1, 1): 4, (0, 2): 5, (1, 2): 6}.items():
        assert got[r, c] == v


@pytest.mark.parametrize("order", ["<", ">"])
def test_double_class_stored_as_uint8(order: str) -> None:
    arr = np.array([[0.0, 1, 2], [255, 128, 7]])
    raw = matrix("d", arr, order=order, store="u1")
    got = read_mat_variable(header(order) + compressed(order, raw), "d")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, arr)


def test_small_data_elements_for_name_and_data() -> None:
    raw = matrix("ff", np.array([[1, 2], [3, 4]], np.uint8))  # name and 4 data bytes: small format
    assert struct.unpack_from("<I", raw, 8 + 16 + 16)[0] == (2 << 16 | MI_INT8)
    got = read_mat_variable(header() + raw, "ff")
    np.testing.assert_array_equal(got, [[1, 2], [3, 4]])


def test_picks_the_named_variable_among_several() -> None:
    order = ">"
    char = matrix("txt", np.frombuffer("hi".encode("utf-16-be"), ">u2").reshape(1, 2), order=order,
                  mx_class=MX_CHAR)
    cplx = matrix("z", np.ones((2, 2)), order=order, flags=0x0800)
    a, b = np.arange(6.0).reshape(2, 3), np.arange(4, dtype=np.int16).reshape(4, 1)
    data = (header(order) + char + compressed(order, cplx) + matrix("alpha", a, order=order)
            + compressed(order, matrix("beta", b, order=order))
            + compressed(order, matrix("alphabet", b, order=order)))
    np.testing.assert_array_equal(read_mat_variable(data, "alpha"), a)
    np.testing.assert_array_equal(read_mat_variable(data, "beta"), b)
    assert "is a character array" in refusal(data, "txt")
    assert "complex" in refusal(data, "z")


def test_path_and_bytes_inputs(tmp_path) -> None:
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "a.mat"
    path.write_bytes(write_mat({"a": arr}, compress=True))
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes())):
        np.testing.assert_array_equal(read_mat_variable(source, "a"), arr)


# ---- Frey Face ----

@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_frey_faces_come_back_upright(tmp_path, dtype: str) -> None:
    faces = np.stack([face(j) for j in range(30)])
    ff = faces.reshape(30, -1).T.astype(dtype)  # 560 x 30: column j is face j, row-major pixels
    path = tmp_path / FREY_FILE
    path.write_bytes(write_mat({"ff": ff}, compress=True))
    got = load_frey_faces(path)
    assert got.shape == (30, 28, 20) and got.dtype == np.uint8 and got.flags.c_contiguous
    for j in range(30):
        np.testing.assert_array_equal(got[j], faces[j])
    assert (got[:, :7] == 250).all() and (got[:, 21:27] == 0).all()  # top bright, bottom dark
    np.testing.assert_array_equal(got[0, 10], np.arange(20) * 10)  # each row runs left to right


@pytest.mark.parametrize("ff", [
    np.zeros((28, 20), np.uint8), np.zeros((561, 3), np.uint8), np.zeros((560, 0), np.uint8),
    np.zeros((560, 2, 2), np.uint8),
])
def test_frey_refuses_wrong_shape(tmp_path, ff: np.ndarray) -> None:
    path = tmp_path / FREY_FILE
    path.write_bytes(write_mat({"ff": ff}))
    with pytest.raises(MatFileError, match="560 x N") as info:
        load_frey_faces(path)
    one_sentence(str(info.value))


@pytest.mark.parametrize("bad", [0.5, -1.0, 256.0, np.nan])
def test_frey_refuses_values_that_are_not_bytes(tmp_path, bad: float) -> None:
    ff = np.zeros((560, 2))
    ff[3, 1] = bad
    path = tmp_path / FREY_FILE
    path.write_bytes(write_mat({"ff": ff}))
    with pytest.raises(MatFileError, match="0..255") as info:
        load_frey_faces(path)
    one_sentence(str(info.value))


# ---- refusals ----

def test_refuses_a_file_that_is_not_a_mat_file(tmp_path) -> None:
    path = tmp_path / FREY_FILE
    path.write_bytes(b"<html>Not found</html>" * 20)
    msg = refusal(str(path), "ff")
    assert msg == "frey_rawface.mat is not a MATLAB Level 5 MAT-file; download frey_rawface.mat again."
    assert "not a MATLAB Level 5" in refusal(b"MATLAB 5.0 MAT-file")  # shorter than a header


def test_refuses_v73_hdf5_files() -> None:
    data = header()[:124] + struct.pack("<H", 0x0200) + b"IM" + b"\0" * 400
    assert "v7.3" in refusal(data)


def test_refuses_a_missing_file(tmp_path) -> None:
    assert str(tmp_path / "nothere.mat") in refusal(tmp_path / "nothere.mat")


def refusal_within(path, seconds: float = 10.0) -> str:
    """refusal(path), from a thread that must finish within seconds: a reader that opens a FIFO blocks until
    a writer comes, so on a timeout one comes (the FIFO opened for writing) and the test fails."""
    outcome: list = []

    def read() -> None:
        try:
            read_mat_variable(path, "ff")
            outcome.append("read")
        except MatFileError as e:
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a writer unblocks the reader's open; it reads nothing
        reader.join(seconds)
        pytest.fail(f"reading {path} blocked for {seconds:.0f} s")
    assert isinstance(outcome[0], MatFileError), outcome
    one_sentence(str(outcome[0]))
    return str(outcome[0])


def test_refuses_what_is_not_a_regular_file_without_opening_it_to_read(tmp_path) -> None:
    fifo = tmp_path / FREY_FILE
    os.mkfifo(fifo)
    assert refusal_within(fifo) == (f"{fifo} is not a regular file, and a pipe, a device or a folder is never read; "
                                    f"put the MAT-file itself at that path.")
    assert "is not a regular file" in refusal(tmp_path)  # a folder
    assert "is not a regular file" in refusal("/dev/null")  # a device


def test_refuses_a_fifo_swapped_in_after_the_check(tmp_path, monkeypatch) -> None:
    """A FIFO that replaces the file between os.stat and the open: the open does not block (O_NONBLOCK) and
    fstat of what was opened refuses it."""
    regular = tmp_path / "regular.mat"
    regular.write_bytes(b"x")
    fifo = tmp_path / FREY_FILE
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(regular if os.fspath(p) == str(fifo) else p, *a, **k))
    assert "is not a regular file" in refusal_within(fifo)


@pytest.mark.parametrize("compress", [False, True])
def test_refuses_truncated_files(compress: bool) -> None:
    data = write_mat({"ff": np.arange(200, dtype=np.uint8).reshape(20, 10)}, compress=compress)
    for cut in [0, 100, 127, 128, 131, 136, 150, len(data) // 2, len(data) - 9, len(data) - 1]:
        if compress or cut != len(data) - 1:  # the last byte of a plain file is padding
            refusal(data[:cut], "ff")
    assert "truncated" in refusal(data[:150], "ff")


def test_refuses_a_zlib_bomb_quickly() -> None:
    size = 2**27  # 128 MiB of zeros deflates to about 128 KiB; the default limit is 64 MiB
    body = (element("<", MI_UINT32, struct.pack("<II", MX["u1"], 0))
            + element("<", MI_INT32, struct.pack("<2i", 2**14, 2**13))
            + element("<", MI_INT8, b"ff")
            + struct.pack("<II", MI["u1"], size))
    deflater = zlib.compressobj()
    z = deflater.compress(struct.pack("<II", MI_MATRIX, len(body) + size) + body)
    z += b"".join(deflater.compress(bytes(2**20)) for _ in range(size >> 20)) + deflater.flush()
    data = header() + struct.pack("<II", MI_COMPRESSED, len(z)) + z
    assert len(data) < 2**20
    start = time.perf_counter()
    assert "inflates past the 67108864-byte limit" in refusal(data, "ff")
    assert time.perf_counter() - start < 3.0
    assert "1048576-byte limit" in refusal(data, "ff", max_bytes=2**20)


def test_a_bomb_not_asked_for_is_skipped_within_the_limit() -> None:
    big = compressed("<", matrix("big", np.zeros((2000, 2000), np.uint8)))  # 4 MB inflated
    data = header() + big + compressed("<", matrix("ff", np.eye(3, dtype=np.uint8)))
    np.testing.assert_array_equal(read_mat_variable(data, "ff", max_bytes=2**20), np.eye(3))
    assert "1048576-byte limit" in refusal(data, "big", max_bytes=2**20)


def test_refuses_a_file_past_max_bytes() -> None:
    data = write_mat({"ff": np.zeros((100, 100), np.uint8)})
    assert "1000-byte limit" in refusal(data, "ff", max_bytes=1000)


@pytest.mark.parametrize("compress", [False, True])
def test_refuses_dimensions_that_do_not_match_the_data(compress: bool) -> None:
    raw = matrix("ff", np.zeros((2, 5), np.uint8), dims=(560, 30))
    data = header() + (compressed("<", raw) if compress else raw)
    msg = refusal(data, "ff")
    assert "560 x 30 (16800 values)" in msg and "10 bytes" in msg


def test_refuses_data_longer_than_its_dimensions() -> None:
    raw = matrix("ff", np.zeros((2, 5), np.uint8), dims=(2, 2))
    assert "2 x 2 (4 values)" in refusal(header() + raw, "ff")


def test_refuses_stored_values_that_do_not_fit_the_class() -> None:
    # MATLAB may store a class in a narrower type, never a wider one holding values the class lacks.
    raw = matrix("ff", np.array([[1.0, 300.5]]), mx_class=MX["u1"])
    assert "do not fit its class uint8" in refusal(header() + raw, "ff")
    narrow = matrix("ff", np.array([[1, -3]], np.int16), store="i1")
    np.testing.assert_array_equal(read_mat_variable(header() + narrow, "ff"), [[1, -3]])
    text = matrix("ff", np.zeros((1, 2), np.uint8), data_type=16)  # miUTF8 is no numeric storage
    assert "not numeric" in refusal(header() + text, "ff")


def test_refuses_a_compressed_stream_without_its_end() -> None:
    z = zlib.compress(matrix("ff", np.eye(3, dtype=np.uint8)))[:-4]  # the Adler-32 trailer cut off
    data = header() + struct.pack("<II", MI_COMPRESSED, len(z)) + z
    assert "ends early" in refusal(data, "ff")


def test_refuses_negative_and_absurd_dimensions() -> None:
    assert "negative" in refusal(header() + matrix("ff", np.zeros((2, 2), np.uint8), dims=(-2, -2)), "ff")
    absurd = matrix("ff", np.zeros((2, 2), np.uint8), dims=(2**31 - 1, 2**31 - 1, 2**31 - 1))
    assert "values" in refusal(header() + absurd, "ff")


def test_refuses_a_missing_variable() -> None:
    data = write_mat({"faces": np.zeros((2, 2), np.uint8), "y": np.ones((1, 1))}, compress=True)
    msg = refusal(data, "ff")
    assert "has no variable 'ff'" in msg and "'faces', 'y'" in msg
    assert "no variables" in refusal(header(), "ff")


def test_refuses_a_bad_variable_name_argument() -> None:
    with pytest.raises(MatFileError):
        read_mat_variable(header(), "")


@pytest.mark.parametrize("order, compress", [("<", False), (">", True)])
def test_damaged_bytes_give_an_array_or_one_sentence(order: str, compress: bool) -> None:
    data = write_mat({"a": np.arange(12, dtype=np.int16).reshape(3, 4), "ff": np.eye(4)},
                     order=order, compress=compress)
    rng = np.random.default_rng(0)
    for _ in range(300):
        broken = bytearray(data)
        for at in rng.integers(128, len(data), size=rng.integers(1, 4)):  # past the header
            broken[at] = rng.integers(0, 256)
        try:
            cut = rng.integers(128, len(data)) if rng.random() < 0.3 else len(data)
            got = read_mat_variable(bytes(broken[:cut]), "ff")
        except MatFileError as e:
            one_sentence(str(e))
        else:
            assert isinstance(got, np.ndarray)


def test_faces_written_in_frey_s_layout_read_back_as_they_were(tmp_path) -> None:
    from vae.data.matfile import write_frey_faces

    faces = np.stack([face(j) for j in range(7)])
    write_frey_faces(tmp_path / FREY_FILE, faces)
    np.testing.assert_array_equal(load_frey_faces(tmp_path / FREY_FILE), faces)
    with pytest.raises(MatFileError):
        write_frey_faces(tmp_path / "bad.mat", np.zeros((2, 20, 28), np.uint8))
