"""Encode arrays of frames as Pixel Data, compressed in parallel when it pays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset

from radbridge.errors import EncodingError
from radbridge.pixels.bits import pack_frames
from radbridge.pixels.codecs import check_encodable, check_values
from radbridge.pixels.frame_format import FrameFormat
from radbridge.pixels.parallel import default_workers, encode_parallel
from radbridge.pixels.rle import encode_rle_frames
from radbridge.pixels.syntax import TransferSyntax

__all__ = ["EncodedPixelData", "encode_frames", "encode_pixel_data"]

#: Largest offset a Basic Offset Table can hold.
_BOT_LIMIT = 2**32 - 1


def _prepare(
    frames: ArrayLike,
    syntax: TransferSyntax | str,
    bits_allocated: int | None,
    bits_stored: int | None,
    photometric_interpretation: str | None,
) -> tuple[NDArray[Any], FrameFormat, TransferSyntax]:
    array = np.asarray(frames)
    if array.ndim >= 1 and len(array) == 0:
        raise EncodingError("there are no frames to encode", attribute="frames")
    fmt = FrameFormat.of_frames(
        array,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        photometric_interpretation=photometric_interpretation,
    )
    ts = check_encodable(fmt, syntax)
    check_values(array, fmt)
    return array, fmt, ts


def encode_frames(
    frames: ArrayLike,
    syntax: TransferSyntax | str,
    *,
    bits_allocated: int | None = None,
    bits_stored: int | None = None,
    photometric_interpretation: str | None = None,
    workers: int | None = None,
) -> list[bytes]:
    """Compress each frame for an encapsulated transfer syntax.

    Parameters
    ----------
    frames
        ``[frame, row, column]`` (or ``[frame, row, column, 3]`` for RGB) of
        booleans or integers. The integer type gives the sign and, unless
        ``bits_allocated`` says otherwise, the bits per sample.
    syntax
        ``rle``, ``jpegls``, ``jpeg2000`` or ``deflate`` (a
        :class:`TransferSyntax`, its value or its UID).
    bits_allocated
        1 for binary frames (booleans or 0/1), else 8, 16 or 32.
    bits_stored
        Significant bits (default: ``bits_allocated``); values must fit.
    photometric_interpretation
        Default ``MONOCHROME2``, or ``RGB`` for three samples. Colour frames are
        compressed without a colour transform, so ``RGB`` stays valid.
    workers
        Processes/threads to compress with; default: the usable CPUs. Frames
        come back in input order whatever the count.

    Returns
    -------
    list of bytes
        One compressed frame per input frame, for :func:`pydicom.encaps.encapsulate`.

    Raises
    ------
    EncodingError
        If the syntax cannot store these frames losslessly (the message names
        the syntax and what to choose instead), or a value does not fit.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((3, 64, 64), np.uint8)
    >>> labels[:, 10:20, 30:50] = [[[1]], [[2]], [[3]]]
    >>> encoded = encode_frames(labels, "jpegls", workers=1)
    >>> len(encoded), all(len(e) < 200 for e in encoded)
    (3, True)
    """
    array, fmt, ts = _prepare(
        frames, syntax, bits_allocated, bits_stored, photometric_interpretation
    )
    if not ts.encapsulated:
        raise EncodingError(
            f"{ts.value} stores frames uncompressed, not one by one",
            attribute="TransferSyntaxUID",
            hint="use encode_pixel_data(), or choose rle, jpegls, jpeg2000 or deflate",
        )
    count = default_workers() if workers is None else workers
    if count < 1:
        raise EncodingError(f"workers must be at least 1, not {count}", attribute="workers")
    if ts is TransferSyntax.RLE:  # vectorised over all frames: faster than any pool
        return encode_rle_frames(array, fmt)
    return encode_parallel(array, ts, fmt, count)


@dataclass(frozen=True)
class EncodedPixelData:
    """A complete Pixel Data value and how to store it.

    Attributes
    ----------
    value
        The bytes of Pixel Data (7FE0,0010): native frames, or encapsulated
        fragments with a Basic Offset Table.
    transfer_syntax
        The syntax the value is encoded in (put its UID in the file meta).
    vr
        ``OB`` or ``OW``.
    number_of_frames
        Frames in the value.
    extended_offsets
        Extended Offset Table and its lengths, when the value is too large for
        a Basic Offset Table (over 4 GiB); else ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> encoded = encode_pixel_data(np.ones((3, 64, 64), bool), "rle", workers=1)
    >>> encoded.vr, encoded.number_of_frames, encoded.value[:4].hex()  # an Item tag
    ('OB', 3, 'feff00e0')
    """

    value: bytes
    transfer_syntax: TransferSyntax
    vr: str
    number_of_frames: int
    extended_offsets: tuple[bytes, bytes] | None = None

    def store(self, ds: Dataset) -> None:
        """Set Pixel Data (and the Extended Offset Table, if any) on ``ds``.

        Examples
        --------
        >>> import numpy as np
        >>> from pydicom import Dataset
        >>> ds = Dataset()
        >>> encode_pixel_data(np.ones((2, 4, 4), bool), "explicit").store(ds)
        >>> ds["PixelData"].VR, len(ds.PixelData)
        ('OB', 4)
        """
        ds.PixelData = self.value
        element = ds["PixelData"]
        element.VR = self.vr
        element.is_undefined_length = self.transfer_syntax.encapsulated
        for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
            if keyword in ds:
                del ds[keyword]
        if self.extended_offsets is not None:
            ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = self.extended_offsets


def encode_pixel_data(
    frames: ArrayLike,
    syntax: TransferSyntax | str,
    *,
    bits_allocated: int | None = None,
    bits_stored: int | None = None,
    photometric_interpretation: str | None = None,
    workers: int | None = None,
) -> EncodedPixelData:
    """Encode frames as a complete Pixel Data value in any writable syntax.

    Native syntaxes concatenate the frames (1-bit frames as one bit stream,
    little endian, colour-by-pixel) and pad to an even length; encapsulated
    ones compress each frame (see :func:`encode_frames`) and add a Basic
    Offset Table, or an Extended Offset Table beyond 4 GiB.

    Parameters
    ----------
    frames, syntax, bits_allocated, bits_stored, photometric_interpretation, workers
        As for :func:`encode_frames`; ``syntax`` may also be ``explicit``,
        ``implicit`` or ``deflated-explicit``.

    Returns
    -------
    EncodedPixelData

    Raises
    ------
    EncodingError
        As for :func:`encode_frames`.

    Examples
    --------
    >>> import numpy as np
    >>> encoded = encode_pixel_data(np.zeros((2, 3, 3), np.uint16), "explicit")
    >>> encoded.vr, len(encoded.value), encoded.transfer_syntax.uid
    ('OW', 36, '1.2.840.10008.1.2.1')
    """
    array, fmt, ts = _prepare(
        frames, syntax, bits_allocated, bits_stored, photometric_interpretation
    )
    count = len(array)
    if not ts.encapsulated:
        if fmt.bits_allocated == 1:
            value = pack_frames(array)
        else:
            value = np.ascontiguousarray(array, dtype=fmt.dtype.newbyteorder("<")).tobytes()
            value += b"\x00" * (len(value) % 2)
        return EncodedPixelData(value, ts, "OB" if fmt.bits_allocated <= 8 else "OW", count)
    encoded = encode_frames(
        array,
        ts,
        bits_allocated=fmt.bits_allocated,
        bits_stored=fmt.stored,
        photometric_interpretation=fmt.photometric,
        workers=workers,
    )
    from pydicom.encaps import encapsulate, encapsulate_extended

    # Offsets count 8 bytes of item header per fragment and the even padding.
    total = sum(len(e) + len(e) % 2 + 8 for e in encoded)
    if total - 8 - len(encoded[-1]) <= _BOT_LIMIT:
        return EncodedPixelData(encapsulate(encoded, has_bot=True), ts, "OB", count)
    value, offsets, lengths = encapsulate_extended(encoded)
    return EncodedPixelData(value, ts, "OB", count, (offsets, lengths))
