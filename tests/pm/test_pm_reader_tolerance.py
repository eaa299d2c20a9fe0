"""The Parametric Map reader: hostile and damaged input gives clear errors; variants are read."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pydicom
import pytest
from pydicom import examples

from radbridge.errors import DecodingError, NotDicomError, RadbridgeError, UnsupportedObjectError
from radbridge.iods.pm import encode_parametric_map, open_parametric_map, read_parametric_map

from .conftest import ADC, probability


def _bytes(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def encoded(study):
    values = probability(study.source.geometry.shape)
    return values, encode_parametric_map(values, study.source, quantity=ADC, units="mm2/s")


def test_not_dicom_and_not_a_map(tmp_path):
    with pytest.raises(NotDicomError):
        open_parametric_map(b"hello, this is not DICOM at all" * 10)
    with pytest.raises(NotDicomError, match="cannot be opened"):
        open_parametric_map(tmp_path / "missing.dcm")
    with pytest.raises(UnsupportedObjectError, match="not a Parametric Map") as info:
        open_parametric_map(examples.ct)
    assert info.value.attribute == "SOPClassUID"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
def test_truncated_files_fail_clearly(encoded, keep):
    data = _bytes(encoded[1])
    with pytest.raises(RadbridgeError) as info:
        read_parametric_map(data[: int(len(data) * keep)])
    assert isinstance(info.value, DecodingError | NotDicomError | UnsupportedObjectError)
    assert "truncated" in str(info.value) or "damaged" in str(info.value)


def test_random_corruption_never_escapes_as_a_foreign_exception(encoded):
    data = bytearray(_bytes(encoded[1]))
    rng = np.random.default_rng(1)
    header_end = len(data) - encoded[0].nbytes
    for _ in range(40):
        damaged = bytearray(data)
        for where in rng.integers(132, header_end, size=4):
            damaged[int(where)] = int(rng.integers(0, 256))
        # A clear, typed error is fine; so is a successful read. Anything else fails.
        with contextlib.suppress(RadbridgeError):
            read_parametric_map(bytes(damaged))


def test_missing_pixel_description(encoded):
    ds = pydicom.dcmread(io.BytesIO(_bytes(encoded[1])))
    del ds.Rows
    with pytest.raises(RadbridgeError, match="incomplete") as info:
        open_parametric_map(ds)
    assert info.value.attribute == "Rows"


def test_per_frame_mapping_and_no_shared_mapping(encoded):
    values, ds = encoded
    ds = pydicom.dcmread(io.BytesIO(_bytes(ds)))
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence
    del ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence
    for k, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        copy = pydicom.Dataset()
        copy.update(mapping[0])
        copy.RealWorldValueSlope = float(k + 1)
        item.RealWorldValueMappingSequence = [copy]
    pm = open_parametric_map(_bytes(ds))
    volume = pm.volume()
    expected = values.astype(np.float64) * np.arange(1, values.shape[0] + 1)[:, None, None]
    assert np.allclose(volume.array, expected)
    assert pm.units.value == "mm2/s"


def test_missing_mapping_warns_and_returns_stored_values(encoded):
    values, ds = encoded
    ds = pydicom.dcmread(io.BytesIO(_bytes(ds)))
    del ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence
    with pytest.warns(UserWarning, match="no Real World Value Mapping"):
        pm = open_parametric_map(_bytes(ds))
    assert pm.units is None
    assert np.array_equal(pm.volume().array, values)


def test_frames_without_positions(encoded):
    ds = pydicom.dcmread(io.BytesIO(_bytes(encoded[1])))
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.PlanePositionSequence
    pm = open_parametric_map(_bytes(ds))
    with pytest.raises(UnsupportedObjectError, match="no patient positions"):
        pm.volume()
    assert pm.real_world_frames().shape == encoded[0].shape


def test_lookup_table_mapping(study):
    stored = (study.labels % 4).astype(np.uint16)
    ds = encode_parametric_map(stored, study.source, quantity=ADC, units="1")
    ds = pydicom.dcmread(io.BytesIO(_bytes(ds)))
    item = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    item.RealWorldValueLUTData = [10.0, 20.0, 40.0, 80.0]
    item.RealWorldValueFirstValueMapped = 0
    volume = read_parametric_map(_bytes(ds))
    assert np.array_equal(volume.array, np.array([10.0, 20.0, 40.0, 80.0])[stored])
