"""radbridge's NIfTI files as nibabel and SimpleITK (outside readers) see them.

A NIfTI-1 header holds the grid twice: the sform (any affine) and the qform (a rotation,
zooms and an offset: no shear). ITK, hence SimpleITK, 3D Slicer and nnU-Net, prefers the
qform when the sform is not orthonormal. A gantry-tilted CT is a sheared grid: its qform
can only be an approximation, which nibabel writes without a word, and ITK then placed
voxels millimetres from where the DICOM positions put them.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from radbridge.errors import UnsupportedObjectError
from radbridge.geometry import volume_from_datasets
from radbridge.io.nifti import write_image, write_images

from .builders import ct_slice

#: RAS (NIfTI) from LPS (DICOM): x and y change sign.
RAS = np.diag([-1.0, -1.0, 1.0])


def tilted_series(degrees: float = 15.0):
    """A CT of 6 slices, 2.5 mm table steps, the gantry tilted by ``degrees``."""
    shift = np.tan(np.radians(degrees)) * 2.5
    return [
        ct_slice((10.0, -shift * k, 2.5 * k), spacing=(0.7, 0.6), rows=8, columns=9, value=k)
        for k in range(6)
    ]


def dicom_position(datasets, slice_index, row, column):
    """Where the DICOM attributes put a voxel (PS3.3 C.7.6.2.1.1), in LPS."""
    ds = datasets[slice_index]
    row_cosine = np.array([float(v) for v in ds.ImageOrientationPatient[:3]])
    column_cosine = np.array([float(v) for v in ds.ImageOrientationPatient[3:]])
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    origin = np.array([float(v) for v in ds.ImagePositionPatient])
    return origin + column * column_spacing * row_cosine + row * row_spacing * column_cosine


VOXELS = [(0, 0, 0), (5, 7, 8), (3, 2, 6), (5, 0, 8)]


@pytest.mark.parametrize("stacked", [False, True])
def test_a_tilted_grid_has_its_sform_and_no_approximate_qform(tmp_path, stacked):
    datasets = tilted_series()
    volume = volume_from_datasets(datasets)
    path = tmp_path / "tilt.nii.gz"
    if stacked:
        write_images(volume.array[None].astype(np.uint8), volume.geometry, path)
    else:
        write_image(volume, path)
    header = nib.load(path).header
    assert int(header["qform_code"]) == 0  # was 1, with a rotation 7 mm off at the corners
    assert int(header["sform_code"]) == 1
    sform = header.get_sform()
    for k, row, column in VOXELS:
        ras = sform @ [column, row, k, 1.0]
        lps = RAS @ ras[:3]
        np.testing.assert_allclose(lps, dicom_position(datasets, k, row, column), atol=1e-4)
    if stacked:
        return
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        return  # ITK refuses a sheared sform when there is no qform: loud, not wrong
    for k, row, column in VOXELS:  # what it reads must be where DICOM puts the voxels
        found = image.TransformIndexToPhysicalPoint((column, row, k))
        np.testing.assert_allclose(found, dicom_position(datasets, k, row, column), atol=1e-3)


def test_an_orthogonal_grid_keeps_a_qform_that_simpleitk_reads(tmp_path):
    datasets = tilted_series(degrees=0.0)
    volume = volume_from_datasets(datasets)
    write_image(volume, tmp_path / "straight.nii.gz")
    header = nib.load(tmp_path / "straight.nii.gz").header
    assert int(header["qform_code"]) == 1 and int(header["sform_code"]) == 1
    np.testing.assert_allclose(header.get_qform(), header.get_sform(), atol=1e-5)
    image = sitk.ReadImage(str(tmp_path / "straight.nii.gz"))
    for k, row, column in VOXELS:
        found = image.TransformIndexToPhysicalPoint((column, row, k))
        np.testing.assert_allclose(found, dicom_position(datasets, k, row, column), atol=1e-4)


#: (voxel type, suffix) pairs no writer can hold: float16 (mixed-precision model output)
#: anywhere, 64-bit integers in NIfTI, complex numbers in radbridge's NRRD.
REFUSED = [
    (np.float16, ".nii.gz"),
    (np.float16, ".nrrd"),
    (np.float16, ".mha"),
    (np.uint64, ".nii.gz"),
    (np.int64, ".nii"),
    (np.complex64, ".nrrd"),
]


@pytest.mark.parametrize(("dtype", "suffix"), REFUSED)
def test_a_type_the_file_cannot_hold_is_refused_naming_it(tmp_path, dtype, suffix):
    volume = volume_from_datasets(tilted_series(degrees=0.0))
    path = tmp_path / f"v{suffix}"
    with pytest.raises(UnsupportedObjectError) as err:  # was nibabel's or SimpleITK's error
        write_image(volume.with_array(volume.array.astype(dtype)), path)
    assert (err.value.path, err.value.attribute) == (str(path), "dtype")
    assert np.dtype(dtype).name in str(err.value) and "float32" in err.value.hint
    assert not path.exists()


@pytest.mark.parametrize(
    ("dtype", "suffix"), [(np.float16, ".nii.gz"), (np.uint64, ".nii.gz"), (np.complex64, ".mha")]
)
def test_stacked_types_the_file_cannot_hold_are_refused_naming_them(tmp_path, dtype, suffix):
    volume = volume_from_datasets(tilted_series(degrees=0.0))
    path = tmp_path / f"s{suffix}"
    with pytest.raises(UnsupportedObjectError) as err:
        write_images(np.zeros((2, *volume.shape), dtype), volume.geometry, path)
    assert (err.value.path, err.value.attribute) == (str(path), "dtype")
    assert np.dtype(dtype).name in str(err.value)


@pytest.mark.parametrize(
    ("dtype", "suffix"),
    [
        (np.int8, ".nii.gz"),
        (np.uint32, ".nii.gz"),
        (np.complex64, ".nii.gz"),
        (np.int64, ".mha"),
        (np.uint64, ".nrrd"),
        (np.complex128, ".nhdr"),
    ],
)
def test_types_the_file_holds_are_read_back_by_nibabel_and_simpleitk(tmp_path, dtype, suffix):
    volume = volume_from_datasets(tilted_series(degrees=0.0))
    array = (np.arange(np.prod(volume.shape)).reshape(volume.shape) % 100).astype(dtype)
    path = write_image(volume.with_array(array), tmp_path / f"v{suffix}")
    if suffix == ".nii.gz":
        theirs = np.transpose(np.asanyarray(nib.load(path).dataobj), (2, 1, 0))
    else:
        theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert theirs.dtype == array.dtype
    np.testing.assert_array_equal(theirs, array)
