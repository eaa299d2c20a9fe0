"""FrameReader: real files from other producers, lazy access, offset tables, damaged input."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels import pixel_array

from radbridge.errors import DecodingError, MissingAttributeError
from radbridge.pixels import FrameReader, encode_frames, pack_frames

LIVER_VARIANTS = [
    "liver_rle",
    "liver_j2k",
    "liver_deflate",
    "liver_expb",
    "liver_nonbyte_aligned",
    "liver_nonbyte_aligned_rle",
]


@pytest.fixture(scope="module")
def liver(interop_path):
    """The three frames of dcmqi's liver.dcm as written by dcmqi (Explicit VR Little Endian)."""
    return pydicom.dcmread(interop_path / "seg" / "dcmqi" / "liver.dcm").pixel_array.astype(bool)


@pytest.fixture(scope="module")
def interop_path():
    from tests.peers import interop_dir

    return interop_dir()


@pytest.mark.parametrize("name", LIVER_VARIANTS)
def test_recoded_liver_frames_equal_dcmqi_frames(interop_path, liver, name):
    path = interop_path / "seg" / "pydicom_recoded" / f"{name}.dcm"
    reader = FrameReader(pydicom.dcmread(path))
    rows, columns = reader.format.rows, reader.format.columns
    expected = liver[:, :rows, :columns]  # the non-byte-aligned files are cropped to 510x510
    assert reader.number_of_frames == 3
    for index in range(3):
        frame = reader.frame(index)
        assert frame.dtype == np.bool_
        np.testing.assert_array_equal(frame, expected[index])
    np.testing.assert_array_equal(reader.frames([2, 0]), expected[[2, 0]])


def test_dcmqi_odd_matrix_frames_equal_pydicom(interop_path):
    ds = pydicom.dcmread(interop_path / "seg" / "dcmqi" / "23x38x3_label.seg.dcm")
    reader = FrameReader(ds)
    assert reader.format.rows * reader.format.columns % 8 != 0  # frames straddle bytes
    expected = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    np.testing.assert_array_equal(reader.frames(), expected)
    np.testing.assert_array_equal(reader.frames([2, 1]), expected[[2, 1]])


PYDICOM_FILES = [
    "MR_small.dcm",
    "MR_small_expb.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "rtdose.dcm",
    "rtdose_expb.dcm",
    "rtdose_rle.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "liver_expb_1frame.dcm",
    "examples_palette.dcm",
]


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_frames_equal_pydicom_pixel_array(name):
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} is bundled with pydicom"
    ds = pydicom.dcmread(path)
    expected = pixel_array(ds, as_rgb=False).reshape(-1, *FrameReader(ds).format.frame_shape)
    reader = FrameReader(ds)
    np.testing.assert_array_equal(reader.frames(), expected)
    last = reader.number_of_frames - 1
    np.testing.assert_array_equal(reader.frame(last), expected[last])


def test_truncated_file_from_pydicom_raises_decoding_error():
    ds = pydicom.dcmread(get_testdata_file("MR_truncated.dcm", download=False))
    with pytest.raises(DecodingError, match="frame 1 is missing") as info:
        FrameReader(ds).frame(0)
    assert info.value.path and info.value.path.endswith("MR_truncated.dcm")


# -- synthetic data sets -------------------------------------------------------------------


def image(frames: np.ndarray, syntax_uid: str, value: bytes, bits: int, **extra) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = 1 if frames.ndim == 3 else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if frames.ndim == 3 else "RGB"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    for keyword, item in extra.items():
        setattr(ds, keyword, item)
    ds.PixelData = value
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax_uid
    return ds


@pytest.fixture
def labels():
    rng = np.random.default_rng(11)
    frames = np.zeros((4, 48, 40), np.uint8)
    for i in range(4):
        frames[i, 10 + i : 30, 5 : 20 + i] = rng.integers(1, 9)
    return frames


JLS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
RLE = "1.2.840.10008.1.2.5"


