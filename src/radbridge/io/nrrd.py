"""Read and write 3-D scalar NRRD files, without SimpleITK.

``radbridge seg decode -o labels.nrrd`` wrote its label map, and ``seg encode
--mask labels.nrrd`` read its mask, through SimpleITK, whose import alone costs
longer than reading or writing the file. :func:`write_nrrd` produces what
SimpleITK writes for a 3-D scalar image (NRRD0004, LPS space, axes x = column,
y = row, z = slice, gzip encoding); SimpleITK, 3D Slicer and dcmqi read it back
with the same values and geometry. :func:`read_nrrd` reads the files such
programs write for one 3-D scalar volume (attached header, raw or gzip data, LPS
or RAS space directions) and returns ``None`` for anything else (detached
headers, 4-D or multi-component images, other encodings or spaces), which
:func:`radbridge.io.nifti.read_images` then gives to SimpleITK. The tests hold
both readers to the same values and geometry.

gzip goes through ISA-L (python-isal) where it is installed: about 3x faster
to inflate than zlib and 6x faster to deflate a label map at level 1, with the
same gzip format.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from radbridge.geometry import Volume
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.nrrd"
>>> _ = write_nrrd(Volume(np.ones((2, 3, 4), np.uint8), np.diag([2.0, 1.0, 0.5, 1.0])), path)
>>> header = path.read_bytes().split(bytes([10, 10]))[0].decode().splitlines()
>>> header[6], header[7]
('sizes: 4 3 2', 'space directions: (0.0,0.0,0.5) (0.0,1.0,0.0) (2.0,0.0,0.0)')
>>> back = read_nrrd(path)
>>> back.shape, back.spacing
((2, 3, 4), (2.0, 1.0, 0.5))
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import DicomReadError, UnsupportedObjectError
from radbridge.geometry import Volume

__all__ = ["read_nrrd", "write_nrrd"]


def _fast_zlib() -> ModuleType:
    """ISA-L's zlib-compatible module where python-isal is installed, else zlib."""
    try:
        from isal import isal_zlib
    except ImportError:  # a platform without python-isal wheels
        return zlib
    module: ModuleType = isal_zlib
    return module


#: The gzip implementation used (ISA-L where installed; the tests run both).
GZIP: ModuleType = _fast_zlib()

#: NRRD type names of the NumPy types written.
_TYPES = {
    "u1": "unsigned char",
    "i1": "signed char",
    "u2": "unsigned short",
    "i2": "short",
    "u4": "unsigned int",
    "i4": "int",
    "u8": "unsigned long long",
    "i8": "long long",
    "f4": "float",
    "f8": "double",
}
#: Deflate level: 1 compresses a label map to ~1.2-1.5 % of its size (0.6 GB/s with
#: zlib, ~3.5 GB/s with ISA-L).
_LEVEL = 1


