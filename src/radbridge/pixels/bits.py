"""1-bit pixel data: packing frames into bytes and unpacking them again.

DICOM stores *Bits Allocated* 1 pixel data as a bit stream: the first pixel
goes into the least significant bit of the first byte, and in native
(uncompressed) pixel data the frames follow each other *without* padding, so a
frame starts in the middle of a byte when ``rows * columns`` is not a multiple
of 8 (PS3.5 section 8.1.1 and 8.2). Only the whole value is padded to an even
length. Compressed 1-bit frames (Deflated Image Frame Compression) are packed
one by one instead, each starting on a byte boundary
(:func:`pack_each_frame`).

Everything here works on whole arrays with :func:`numpy.packbits` and
:func:`numpy.unpackbits` (``bitorder="little"``); there is no loop per pixel,
and unpacking selected frames loops at most over the 8 bit offsets a frame
can start at.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike, NDArray

from radbridge.errors import DecodingError, EncodingError

__all__ = ["pack_each_frame", "pack_frames", "unpack_frames"]

#: Frames unpacked per step; bounds the temporary memory of large reads (small
#: temporaries are reused by the allocator instead of being mapped afresh).
_CHUNK = 16

Buffer = bytes | bytearray | memoryview | NDArray[np.uint8]


def _as_bits(frames: ArrayLike) -> NDArray[Any]:
    """Return ``frames`` as a bool/unsigned array, refusing values other than 0 and 1."""
    array = np.asarray(frames)
    if array.dtype == np.bool_:
        return array
    if array.dtype.kind not in "iu":
        raise EncodingError(
            f"1-bit frames must be boolean or integer, not {array.dtype}",
            attribute="BitsAllocated",
            hint="pass a boolean mask, or integers 0 and 1",
        )
    if array.size and (array.max() > 1 or array.min() < 0):
        raise EncodingError(
            f"1-bit frames hold values from {array.min()} to {array.max()}, only 0 and 1 fit",
            attribute="BitsAllocated",
            hint="binarise the mask first, or store it with 8 bits (e.g. a LABELMAP)",
        )
    return array


def pack_frames(frames: ArrayLike | Iterable[ArrayLike]) -> bytes:
    r"""Pack frames into native 1-bit Pixel Data.

    Parameters
    ----------
    frames
        An array ``[frame, row, column]`` of booleans (or integers 0/1), or an
        iterable of such arrays (chunks of frames, packed one after the other
        as if concatenated, so a generator keeps memory bounded).

    Returns
    -------
    bytes
        The bit stream, first pixel in the least significant bit, frames not
        padded, the whole value padded with a zero byte to an even length.

    Raises
    ------
    EncodingError
        If a value is neither 0 nor 1.

    Examples
    --------
    The second frame starts at bit 6 of the first byte:

    >>> import numpy as np
    >>> pack_frames(np.array([[[1, 0, 0], [0, 0, 0]], [[1, 1, 0], [0, 0, 1]]]))
    b'\xc1\x08'
    >>> unpack_frames(b'\xc1\x08', rows=2, columns=3).astype(int).tolist()
    [[[1, 0, 0], [0, 0, 0]], [[1, 1, 0], [0, 0, 1]]]
    """
    if isinstance(frames, np.ndarray):
        chunks: Iterable[ArrayLike] = (frames,)
    elif isinstance(frames, Iterable) and not isinstance(frames, (bytes, str)):
        chunks = frames
    else:
        chunks = (np.asarray(frames),)
    parts: list[bytes] = []
    pending = np.zeros(0, dtype=bool)
    for chunk in chunks:
        flat = _as_bits(chunk).reshape(-1)
        if pending.size:
            flat = np.concatenate([pending, flat.astype(bool, copy=False)])
        whole = flat.size - flat.size % 8
        parts.append(np.packbits(flat[:whole], bitorder="little").tobytes())
        pending = flat[whole:].astype(bool, copy=True)
    if pending.size:
        parts.append(np.packbits(pending, bitorder="little").tobytes())
    data = b"".join(parts)
    return data + b"\x00" if len(data) % 2 else data


def pack_each_frame(frames: ArrayLike) -> NDArray[np.uint8]:
    """Pack each frame on its own, as compressed 1-bit frames are before encoding.

    Parameters
    ----------
    frames
        ``[frame, row, column]`` booleans or integers 0/1.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``[frame, ceil(rows * columns / 8)]``; each frame's last
        byte is padded with zero bits.

    Examples
    --------
    >>> import numpy as np
    >>> pack_each_frame(np.ones((2, 3, 3), bool)).tolist()
    [[255, 1], [255, 1]]
    """
    array = _as_bits(frames)
    if array.ndim < 2:
        raise EncodingError(
            f"expected frames [frame, row, column], got shape {array.shape}",
            attribute="frames",
        )
    return np.packbits(array.reshape(array.shape[0], -1), axis=1, bitorder="little")


def _byte_view(data: Buffer) -> NDArray[np.uint8]:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def unpack_frames(
    data: Buffer,
    *,
    rows: int,
    columns: int,
    number_of_frames: int | None = None,
    indices: Sequence[int] | NDArray[np.integer[Any]] | None = None,
) -> NDArray[np.bool_]:
    """Unpack frames of native 1-bit Pixel Data.

    Parameters
    ----------
    data
        The packed bit stream (frames concatenated without padding).
    rows, columns
        Frame size.
    number_of_frames
        Frames in ``data``; by default as many as fit.
    indices
        0-based frames to return, in any order; by default all. Only the bytes
        of these frames are read.

    Returns
    -------
    numpy.ndarray
        ``bool`` array ``[len(indices), rows, columns]``.

    Raises
    ------
    DecodingError
        If a requested frame does not exist or is cut short by the end of ``data``
        (the message names the 1-based frame number).

    Examples
    --------
    >>> import numpy as np
    >>> frames = np.arange(5 * 3 * 3).reshape(5, 3, 3) % 3 == 0
    >>> data = pack_frames(frames)
    >>> bool((unpack_frames(data, rows=3, columns=3, indices=[4, 1]) == frames[[4, 1]]).all())
    True
    """
    if rows < 1 or columns < 1:
        raise DecodingError(f"invalid frame size {rows}x{columns}", attribute="Rows")
    buffer = _byte_view(data)
    pixels = rows * columns
    available = buffer.size * 8 // pixels
    count = available if number_of_frames is None else number_of_frames
    wanted = (
        np.arange(count, dtype=np.int64)
        if indices is None
        else np.asarray(indices, dtype=np.int64).reshape(-1)
    )
    if wanted.size == 0:
        return np.empty((0, rows, columns), dtype=bool)
    _check_frames(wanted, count, available, pixels, buffer.size)
    first_bit = int(wanted[0]) * pixels
    if first_bit % 8 == 0 and _consecutive(wanted):
        # One allocation: the unpacked bits are the result.
        stop = first_bit + wanted.size * pixels
        bits = np.unpackbits(
            buffer[first_bit // 8 : (stop + 7) // 8],
            count=wanted.size * pixels,
            bitorder="little",
        )
        return bits.view(bool).reshape(wanted.size, rows, columns)
    out = np.empty((wanted.size, rows, columns), dtype=bool)
    flat_out = out.reshape(wanted.size, pixels)
    if _consecutive(wanted):
        _unpack_run(buffer, int(wanted[0]), wanted.size, pixels, flat_out)
        return out
    residues = (wanted * pixels) % 8
    for offset in np.unique(residues).tolist():
        positions = np.flatnonzero(residues == offset)
        _unpack_group(buffer, wanted[positions], positions, offset, pixels, flat_out)
    return out


def _check_frames(
    wanted: NDArray[np.int64], count: int, available: int, pixels: int, size: int
) -> None:
    low, high = int(wanted.min()), int(wanted.max())
    if low < 0 or high >= count:
        bad = low if low < 0 else high
        raise DecodingError(
            f"frame {bad + 1} does not exist ({count} frames)",
            attribute="NumberOfFrames",
        )
    if high >= available:
        raise DecodingError(
            f"frame {high + 1} is truncated: pixel data holds {size * 8} bits, "
            f"{(high + 1) * pixels} needed",
            attribute="PixelData",
            hint="the file is truncated, or NumberOfFrames/Rows/Columns are wrong",
        )


def _consecutive(wanted: NDArray[np.int64]) -> bool:
    return bool(wanted.size == 1 or (np.diff(wanted) == 1).all())


def _unpack_run(
    buffer: NDArray[np.uint8], first: int, count: int, pixels: int, out: NDArray[np.bool_]
) -> None:
    """Unpack ``count`` consecutive frames starting at frame ``first`` into ``out``."""
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        begin = (first + start) * pixels
        end = begin + n * pixels
        chunk = buffer[begin // 8 : (end + 7) // 8]
        bits = np.unpackbits(chunk, bitorder="little")
        offset = begin % 8
        out[start : start + n] = bits[offset : offset + n * pixels].reshape(n, pixels).view(bool)


def _unpack_group(
    buffer: NDArray[np.uint8],
    frames: NDArray[np.int64],
    positions: NDArray[np.intp],
    offset: int,
    pixels: int,
    out: NDArray[np.bool_],
) -> None:
    """Unpack frames that all start at bit ``offset`` within their first byte.

    Frames ``k`` and ``k + p`` with ``p = 8 / gcd(pixels, 8)`` start at the same
    bit offset, ``p * pixels / 8`` bytes apart; so the frames of one offset form
    a strided byte view, one row per frame.
    """
    period = 8 // math.gcd(pixels, 8)
    stride = period * pixels // 8
    span = (offset + pixels + 7) // 8
    starts = frames * pixels // 8
    base = int(starts.min())
    row_of = (starts - base) // stride
    view = as_strided(
        buffer[base:], shape=(int(row_of.max()) + 1, span), strides=(stride, 1), writeable=False
    )
    for start in range(0, frames.size, _CHUNK):
        sel = slice(start, start + _CHUNK)
        bits = np.unpackbits(view[row_of[sel]], axis=1, bitorder="little")
        out[positions[sel]] = bits[:, offset : offset + pixels].view(bool)
