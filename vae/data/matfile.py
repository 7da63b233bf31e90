"""A minimal, strict reader of MATLAB Level 5 MAT-files (MathWorks, "MAT-File Format", the Level 5
chapter: 128-byte header, tagged data elements, miMATRIX and zlib-compressed miCOMPRESSED), enough
for the Frey Face data in `frey_rawface.mat`. Pure numpy + zlib + struct, safe on untrusted files:
every fault is one readable sentence in a MatFileError."""
from __future__ import annotations

import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

FREY_FILE = "frey_rawface.mat"
FREY_SHAPE = (28, 20)  # (rows, columns) of one face: 28 tall, 20 wide
FREY_PIXELS = FREY_SHAPE[0] * FREY_SHAPE[1]  # 560: one column of `ff`, one face in row-major order
HEADER_BYTES = 128
DEFAULT_MAX_BYTES = 64 * 2**20
# Data types of data elements (the format's table of MAT-file data types).
MI_INT8, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32 = 1, 2, 3, 4, 5, 6
MI_SINGLE, MI_DOUBLE, MI_INT64, MI_UINT64 = 7, 9, 12, 13
MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 14, 15, 16
_MI_DTYPES = {
    MI_INT8: "i1", MI_UINT8: "u1", MI_INT16: "i2", MI_UINT16: "u2", MI_INT32: "i4", MI_UINT32: "u4",
    MI_SINGLE: "f4", MI_DOUBLE: "f8", MI_INT64: "i8", MI_UINT64: "u8",
}


_NAME_TYPES = (MI_INT8, MI_UINT8, MI_UTF8)  # the format says miINT8; the others hold the same bytes


# Array classes (the format's table of MATLAB array types): numeric ones map to the dtype they mean.
MX_OPAQUE = 17  # its layout has no dimensions element before the name
_MX_DTYPES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
_MX_KINDS = {1: "cell", 2: "struct", 3: "object", 4: "character", 5: "sparse", 16: "function handle",
             MX_OPAQUE: "opaque object"}


_FLAG_COMPLEX = 0x0800  # in the first array-flags word, above the class byte
_PEEK_BYTES = 512  # an inflated prefix this long holds a matrix's flags, dimensions and name
PathOrBytes = Union[str, os.PathLike, bytes, bytearray, memoryview]


class MatFileError(ValueError):
    """A MAT-file that cannot be read; the message is one sentence saying what is wrong and what to do."""