def write_nrrd(volume: Volume, path: str | os.PathLike[str]) -> Path:
    """Write a 3-D volume as ``path`` (NRRD, gzip encoding, LPS space directions).

    Boolean arrays are written as unsigned char (0/1), as SimpleITK writes them.

    Raises
    ------
    UnsupportedObjectError
        The array's type has no NRRD name (complex numbers, objects).
    """
    p = Path(path)
    array = volume.array.astype(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    kind = f"{array.dtype.kind}{array.dtype.itemsize}"
    if kind not in _TYPES or array.ndim != 3:
        raise UnsupportedObjectError(
            f"a {array.ndim}-D {array.dtype} array cannot be written as NRRD here",
            path=p,
            attribute="dtype",
            hint="write a 3-D integer, boolean or float volume",
        )
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    compressor = GZIP.compressobj(_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)  # gzip
    body = compressor.compress(data.data) + compressor.flush()  # the array's buffer, no copy
    p.write_bytes(_header(volume, _TYPES[kind]) + body)
    return p


def _header(volume: Volume, type_name: str) -> bytes:
    """Return the NRRD header: axes x = column, y = row, z = slice, as SimpleITK has them."""
    slices, rows, columns = volume.shape
    affine = volume.affine
    directions = " ".join(_vector(affine[:3, axis]) for axis in (2, 1, 0))
    lines = [
        "NRRD0004",
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        f"type: {type_name}",
        "dimension: 3",
        "space: left-posterior-superior",
        f"sizes: {columns} {rows} {slices}",
        f"space directions: {directions}",
        "kinds: domain domain domain",
        "endian: little",
        "encoding: gzip",
        f"space origin: {_vector(affine[:3, 3])}",
    ]
    return ("\n".join(lines) + "\n\n").encode("ascii")


def _vector(values: np.ndarray) -> str:
    """``(x,y,z)`` with each float written so that it reads back exactly."""
    return "(" + ",".join(repr(float(v)) for v in values) + ")"


#: NRRD type names (teem's aliases) -> NumPy kind and size.
_READ_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t"), "i1"),
    **dict.fromkeys(("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
    **dict.fromkeys(
        ("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"
    ),
    **dict.fromkeys(("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "u2"),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t"), "i4"),
    **dict.fromkeys(("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
    **dict.fromkeys(
        (
            "longlong",
            "long long",
            "long long int",
            "signed long long",
            "signed long long int",
            "int64",
            "int64_t",
        ),
        "i8",
    ),
    **dict.fromkeys(
        ("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"), "u8"
    ),
    "float": "f4",
    "double": "f8",
}
#: Spaces read here -> the sign of x and y to reach LPS (as ITK's NRRD reader does).
_SPACES = {
    "left-posterior-superior": 1.0,
    "lps": 1.0,
    "right-anterior-superior": -1.0,
    "ras": -1.0,
}
_VECTOR = re.compile(r"\(([^()]*)\)")
#: The longest header read before the file is left to SimpleITK.
_MAX_HEADER = 1 << 20


def read_nrrd(path: str | os.PathLike[str]) -> Volume | None:
    """Read a 3-D scalar NRRD file with its header attached, or return ``None``.

    ``None`` means the file uses a feature this reader leaves to SimpleITK
    (a detached header, more or fewer than three axes, components, an encoding
    other than raw or gzip, a space other than LPS or RAS, line or byte skips);
    the caller then reads it with SimpleITK. The volume's affine maps
    ``(slice, row, column)`` to LPS millimetres, as from SimpleITK.

    Raises
    ------
    DicomReadError
        The file cannot be read, or its data is shorter or longer than its
        ``sizes`` and ``type`` say, or not valid gzip.
    """
    p = Path(path)
    try:
        with p.open("rb") as handle:  # the header first: a file left to SimpleITK is not read
            parsed = _parse_header(handle.read(_MAX_HEADER))
            layout = _layout(parsed[0]) if parsed is not None else None
            if parsed is None or layout is None:
                return None
            handle.seek(parsed[1])
            body = handle.read()
    except OSError as exc:
        raise DicomReadError(
            f"cannot be read ({exc.strerror or exc})", path=p, hint="check the path"
        ) from exc
    dtype, shape, affine = layout
    expected = dtype.itemsize * int(np.prod(shape))
    data = _payload(p, memoryview(body), parsed[0]["encoding"], expected)
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return Volume(array, affine)


def _parse_header(raw: bytes) -> tuple[dict[str, str], int] | None:
    """Return the header's fields (lower-case keys) and where the data starts."""
    if not raw.startswith(b"NRRD000"):
        return None
    end = raw.find(b"\n\n", 0, _MAX_HEADER)
    if end < 0:
        return None
    fields: dict[str, str] = {}
    for line in raw[:end].decode("latin-1").splitlines()[1:]:
        if line.startswith("#") or ":=" in line.partition(": ")[0]:
            continue  # comments and key/value pairs
        key, sep, value = line.partition(": ")
        if not sep:
            return None
        fields[key.strip().lower()] = value.strip()
    return fields, end + 2


def _layout(
    fields: dict[str, str],
) -> tuple[np.dtype[np.generic], tuple[int, ...], NDArray[np.float64]] | None:
    """Return the data type, ``(slice, row, column)`` shape and LPS affine, or ``None``."""
    dtype = _dtype(fields)
    sign = _SPACES.get(fields.get("space", "").lower())
    if dtype is None or sign is None or not _plain(fields):
        return None
    try:
        sizes = [int(v) for v in fields["sizes"].split()]
        directions = [_floats(v) for v in _VECTOR.findall(fields["space directions"])]
        origin = _floats(_VECTOR.findall(fields.get("space origin", "(0,0,0)"))[0])
    except (KeyError, IndexError, ValueError):
        return None
    vectors = [*directions, origin]
    if len(sizes) != 3 or min(sizes) < 1 or [len(v) for v in vectors] != [3, 3, 3, 3]:
        return None
    affine = _affine(np.array(vectors) * [sign, sign, 1.0])
    return None if affine is None else (dtype, (sizes[2], sizes[1], sizes[0]), affine)


def _dtype(fields: dict[str, str]) -> np.dtype[np.generic] | None:
    """Return the data's NumPy type, or ``None`` (an unknown type or no byte order)."""
    kind = _READ_TYPES.get(fields.get("type", "").lower())
    if kind is None:
        return None
    endian = fields.get("endian", "little" if kind[1] == "1" else "")
    order = {"little": "<", "big": ">"}.get(endian)
    return None if order is None else np.dtype(order + kind)


#: Fields whose presence means a layout left to SimpleITK.
_ELSEWHERE = ("data file", "datafile", "space dimension")
_SKIPS = ("line skip", "lineskip", "byte skip", "byteskip")


def _plain(fields: dict[str, str]) -> bool:
    """Whether the data is three spatial axes, attached, raw or gzip, with no skips."""
    return (
        fields.get("dimension") == "3"
        and fields.get("encoding", "").lower() in ("raw", "gzip", "gz")
        and not any(k in fields for k in _ELSEWHERE)
        and all(fields.get(k, "0") == "0" for k in _SKIPS)
        and all(k in ("domain", "space") for k in fields.get("kinds", "domain").split())
    )


def _affine(vectors: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Return the affine of LPS x, y, z steps and origin (rows); ``None`` for a zero step."""
    affine = np.eye(4)
    for column, step in zip((2, 1, 0), vectors[:3], strict=True):  # x, y, z axes
        spacing = float(np.sqrt(np.sum(step * step)))
        if spacing == 0.0:
            return None
        affine[:3, column] = (step / spacing) * spacing  # as ITK: unit direction x spacing
    affine[:3, 3] = vectors[3]
    return affine


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _payload(path: Path, body: memoryview, encoding: str, expected: int) -> bytes | memoryview:
    """Return the data's bytes, exactly ``expected`` of them (no copy of raw data)."""
    data: bytes | memoryview = body
    if encoding.lower() != "raw":
        try:
            data = _inflate(body, expected)
        except (zlib.error, GZIP.error) as exc:
            raise _damaged(path, f"its gzip data cannot be inflated ({exc})", "encoding") from exc
    if len(data) != expected:
        message = f"holds {len(data)} bytes of data where its sizes and type need {expected}"
        raise _damaged(path, message, "sizes")
    return data


def _damaged(path: Path, message: str, attribute: str) -> DicomReadError:
    return DicomReadError(
        message,
        path=path,
        attribute=attribute,
        hint="the file is damaged or truncated, or its header is wrong; write it again",
    )


def _inflate(body: memoryview, expected: int) -> bytes:
    """Inflate gzip members (at most ``expected + 1`` bytes: a bomb stops there)."""
    parts: list[bytes] = []
    size = 0
    rest = memoryview(body)
    while rest.nbytes and size < expected:
        inflater = GZIP.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        part = inflater.decompress(rest, expected + 1 - size)
        if not inflater.eof:
            if size + len(part) > expected:
                parts.append(part)
                break
            raise zlib.error("the compressed data ends early")
        parts.append(part)
        size += len(part)
        rest = memoryview(inflater.unused_data)
    return parts[0] if len(parts) == 1 else b"".join(parts)
