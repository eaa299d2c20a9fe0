"""Every image series in ../shared/interop/images reads with the geometry peers agree on."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radbridge.errors import SliceSpacingError, UnsupportedObjectError
from radbridge.io.nifti import volume_from_nifti, volume_from_sitk, volume_to_nifti, volume_to_sitk
from radbridge.io.series import read_volume

from .builders import match_axes

SERIES = ["ct-3slice", "dcmqi_23x38x3", "dcmqi_24x38x3", "brainix_flair_22slices", "rtutils_ct"]


def series_files(interop: Path, name: str) -> list[Path]:
    return sorted(
        p for p in (interop / "images" / name).glob("*.dcm") if "multiframe" not in p.name
    )


@pytest.mark.parametrize("name", SERIES)
def test_single_frame_series_agrees_with_itk_and_highdicom(interop, name):
    files = series_files(interop, name)
    ours = read_volume(files, rescale=True)
    # ITK (GDCM) reads the same files independently.
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in reader.GetGDCMSeriesFileNames(str(files[0].parent))])
    itk = volume_from_sitk(reader.Execute())
    array, affine = match_axes(ours.affine, itk.array, itk.affine)
    np.testing.assert_allclose(affine, ours.affine, atol=1e-4)
    np.testing.assert_array_equal(array, ours.array)
    # highdicom orders slices top-down; after matching axes the voxels coincide.
    theirs = hd.get_volume_from_series([pydicom.dcmread(f) for f in files])
    array, affine = match_axes(ours.affine, theirs.array, theirs.affine)
    np.testing.assert_allclose(affine, ours.affine, atol=1e-4)
    np.testing.assert_array_equal(array, ours.array)


@pytest.mark.parametrize("name", ["dcmqi_23x38x3", "dcmqi_24x38x3"])
def test_legacy_converted_multiframe_equals_its_single_frames(interop, name):
    multi = read_volume(interop / "images" / name / "multiframe_legacy_enhanced.dcm", rescale=True)
    single = read_volume(series_files(interop, name), rescale=True)
    np.testing.assert_allclose(multi.affine, single.affine, atol=1e-4)
    np.testing.assert_array_equal(multi.array, single.array)
    assert [r.frame_number for r in multi.slice_refs] == [1, 2, 3]
    theirs = hd.imread(interop / "images" / name / "multiframe_legacy_enhanced.dcm").get_volume()
    array, affine = match_axes(multi.affine, theirs.array, theirs.affine)
    np.testing.assert_allclose(affine, multi.affine, atol=1e-4)
    np.testing.assert_array_equal(array, multi.array)


def test_single_slice_ct(interop):
    vol = read_volume(interop / "images" / "highdicom" / "ct_image.dcm", rescale=True)
    theirs = hd.get_volume_from_series([pydicom.dcmread(interop / "images/highdicom/ct_image.dcm")])
    array, affine = match_axes(vol.affine, theirs.array, theirs.affine)
    np.testing.assert_allclose(affine, vol.affine, atol=1e-4)
    np.testing.assert_array_equal(array, vol.array)


def test_pydicom_ct2_gaps_need_the_option(interop):
    files = series_files(interop, "pydicom_CT2")
    with pytest.raises(SliceSpacingError, match=r"202\.5"):
        read_volume(files)
    with pytest.warns(UserWarning):
        vol = read_volume(files, allow_nonuniform_spacing=True)
    assert vol.acquired_positions is not None
    np.testing.assert_allclose(
        vol.acquired_positions[:, 2], [-99.48, 103.02, 104.27, 105.52], atol=1e-3
    )


def test_slide_microscopy_is_refused_with_a_reason(interop):
    with pytest.raises(UnsupportedObjectError, match="slide coordinates") as err:
        read_volume(interop / "images" / "highdicom" / "sm_image.dcm")
    assert err.value.attribute == "SOPClassUID"


@pytest.mark.parametrize("name", SERIES)
def test_nifti_and_itk_round_trips_are_exact(interop, name):
    vol = read_volume(series_files(interop, name), rescale=True)
    for back in (volume_from_nifti(volume_to_nifti(vol)), volume_from_sitk(volume_to_sitk(vol))):
        np.testing.assert_allclose(back.affine, vol.affine, atol=1e-4)
        np.testing.assert_array_equal(back.array, vol.array)


def test_nifti_file_matches_itk_reading_of_the_same_file(interop, tmp_path):
    from radbridge.io.nifti import read_image, write_image

    vol = read_volume(series_files(interop, "brainix_flair_22slices"))
    path = write_image(vol, tmp_path / "mr.nii.gz")
    via_itk = volume_from_sitk(sitk.ReadImage(str(path)))  # ITK's own NIfTI reader
    np.testing.assert_allclose(via_itk.affine, vol.affine, atol=1e-4)
    np.testing.assert_array_equal(via_itk.array, vol.array)
    np.testing.assert_allclose(read_image(path).affine, vol.affine, atol=1e-4)
    nrrd = write_image(vol, tmp_path / "mr.nrrd")
    np.testing.assert_allclose(read_image(nrrd).affine, vol.affine, atol=1e-4)
