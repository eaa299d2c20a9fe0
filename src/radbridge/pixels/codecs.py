"""Compress and decompress single frames through pydicom's codec registry.

The codecs are pydicom's encoder/decoder plugins (pylibjpeg-rle, pyjpegls,
pylibjpeg-openjpeg); Deflated Image Frame Compression is plain zlib, and RLE
frames are encoded by :mod:`radbridge.pixels.rle` (NumPy, over whole stacks of
frames; the same bytes as pylibjpeg-rle, which still decodes them). This
module decides what each transfer syntax can hold losslessly and refuses the
rest before anything is written:

========== ============ =============== ============ ==============================
syntax     1-bit        8/16-bit ints   RGB 8-bit    notes
========== ============ =============== ============ ==============================
rle        yes          yes (and 32)    yes          1-bit: one byte per pixel
jpegls     no           yes             yes          JPEG-LS needs >= 2 bits/sample
jpeg2000   yes          yes             yes          frames >= 32x32 (openjpeg)
deflate    yes          yes (and 32)    yes          1-bit: each frame packed
========== ============ =============== ============ ==============================

Writing ``deflate`` files needs pydicom 3.1 or later (3.0 reads the syntax but
refuses to save it); :attr:`TransferSyntax.writable` tells.

RLE stores a 1-bit frame as one byte per pixel: PS3.5 G.2 pads each pixel's
composite code to a whole byte (pydicom's main branch, PR 2266, settled on the
same). Files made by earlier development versions of pydicom hold the frame's
packed bits in the RLE segment instead; :func:`decode_frame` reads both.
"""

from __future__ import annotations

import functools
import threading
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import DecodingError, EncodingError
from radbridge.pixels.bits import pack_each_frame, unpack_frames
from radbridge.pixels.frame_format import FrameFormat
from radbridge.pixels.rle import check_rle_header, encode_rle_frames
from radbridge.pixels.syntax import TransferSyntax

__all__ = [
    "check_encodable",
    "check_values",
    "decodable_syntaxes",
    "decode_frame",
    "encode_frame",
]

#: openjpeg (pylibjpeg-openjpeg) cannot encode frames smaller than this along an axis.
J2K_MIN_SIZE = 32
#: pylibjpeg-openjpeg 2.6 crashes (SIGSEGV) when two threads encode 512x512 frames at
#: once; it holds the GIL while encoding anyway, so one encoder at a time costs nothing.
_J2K_ENCODE_LOCK = threading.Lock()

_NAMES = {
    TransferSyntax.RLE: "RLE Lossless",
    TransferSyntax.JPEGLS: "JPEG-LS Lossless",
    TransferSyntax.JPEG2000: "JPEG 2000 Lossless",
    TransferSyntax.DEFLATE: "Deflated Image Frame Compression",
}


def _choices(*names: str) -> str:
    """Return ``"a, b or c"`` of the named syntaxes this installation can write."""
    usable = [n for n in names if TransferSyntax(n).writable]
    return ", ".join(usable[:-1]) + " or " + usable[-1] if len(usable) > 1 else usable[0]


def _refuse(syntax: TransferSyntax, what: str, instead: str) -> EncodingError:
    return EncodingError(
        f"{_NAMES.get(syntax, syntax.value)} ({syntax.uid}) cannot store {what}",
        attribute="TransferSyntaxUID",
        hint=f"choose {instead} instead",
    )


