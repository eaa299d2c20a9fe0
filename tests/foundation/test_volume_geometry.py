"""Geometry properties: any orientation, spacing and file order gives the same affine."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radbridge.errors import GeometryError, GridMismatchError
from radbridge.geometry import Volume, VolumeGeometry, affine_from_planes, volume_from_datasets
from radbridge.io.nifti import write_image

from .builders import ct_slice, rotation

quaternions = st.tuples(*(st.floats(-1, 1) for _ in range(4))).filter(
    lambda q: float(np.linalg.norm(q)) > 0.1
)


@settings(max_examples=60, deadline=None)
@given(
    q=quaternions,
    pixel=st.tuples(st.floats(0.2, 3.0), st.floats(0.2, 3.0)),
    step=st.floats(0.3, 10.0),
    count=st.integers(2, 9),
    origin=st.tuples(*(st.floats(-500, 500) for _ in range(3))),
    seed=st.integers(0, 2**32 - 1),
    reverse=st.booleans(),
)
def test_shuffled_series_gives_the_constructed_affine(q, pixel, step, count, origin, seed, reverse):
    rot = rotation(q)
    row_dir, col_dir = rot[:, 0], rot[:, 1]
    normal = np.cross(row_dir, col_dir)
    iop = [*row_dir, *col_dir]
    positions = [np.asarray(origin) + k * step * normal for k in range(count)]
    datasets = [ct_slice(p, iop, spacing=pixel, value=k) for k, p in enumerate(positions)]
    if reverse:  # instance order running against the normal must not matter
        datasets.reverse()
    shuffled = datasets[:]
    random.Random(seed).shuffle(shuffled)
    for i, ds in enumerate(shuffled):
        ds.InstanceNumber = count - i  # misleading instance numbers
    vol = volume_from_datasets(shuffled)
    expected = affine_from_planes(origin, iop, pixel, step * normal)
    np.testing.assert_allclose(vol.affine, expected, atol=1e-6 * max(1.0, step))
    # Each slice keeps its own pixels: slice k holds the value k.
    assert vol.array[:, 0, 0].tolist() == list(range(count))
    # The index→LPS map puts voxel (k, 0, 0) at the k-th position.
    np.testing.assert_allclose(
        vol.geometry.index_to_lps([[k, 0, 0] for k in range(count)]), positions, atol=1e-4
    )


@settings(max_examples=40, deadline=None)
@given(q=quaternions, spacing=st.tuples(*(st.floats(0.1, 5.0) for _ in range(3))))
def test_index_lps_round_trip(q, spacing):
    rot = rotation(q)
    affine = np.eye(4)
    affine[:3, :3] = rot * np.asarray(spacing)
    affine[:3, 3] = [10.0, -20.0, 30.0]
    geometry = VolumeGeometry((4, 5, 6), affine)
    idx = np.array([[0, 0, 0], [3, 4, 5], [1.5, 2.25, 0.5]])
    np.testing.assert_allclose(geometry.lps_to_index(geometry.index_to_lps(idx)), idx, atol=1e-9)
    np.testing.assert_allclose(sorted(geometry.spacing), sorted(spacing), rtol=1e-9)


def test_geometry_rejects_singular_and_bad_shapes():
    with pytest.raises(GeometryError, match="singular"):
        VolumeGeometry((2, 2, 2), np.diag([0.0, 1.0, 1.0, 1.0]))
    with pytest.raises(GeometryError, match="4x4"):
        VolumeGeometry((2, 2, 2), np.eye(3))
    with pytest.raises(GeometryError, match="3-D"):
        Volume(np.zeros((2, 2)), np.eye(4))


def test_require_same_grid_names_the_difference():
    a = VolumeGeometry((2, 3, 4), np.diag([2.0, 1.0, 1.0, 1.0]))
    b = VolumeGeometry((2, 3, 4), np.diag([2.5, 1.0, 1.0, 1.0]))
    a.require_same_grid(VolumeGeometry((2, 3, 4), a.affine), what="mask")
    with pytest.raises(GridMismatchError, match="different grid"):
        a.require_same_grid(b, what="mask")
    with pytest.raises(GridMismatchError, match=r"shape \(1, 3, 4\)"):
        a.require_same_grid(VolumeGeometry((1, 3, 4), a.affine), what="mask")


def test_slice_normal_and_orientation_round_trip():
    iop = [0, 1, 0, 0, 0, -1]  # sagittal
    vol = volume_from_datasets(
        [ct_slice((x, 0, 0), iop, spacing=(0.7, 0.9)) for x in (3.0, 1.0, 2.0)]
    )
    assert vol.geometry.image_orientation == pytest.approx(tuple(iop))
    assert vol.geometry.pixel_spacing == pytest.approx((0.7, 0.9))
    np.testing.assert_allclose(vol.geometry.slice_normal, [-1, 0, 0], atol=1e-12)
    # Ascending along the normal (-x): x = 3, 2, 1.
    np.testing.assert_allclose(vol.geometry.slice_positions[:, 0], [3.0, 2.0, 1.0])


def test_gantry_tilt_keeps_a_sheared_affine():
    # Positions step along z and y: a tilted acquisition, slices still parallel.
    datasets = [ct_slice((0, 0.3 * k, 2.0 * k)) for k in range(5)]
    vol = volume_from_datasets(datasets)
    np.testing.assert_allclose(vol.affine[:3, 0], [0, 0.3, 2.0])


@pytest.mark.parametrize("count", [2, 20])
def test_a_half_degree_tilt_stays_sheared_however_short_the_stack(tmp_path, count):
    # 1 mm steps, tilted 0.5 degrees: 0.0087 mm off the normal per slice, above the
    # rounding noise that is put back onto the normal, even over just two slices.
    shift = round(np.tan(np.radians(0.5)), 3)  # positions written with 3 decimals
    datasets = [ct_slice((0, shift * k, 1.0 * k)) for k in range(count)]
    vol = volume_from_datasets(datasets)
    np.testing.assert_allclose(vol.affine[:3, 0], [0, shift, 1.0], atol=1e-12)
    with pytest.raises(GeometryError, match="sheared"):
        write_image(vol, tmp_path / "tilt.nrrd")


def test_rounding_noise_in_positions_gives_an_orthogonal_grid():
    # 3-decimal positions of slices 1.3 mm apart along an oblique normal: the step
    # from first to last position is off the normal by up to 0.0017 mm over the stack.
    rot = rotation((0.9, 0.2, -0.3, 0.1))
    normal = rot[:, 2]
    positions = [np.round(np.array([12.0, -40.0, 7.0]) + 1.3 * k * normal, 3) for k in range(30)]
    vol = volume_from_datasets([ct_slice(p, [*rot[:, 0], *rot[:, 1]]) for p in positions])
    step = vol.affine[:3, 0]
    np.testing.assert_allclose(step, 1.3 * normal, atol=1e-4)
    assert np.linalg.norm(np.cross(step, normal)) < 1e-12  # on the normal: no shear
    direction = vol.geometry.direction
    np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-12)
    # Every voxel stays within the rounding of its DICOM position (numpy's own count).
    lps = vol.geometry.index_to_lps([[k, 0, 0] for k in range(30)])
    assert np.abs(lps - np.asarray(positions)).max() < 0.01


def test_single_slice_uses_slice_thickness():
    ds = ct_slice((1, 2, 3))
    ds.SliceThickness = "2.5"
    vol = volume_from_datasets([ds])
    np.testing.assert_allclose(vol.affine[:3, 0], [0, 0, 2.5])
