"""Parametric Maps against real peers: dciodvfy, highdicom (both ways), highdicom's files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from radbridge.coding import sct
from radbridge.geometry import Volume
from radbridge.iods.pm import encode_parametric_map, open_parametric_map, read_parametric_map
from tests.peers import dciodvfy

from .conftest import ADC, CLASS_ACTIVATION, probability

pytestmark = pytest.mark.peer


def variants(study):
    shape = study.source.geometry.shape
    yield (
        "float32",
        encode_parametric_map(
            probability(shape), study.source, quantity=CLASS_ACTIVATION, units="{probability}"
        ),
    )
    yield (
        "float64 with region",
        encode_parametric_map(
            probability(shape, np.float64),
            study.source,
            quantity=ADC,
            units="mm2/s",
            anatomic_region=sct("818981001", "Abdomen"),
        ),
    )
    padded = probability(shape)
    padded[1, 1, 1] = np.nan
    yield (
        "float32 padding",
        encode_parametric_map(
            padded, study.source, quantity=CLASS_ACTIVATION, units="1", nan_policy="padding"
        ),
    )
    stored = (study.labels.astype(np.uint16) * 100).astype(np.uint16)
    for syntax in ("explicit", "rle", "jpegls", "jpeg2000"):
        yield (
            f"uint16 {syntax}",
            encode_parametric_map(
                stored, study.source, quantity=ADC, units="um2/s", slope=2.0, transfer_syntax=syntax
            ),
        )
    yield (
        "int16",
        encode_parametric_map(
            study.labels.astype(np.int16) - 3, study.source, quantity=ADC, units="1"
        ),
    )
    affine = study.source.geometry.affine.copy()
    affine[:3, 1:3] *= 2
    own = Volume(probability((shape[0], 16, 16)), affine, study.source.frame_of_reference_uid)
    yield "own grid", encode_parametric_map(own, study.source, quantity=ADC, units="1")


def test_dciodvfy_reports_no_error_on_any_variant(study, tmp_path):
    for name, ds in variants(study):
        path = tmp_path / f"{name.replace(' ', '_')}.dcm"
        ds.save_as(path, enforce_file_format=True)
        result = dciodvfy(path)
        assert result.ok, f"{name}: {result.summary()}"


def _hd_volume(path):
    hd = pytest.importorskip("highdicom")
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path))
    return pm.get_volume()


def _aligned(hd_volume, ours: Volume) -> np.ndarray:
    """highdicom's array in our slice order (it may stack from the other end)."""
    array = np.asarray(hd_volume.array)
    if np.allclose(hd_volume.affine[:3, 0], -ours.affine[:3, 0], atol=1e-4):
        array = array[::-1]
    else:
        assert np.allclose(hd_volume.affine, ours.affine, atol=1e-4)
    return array


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_highdicom_reads_our_float_map_to_the_same_values(study, tmp_path, dtype):
    values = probability(study.source.geometry.shape, dtype, seed=11)
    path = tmp_path / "pm.dcm"
    encode_parametric_map(values, study.source, quantity=ADC, units="mm2/s").save_as(path)
    ours = read_parametric_map(path)
    theirs = _aligned(_hd_volume(path), ours)
    assert np.array_equal(theirs, values.astype(np.float64))
    assert np.array_equal(ours.array, values)


def test_highdicom_finds_the_padding_where_we_read_nan(study, tmp_path):
    """docs/pm.md: highdicom maps no padded value (PS3.3 C.7.6.16.2.11.1.2: outside First/Last
    Value Mapped, no real value), so its readers take the stored values and mask the padding."""
    import highdicom as hd

    values = probability(study.source.geometry.shape, seed=5)
    values[2, 3, 4] = np.nan
    path = tmp_path / "pm.dcm"
    encode_parametric_map(
        values, study.source, quantity=ADC, units="1", nan_policy="padding"
    ).save_as(path)  # fmt: skip
    ds = pydicom.dcmread(path)
    with pytest.raises(ValueError, match="outside the valid range"):
        hd.pm.ParametricMap.from_dataset(ds).get_volume()
    stored = hd.pm.ParametricMap.from_dataset(ds).get_volume(apply_real_world_transform=False)
    ours = read_parametric_map(path)
    theirs = _aligned(stored, ours)
    assert np.array_equal(theirs == float(ds.FloatPixelPaddingValue), np.isnan(ours.array))
    assert np.array_equal(np.isnan(ours.array), np.isnan(values))