def check_encodable(fmt: FrameFormat, syntax: TransferSyntax | str) -> TransferSyntax:
    """Refuse a frame format that ``syntax`` cannot store losslessly.

    Returns
    -------
    TransferSyntax
        The parsed syntax.

    Raises
    ------
    EncodingError
        Naming the transfer syntax and what to choose instead.

    Examples
    --------
    >>> check_encodable(FrameFormat(rows=64, columns=64, bits_allocated=1), "jpegls")
    Traceback (most recent call last):
    ...
    radbridge.errors.EncodingError: JPEG-LS Lossless (1.2.840.10008.1.2.4.80) cannot store \
1-bit frames (JPEG-LS needs at least 2 bits per sample) [TransferSyntaxUID]. Choose rle, \
jpeg2000... instead.
    """
    ts = TransferSyntax.parse(syntax)
    if ts is TransferSyntax.BIG_ENDIAN:
        raise _refuse(ts, "new pixel data (the syntax is retired)", "explicit")
    if not ts.writable:
        raise _refuse(
            ts,
            "files written with this pydicom version (it does not know the UID)",
            "rle or jpeg2000 (or pydicom 3.1 or later)",
        )
    if fmt.floating:
        if ts.encapsulated:
            raise _refuse(ts, "float pixels", "explicit (Float Pixel Data is never compressed)")
        return ts
    if ts is TransferSyntax.JPEGLS:
        if fmt.bits_allocated == 1:
            raise _refuse(
                ts,
                "1-bit frames (JPEG-LS needs at least 2 bits per sample)",
                _choices("rle", "jpeg2000", "deflate", "explicit")
                + " (or 8-bit frames, e.g. a LABELMAP)",
            )
        if fmt.bits_allocated > 16:
            raise _refuse(
                ts, f"{fmt.bits_allocated}-bit samples", _choices("rle", "deflate", "explicit")
            )
    if ts is TransferSyntax.JPEG2000:
        if fmt.bits_allocated > 16:
            raise _refuse(
                ts, f"{fmt.bits_allocated}-bit samples", _choices("rle", "deflate", "explicit")
            )
        if min(fmt.rows, fmt.columns) < J2K_MIN_SIZE:
            raise _refuse(
                ts,
                f"{fmt.rows}x{fmt.columns} frames (openjpeg needs at least "
                f"{J2K_MIN_SIZE}x{J2K_MIN_SIZE})",
                _choices("rle", "jpegls", "deflate", "explicit"),
            )
    if ts is TransferSyntax.RLE and fmt.bits_allocated * fmt.samples_per_pixel > 15 * 8:
        raise _refuse(ts, "more than 15 byte segments per pixel", _choices("deflate", "explicit"))
    return ts


def check_values(frames: NDArray[Any], fmt: FrameFormat) -> None:
    """Refuse values that do not fit ``fmt`` (Bits Stored and sign), for any syntax.

    Raises
    ------
    EncodingError
        If a value would be lost.

    Examples
    --------
    >>> import numpy as np
    >>> check_values(np.array([[[0, 4096]]], np.uint16), FrameFormat(1, 2, 16, 12))
    Traceback (most recent call last):
    ...
    radbridge.errors.EncodingError: values 0..4096 do not fit 12 stored bits (unsigned) \
[BitsStored]. Raise bits_stored, or rescale the frames.
    """
    if fmt.floating or frames.size == 0:
        return
    if fmt.bits_allocated == 1 and frames.dtype == np.bool_:
        return
    if frames.dtype.kind not in "biu":
        raise EncodingError(
            f"frames of type {frames.dtype} are not integers",
            attribute="frames",
            hint="use boolean or integer frames",
        )
    bits = fmt.stored
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt.signed else (0, (1 << bits) - 1)
    info = np.iinfo(frames.dtype) if frames.dtype.kind != "b" else None
    if info is not None and info.min >= low and info.max <= high:
        return
    lo, hi = int(frames.min()), int(frames.max())
    if lo < low or hi > high:
        sign = "signed" if fmt.signed else "unsigned"
        raise EncodingError(
            f"values {lo}..{hi} do not fit {bits} stored bits ({sign})",
            attribute="BitsStored",
            hint="raise bits_stored, or rescale the frames",
        )


def _container(frame: NDArray[Any], fmt: FrameFormat) -> NDArray[Any]:
    """``frame`` in the little-endian container type of ``fmt``, C-contiguous."""
    if fmt.bits_allocated == 1:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    return np.ascontiguousarray(frame, dtype=fmt.dtype.newbyteorder("<"))