class _Fault(Exception):
    """A damaged element, reported with the file's name by whoever knows it."""

    def __init__(self, problem: str, truncated: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.truncated = truncated


@dataclass(frozen=True)
class _Source:
    label: str  # starts a sentence: the file's name, or "The MAT-file data"
    noun: str  # the same inside a sentence

    @classmethod
    def of(cls, path_or_bytes: PathOrBytes) -> _Source:
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            return cls("The MAT-file data", "the MAT-file data")
        name = Path(os.fspath(path_or_bytes)).name
        name = name if name.isprintable() else repr(name)  # keeps each message on one line
        return cls(name, name)

    def damaged(self, problem: str) -> MatFileError:
        return MatFileError(f"{self.label} {problem}; download {self.noun} again.")


@dataclass(frozen=True)
class _Element:
    mi_type: int
    data: memoryview  # the payload: exactly the byte count its tag declares
    end: int  # offset of the next element, after padding to 8 bytes


@dataclass(frozen=True)
class _Header:
    mx_class: int
    flags: int  # the first array-flags word: class in the low byte, complex/global/logical above
    dims: tuple[int, ...]
    name: str
    rest: int  # offset in the matrix payload just past the name: where the real part starts


def read_mat_variable(
    path_or_bytes: PathOrBytes, name: str, max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """The real numeric matrix `name` from a Level 5 MAT-file (a path, or the file's bytes), in
    MATLAB's dimensions and column-major element order, cast to the dtype of its MATLAB class.

    `max_bytes` bounds both the file's size and the bytes inflated from its compressed elements,
    summed over the file, so a zlib bomb costs at most that much memory and time."""
    if not isinstance(name, str) or not name:
        raise MatFileError(
            "The variable name must be a non-empty string; pass the name MATLAB's whos shows.")
    src = _Source.of(path_or_bytes)
    buf = _read_bytes(path_or_bytes, src, max_bytes)
    order = _byte_order(buf, src)
    return _Reader(buf, order, src, max_bytes).find(name)


def load_frey_faces(path: PathOrBytes) -> np.ndarray:
    """Frey Face images as uint8 (N, 28, 20), N = 1965 for the real file, from the MATLAB matrix `ff`
    (560 x N, one face per column with its pixels in row-major order)."""
    src = _Source.of(path)
    ff = read_mat_variable(path, "ff")
    if ff.ndim != 2 or ff.shape[0] != FREY_PIXELS or ff.shape[1] == 0:
        shape = " x ".join(str(d) for d in ff.shape)
        raise MatFileError(
            f"{src.label}: variable 'ff' is {shape} but Frey Face data is {FREY_PIXELS} x N "
            f"(one {FREY_SHAPE[0]} x {FREY_SHAPE[1]} face per column); download {FREY_FILE} again.")
    faces = _as_uint8(ff, src)
    return np.ascontiguousarray(faces.T.reshape(-1, *FREY_SHAPE))


def write_frey_faces(path: str | os.PathLike, faces: np.ndarray) -> None:
    """Writes uint8 faces (N, 28, 20) as frey_rawface.mat lays them out: a Level 5 MAT-file whose one
    variable `ff` is the 560 x N uint8 matrix, stored column-major and uncompressed (for data a user or a
    benchmark makes in Frey Face's shape)."""
    faces = np.asarray(faces, np.uint8)
    if faces.ndim != 3 or faces.shape[1:] != FREY_SHAPE:
        raise MatFileError(f"Faces to write must be N x {FREY_SHAPE[0]} x {FREY_SHAPE[1]}, not {faces.shape}.")
    ff = faces.reshape(len(faces), -1).T  # (560, N): a face per column

    def element(kind: int, payload: bytes) -> bytes:
        return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)

    mx_uint8 = 9  # the array class
    body = (element(MI_UINT32, struct.pack("<II", mx_uint8, 0)) + element(MI_INT32, struct.pack("<2i", *ff.shape))
            + element(MI_INT8, b"ff") + element(MI_UINT8, ff.ravel(order="F").tobytes()))
    text = b"MATLAB 5.0 MAT-file, written by Latent Explorer".ljust(116, b" ")
    Path(path).write_bytes(text + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM" + element(MI_MATRIX, body))


def _as_uint8(ff: np.ndarray, src: _Source) -> np.ndarray:
    """`ff` as uint8 if every value is a whole number in 0..255, whatever its numeric class."""
    if ff.dtype == np.uint8:
        return ff
    whole = ff.dtype.kind != "f" or bool(np.all(np.isfinite(ff)) and np.all(ff == np.round(ff)))
    if not whole or ff.min() < 0 or ff.max() > 255:
        raise MatFileError(
            f"{src.label}: variable 'ff' holds values that are not whole numbers in 0..255, so it is not "
            f"8-bit greyscale faces; download {FREY_FILE} again.")
    return ff.astype(np.uint8)


def _read_bytes(path_or_bytes: PathOrBytes, src: _Source, max_bytes: int) -> bytes:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
    else:
        where = os.fspath(path_or_bytes)
        shown = where if where.isprintable() else repr(where)
        try:
            with _open_regular(where, shown) as f:
                data = f.read(max_bytes + 1)  # one byte more tells a file past the limit
        except OSError as e:
            raise MatFileError(
                f"Cannot read {shown}: {e.strerror or type(e).__name__}; check that the file exists and is "
                f"readable.") from None
    if len(data) > max_bytes:
        raise MatFileError(
            f"{src.label} is larger than the {max_bytes}-byte limit; pass a larger max_bytes if you "
            f"trust the file.")
    return data


def _open_regular(where: str | bytes, shown: str):
    """The file opened for reading when it is a regular file, else MatFileError: a FIFO or a device would
    block the read forever (a FIFO even the open). os.stat refuses one before opening; O_NONBLOCK (which a
    regular file ignores) and fstat refuse one swapped in between."""
    if not stat.S_ISREG(os.stat(where).st_mode):
        raise _not_regular(shown)
    fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_regular(shown)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_regular(shown: str) -> MatFileError:
    return MatFileError(f"{shown} is not a regular file, and a pipe, a device or a folder is never read; put the "
                        f"MAT-file itself at that path.")


def _byte_order(buf: bytes, src: _Source) -> str:
    """'<' or '>' from the header's endian indicator, after checking the header is Level 5's."""
    not_mat = f"{src.label} is not a MATLAB Level 5 MAT-file; download {src.noun} again."
    if len(buf) < HEADER_BYTES:
        raise MatFileError(not_mat)
    order = {b"IM": "<", b"MI": ">"}.get(bytes(buf[126:128]))  # 'MI' written as a 16-bit value
    if order is None:
        raise MatFileError(not_mat)
    version = struct.unpack_from(order + "H", buf, 124)[0]
    if version == 0x0200:
        raise MatFileError(
            f"{src.label} is a MATLAB v7.3 (HDF5) MAT-file, which this reader does not support; save it "
            f"again in MATLAB with the -v7 option.")
    if version != 0x0100:
        raise MatFileError(not_mat)
    return order


def _element(buf: memoryview, pos: int, order: str) -> _Element:
    """The data element whose tag starts at `pos`: an 8-byte tag, or the 4-byte small format."""
    if len(buf) - pos < 8:
        raise _Fault(f"has an incomplete tag ({len(buf) - pos} of 8 bytes)", truncated=True)
    word, count = struct.unpack_from(order + "II", buf, pos)
    if word >> 16:  # small data element: byte count in the upper 16 bits, data in the tag's last 4
        count, mi_type = word >> 16, word & 0xFFFF
        if count > 4:
            raise _Fault(f"is a small data element claiming {count} bytes, more than its 4")
        return _Element(mi_type, buf[pos + 4:pos + 4 + count], pos + 8)
    start = pos + 8
    if count > len(buf) - start:
        raise _Fault(f"declares {count} bytes but only {len(buf) - start} remain", truncated=True)
    return _Element(word, buf[start:start + count], min(start + count + (-count % 8), len(buf)))


def _header(payload: memoryview, order: str) -> _Header:
    """The array flags, dimensions and name at the start of a miMATRIX payload."""
    flags_el = _element(payload, 0, order)
    if flags_el.mi_type != MI_UINT32 or len(flags_el.data) != 8:
        raise _Fault("has array flags that are not two miUINT32 words")
    flags = struct.unpack_from(order + "I", flags_el.data)[0]
    pos, dims = flags_el.end, ()
    if flags & 0xFF != MX_OPAQUE:
        dims_el = _element(payload, pos, order)
        pos, dims = dims_el.end, _dims(dims_el, order)
    name_el = _element(payload, pos, order)
    return _Header(flags & 0xFF, flags, dims, _name(name_el), name_el.end)


def _dims(el: _Element, order: str) -> tuple[int, ...]:
    if el.mi_type != MI_INT32 or len(el.data) % 4 or len(el.data) < 8:
        raise _Fault("has a dimensions element that is not two or more miINT32 values")
    dims = struct.unpack_from(f"{order}{len(el.data) // 4}i", el.data)
    if min(dims) < 0:
        raise _Fault(f"has a negative dimension ({' x '.join(map(str, dims))})")
    return dims


def _name(el: _Element) -> str:
    if el.mi_type not in _NAME_TYPES:
        raise _Fault(f"has an array name of data type {el.mi_type} instead of miINT8")
    try:
        return bytes(el.data).rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        raise _Fault("has an array name that is not ASCII text") from None


def _fits(stored: np.ndarray, cast: np.ndarray) -> bool:
    """Whether casting to the class's dtype kept every stored value (NaN counts as kept)."""
    if np.can_cast(stored.dtype, cast.dtype, "safe"):
        return True
    if stored.dtype.kind == "f" and cast.dtype.kind == "f":
        return bool(np.array_equal(stored, cast, equal_nan=True))
    return bool(np.array_equal(stored, cast))


class _Reader:
    """Walks the top-level elements after the header, looking at each variable's name only until
    the one asked for turns up."""

    def __init__(self, buf: bytes, order: str, src: _Source, max_bytes: int) -> None:
        self.buf = memoryview(buf)
        self.order = order
        self.src = src
        self.max_bytes = max_bytes
        self.budget = max_bytes  # bytes still allowed to inflate, summed over the file
        self.at = HEADER_BYTES  # offset of the top-level element being read, for messages

    def find(self, want: str) -> np.ndarray:
        names: list[str] = []
        while self._more():
            el = self._top_element()
            try:
                name, payload = self._variable(el, want)
                if payload is not None:
                    return self._array(_header(payload, self.order), payload)
            except _Fault as e:
                raise self.src.damaged(
                    f"has a damaged variable at byte {self.at}: it {e.problem}") from None
            names.append(repr(name))
            self.at = self.at + 8 + len(el.data) if el.mi_type == MI_COMPRESSED else el.end  # not padded
        held = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "no variables"
        raise MatFileError(
            f"{self.src.label} has no variable {want!r} (it holds {held}); check the variable name or "
            f"download {self.src.noun} again.")

    def _more(self) -> bool:
        """Whether an element follows; up to 7 zero bytes at the end are only padding."""
        rest = self.buf[self.at:]
        return len(rest) >= 8 or any(rest)

    def _top_element(self) -> _Element:
        try:
            el = _element(self.buf, self.at, self.order)
        except _Fault as e:
            state = "is truncated" if e.truncated else "is damaged"
            raise self.src.damaged(f"{state}: the data element at byte {self.at} {e.problem}") from None
        if el.mi_type not in (MI_MATRIX, MI_COMPRESSED):
            raise self.src.damaged(
                f"has a data element of type {el.mi_type} at byte {self.at} where a variable should be")
        return el

    def _variable(self, el: _Element, want: str) -> tuple[str, memoryview | None]:
        """A top-level variable's name and, only if it is `want`, its miMATRIX payload."""
        if el.mi_type == MI_COMPRESSED:
            return self._compressed(el.data, want)
        if not el.data:
            return "", None  # an empty miMATRIX: a placeholder with no name
        name = _header(el.data, self.order).name
        return name, el.data if name == want else None

    def _compressed(self, data: memoryview, want: str) -> tuple[str, memoryview | None]:
        """Inflate a short prefix to learn the name, and the rest only for the variable wanted."""
        inflater = zlib.decompressobj()
        head = self._inflate(inflater, data, min(_PEEK_BYTES, self.budget + 1))
        name = self._peek_name(head)
        if name is not None and name != want:
            return name, None
        if not inflater.eof:
            head += self._inflate(inflater, inflater.unconsumed_tail, self.budget + 1)
        if not inflater.eof:
            raise _Fault("has a compressed stream that ends early", truncated=True)
        el = _element(memoryview(head), 0, self.order)
        if el.mi_type != MI_MATRIX:
            raise _Fault(f"inflates to a data element of type {el.mi_type} instead of miMATRIX")
        if not el.data:
            return "", None
        name = _header(el.data, self.order).name
        return name, el.data if name == want else None

    def _inflate(self, inflater: zlib._Decompress, data: memoryview | bytes, max_length: int) -> bytes:
        """At most `max_length` more inflated bytes, refusing any past the file's inflation budget."""
        try:
            out = inflater.decompress(data, max_length)
        except zlib.error as e:
            raise _Fault(f"has corrupt compressed data ({e})") from None
        self.budget -= len(out)
        if self.budget < 0:
            raise MatFileError(
                f"{self.src.label}: the compressed data at byte {self.at} inflates past the "
                f"{self.max_bytes}-byte limit; pass a larger max_bytes if you trust the file.")
        return out

    def _peek_name(self, head: bytes) -> str | None:
        """The variable name from an inflated prefix, or None when the prefix cannot tell."""
        if len(head) < 8 or struct.unpack_from(self.order + "I", head)[0] != MI_MATRIX:
            return None
        try:
            return _header(memoryview(head)[8:], self.order).name
        except _Fault:
            return None  # too short or damaged: the full parse says which

    def _array(self, header: _Header, payload: memoryview) -> np.ndarray:
        """The real part of the matrix wanted, shaped column-major and cast to its class's dtype."""
        what = f"{self.src.label}: variable {header.name!r}"
        kind = _MX_KINDS.get(header.mx_class, f"class-{header.mx_class}")
        article = "an" if kind[0] in "aeiou" else "a"
        if header.mx_class not in _MX_DTYPES:
            raise MatFileError(
                f"{what} is {article} {kind} array, which this reader does not support; save it as a "
                f"real numeric matrix.")
        if header.flags & _FLAG_COMPLEX:
            raise MatFileError(
                f"{what} is complex, which this reader does not support; save its real part only.")
        real = _element(payload, header.rest, self.order)
        if real.mi_type not in _MI_DTYPES:
            raise _Fault(f"stores its data as type {real.mi_type}, which is not numeric")
        dtype = np.dtype(self.order + _MI_DTYPES[real.mi_type])
        count = math.prod(header.dims)  # Python ints: absurd dimensions cannot overflow
        if len(real.data) != count * dtype.itemsize:
            shape = " x ".join(map(str, header.dims))
            raise self.src.damaged(
                f"is damaged: variable {header.name!r} has dimensions {shape} ({count} values) but its "
                f"data holds {len(real.data)} bytes of {dtype.name}")
        stored = np.frombuffer(real.data, dtype=dtype)
        with np.errstate(invalid="ignore", over="ignore"):  # a bad cast is caught by _fits just below
            values = stored.astype(np.dtype(_MX_DTYPES[header.mx_class]))
        if not _fits(stored, values):
            raise self.src.damaged(
                f"is damaged: variable {header.name!r} stores values that do not fit its class "
                f"{values.dtype.name}")
        return values.reshape(header.dims, order="F")
