"""A minimal MATLAB Level 5 MAT-file writer (MathWorks, "MAT-File Format"), for tests that need a file to
read: plain or zlib-compressed elements, either byte order, the 4-byte small element format."""
from __future__ import annotations

import struct
import zlib

import numpy as np

# Data types and array classes from the format document, keyed by numpy dtype code.
MI = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 9}
MX = {"f8": 6, "f4": 7, "i1": 8, "u1": 9, "i2": 10, "u2": 11, "i4": 12, "u4": 13}
MX_CHAR = 4
MI_INT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 14, 15


# ---- a minimal Level 5 writer ----

def element(order: str, mi_type: int, payload: bytes, small: bool = True) -> bytes:
    """One data element: the 4-byte small format when the payload fits in 4 bytes, else an
    8-byte tag and the payload padded to 8 bytes."""
    if small and len(payload) <= 4:
        return struct.pack(order + "I", len(payload) << 16 | mi_type) + payload.ljust(4, b"\0")
    return struct.pack(order + "II", mi_type, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def matrix(name: str, arr: np.ndarray, *, order: str = "<", store: str | None = None,
           mx_class: int | None = None, flags: int = 0, dims: tuple[int, ...] | None = None,
           data: bytes | None = None, data_type: int | None = None) -> bytes:
    """A miMATRIX element for `arr` (2-D or more, written column-major); `store` is a smaller
    storage dtype code as MATLAB uses, and the keywords after it forge damaged matrices."""
    arr = np.asarray(arr)
    code = arr.dtype.str[1:]
    storage = np.dtype(order + (store or code))
    mx_class = MX[code] if mx_class is None else mx_class
    dims = arr.shape if dims is None else dims
    data = arr.ravel(order="F").astype(storage).tobytes() if data is None else data
    body = (element(order, MI_UINT32, struct.pack(order + "II", mx_class | flags, 0))
            + element(order, MI_INT32, struct.pack(f"{order}{len(dims)}i", *dims))
            + element(order, MI_INT8, name.encode())
            + element(order, MI[storage.str[1:]] if data_type is None else data_type, data))
    return element(order, MI_MATRIX, body, small=False)


def compressed(order: str, matrix_bytes: bytes) -> bytes:
    """The miCOMPRESSED element MATLAB v7 writes: the whole miMATRIX element deflated, unpadded."""
    z = zlib.compress(matrix_bytes)
    return struct.pack(order + "II", MI_COMPRESSED, len(z)) + z


def header(order: str = "<") -> bytes:
    text = b"MATLAB 5.0 MAT-file, written by tests/test_matfile.py"
    return (text.ljust(116, b" ") + b"\0" * 8 + struct.pack(order + "H", 0x0100)
            + (b"IM" if order == "<" else b"MI"))


def write_mat(variables: dict[str, np.ndarray], order: str = "<", compress: bool = False) -> bytes:
    """A whole MAT-file holding `variables`, every one plain or every one compressed."""
    out = header(order)
    for name, arr in variables.items():
        m = matrix(name, arr, order=order)
        out += compressed(order, m) if compress else m
    return out
