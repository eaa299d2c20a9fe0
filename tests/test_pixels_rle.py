"""radbridge's NumPy RLE encoder against outside codecs: pylibjpeg-rle's bytes, DCMTK's decoder.

The encoder cuts runs exactly as pylibjpeg-rle 2.x does, so every frame must encode
to the same bytes (pylibjpeg-rle is called directly here, not through radbridge);
DCMTK's ``dcmdrle`` decodes a file of such frames back to the input.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, generate_uid
from rle.utils import decode_pixel_data as pylibjpeg_decode
from rle.utils import encode_pixel_data as pylibjpeg_encode

from radbridge.errors import DecodingError
from radbridge.pixels import FrameFormat, decode_frame, encode_frames
from radbridge.pixels.rle import encode_rle_frames
from tests.peers import dcmdrle


def theirs(frame: np.ndarray, fmt: FrameFormat) -> bytes:
    """pylibjpeg-rle's encoding of one frame (1-bit frames as one byte per pixel)."""
    if fmt.bits_allocated == 1:
        data, bits = np.ascontiguousarray(frame, np.uint8), 8
    else:
        data, bits = np.ascontiguousarray(frame, fmt.dtype.newbyteorder("<")), fmt.bits_allocated
    return bytes(
        pylibjpeg_encode(
            data.tobytes(),
            rows=fmt.rows,
            columns=fmt.columns,
            samples_per_pixel=fmt.samples_per_pixel,
            bits_allocated=bits,
            byteorder="<",
        )
    )


def assert_same_as_pylibjpeg(frames: np.ndarray, fmt: FrameFormat) -> None:
    ours = encode_rle_frames(frames, fmt)
    assert len(ours) == len(frames)
    for index, (frame, data) in enumerate(zip(frames, ours, strict=True)):
        assert data == theirs(frame, fmt), f"frame {index} differs"


def row_with(*pieces: tuple[int, int]) -> np.ndarray:
    """One row of (value, count) pieces; value -1 means that many distinct bytes."""
    parts, counter = [], 0
    for value, count in pieces:
        if value < 0:
            parts.append((np.arange(counter, counter + count) % 251 + 1).astype(np.uint8))
            counter += count
        else:
            parts.append(np.full(count, value, np.uint8))
    return np.concatenate(parts)[np.newaxis, np.newaxis]


@pytest.mark.parametrize(
    "pieces",
    [
        [(0, 1)],  # a one-byte row
        [(0, 2)],
        [(9, 127), (-1, 1)],
        [(9, 128)],  # one full replicate run
        [(9, 129)],  # 128 + a one-byte literal
        [(9, 130), (-1, 3)],  # 128 + a replicate of 2
        [(9, 256), (0, 257)],
        [(-1, 128)],  # one full literal run
        [(-1, 129)],  # 128 + 1 literal bytes
        [(-1, 257), (5, 2), (-1, 1)],
        [(-1, 1), (5, 2), (-1, 1), (6, 3), (-1, 2)],  # literals between short replicates
        [(-1, 3), (0, 383), (-1, 384), (7, 385)],
    ],
)
def test_edge_runs_encode_to_pylibjpeg_bytes(pieces):
    row = row_with(*pieces)
    assert_same_as_pylibjpeg(row, FrameFormat(1, row.shape[2]))
    # the same row several times in a frame: runs never cross a row boundary
    frames = np.repeat(row, 3, axis=1)
    assert_same_as_pylibjpeg(frames, FrameFormat(3, row.shape[2]))


@pytest.mark.parametrize(
    ("dtype", "signed"),
    [(np.uint8, False), (np.int8, True), (np.uint16, False), (np.int16, True), (np.uint32, False)],
)
def test_noise_and_labels_of_every_width_encode_to_pylibjpeg_bytes(dtype, signed):
    rng = np.random.default_rng(np.dtype(dtype).itemsize * 10 + signed)
    info = np.iinfo(dtype)
    noise = rng.integers(info.min, info.max, (3, 7, 301), dtype=dtype, endpoint=True)
    noise[1, 2:5, 20:200] = info.max  # runs across the byte planes of wide samples
    fmt = FrameFormat(7, 301, np.dtype(dtype).itemsize * 8, signed=signed)
    assert_same_as_pylibjpeg(noise, fmt)


def test_one_bit_and_rgb_frames_encode_to_pylibjpeg_bytes():
    rng = np.random.default_rng(3)
    masks = rng.random((4, 33, 65)) > 0.7
    masks[2] = False
    assert_same_as_pylibjpeg(masks, FrameFormat(33, 65, bits_allocated=1))
    rgb = rng.integers(0, 3, (2, 9, 17, 3), dtype=np.uint8) * 100
    assert_same_as_pylibjpeg(rgb, FrameFormat(9, 17, samples_per_pixel=3))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(1, 6),
    columns=st.integers(1, 300),
    frames=st.integers(1, 3),
    values=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    sixteen=st.booleans(),
)
def test_label_like_frames_encode_to_pylibjpeg_bytes(rows, columns, frames, values, seed, sixteen):
    rng = np.random.default_rng(seed)
    size = frames * rows * columns
    cuts = np.sort(rng.integers(0, size, rng.integers(0, 20)))
    labels = np.zeros(size, np.uint16 if sixteen else np.uint8)
    for start, stop in zip([0, *cuts], [*cuts, size], strict=True):
        labels[start:stop] = rng.integers(0, values) * (257 if sixteen else 1)
    labels = labels.reshape(frames, rows, columns)
    assert_same_as_pylibjpeg(labels, FrameFormat(rows, columns, 16 if sixteen else 8))