def test_only_requested_frames_are_decoded(labels):
    encoded = encode_frames(labels, "jpegls", workers=1)
    encoded[1] = b"\xff\xd8" + b"\x00" * 40  # frame 2 is garbage
    ds = image(labels, JLS, encapsulate(encoded), 8)
    reader = FrameReader(ds)
    np.testing.assert_array_equal(reader.frames([3, 0, 2]), labels[[3, 0, 2]])
    with pytest.raises(DecodingError, match="frame 2 cannot be decoded"):
        reader.frame(1)


def test_basic_offset_table_groups_fragments_of_a_frame(labels):
    encoded = encode_frames(labels, "rle", workers=1)
    value = encapsulate(encoded, fragments_per_frame=3, has_bot=True)
    reader = FrameReader(image(labels, RLE, value, 8))
    np.testing.assert_array_equal(reader.frames([3, 1]), labels[[3, 1]])


def test_without_offset_table_fragments_are_grouped_by_codestream_markers(labels):
    encoded = encode_frames(labels, "jpegls", workers=1)
    value = encapsulate(encoded, fragments_per_frame=2, has_bot=False)
    reader = FrameReader(image(labels, JLS, value, 8))
    np.testing.assert_array_equal(reader.frames(), labels)


def test_extended_offset_table(labels):
    encoded = encode_frames(labels, "rle", workers=1)
    value, offsets, lengths = encapsulate_extended(encoded)
    ds = image(labels, RLE, value, 8)
    ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = offsets, lengths
    np.testing.assert_array_equal(FrameReader(ds).frames([2, 3]), labels[[2, 3]])


def test_wrong_offset_tables_are_ignored_with_a_warning(labels, caplog):
    encoded = encode_frames(labels, "rle", workers=1)
    value, offsets, lengths = encapsulate_extended(encoded)
    ds = image(labels, RLE, value, 8)
    ds.ExtendedOffsetTable = offsets[:8] + b"\x03" + offsets[9:]  # frame 2 points nowhere
    ds.ExtendedOffsetTableLengths = lengths
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(FrameReader(ds).frames(), labels)
    assert "Extended Offset Table" in caplog.text
    bad_bot = bytearray(encapsulate(encoded, has_bot=True))
    bad_bot[12:16] = (7).to_bytes(4, "little")  # second offset is not a fragment start
    with caplog.at_level(logging.WARNING):
        reader = FrameReader(image(labels, RLE, bytes(bad_bot), 8))
        np.testing.assert_array_equal(reader.frames(), labels)
    assert "Basic Offset Table" in caplog.text


def test_missing_fragment_names_the_frame(labels):
    encoded = encode_frames(labels, "rle", workers=1)
    reader = FrameReader(image(labels, RLE, encapsulate(encoded[:3], has_bot=False), 8))
    np.testing.assert_array_equal(reader.frame(2), labels[2])
    with pytest.raises(DecodingError, match="frame 4 is missing"):
        reader.frame(3)


def test_truncated_encapsulated_pixel_data_names_the_frame(labels):
    encoded = encode_frames(labels, "rle", workers=1)
    value = encapsulate(encoded, has_bot=False)
    reader = FrameReader(image(labels, RLE, value[: len(value) - 30], 8))
    np.testing.assert_array_equal(reader.frame(0), labels[0])
    with pytest.raises(DecodingError, match="frame 4 is truncated"):
        reader.frame(3)


def test_damaged_fragment_header_is_reported(labels):
    value = bytearray(encapsulate(encode_frames(labels, "rle", workers=1), has_bot=False))
    value[8:12] = b"\x00\x01\x02\x03"
    with pytest.raises(DecodingError, match="unexpected tag"):
        FrameReader(image(labels, RLE, bytes(value), 8)).frame(0)
    with pytest.raises(DecodingError, match="Basic Offset Table item"):
        FrameReader(image(labels, RLE, b"\x00" * 16, 8)).frame(0)


def test_native_frame_count_larger_than_the_data(labels):
    ds = image(labels, "1.2.840.10008.1.2.1", labels.tobytes(), 8)
    ds.NumberOfFrames = 6
    reader = FrameReader(ds)
    np.testing.assert_array_equal(reader.frames([3, 1]), labels[[3, 1]])
    with pytest.raises(DecodingError, match="frame 5 is missing"):
        reader.frame(4)
    with pytest.raises(DecodingError, match="frame 7 does not exist"):
        reader.frame(6)


