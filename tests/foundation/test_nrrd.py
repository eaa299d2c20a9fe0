"""radbridge's NRRD writer, read back by SimpleITK (an outside reader): values and geometry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from radbridge.errors import GeometryError, UnsupportedObjectError
from radbridge.geometry import Volume
from radbridge.io.nifti import volume_from_sitk, write_image
from radbridge.io.nrrd import write_nrrd
from radbridge.io.series import read_volume

from .builders import ct_slice, match_axes


def oblique_affine() -> np.ndarray:
    """An orthonormal but oblique grid with uneven spacing and an odd origin."""
    angle = 0.3
    rotation = np.array(
        [
            [np.cos(angle), -np.sin(angle), 0.0],
            [np.sin(angle), np.cos(angle), 0.0],
            [0.0, 0.0, 1.0],
        ]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.25, 0.7, 0.3])
    affine[:3, 3] = [-120.123456789, 33.3, 1e-3]
    return affine


@pytest.mark.parametrize(
    "dtype",
    [bool, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.float32, np.float64],
)
def test_simpleitk_reads_our_nrrd_exactly(tmp_path, dtype):
    rng = np.random.default_rng(1)
    array = (rng.random((5, 6, 7)) * 200 - (0 if dtype in (bool, np.uint8) else 100)).astype(dtype)
    volume = Volume(array, oblique_affine())
    path = write_nrrd(volume, tmp_path / "v.nrrd")
    back = volume_from_sitk(sitk.ReadImage(str(path)))
    np.testing.assert_array_equal(back.array, array.astype(np.uint8) if dtype is bool else array)
    np.testing.assert_array_equal(back.affine[:3, 3], volume.affine[:3, 3])  # origin exact
    # ITK keeps spacing and unit directions apart: their product may differ in the last bit
    np.testing.assert_allclose(back.affine, volume.affine, rtol=0, atol=1e-12)


def test_the_same_values_and_geometry_as_simpleitk_writes(tmp_path):
    labels = np.zeros((4, 9, 8), np.uint8)
    labels[1:3, 2:7, 3:6] = 5
    volume = Volume(labels, oblique_affine())
    ours = write_nrrd(volume, tmp_path / "ours.nrrd")
    from radbridge.io.nifti import volume_to_sitk

    theirs = tmp_path / "theirs.nrrd"
    sitk.WriteImage(volume_to_sitk(volume), str(theirs), True)
    a, b = sitk.ReadImage(str(ours)), sitk.ReadImage(str(theirs))
    assert a.GetSize() == b.GetSize() and a.GetPixelID() == b.GetPixelID()
    assert a.GetSpacing() == b.GetSpacing() and a.GetOrigin() == b.GetOrigin()
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-15)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))


def test_write_image_writes_nrrd_without_importing_simpleitk(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from radbridge.geometry import Volume\n"
        "from radbridge.io.nifti import write_image\n"
        "write_image(Volume(np.ones((2, 3, 4), np.uint8), np.eye(4)), sys.argv[1])\n"
        "print('SimpleITK' in sys.modules)\n"
    )
    target = str(tmp_path / "m.nrrd")
    out = subprocess.run(
        [sys.executable, "-c", code, target], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "m.nrrd"))).shape == (2, 3, 4)


def test_refusals_are_those_of_the_simpleitk_path(tmp_path):
    sheared = np.eye(4)
    sheared[0, 1] = 0.5  # gantry tilt: ITK images cannot hold it
    with pytest.raises(GeometryError, match="sheared"):
        write_image(Volume(np.zeros((2, 3, 4), np.uint8), sheared), tmp_path / "s.nrrd")
    with pytest.raises(UnsupportedObjectError, match="complex"):
        write_nrrd(Volume(np.zeros((2, 3, 4), np.complex64), np.eye(4)), tmp_path / "c.nrrd")


def rounded_oblique_series(folder, decimals: int = 3):
    """10 oblique slices (Brainix MR's orientation) 1 mm apart, positions rounded."""
    row = np.array([0.99971222877502, 0.0, 0.02398800104856])
    col = np.array([-0.0017278126906, 0.99740260839462, 0.07200747728347])
    col = col - row * (row @ col)
    col /= np.linalg.norm(col)
    normal = np.cross(row, col)
    origin = np.array([-118.495, -118.872, 83.717])
    paths = []
    for k in range(10):
        position = np.round(origin + k * normal, decimals)
        ds = ct_slice(position, (*row, *col), spacing=(0.9, 0.9), rows=8, columns=8, value=k)
        paths.append(folder / f"{k}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_rounded_oblique_positions_export_as_simpleitk_reads_the_series(tmp_path, suffix):
    (tmp_path / "dicom").mkdir()
    paths = rounded_oblique_series(tmp_path / "dicom")
    volume = read_volume(paths, rescale=True)
    written = write_image(volume, tmp_path / f"v{suffix}")  # was refused as "sheared"
    ours = volume_from_sitk(sitk.ReadImage(str(written)))
    reader = sitk.ImageSeriesReader()  # GDCM reads the same files on its own
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "dicom")))
    theirs = volume_from_sitk(reader.Execute())
    array, affine = match_axes(ours.affine, theirs.array, theirs.affine)
    np.testing.assert_allclose(ours.affine, affine, atol=1e-3)
    np.testing.assert_array_equal(ours.array, array)
