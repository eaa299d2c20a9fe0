"""Parametric Map writer: exact round trips, grids, strict refusals, determinism."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from radbridge.coding import Code, sct, ucum
from radbridge.errors import EncodingError, GridMismatchError
from radbridge.geometry import Volume
from radbridge.iods.pm import (
    MapDescription,
    encode_parametric_map,
    open_parametric_map,
    read_parametric_map,
)

from .conftest import ADC, CLASS_ACTIVATION, FIXED, probability


def _saved(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_round_trip_is_exact(study, dtype):
    values = probability(study.source.geometry.shape, dtype)
    values[0, 0, 0] = np.finfo(dtype).tiny  # subnormal-adjacent and extreme values survive
    values[1, 2, 3] = -np.finfo(dtype).max / 2
    ds = encode_parametric_map(
        values, study.source, quantity=CLASS_ACTIVATION, units="{probability}"
    )
    volume = read_parametric_map(_saved(ds), source=study.source)
    assert volume.array.dtype == dtype
    assert np.array_equal(volume.array, values)
    assert volume.geometry.is_close(study.source.geometry)
    keyword = "FloatPixelData" if dtype == np.float32 else "DoubleFloatPixelData"
    assert keyword in pydicom.dcmread(io.BytesIO(_saved(ds)))


@pytest.mark.parametrize("syntax", ["explicit", "rle", "jpegls", "jpeg2000", "deflated-explicit"])
def test_integer_map_with_slope_round_trips_in_every_lossless_syntax(study, syntax):
    stored = (study.labels.astype(np.uint16) * 1000 + 7).astype(np.uint16)
    ds = encode_parametric_map(
        stored,
        study.source,
        quantity=ADC,
        units="um2/s",
        slope=0.5,
        intercept=-3.0,
        transfer_syntax=syntax,
    )
    pm = open_parametric_map(_saved(ds))
    assert pm.mapping.slope == 0.5 and pm.mapping.intercept == -3.0
    assert pm.units == ucum("um2/s")
    volume = pm.volume(study.source)
    assert np.array_equal(volume.array, stored.astype(np.float64) * 0.5 - 3.0)
    assert pm.dataset.file_meta.TransferSyntaxUID != "" and int(pm.dataset.BitsAllocated) == 16


def test_signed_integer_map(study):
    values = study.labels.astype(np.int16) - 4
    ds = encode_parametric_map(values, study.source, quantity=ADC, units="1")
    assert int(ds.PixelRepresentation) == 1
    volume = read_parametric_map(_saved(ds), source=study.source)
    assert volume.array.dtype == np.int16 and np.array_equal(volume.array, values)


def test_map_on_its_own_grid(study):
    geometry = study.source.geometry
    affine = geometry.affine.copy()
    affine[:3, 1:3] *= 2  # coarser in-plane grid, same frame of reference
    values = probability((geometry.shape[0], 16, 16), np.float32, seed=2)
    own = Volume(values, affine, geometry.frame_of_reference_uid)
    ds = encode_parametric_map(own, study.source, quantity=CLASS_ACTIVATION, units="1")
    assert "DerivationImageSequence" not in ds.PerFrameFunctionalGroupsSequence[0]
    pm = open_parametric_map(_saved(ds))
    volume = pm.volume()
    assert np.array_equal(volume.array, values)
    assert np.allclose(volume.affine, affine, atol=1e-4)
    with pytest.raises(GridMismatchError, match="16x16 but the target grid is 32x32"):
        pm.volume(study.source)


def test_subset_of_slices_on_the_source_grid(study):
    geometry = study.source.geometry
    affine = geometry.affine.copy()
    affine[:3, 3] += affine[:3, 0] * 2  # starts at slice 2
    values = probability((3, *geometry.shape[1:]), np.float32, seed=4)
    ds = encode_parametric_map(
        Volume(values, affine, geometry.frame_of_reference_uid),
        study.source,
        quantity=CLASS_ACTIVATION,
        units="1",
    )
    # Frames on source planes reference those source images.
    assert "DerivationImageSequence" in ds.PerFrameFunctionalGroupsSequence[0]
    volume = read_parametric_map(_saved(ds), source=study.source)
    assert np.array_equal(volume.array[2:5], values)
    assert np.isnan(volume.array[[0, 1, 5, 6, 7]]).all()


def test_nan_policies(study):
    values = probability(study.source.geometry.shape)
    values[3, 4, 5] = np.nan
    values[2, 0, 0] = np.inf
    with pytest.raises(EncodingError, match="NaN or infinite") as info:
        encode_parametric_map(values, study.source, quantity=CLASS_ACTIVATION, units="1")
    assert info.value.attribute == "values" and "nan_policy" in str(info.value)
    padded = encode_parametric_map(
        values, study.source, quantity=CLASS_ACTIVATION, units="1", nan_policy="padding"
    )
    assert "FloatPixelPaddingValue" in padded
    back = read_parametric_map(_saved(padded), source=study.source).array
    finite = np.isfinite(values)
    assert np.array_equal(np.isnan(back), ~finite)
    assert np.array_equal(back[finite], values[finite])
    zeroed = encode_parametric_map(
        values, study.source, quantity=CLASS_ACTIVATION, units="1", nan_policy="zero"
    )
    back = read_parametric_map(_saved(zeroed), source=study.source).array
    assert back[3, 4, 5] == 0 and back[2, 0, 0] == 0
    with pytest.raises(EncodingError, match="unknown value") as info:
        encode_parametric_map(
            values, study.source, quantity=CLASS_ACTIVATION, units="1", nan_policy="ignore"
        )
    assert info.value.attribute == "nan_policy"


def test_shape_mismatch_is_refused(study):
    with pytest.raises(GridMismatchError, match="source grid") as info:
        encode_parametric_map(
            np.zeros((2, 3, 4), np.float32), study.source, quantity=ADC, units="1"
        )
    assert info.value.attribute == "values"


@pytest.mark.parametrize(
    "units, match",
    [
        ("probability", "not a UCUM unit"),
        ("furlongs/fortnight", "not a UCUM unit"),
        ("mm2 /s", "not a UCUM unit"),
        (Code("mm", "SCT", "millimetre"), "not coded in UCUM"),
    ],
)
def test_units_must_be_ucum(study, units, match):
    values = probability(study.source.geometry.shape)
    with pytest.raises(EncodingError, match=match) as info:
        encode_parametric_map(values, study.source, quantity=ADC, units=units)
    assert info.value.attribute == "MeasurementUnitsCodeSequence"
    assert info.value.hint


@pytest.mark.parametrize(
    "units", ["{probability}", "1", "mm2/s", "10*-3.mm2/s", "g/ml{SUVbw}", "/s", "ms", "%"]
)
def test_common_ucum_units_accepted(study, units):
    values = probability(study.source.geometry.shape)
    ds = encode_parametric_map(values, study.source, quantity=ADC, units=units)
    item = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert item.MeasurementUnitsCodeSequence[0].CodeValue == units


def test_other_refusals(study):
    shape = study.source.geometry.shape
    with pytest.raises(EncodingError, match="uncompressed") as info:
        encode_parametric_map(
            probability(shape), study.source, quantity=ADC, units="1", transfer_syntax="jpegls"
        )
    assert info.value.attribute == "TransferSyntaxUID"
    with pytest.raises(EncodingError, match="float16"):
        encode_parametric_map(
            probability(shape).astype(np.float16), study.source, quantity=ADC, units="1"
        )
    with pytest.raises(EncodingError, match="16 bits"):
        encode_parametric_map(
            np.full(shape, 70000, np.int64), study.source, quantity=ADC, units="1"
        )
    with pytest.raises(EncodingError, match="integer maps only"):
        encode_parametric_map(probability(shape), study.source, quantity=ADC, units="1", slope=2.0)
    with pytest.raises(EncodingError, match="width"):
        encode_parametric_map(
            probability(shape), study.source, quantity=ADC, units="1", window=(0.5, 0)
        )
    with pytest.raises(EncodingError, match="ContentQualification"):
        encode_parametric_map(
            probability(shape),
            study.source,
            quantity=ADC,
            units="1",
            description=MapDescription(content_qualification="CLINICAL"),
        )


def test_window_and_description_are_written(study):
    values = probability(study.source.geometry.shape, np.float64)
    ds = encode_parametric_map(
        values,
        study.source,
        quantity=ADC,
        units="mm2/s",
        window=(0.25, 0.5),
        anatomic_region=sct("818981001", "Abdomen"),
        description=MapDescription(derived_pixel_contrast="ADC", label="ADC"),
    )
    pm = open_parametric_map(_saved(ds))
    assert pm.window == (0.25, 0.5)
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "VOLUME", "ADC"]
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert list(shared.ParametricMapFrameTypeSequence[0].FrameType) == list(ds.ImageType)
    assert shared.FrameAnatomySequence[0].AnatomicRegionSequence[0].CodeValue == "818981001"
    assert pm.quantity == ADC and pm.mapping.label == "ADC"
    assert pm.mapping.first_value_mapped == values.min()
    assert pm.mapping.last_value_mapped == values.max()


def test_default_window_spans_the_values(study):
    values = probability(study.source.geometry.shape) * 4 + 1
    pm = open_parametric_map(encode_parametric_map(values, study.source, quantity=ADC, units="1"))
    center, width = pm.window
    assert center - width / 2 == pytest.approx(values.min(), rel=1e-5)
    assert center + width / 2 == pytest.approx(values.max(), rel=1e-5)


def test_same_options_give_identical_bytes(study):
    values = probability(study.source.geometry.shape)
    first = encode_parametric_map(values, study.source, quantity=ADC, units="1", options=FIXED)
    second = encode_parametric_map(values, study.source, quantity=ADC, units="1", options=FIXED)
    assert _saved(first) == _saved(second)
    other = encode_parametric_map(
        values,
        study.source,
        quantity=ADC,
        units="1",
        options=replace(FIXED, sop_instance_uid="2.25.9"),
    )
    assert _saved(other) != _saved(first)


def test_context_and_references_come_from_the_source(study):
    ds = encode_parametric_map(
        probability(study.source.geometry.shape), study.source, quantity=ADC, units="1"
    )
    first = study.datasets[0]
    assert ds.StudyInstanceUID == first.StudyInstanceUID
    assert ds.PatientID == first.PatientID
    assert ds.FrameOfReferenceUID == first.FrameOfReferenceUID
    assert ds.Modality == first.Modality
    referenced = {
        item.ReferencedSOPInstanceUID
        for item in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == {d.SOPInstanceUID for d in study.datasets}


@settings(max_examples=25, deadline=None)
@given(
    values=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        (2, 3, 5),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_any_finite_float_map_round_trips(values):
    from radbridge.geometry import VolumeGeometry
    from radbridge.iods.source import SourceSeries

    grid = Volume(np.zeros(values.shape), np.diag([2.0, 0.7, 0.7, 1.0]), "2.25.77")
    source = SourceSeries.from_volume(grid)
    ds = encode_parametric_map(values, source, quantity=ADC, units="1", anatomic_region="brain")
    back = read_parametric_map(_saved(ds), source=VolumeGeometry(values.shape, grid.affine))
    # float64 maps that float32 holds exactly are stored as float32 (what dcmqi reads)
    with np.errstate(over="ignore"):
        fits = np.array_equal(values.astype(np.float32), values)
    assert back.array.dtype == (np.float32 if fits else values.dtype)
    assert np.array_equal(back.array, values)


def test_slicer_profile_refuses_integer_maps_and_writes_float_maps(study):
    """dcmqi (3D Slicer) reads float32 maps only (tests/test_compatibility.py measures it)."""
    stored = study.labels.astype(np.uint16)
    with pytest.raises(EncodingError, match="float32 Parametric Maps only") as caught:
        encode_parametric_map(stored, study.source, quantity=ADC, units="1", profile="slicer")
    assert caught.value.hint is not None and "--dtype float32" in caught.value.hint
    values = stored.astype(np.float32) / 7
    ds = encode_parametric_map(values, study.source, quantity=ADC, units="1", profile="slicer")
    assert "FloatPixelData" in ds


@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_window_of_a_quantised_map_is_given_in_real_world_values(study, dtype):
    """The docs' probability window (0.5, 1.0) shows 0.5 as the centre when stored as integers.

    radbridge computes the slope and intercept, so the caller cannot know the stored values:
    the window is given in the map's values and written as the stored values it means
    (display pipeline PS3.3 C.11: VOI applies to stored values through an identity
    Pixel Value Transformation). Read with pydicom and mapped with the written slope.
    """
    values = np.where(study.labels == 5, 0.9, 0.05).astype(np.float32)
    meaning = {"quantity": CLASS_ACTIVATION, "units": "{probability}", "anatomic_region": "liver"}
    ds = encode_parametric_map(
        values, study.source, window=(0.5, 1.0), stored_dtype=dtype, **meaning
    )  # fmt: skip
    shared = pydicom.dcmread(io.BytesIO(_saved(ds))).SharedFunctionalGroupsSequence[0]
    voi = shared.FrameVOILUTSequence[0]
    mapping = shared.RealWorldValueMappingSequence[0]
    slope, intercept = mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept
    assert slope != 1.0
    assert float(voi.WindowCenter) * slope + intercept == pytest.approx(0.5, abs=slope)
    assert float(voi.WindowWidth) * slope == pytest.approx(1.0, abs=slope)


def test_float32_storage_refuses_values_it_would_turn_into_infinity(study):
    """stored_dtype='float32' on a value beyond float32's range: refused, not stored as inf."""
    values = np.ones(study.source.geometry.shape)
    values[0, 0, 0] = 1e39
    with pytest.raises(EncodingError, match="beyond the range of float32") as caught:
        encode_parametric_map(
            values, study.source, quantity=ADC, units="1", stored_dtype="float32"
        )  # fmt: skip
    assert caught.value.attribute == "stored_dtype"


def test_padded_float64_map_stored_as_float32_warns_nothing(study, recwarn):
    """The float64 padding becomes float32's: no numpy overflow warning reaches the caller."""
    values = probability(study.source.geometry.shape, np.float64)
    values[0, 0, 0] = np.nan
    ds = encode_parametric_map(
        values, study.source, quantity=ADC, units="1", stored_dtype="float32",
        nan_policy="padding", anatomic_region="liver",
    )  # fmt: skip
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert np.isnan(read_parametric_map(_saved(ds)).array[0, 0, 0])
