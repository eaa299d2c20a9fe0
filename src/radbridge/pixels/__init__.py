"""Pixel data: 1-bit packing, frame compression and lazy frame access.

The layer under the object writers and readers (SEG, Parametric Map,
Secondary Capture). Compression goes through pydicom's encoder/decoder
registry (pylibjpeg-rle, pyjpegls, pylibjpeg-openjpeg); radbridge adds 1-bit
packing, lossless-only checks, Deflated Image Frame Compression, parallel
encoding, a vectorised RLE encoder (pylibjpeg-rle's bytes, ~10x faster on
label maps) and per-frame reading.

Encoding
    :func:`encode_frames` compresses frames (in worker processes when that is
    faster) for ``rle``, ``jpegls``, ``jpeg2000`` or ``deflate``;
    :func:`encode_pixel_data` returns a complete Pixel Data value for any
    writable :class:`TransferSyntax`, native or encapsulated.
Decoding
    :class:`FrameReader` decodes only the frames asked for;
    :func:`read_planes` decodes one frame of each of several images (a series'
    slices; compressed ones in parallel); :func:`decode_frame` decodes one
    compressed frame.
1-bit packing
    :func:`pack_frames` / :func:`unpack_frames` for native pixel data (frames
    not byte-aligned), :func:`pack_each_frame` for compressed frames.

Examples
--------
>>> import numpy as np
>>> from pydicom import Dataset
>>> from radbridge.pixels import FrameReader, encode_pixel_data
>>> labels = np.zeros((4, 64, 64), np.uint8)
>>> labels[1:3, 20:40, 10:30] = 5
>>> ds = Dataset()
>>> ds.Rows, ds.Columns, ds.BitsAllocated, ds.NumberOfFrames = 64, 64, 8, 4
>>> encoded = encode_pixel_data(labels, "jpegls", workers=1)
>>> encoded.store(ds)
>>> ds.file_meta = Dataset()
>>> ds.file_meta.TransferSyntaxUID = encoded.transfer_syntax.uid
>>> bool((FrameReader(ds).frame(2) == labels[2]).all())
True
"""

from radbridge.pixels.bits import pack_each_frame, pack_frames, unpack_frames
from radbridge.pixels.codecs import decode_frame, encode_frame
from radbridge.pixels.encode import EncodedPixelData, encode_frames, encode_pixel_data
from radbridge.pixels.frame_format import FrameFormat
from radbridge.pixels.reader import FrameReader, read_planes
from radbridge.pixels.syntax import TransferSyntax

__all__ = [
    "EncodedPixelData",
    "FrameFormat",
    "FrameReader",
    "TransferSyntax",
    "decode_frame",
    "encode_frame",
    "encode_frames",
    "encode_pixel_data",
    "pack_each_frame",
    "pack_frames",
    "read_planes",
    "unpack_frames",
]