def test_batches_of_frames_give_the_same_bytes(monkeypatch):
    labels = np.zeros((9, 40, 50), np.uint8)
    labels[:, 10:30, 5:45] = np.arange(9)[:, None, None]
    fmt = FrameFormat(40, 50)
    whole = encode_rle_frames(labels, fmt)
    from radbridge.pixels import rle

    monkeypatch.setattr(rle, "_BATCH_BYTES", 40 * 50 * 2)  # two frames per batch
    assert encode_rle_frames(labels, fmt) == whole
    decoded = [pylibjpeg_decode(d, version=2, rows=40, columns=50, bits_allocated=8) for d in whole]
    assert decoded == [f.tobytes() for f in labels]


def test_encode_frames_uses_it_for_rle():
    labels = np.zeros((3, 20, 30), np.uint16)
    labels[1, 5:15, 3:27] = 300
    fmt = FrameFormat(20, 30, 16)
    assert encode_frames(labels, "rle", workers=2) == [theirs(f, fmt) for f in labels]


@pytest.mark.peer
def test_dcmtk_decodes_our_rle_frames(tmp_path):
    rng = np.random.default_rng(11)
    frames = np.zeros((5, 64, 80), np.int16)
    frames[:, 10:50, 20:70] = rng.integers(-3, 4, (5, 1, 1))  # label-like blocks
    frames[3] = rng.integers(-32768, 32767, (64, 80), dtype=np.int16)  # literal runs
    path = tmp_path / "rle.dcm"
    _dataset(frames, encode_rle_frames(frames, FrameFormat(64, 80, 16, signed=True))).save_as(
        path, enforce_file_format=True
    )
    native = dcmdrle(path, tmp_path / "native.dcm")
    ds = pydicom.dcmread(native)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    np.testing.assert_array_equal(ds.pixel_array, frames)


def _dataset(frames: np.ndarray, encoded: list[bytes]) -> Dataset:
    """A multi-frame Secondary Capture of signed 16-bit ``frames`` with RLE Pixel Data."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.2"  # Multi-frame Grayscale Word SC
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.mark.parametrize("signed", [False, True])
def test_eight_bit_frames_encoded_by_pylibjpeg_decode_to_their_values(signed):
    """8-bit single-sample frames (label maps) are decoded straight through pylibjpeg-rle."""
    rng = np.random.default_rng(5)
    fmt = FrameFormat(37, 50, 8, signed=signed)
    frame = np.zeros((37, 50), fmt.dtype)
    frame[3:30, 7:44] = rng.integers(-100 if signed else 0, 100, (1, 37))  # runs down rows
    frame[31] = rng.integers(-128 if signed else 0, 127, 50)  # a literal row
    decoded = decode_frame(theirs(frame, fmt), "rle", fmt)
    assert decoded.dtype == fmt.dtype
    np.testing.assert_array_equal(decoded, frame)
    decoded[0, 0] = 1  # the caller owns the array (label volumes are built in place)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:40],  # segments cut short
        lambda data: data[:64],  # only the RLE header
        lambda data: data[:4] + (10**6).to_bytes(4, "little") + data[8:],  # offset past the end
    ],
)
def test_damaged_eight_bit_frames_name_the_frame(damage):
    fmt = FrameFormat(20, 30, 8)
    frame = np.zeros((20, 30), np.uint8)
    frame[5:15, 3:27] = 7
    with pytest.raises(DecodingError, match="frame 4 cannot be decoded as RLE Lossless"):
        decode_frame(damage(theirs(frame, fmt)), "rle", fmt, index=3)


def _header(count: int, offsets: list[int]) -> bytes:
    return count.to_bytes(4, "little") + b"".join(o.to_bytes(4, "little") for o in offsets)


@pytest.mark.parametrize(
    ("bits", "damage", "what"),
    [
        # pylibjpeg-rle decodes a header claiming no segments to a frame of zeros
        (8, lambda d: _header(0, [64]) + d[8:], "0 segments where 1 are needed"),
        (8, lambda d: _header(2, [64, 70]) + d[12:], "2 segments where 1 are needed"),
        # ... and ignores a second segment at offset 0 (the frame's high bytes)
        (16, lambda d: _header(2, [64, 0]) + d[12:], r"segment offsets \[64, 0\]"),
        (16, lambda d: _header(2, [64, 10**6]) + d[12:], r"segment offsets \[64, 1000000\]"),
        (1, lambda d: _header(1, [32]) + d[8:], r"segment offsets \[32\]"),
        (8, lambda d: d[:63], "holds 63 bytes, less than its 64-byte header"),
    ],
)
def test_rle_headers_that_do_not_describe_the_frame_are_refused(bits, damage, what):
    fmt = FrameFormat(20, 30, bits)
    frame = np.zeros((20, 30), fmt.dtype)
    frame[5:15, 3:27] = 1 if bits == 1 else 300 if bits == 16 else 7
    encoded = theirs(frame, fmt)
    np.testing.assert_array_equal(decode_frame(encoded, "rle", fmt), frame)
    with pytest.raises(DecodingError, match=f"frame 2 cannot be decoded as RLE Lossless .*{what}"):
        decode_frame(damage(encoded), "rle", fmt, index=1)
