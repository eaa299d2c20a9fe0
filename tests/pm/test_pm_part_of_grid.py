"""A Parametric Map of part of its source's grid, read onto that grid.

A map computed on a crop of a series (an ADC map of a prostate box) keeps the crop's
own extent in the file (docs/pm.md). Read onto the source grid, its frames go to their
voxels by position, and every voxel they do not cover has no value: NaN, as a declared
padding value has. The frames are cropped here by hand, by DICOM's own rule (a row is
Pixel Spacing[0] mm along the column cosines of Image Orientation, a column Pixel
Spacing[1] mm along the row cosines), so the writer's placement is not the oracle.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from radbridge.coding import ucum
from radbridge.errors import GridMismatchError
from radbridge.geometry import Volume
from radbridge.pm import encode_parametric_map, open_parametric_map

from .conftest import ADC, CLASS_ACTIVATION, probability


def _crop_frames(ds: pydicom.Dataset, rows: slice, columns: slice) -> pydicom.Dataset:
    """Return a float32 map whose frames hold ``rows`` x ``columns`` of ``ds``'s frames."""
    ds = pydicom.dcmread(io.BytesIO(_saved(ds)))
    frames = np.frombuffer(ds.FloatPixelData, "<f4").reshape(-1, ds.Rows, ds.Columns)
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    orientation = np.array(
        ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient,
        float,
    )
    row_step = orientation[3:] * float(measures.PixelSpacing[0])
    column_step = orientation[:3] * float(measures.PixelSpacing[1])
    for item in ds.PerFrameFunctionalGroupsSequence:
        plane = item.PlanePositionSequence[0]
        moved = np.array(plane.ImagePositionPatient, float)
        moved += rows.start * row_step + columns.start * column_step
        plane.ImagePositionPatient = [f"{v:.6f}" for v in moved]
    cropped = np.ascontiguousarray(frames[:, rows, columns])
    ds.Rows, ds.Columns = cropped.shape[1:]
    ds.FloatPixelData = cropped.astype("<f4").tobytes()
    return ds


def _saved(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _part(study, box: tuple[slice, slice, slice], values: np.ndarray) -> Volume:
    """``values`` on ``box`` of the study's grid, as a Volume on the source's lattice."""
    geometry = study.source.geometry
    affine = geometry.affine.copy()
    affine[:, 3] = geometry.affine @ np.array([b.start for b in box] + [1.0])
    return Volume(values, affine, geometry.frame_of_reference_uid)


def test_frames_cropped_by_hand_land_on_their_voxels(study):
    geometry = study.source.geometry
    values = probability(geometry.shape, seed=11) + np.float32(0.5)
    full = encode_parametric_map(values, study.source, quantity=CLASS_ACTIVATION, units="1")
    rows, columns = slice(3, 30), slice(0, 7)
    pm = open_parametric_map(_crop_frames(full, rows, columns))
    volume = pm.volume(study.source)
    expected = np.full(geometry.shape, np.nan, np.float32)
    expected[:, rows, columns] = values[:, rows, columns]
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, expected)
    assert volume.geometry.is_close(geometry)


def test_an_integer_map_of_a_crop_keeps_its_values_and_has_no_value_around_them(study):
    """An integer map has no value for 'none', and 0 is a value (0 HU, a count of 0): the
    voxels it does not cover are NaN, in float64, which holds every integer exactly."""
    box = (slice(1, 4), slice(6, 20), slice(0, 32))
    stored = np.arange(3 * 14 * 32, dtype=np.int16).reshape(3, 14, 32) - 700  # 0 is in it
    pm = open_parametric_map(
        _saved(
            encode_parametric_map(_part(study, box, stored), study.source, quantity=ADC, units="1")
        )
    )
    assert pm.mapping.is_identity
    own = pm.volume()
    assert own.array.dtype == np.int16 and np.array_equal(own.array, stored)
    volume = pm.volume(study.source)
    assert volume.array.dtype == np.float64
    assert np.array_equal(volume.array[box], stored)
    outside = np.ones(volume.shape, bool)
    outside[box] = False
    assert np.isnan(volume.array[outside]).all()


def test_frames_reaching_beyond_the_target_are_refused(study):
    box = (slice(2, 4), slice(20, 40), slice(8, 20))  # rows 20..39 of a 32-row grid
    values = probability((2, 20, 12), seed=5)
    ds = encode_parametric_map(
        _part(study, box, values), study.source, quantity=CLASS_ACTIVATION, units="1"
    )
    pm = open_parametric_map(_saved(ds))
    with pytest.raises(GridMismatchError, match=r"reach outside the target grid's 32x32 plane"):
        pm.volume(study.source)
    assert np.array_equal(pm.volume().array, values)


def test_a_map_of_a_crop_of_a_source_with_a_missing_slice():
    """Frames of a source with non-uniform spacing are placed by acquired position."""
    from tests.test_uneven_source import missing_slice_source

    source = missing_slice_source()
    values = probability(source.geometry.shape, seed=3) + np.float32(0.5)
    full = encode_parametric_map(
        values, source, quantity=CLASS_ACTIVATION, units=ucum("1", "ratio"), anatomic_region="liver"
    )
    rows, columns = slice(2, 6), slice(1, 7)
    pm = open_parametric_map(_crop_frames(full, rows, columns))
    volume = pm.volume(source)
    expected = np.full(source.geometry.shape, np.nan, np.float32)
    expected[:, rows, columns] = values[:, rows, columns]
    np.testing.assert_array_equal(volume.array, expected)