def test_native_one_bit_frame_count_larger_than_the_data():
    mask = np.random.default_rng(2).random((3, 5, 7)) > 0.5
    ds = image(mask, "1.2.840.10008.1.2.1", pack_frames(mask), 1)
    ds.NumberOfFrames = 4
    reader = FrameReader(ds)
    np.testing.assert_array_equal(reader.frames([2, 0]), mask[[2, 0]])
    with pytest.raises(DecodingError, match="frame 4 is truncated"):
        reader.frame(3)


def test_big_endian_sixteen_bit_native(labels):
    frames = labels.astype(np.uint16) * 1000 + 7
    ds = image(frames, "1.2.840.10008.1.2.2", frames.astype(">u2").tobytes(), 16)
    ds["PixelData"].VR = "OW"
    got = FrameReader(ds).frames([1, 3])
    assert got.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(got, frames[[1, 3]])


def test_big_endian_one_bit_in_words_is_swapped():
    # PS3.5 8.1.1: 1-bit pixels fill 16-bit words from the least significant bit; an OW
    # value in big endian stores each word's high byte first. OB values are not swapped.
    mask = np.random.default_rng(4).random((3, 6, 7)) > 0.5
    little = pack_frames(mask)
    words = np.frombuffer(little, "<u2").astype(">u2").tobytes()
    ds = image(mask, "1.2.840.10008.1.2.2", words, 1)
    ds["PixelData"].VR = "OW"
    np.testing.assert_array_equal(FrameReader(ds).frames(), mask)
    ds_ob = image(mask, "1.2.840.10008.1.2.2", little, 1)
    ds_ob["PixelData"].VR = "OB"
    np.testing.assert_array_equal(FrameReader(ds_ob).frames(), mask)


def test_planar_colour_native():
    rgb = np.random.default_rng(6).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    planes = np.ascontiguousarray(np.moveaxis(rgb, -1, 1))  # frame, sample, row, column
    ds = image(rgb, "1.2.840.10008.1.2.1", planes.tobytes(), 8, PlanarConfiguration=1)
    np.testing.assert_array_equal(FrameReader(ds).frames(), rgb)
    np.testing.assert_array_equal(pixel_array(ds), rgb)  # pydicom agrees


def test_bits_above_bits_stored_are_cleared_or_sign_extended():
    stored = np.array([[[0x0FFF, 0xF123]]], np.uint16)  # high nibble is garbage
    ds = image(stored, "1.2.840.10008.1.2.1", stored.tobytes(), 16)
    ds.BitsStored, ds.HighBit = 12, 11
    assert FrameReader(ds).frame(0).tolist() == [[0x0FFF, 0x0123]]
    ds.PixelRepresentation = 1
    assert FrameReader(ds).frame(0).tolist() == [[-1, 0x0123]]


def test_float_pixel_data():
    values = np.random.default_rng(8).random((3, 4, 5)).astype(np.float32)
    ds = Dataset()
    ds.Rows, ds.Columns, ds.NumberOfFrames = 4, 5, 3
    ds.BitsAllocated, ds.SamplesPerPixel = 32, 1
    ds.FloatPixelData = values.tobytes()
    reader = FrameReader(ds)
    assert reader.format.dtype == np.float32
    np.testing.assert_array_equal(reader.frames([2]), values[[2]])


def test_frames_are_copies_not_views_of_the_dataset(labels):
    ds = image(labels, "1.2.840.10008.1.2.1", labels.tobytes(), 8)
    frame = FrameReader(ds).frame(0)
    frame[:] = 99
    np.testing.assert_array_equal(FrameReader(ds).frame(0), labels[0])


def test_missing_pixel_data_and_bad_description():
    ds = Dataset()
    ds.Rows = ds.Columns = 4
    with pytest.raises(MissingAttributeError):
        FrameReader(ds)
    ds.PixelData = b"\x00" * 16
    with pytest.raises(DecodingError, match="BitsAllocated"):
        FrameReader(ds)
    good = copy.deepcopy(ds)
    good.BitsAllocated = 8
    assert FrameReader(good).number_of_frames == 1
    assert FrameReader(good).frame(0).shape == (4, 4)