def encode_frame(
    frame: NDArray[Any], syntax: TransferSyntax | str, fmt: FrameFormat, *, index: int = 0
) -> bytes:
    """Compress one frame.

    Parameters
    ----------
    frame
        ``[row, column]`` or ``[row, column, sample]``; 1-bit frames as booleans
        or 0/1. Values must fit ``fmt`` (see :func:`check_values`).
    syntax
        An encapsulated :class:`TransferSyntax` (``rle``, ``jpegls``, ``jpeg2000``,
        ``deflate``) or its UID.
    fmt
        The frame format (Bits Allocated, Bits Stored, sign, samples).
    index
        0-based frame number, for error messages.

    Returns
    -------
    bytes
        The compressed frame (even length for ``rle`` and ``deflate``).

    Raises
    ------
    EncodingError
        If the syntax cannot hold the frame, or the codec fails.

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.eye(4, dtype=bool)
    >>> fmt = FrameFormat(4, 4, bits_allocated=1)
    >>> data = encode_frame(frame, "rle", fmt)
    >>> bool((decode_frame(data, "rle", fmt) == frame).all())
    True
    """
    ts = check_encodable(fmt, syntax)
    if not ts.encapsulated:
        raise EncodingError(
            f"{ts.value} stores frames uncompressed, not one by one",
            attribute="TransferSyntaxUID",
            hint="use encode_pixel_data() for native pixel data",
        )
    if frame.shape != fmt.frame_shape:
        raise EncodingError(
            f"frame {index + 1} has shape {frame.shape}, {fmt.frame_shape} expected",
            attribute="frames",
        )
    if ts is TransferSyntax.DEFLATE:
        return _deflate(frame, fmt)
    if ts is TransferSyntax.RLE:
        return encode_rle_frames(np.asarray(frame)[np.newaxis], fmt)[0]
    data = _registry_encode(_container(frame, fmt), ts, fmt, index)
    if ts is TransferSyntax.JPEG2000 and fmt.bits_allocated == 1:
        _check_one_bit_j2k(data, frame, fmt, index)
    return data


def _check_one_bit_j2k(data: bytes, frame: NDArray[Any], fmt: FrameFormat, index: int) -> None:
    """Refuse a 1-bit JPEG 2000 frame that does not decode to what was encoded.

    OpenJPEG (2.5 and pylibjpeg-openjpeg 2.6 alike) writes 1-bit precision
    codestreams that decode differently for a few frames in a hundred (seen on
    random masks: about 0.7 %); every reader built on it would get other voxels.
    """
    back = _registry_decode(data, TransferSyntax.JPEG2000.uid, fmt)
    if not np.array_equal(back.astype(bool), np.asarray(frame, dtype=bool)):
        raise EncodingError(
            f"JPEG 2000 (openjpeg) did not encode 1-bit frame {index + 1} losslessly: it "
            f"decodes with {int((back.astype(bool) != frame).sum())} other pixels",
            attribute="TransferSyntaxUID",
            hint="choose rle, deflate or explicit for BINARY frames (an openjpeg defect "
            "with 1-bit precision; nothing was written)",
        )


def _deflate(frame: NDArray[Any], fmt: FrameFormat) -> bytes:
    if fmt.bits_allocated == 1:
        raw = pack_each_frame(frame[np.newaxis]).tobytes()
    else:
        native = _container(frame, fmt)
        if fmt.samples_per_pixel > 1 and fmt.planar_configuration == 1:
            native = np.ascontiguousarray(np.moveaxis(native, -1, 0))
        raw = native.tobytes()
    data = zlib.compress(raw, wbits=-zlib.MAX_WBITS)
    return data + b"\x00" if len(data) % 2 else data


