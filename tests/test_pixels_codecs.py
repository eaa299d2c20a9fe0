"""Frame codecs: lossless round trips for every syntax and type, pydicom as independent reader."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import zlib

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from radbridge.errors import DecodingError, EncodingError, RadbridgeError
from radbridge.pixels import (
    FrameFormat,
    FrameReader,
    TransferSyntax,
    decode_frame,
    encode_frame,
    encode_frames,
    encode_pixel_data,
)
from radbridge.pixels import syntax as syntax_module

COMPRESSED = ["rle", "jpegls", "jpeg2000", "deflate"]
NATIVE = ["explicit", "implicit", "deflated-explicit"]


def sample(kind: str, n: int = 3, rows: int = 40, columns: int = 48) -> np.ndarray:
    """Frames of a kind: label-like blocks plus noise, covering the whole value range."""
    rng = np.random.default_rng(zlib.crc32(kind.encode()))  # the same data in every process
    if kind == "bool":
        return rng.random((n, rows, columns)) > 0.6
    if kind == "rgb8":
        return rng.integers(0, 256, (n, rows, columns, 3), dtype=np.uint8)
    dtype = np.dtype(kind)
    info = np.iinfo(dtype)
    frames = rng.integers(info.min, int(info.max) + 1, (n, rows, columns), dtype=dtype)
    frames[:, 5:15, 5:25] = info.max  # runs, as in label maps
    frames[0, 0, :2] = [info.min, info.max]
    return frames


CASES = [
    ("bool", COMPRESSED_1BIT := ["rle", "jpeg2000", "deflate"]),
    ("uint8", COMPRESSED),
    ("int8", COMPRESSED),
    ("uint16", COMPRESSED),
    ("int16", COMPRESSED),
    ("rgb8", COMPRESSED),
]
PAIRS = [(kind, syntax) for kind, syntaxes in CASES for syntax in syntaxes]


PYDICOM_WRITES_DEFLATE = tuple(int(p) for p in pydicom.__version__.split(".")[:2]) >= (3, 1)


@pytest.fixture
def deflate(monkeypatch):
    """Let radbridge encode Deflated Image Frame Compression even where pydicom 3.0 cannot
    save it, so the codec itself is tested; files then stay in memory."""
    monkeypatch.setattr(syntax_module, "_pydicom_writes_deflate", lambda: True)


def dataset_for(frames: np.ndarray, syntax: str, **options) -> Dataset:
    """A minimal Secondary Capture data set holding ``frames`` in ``syntax``."""
    encoded = encode_pixel_data(frames, syntax, **options)
    fmt = FrameFormat.of_frames(frames, bits_allocated=options.get("bits_allocated"))
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = fmt.rows, fmt.columns
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = fmt.samples_per_pixel
    ds.PhotometricInterpretation = fmt.photometric
    if fmt.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = fmt.bits_allocated
    ds.BitsStored = fmt.stored
    ds.HighBit = fmt.stored - 1
    ds.PixelRepresentation = int(fmt.signed)
    encoded.store(ds)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = encoded.transfer_syntax.uid
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def written(ds: Dataset) -> Dataset:
    if ds.file_meta.TransferSyntaxUID == TransferSyntax.DEFLATE.uid and not PYDICOM_WRITES_DEFLATE:
        return ds  # pydicom 3.0 cannot save this syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize(("kind", "syntax"), PAIRS)
@pytest.mark.usefixtures("deflate")
def test_frame_round_trip_is_exact(kind, syntax):
    frames = sample(kind)
    fmt = FrameFormat.of_frames(frames)
    for i, frame in enumerate(frames):
        data = encode_frame(frame, syntax, fmt, index=i)
        back = decode_frame(data, syntax, fmt, index=i)
        assert back.dtype == fmt.dtype
        np.testing.assert_array_equal(back, frame)


@pytest.mark.parametrize(("kind", "syntax"), PAIRS + [(k, s) for k, _ in CASES for s in NATIVE])
@pytest.mark.usefixtures("deflate")
def test_file_round_trip_through_frame_reader(kind, syntax):
    frames = sample(kind, n=4)
    ds = written(dataset_for(frames, syntax, workers=1))
    reader = FrameReader(ds)
    np.testing.assert_array_equal(reader.frames(), frames)
    np.testing.assert_array_equal(reader.frames([3, 0]), frames[[3, 0]])


@pytest.mark.parametrize(
    ("kind", "syntax"),
    [(k, s) for k, s in PAIRS if s != "deflate" and not (k == "bool" and s == "rle")]
    + [(k, "explicit") for k, _ in CASES],
)
def test_pydicom_reads_what_we_write(kind, syntax):
    frames = sample(kind, n=4)
    ds = written(dataset_for(frames, syntax, workers=1))
    np.testing.assert_array_equal(ds.pixel_array, frames)


def test_rle_one_bit_frames_hold_one_byte_per_pixel():
    # PS3.5 G.2: a 1-bit composite pixel code is padded to a byte. pydicom 3.0's own RLE
    # decoder (not the pylibjpeg plugin we encode with) reads our frames as 8-bit pixels.
    frames = sample("bool", n=3)
    ds = written(dataset_for(frames, "rle", workers=1))
    as_bytes = copy.deepcopy(ds)
    as_bytes.BitsAllocated = as_bytes.BitsStored = 8
    as_bytes.HighBit = 7
    from pydicom.pixels import pixel_array

    np.testing.assert_array_equal(pixel_array(as_bytes, decoding_plugin="pydicom"), frames)


@pytest.mark.usefixtures("deflate")
def test_deflate_frames_are_raw_deflate_of_each_packed_frame():
    frames = sample("bool", n=3, rows=23, columns=38)
    encoded = encode_frames(frames, "deflate", workers=1)
    for frame, data in zip(frames, encoded, strict=True):
        assert len(data) % 2 == 0
        raw = np.frombuffer(zlib.decompress(data, wbits=-15), np.uint8)
        bits = np.unpackbits(raw, bitorder="little")[: frame.size]
        np.testing.assert_array_equal(bits.reshape(frame.shape), frame)
    labels = sample("uint16", n=2)
    for frame, data in zip(labels, encode_frames(labels, "deflate", workers=1), strict=True):
        raw = zlib.decompress(data, wbits=-15)
        np.testing.assert_array_equal(np.frombuffer(raw, "<u2").reshape(frame.shape), frame)


@pytest.mark.usefixtures("deflate")
def test_bits_stored_below_allocated():
    frames = np.random.default_rng(5).integers(-2048, 2048, (2, 40, 40), dtype=np.int16)
    for syntax in ["rle", "jpegls", "jpeg2000", "deflate", "explicit"]:
        ds = written(dataset_for(frames, syntax, bits_stored=12, workers=1))
        np.testing.assert_array_equal(FrameReader(ds).frames(), frames)
    with pytest.raises(EncodingError, match="do not fit 12 stored bits"):
        encode_frames(frames * 2, "rle", bits_stored=12)


def test_wider_integers_are_stored_in_the_requested_container():
    frames = np.arange(2 * 40 * 40, dtype=np.uint32).reshape(2, 40, 40) % 200
    encoded = encode_frames(frames.astype(np.uint8), "jpegls", workers=1)
    assert encode_frames(frames, "jpegls", bits_allocated=8, workers=1) == encoded
    with pytest.raises(EncodingError, match="do not fit 8 stored bits"):
        encode_frames(frames + 100, "jpegls", bits_allocated=8)
    # The sign comes from the type: signed 64-bit labels 0..199 do not fit int8.
    with pytest.raises(EncodingError, match=r"\(signed\)"):
        encode_frames(frames.astype(np.int64), "jpegls", bits_allocated=8)


@pytest.mark.parametrize(
    ("frames", "syntax", "options", "instead"),
    [
        (np.ones((2, 64, 64), bool), "jpegls", {}, "rle, jpeg2000"),
        (np.ones((2, 23, 38), np.uint8), "jpeg2000", {}, "rle, jpegls"),
        (np.ones((2, 64, 64), np.uint32), "jpegls", {}, "Choose rle"),
        (np.ones((2, 64, 64), np.uint32), "jpeg2000", {}, "Choose rle"),
        (np.ones((2, 8, 8), np.uint8), "big-endian", {}, "explicit"),
    ],
)
def test_unsupported_combinations_name_the_syntax_and_an_alternative(
    frames, syntax, options, instead
):
    with pytest.raises(EncodingError) as info:
        encode_frames(frames, syntax, **options)
    text = str(info.value)
    assert TransferSyntax(syntax).uid in text
    assert instead in text


def test_codec_failure_names_the_frame():
    # pyjpegls cannot encode tiny noisy frames; the error names the frame and a way out.
    frames = np.zeros((3, 8, 8), np.uint8)
    frames[2] = np.random.default_rng(0).integers(0, 256, (8, 8))
    with pytest.raises(EncodingError, match=r"frame 3 .*Choose rle"):
        encode_frames(frames, "jpegls", workers=1)


def test_float_and_unknown_inputs_are_refused():
    with pytest.raises(EncodingError, match="cannot be compressed losslessly"):
        encode_frames(np.zeros((1, 4, 4), np.float32), "rle")
    with pytest.raises(EncodingError, match="unknown transfer syntax"):
        encode_frames(np.zeros((1, 4, 4), np.uint8), "jpeg-xl")
    with pytest.raises(EncodingError, match="shape"):
        encode_frames(np.zeros((4, 4), np.uint8), "rle")
    with pytest.raises(EncodingError, match="no frames"):
        encode_frames(np.zeros((0, 4, 4), np.uint8), "rle")
    with pytest.raises(EncodingError, match="uncompressed"):
        encode_frames(np.zeros((1, 4, 4), np.uint8), "explicit")


@pytest.mark.parametrize("syntax", COMPRESSED)
@pytest.mark.usefixtures("deflate")
def test_garbage_frame_raises_decoding_error_with_frame_number(syntax):
    fmt = FrameFormat(40, 48, bits_allocated=8)
    good = encode_frame(np.zeros((40, 48), np.uint8), syntax, fmt)
    with pytest.raises(DecodingError, match="frame 7"):
        decode_frame(good[: len(good) // 3] + b"\xff\x00" * 5, syntax, fmt, index=6)


def test_deflate_is_written_only_where_pydicom_can_save_it():
    assert TransferSyntax.DEFLATE.writable is PYDICOM_WRITES_DEFLATE
    frames = np.ones((1, 8, 8), bool)
    if PYDICOM_WRITES_DEFLATE:
        assert encode_frames(frames, "deflate", workers=1)
    else:
        with pytest.raises(EncodingError, match=r"pydicom 3\.1 or later"):
            encode_frames(frames, "deflate", workers=1)
        with pytest.raises(EncodingError) as info:
            encode_frames(frames, "jpegls")
        assert "deflate" not in str(info.value)


def test_deflate_support_does_not_depend_on_importing_pynetdicom_first():
    # pynetdicom adds Deflated Image Frame Compression to pydicom's UID dictionary
    # when imported; radbridge must write the same whatever was imported before it.
    check = "from radbridge.pixels import TransferSyntax; print(TransferSyntax.DEFLATE.writable)"
    answers = {
        subprocess.run(
            [sys.executable, "-c", first + check], capture_output=True, text=True, check=True
        ).stdout.strip()
        for first in ("", "import pynetdicom; ")
    }
    assert answers == {str(PYDICOM_WRITES_DEFLATE)}


def test_decode_frame_rejects_native_syntax():
    with pytest.raises(DecodingError):
        decode_frame(b"\x00" * 16, "explicit", FrameFormat(4, 4))


def test_transfer_syntax_names_and_uids():
    assert TransferSyntax("none") is TransferSyntax.EXPLICIT
    assert TransferSyntax("JPEG-LS") is TransferSyntax.JPEGLS
    assert TransferSyntax("1.2.840.10008.1.2.4.90") is TransferSyntax.JPEG2000
    assert TransferSyntax("1.2.840.10008.1.2.8.1") is TransferSyntax.DEFLATE
    assert TransferSyntax("1.2.840.10008.1.2.1.99") is TransferSyntax.DEFLATED_EXPLICIT
    for member in TransferSyntax:
        if member is TransferSyntax.DEFLATE and not PYDICOM_WRITES_DEFLATE:
            continue  # added to pydicom's UID list in 3.1
        assert pydicom.uid.UID(member.uid).is_transfer_syntax
        assert pydicom.uid.UID(member.uid).is_encapsulated == member.encapsulated
    with pytest.raises(RadbridgeError):
        TransferSyntax.parse("mpeg2")


@pytest.mark.usefixtures("deflate")
def test_one_bit_jpeg2000_that_openjpeg_cannot_round_trip_is_refused():
    """OpenJPEG writes a few 1-bit codestreams that decode to other pixels (this frame
    decodes with 725 of 1920 pixels flipped, by Debian's opj_decompress 2.5 too): such a
    frame is refused, never written lossy."""
    frame = np.random.default_rng(72).random((40, 48)) > 0.6
    fmt = FrameFormat.of_frames(frame[np.newaxis])
    with pytest.raises(EncodingError, match="did not encode 1-bit frame 1 losslessly"):
        encode_frame(frame, "jpeg2000", fmt)
    for syntax in ("rle", "deflate"):
        assert np.array_equal(decode_frame(encode_frame(frame, syntax, fmt), syntax, fmt), frame)
