"""Inputs that would make a volume wrong get a clear error naming file and attribute."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from radbridge.errors import (
    DecodingError,
    GeometryError,
    InvalidAttributeError,
    MissingAttributeError,
    MixedSeriesError,
    OrientationError,
    SlicePositionError,
    SliceSpacingError,
    UnsupportedObjectError,
)
from radbridge.geometry import volume_from_datasets

from .builders import ct_slice


def stack(n=4, step=2.0):
    return [ct_slice((0, 0, step * k), value=k) for k in range(n)]


def named(datasets):
    return [f"s{k}.dcm" for k in range(len(datasets))]


def test_mixed_orientations():
    ds = stack()
    ds[2].ImageOrientationPatient = [1, 0, 0, 0, 0.98, 0.2]
    with pytest.raises(OrientationError) as err:
        volume_from_datasets(ds, sources=named(ds))
    assert err.value.attribute == "ImageOrientationPatient"
    assert err.value.path == "s2.dcm"
    assert "read each series" in str(err.value)


def test_non_orthonormal_orientation():
    ds = stack(2)
    for d in ds:
        d.ImageOrientationPatient = [1, 0, 0, 0.5, 0.5, 0]
    with pytest.raises(OrientationError, match="orthogonal unit vectors"):
        volume_from_datasets(ds)


def test_duplicate_positions_name_both_files():
    ds = stack()
    ds[3].ImagePositionPatient = ds[1].ImagePositionPatient
    with pytest.raises(SlicePositionError) as err:
        volume_from_datasets(ds, sources=named(ds))
    assert {err.value.path} | {p for p in ("s1.dcm", "s3.dcm") if p in str(err.value)} == {
        "s1.dcm",
        "s3.dcm",
    }
    assert "EchoNumbers" in str(err.value)


@pytest.mark.parametrize(
    "keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"]
)
def test_missing_plane_attribute(keyword):
    ds = stack()
    del ds[1][keyword]
    with pytest.raises(MissingAttributeError) as err:
        volume_from_datasets(ds, sources=named(ds))
    assert (err.value.path, err.value.attribute) == ("s1.dcm", keyword)


def test_garbled_position_is_invalid_not_missing():
    ds = stack()
    ds[0].ImagePositionPatient = ["1", "2"]
    with pytest.raises(InvalidAttributeError, match="expected 3 finite numbers"):
        volume_from_datasets(ds)


def test_non_uniform_spacing_and_the_option_to_accept_it():
    ds = stack(5)
    del ds[2]  # a missing slice
    with pytest.raises(SliceSpacingError, match="not uniform") as err:
        volume_from_datasets(ds, sources=named(ds))
    assert "allow_nonuniform_spacing" in str(err.value)
    with pytest.warns(UserWarning, match="mean spacing"):
        vol = volume_from_datasets(ds, allow_nonuniform_spacing=True)
    assert vol.acquired_positions is not None
    np.testing.assert_allclose(vol.acquired_positions[:, 2], [0, 2, 6, 8])
    np.testing.assert_allclose(vol.spacing[0], 8 / 3)


def test_spacing_within_tolerance_is_accepted():
    ds = [ct_slice((0, 0, z)) for z in (0.0, 2.0, 4.005, 6.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vol = volume_from_datasets(ds)
    assert vol.spacing[0] == pytest.approx(2.0)
    with pytest.raises(SliceSpacingError):
        volume_from_datasets(ds, spacing_tolerance=1e-4)


def test_positions_off_one_line():
    ds = [ct_slice((0, 0, 0)), ct_slice((0, 0, 2)), ct_slice((5, 0, 4)), ct_slice((0, 0, 6))]
    with pytest.raises(SlicePositionError, match="one line"):
        volume_from_datasets(ds)


def test_several_series_mixed():
    ds = stack()
    ds[1].SeriesInstanceUID = "9.9.9"
    with pytest.raises(MixedSeriesError) as err:
        volume_from_datasets(ds, sources=named(ds))
    assert err.value.attribute == "SeriesInstanceUID"
    assert "--series" in str(err.value)


def test_several_frames_of_reference_mixed():
    ds = stack()
    ds[3].FrameOfReferenceUID = "9.9.9"
    with pytest.raises(MixedSeriesError, match="FrameOfReferenceUID"):
        volume_from_datasets(ds)


def test_missing_frame_of_reference_is_kept_as_none(caplog):
    ds = [ct_slice((0, 0, z), frame_uid=None) for z in (0, 1)]
    vol = volume_from_datasets(ds)
    assert vol.frame_of_reference_uid is None
    assert "FrameOfReferenceUID" in caplog.text


def test_missing_pixel_data():
    ds = stack()
    del ds[2].PixelData
    with pytest.raises(MissingAttributeError) as err:
        volume_from_datasets(ds, sources=named(ds))
    assert (err.value.path, err.value.attribute) == ("s2.dcm", "PixelData")


def test_truncated_pixel_data():
    ds = stack()
    ds[1].PixelData = ds[1].PixelData[:7]
    with pytest.raises(DecodingError) as err:
        volume_from_datasets(ds, sources=named(ds))
    assert err.value.path == "s1.dcm"
    assert "truncated" in str(err.value)


def test_different_matrix_sizes():
    ds = stack()
    ds[2] = ct_slice((0, 0, 4.0), rows=6)
    with pytest.raises(GeometryError, match="matrix size"):
        volume_from_datasets(ds)


def test_colour_images_are_unsupported():
    ds = stack(1)
    ds[0].SamplesPerPixel = 3
    with pytest.raises(UnsupportedObjectError, match="samples per pixel"):
        volume_from_datasets(ds)


def test_rescale_per_slice_to_float_and_integer():
    ds = stack(3)
    hu = volume_from_datasets(ds, rescale=True)
    assert hu.array.dtype == np.int16
    assert hu.array[:, 0, 0].tolist() == [-1024, -1023, -1022]
    ds[1].RescaleSlope = "0.5"  # e.g. PET: one slope per slice
    mixed = volume_from_datasets(ds, rescale=True)
    assert mixed.array.dtype == np.float32
    assert mixed.array[:, 0, 0].tolist() == [-1024.0, -1023.5, -1022.0]
    raw = volume_from_datasets(ds)
    assert raw.array.dtype == np.uint16


def _stack_32(stored: int, dtype, slope: str = "1", intercept: str = "0"):
    """Three slices of 32-bit pixels, all ``stored``, with one Modality LUT."""
    datasets = stack(3)
    for ds in datasets:
        ds.BitsAllocated = ds.BitsStored = 32
        ds.HighBit = 31
        ds.PixelRepresentation = int(np.dtype(dtype).kind == "i")
        ds.PixelData = np.full((4, 5), stored, dtype).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    return datasets


@pytest.mark.parametrize(
    ("stored", "dtype", "intercept"),
    [
        (3_000_000_000, np.uint32, 0),  # above int32 with no rescale at all
        (2**31 - 100, np.int32, 1000),
        (-(2**31) + 5, np.int32, -1000),
        (2**32 - 1, np.uint32, -(2**40)),
    ],
)
def test_rescaled_32_bit_pixels_do_not_wrap_around(stored, dtype, intercept):
    datasets = _stack_32(stored, dtype, intercept=str(intercept))
    vol = volume_from_datasets(datasets, rescale=True)
    expected = np.full((3, 4, 5), stored, np.int64) + np.int64(intercept)
    assert vol.array.dtype == np.int64
    np.testing.assert_array_equal(vol.array, expected)  # was wrapped through int32


def test_rescaled_32_bit_pixels_with_a_slope_keep_their_precision():
    datasets = _stack_32(3_000_000_001, np.uint32, slope="0.5", intercept="-7")
    vol = volume_from_datasets(datasets, rescale=True)
    assert vol.array.dtype == np.float64  # float32 holds 24 bits: 1500000000.5 would round
    np.testing.assert_array_equal(vol.array, np.full((3, 4, 5), 3_000_000_001 * 0.5 - 7))


def _raw_ds(keyword: str, text: bytes) -> RawDataElement:
    """A DS element as read from a file, holding ``text`` as it stands there."""
    tag = Tag(keyword)
    return RawDataElement(tag, "DS", len(text), text, 0, False, True)


@pytest.mark.parametrize("keyword", ["RescaleSlope", "RescaleIntercept"])
@pytest.mark.parametrize("text", [b"1\\2 ", b"NaN ", b"inf ", b"-inf", b"abc "])
def test_a_damaged_rescale_value_is_refused_naming_file_and_attribute(keyword, text):
    ds = stack(3)
    ds[1][keyword] = _raw_ds(keyword, text)  # VM 1, a finite number; not so here
    with pytest.raises(InvalidAttributeError) as err:
        volume_from_datasets(ds, rescale=True, sources=named(ds))
    assert (err.value.path, err.value.attribute) == ("s1.dcm", keyword)
    assert "ask its sender for a new copy" in str(err.value)
    assert volume_from_datasets(ds, sources=named(ds)).shape == (3, 4, 5)  # stored values read


def test_a_damaged_frame_rescale_names_the_frame(interop):
    path = interop / "images" / "dcmqi_23x38x3" / "multiframe_legacy_enhanced.dcm"
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    shared["RescaleSlope"] = _raw_ds("RescaleSlope", b"NaN ")  # for every frame
    with pytest.raises(InvalidAttributeError) as err:
        volume_from_datasets([ds], rescale=True, sources=["mf.dcm"])
    assert (err.value.path, err.value.attribute) == ("mf.dcm [frame 1]", "RescaleSlope")