def test_highdicom_indexes_our_map_by_source_image(study, tmp_path):
    # highdicom needs Spatial Locations Preserved = YES in every Source Image item
    # to index frames by source image without ignore_spatial_locations=True.
    hd = pytest.importorskip("highdicom")
    values = probability(study.source.geometry.shape, np.float32, seed=13)
    path = tmp_path / "pm.dcm"
    ds = encode_parametric_map(values, study.source, quantity=ADC, units="mm2/s")
    ds.save_as(path, enforce_file_format=True)
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path))
    uids = [ref.sop_instance_uid for ref in study.source.slice_refs]
    pixels = np.asarray(pm.get_pixels_by_source_instance(uids))
    assert np.array_equal(pixels.reshape(values.shape), values)
    assert dciodvfy(path).errors == []


def test_highdicom_applies_our_integer_mapping_the_same_way(study, tmp_path):
    stored = (study.labels.astype(np.uint16) * 37 + 5).astype(np.uint16)
    path = tmp_path / "pm.dcm"
    encode_parametric_map(
        stored, study.source, quantity=ADC, units="um2/s", slope=0.25, intercept=-1.5
    ).save_as(path)
    ours = read_parametric_map(path)
    theirs = _aligned(_hd_volume(path), ours)
    assert np.allclose(theirs, stored * 0.25 - 1.5)
    assert np.array_equal(ours.array, stored * 0.25 - 1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_we_read_a_map_highdicom_writes(study, tmp_path, dtype):
    hd = pytest.importorskip("highdicom")
    from pydicom.sr.codedict import codes

    datasets = [pydicom.dcmread(p) for p in sorted(study.folder.iterdir())]
    values = probability(study.source.geometry.shape, dtype, seed=5)
    # highdicom orders frames like the source images it is given: use our slice order.
    by_uid = {ds.SOPInstanceUID: ds for ds in datasets}
    ordered = [by_uid[ref.sop_instance_uid] for ref in study.source.slice_refs]
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="ADC",
        lut_explanation="apparent diffusion",
        unit=codes.UCUM.SquareMillimeterPerSecond,
        value_range=(float(values.min()), float(values.max())),
        quantity_definition=hd.sr.CodedConcept("113041", "DCM", "Apparent Diffusion Coefficient"),
    )
    pm = hd.pm.ParametricMap(
        source_images=ordered,
        pixel_array=values,
        series_instance_uid=hd.UID(),
        series_number=9,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        window_center=0.5,
        window_width=1.0,
    )
    path = tmp_path / "hd.dcm"
    pm.save_as(path)
    ours = open_parametric_map(path)
    assert ours.units.value == "mm2/s"
    assert ours.quantity == ADC
    assert ours.window == (0.5, 1.0)
    volume = ours.volume(study.source)
    assert volume.array.dtype == dtype
    assert np.array_equal(volume.array, values)


@pytest.mark.parametrize(
    "name, dtype",
    [("parametric_map_float.dcm", np.float32), ("parametric_map_double_float.dcm", np.float64)],
)
def test_we_read_highdicoms_interop_maps(interop, name, dtype):
    path = interop / "pm" / "highdicom" / name
    pm = open_parametric_map(path)
    assert pm.units is not None and pm.units.value == "1"
    assert pm.mapping.label == "1" and pm.mapping.is_identity
    volume = pm.volume()
    assert volume.shape == (1, 128, 128) and volume.array.dtype == dtype
    raw = pydicom.dcmread(path)
    keyword = "FloatPixelData" if dtype == np.float32 else "DoubleFloatPixelData"
    expected = np.frombuffer(raw[keyword].value, dtype=np.dtype(dtype).newbyteorder("<"))
    assert np.array_equal(volume.array.reshape(-1), expected)
    position = [
        float(v)
        for v in raw.PerFrameFunctionalGroupsSequence[0]
        .PlanePositionSequence[0]
        .ImagePositionPatient
    ]
    assert np.allclose(volume.affine[:3, 3], position)