def _registry_encode(
    frame: NDArray[Any], ts: TransferSyntax, fmt: FrameFormat, index: int
) -> bytes:
    from pydicom.pixels.encoders.base import get_encoder

    options = fmt.pydicom_options()
    if fmt.bits_allocated == 1:  # JPEG 2000: a 1-bit precision codestream
        options.update(bits_allocated=8, bits_stored=1)
    if ts is TransferSyntax.JPEG2000 and fmt.samples_per_pixel == 3:
        options["use_mct"] = False  # keeps Photometric Interpretation RGB
    encoder = get_encoder(ts.uid)
    try:
        if ts is TransferSyntax.JPEG2000:
            with _J2K_ENCODE_LOCK:
                return bytes(encoder.encode(frame, **options))
        return bytes(encoder.encode(frame, **options))
    except Exception as exc:  # plugins raise many types
        raise EncodingError(
            f"{_NAMES[ts]} could not encode frame {index + 1} ({_first_line(exc)})",
            attribute="TransferSyntaxUID",
            hint=f"choose {_choices(*(n for n in ('rle', 'deflate', 'explicit') if n != ts))}",
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def decode_frame(
    data: bytes | bytearray | memoryview,
    syntax: TransferSyntax | str,
    fmt: FrameFormat,
    *,
    index: int = 0,
) -> NDArray[Any]:
    """Decompress one frame.

    Parameters
    ----------
    data
        The frame's compressed bytes (fragments joined, without item headers).
    syntax
        An encapsulated transfer syntax or its UID.
    fmt
        The frame format from the data set (:meth:`FrameFormat.from_dataset`).
    index
        0-based frame number, for error messages.

    Returns
    -------
    numpy.ndarray
        The frame in ``fmt.frame_shape``, ``fmt.dtype`` (``bool`` for 1 bit).

    Raises
    ------
    DecodingError
        If the frame cannot be decoded; the message names the 1-based frame.

    Examples
    --------
    >>> import numpy as np
    >>> fmt = FrameFormat(2, 3, bits_allocated=16, signed=True)
    >>> frame = np.array([[-1, 0, 1], [300, -300, 7]], np.int16)
    >>> decode_frame(encode_frame(frame, "rle", fmt), "rle", fmt).tolist()
    [[-1, 0, 1], [300, -300, 7]]
    """
    ts = _decodable(syntax)
    name = _NAMES.get(ts, ts.value) if isinstance(ts, TransferSyntax) else ts
    try:
        if ts is TransferSyntax.DEFLATE:
            return _inflate(bytes(data), fmt, index)
        if ts is TransferSyntax.RLE:
            check_rle_header(data, fmt, index)
        if ts is TransferSyntax.RLE and fmt.bits_allocated == 1:
            return _rle_bits(bytes(data), fmt)
        if ts is TransferSyntax.RLE and fmt.bits_allocated == 8 and fmt.samples_per_pixel == 1:
            return _rle_bytes(bytes(data), fmt)
        uid = ts.uid if isinstance(ts, TransferSyntax) else ts
        return _registry_decode(bytes(data), uid, fmt)
    except DecodingError:
        raise
    except Exception as exc:  # plugins raise many types
        raise _undecodable(index, name, exc) from exc
    except BaseException as exc:
        # Rust codecs (pylibjpeg-rle) panic on damaged data: pyo3's PanicException
        # derives from BaseException so that `except Exception` misses it.
        if type(exc).__name__ != "PanicException":
            raise
        raise _undecodable(index, name, exc) from exc


@functools.cache
def decodable_syntaxes() -> frozenset[str]:
    """UIDs of the transfer syntaxes whose pixel data this installation can decode.

    The native syntaxes (:class:`TransferSyntax` members that are not
    encapsulated), RLE Lossless and Deflated Image Frame Compression (decoded
    by radbridge itself: NumPy, pylibjpeg-rle and zlib, all dependencies), and
    every other compressed syntax for which a pydicom decoder plugin is
    installed: JPEG-LS and JPEG 2000 always (pyjpegls, pylibjpeg-openjpeg),
    JPEG baseline/extended with Pillow, and so on. JPEG Lossless (Process 14)
    needs pylibjpeg-libjpeg (GPL) or GDCM, which radbridge does not depend on:
    without them it is not in the set.

    Examples
    --------
    >>> "1.2.840.10008.1.2.4.80" in decodable_syntaxes()  # JPEG-LS Lossless
    True
    >>> "1.2.840.10008.1.2" in decodable_syntaxes()  # Implicit VR Little Endian
    True
    """
    from pydicom.uid import UID

    from radbridge.dicom_tables import transfer_syntax_uids

    own = {ts.uid for ts in TransferSyntax if not ts.encapsulated}
    own |= {TransferSyntax.RLE.uid, TransferSyntax.DEFLATE.uid}
    others = (uid for uid in transfer_syntax_uids() if UID(uid).is_compressed and uid not in own)
    return frozenset(own | {uid for uid in others if _decoder_installed(uid)})


def _decoder_installed(uid: str) -> bool:
    """Whether pydicom has a decoder for ``uid`` whose plugin's packages are installed."""
    from pydicom.pixels.decoders.base import get_decoder

    try:
        return bool(get_decoder(uid).is_available)
    except NotImplementedError:  # no decoder for this syntax at all (e.g. video)
        return False


def _undecodable(index: int, name: str, exc: BaseException) -> DecodingError:
    return DecodingError(
        f"frame {index + 1} cannot be decoded as {name} ({_first_line(exc)})",
        attribute="PixelData",
        hint="the file may be damaged or truncated, or a codec plugin is missing",
    )


def _decodable(syntax: TransferSyntax | str) -> TransferSyntax | str:
    """Return the syntax as a member, or the UID of another compressed syntax."""
    try:
        ts = TransferSyntax(syntax)
    except ValueError:
        from pydicom.uid import UID

        uid = UID(str(syntax).strip())
        if uid.is_transfer_syntax and uid.is_compressed:
            return str(uid)
        raise DecodingError(
            f"unknown transfer syntax {syntax!r}", attribute="TransferSyntaxUID"
        ) from None
    if not ts.encapsulated:
        raise DecodingError(
            f"{ts.value} pixel data is not made of compressed frames",
            attribute="TransferSyntaxUID",
            hint="read native frames with FrameReader",
        )
    return ts


def _wrong_size(index: int, got: int, expected: int) -> DecodingError:
    return DecodingError(
        f"frame {index + 1} decodes to {got} bytes, {expected} expected",
        attribute="PixelData",
        hint="Rows, Columns, Bits Allocated or Samples per Pixel do not match the frame",
    )


def _inflate(data: bytes, fmt: FrameFormat, index: int) -> NDArray[Any]:
    raw = zlib.decompressobj(wbits=-zlib.MAX_WBITS).decompress(data)
    if fmt.bits_allocated == 1:
        if len(raw) * 8 < fmt.pixels:
            raise _wrong_size(index, len(raw), (fmt.pixels + 7) // 8)
        return unpack_frames(raw, rows=fmt.rows, columns=fmt.columns, indices=[0]).reshape(
            fmt.frame_shape
        )
    size = fmt.pixels * fmt.bits_allocated // 8
    if len(raw) < size:
        raise _wrong_size(index, len(raw), size)
    array = np.frombuffer(raw, dtype=fmt.dtype.newbyteorder("<"), count=fmt.pixels)
    return _native_shape(array, fmt)


def _native_shape(array: NDArray[Any], fmt: FrameFormat) -> NDArray[Any]:
    """Shape a flat native frame (little- or big-endian) into ``fmt.frame_shape``."""
    if fmt.samples_per_pixel > 1 and fmt.planar_configuration == 1:
        array = np.moveaxis(array.reshape(fmt.samples_per_pixel, fmt.rows, fmt.columns), 0, -1)
    shaped: NDArray[Any] = array.reshape(fmt.frame_shape).astype(fmt.dtype, copy=True)
    return shaped


def _rle_bits(data: bytes, fmt: FrameFormat) -> NDArray[np.bool_]:
    """Decode a 1-bit RLE frame: one byte per pixel, or (non-standard) packed bits."""
    byte_format = FrameFormat(fmt.rows, fmt.columns, bits_allocated=8)
    try:
        return _registry_decode(data, TransferSyntax.RLE.uid, byte_format).astype(bool)
    except Exception as exc:
        packed = FrameFormat(1, (fmt.pixels + 7) // 8, bits_allocated=8)
        try:
            raw = _registry_decode(data, TransferSyntax.RLE.uid, packed)
        except Exception:
            raise exc from None
        frame: NDArray[np.bool_] = unpack_frames(
            raw, rows=fmt.rows, columns=fmt.columns, indices=[0]
        )[0]
        return frame


def _rle_bytes(data: bytes, fmt: FrameFormat) -> NDArray[Any]:
    """Decode an 8-bit single-sample RLE frame (a label map's) with pylibjpeg-rle.

    The same decoder pydicom's registry would choose, called directly: the
    registry wraps each frame in encapsulated Pixel Data and checks its options
    again, which costs more than decoding a label frame (200 frames: ~0.045 ->
    ~0.028 s).
    """
    from rle.utils import decode_pixel_data

    raw = decode_pixel_data(data, version=2, rows=fmt.rows, columns=fmt.columns, bits_allocated=8)
    if len(raw) != fmt.pixels:
        raise ValueError(f"decoded {len(raw)} samples, {fmt.pixels} expected")
    return np.frombuffer(raw, fmt.dtype).reshape(fmt.frame_shape)


def _registry_decode(data: bytes, uid: str, fmt: FrameFormat) -> NDArray[Any]:
    from pydicom.encaps import encapsulate
    from pydicom.pixels.decoders.base import get_decoder

    options: dict[str, Any] = fmt.pydicom_options()
    options["as_rgb"] = False  # stored values, no colour conversion
    decoded, _ = get_decoder(uid).as_array(encapsulate([data], has_bot=False), **options)
    array: NDArray[Any] = np.asarray(decoded)
    if array.size != fmt.pixels:
        raise ValueError(f"decoded {array.size} samples, {fmt.pixels} expected")
    if fmt.bits_allocated == 1:
        return array.reshape(fmt.frame_shape).astype(bool)
    return array.reshape(fmt.frame_shape).astype(fmt.dtype, copy=False)
