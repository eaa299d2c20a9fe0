"""The reader on damaged and unusual files: recover, warn, explain; refuse when meaning is lost."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from radbridge.errors import (
    DecodingError,
    GridMismatchError,
    InvalidAttributeError,
    NotDicomError,
    UnsupportedObjectError,
)
from radbridge.geometry import VolumeGeometry
from radbridge.io.series import read_volume
from radbridge.iods.rtstruct import ROIDescription, encode_rtstruct, read_rtstruct

from .conftest import dice, rois

LIVER = 5


def written(study, numbers=(LIVER,)) -> Dataset:
    """Our RTSTRUCT for some phantom labels, re-read from bytes (as a file would be)."""
    mask = np.where(np.isin(study.labels, numbers), study.labels, 0)
    ds = encode_rtstruct(mask, study.source, rois(numbers))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue()))


def read_mask(ds, study, roi=LIVER, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mask = read_rtstruct(ds).mask(roi, study.source, **kwargs).array
    return mask, " | ".join(str(w.message) for w in caught)


def contours_of(ds, number=LIVER):
    for item in ds.ROIContourSequence:
        if int(item.ReferencedROINumber) == number:
            return item.ContourSequence
    raise AssertionError(number)


def test_a_clean_file_reads_exactly_and_silently(study):
    mask, messages = read_mask(written(study), study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert messages == ""


def test_missing_frame_of_reference_module(study):
    ds = written(study)
    del ds.FrameOfReferenceUID
    del ds.PositionReferenceIndicator
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert "no Frame of Reference Module" in messages
    with pytest.warns(UserWarning, match="no Frame of Reference Module"):
        structure_set = read_rtstruct(ds)
    assert structure_set.frame_of_reference_uid == study.source.frame_of_reference_uid


def test_sop_instance_uid_equal_to_series_uid(study):
    ds = written(study)
    ds.SOPInstanceUID = ds.SeriesInstanceUID
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert "SOP Instance UID equals Series Instance UID" in messages


def test_contours_referencing_no_image(study):
    ds = written(study)
    for contour in contours_of(ds):
        del contour.ContourImageSequence
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert messages == ""


def _shift(ds, mm: float) -> None:
    for contour in contours_of(ds):
        points = np.asarray(contour.ContourData, float).reshape(-1, 3)
        points[:, 2] += mm
        contour.ContourData = [f"{v:.4f}" for v in points.ravel()]


def test_points_off_the_plane_within_tolerance_are_projected(study):
    ds = written(study)
    _shift(ds, 2.0)  # slices are 18.75 mm apart: the default tolerance is 4.7 mm
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert "off their slice plane and were projected" in messages and "2 mm" in messages


def test_contours_between_slices_are_left_out(study):
    ds = written(study)
    _shift(ds, 9.0)
    mask, messages = read_mask(ds, study)
    assert not mask.any()
    assert "lie between slices" in messages
    widened, _ = read_mask(ds, study, tolerance_mm=10.0)
    np.testing.assert_array_equal(widened, study.labels == LIVER)


def test_contours_referencing_the_wrong_image_are_placed_by_coordinates(study):
    ds = written(study)
    first = study.source.slice_refs[0].sop_instance_uid
    for contour in contours_of(ds):
        contour.ContourImageSequence[0].ReferencedSOPInstanceUID = first
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert "reference a different slice" in messages


def test_contours_referencing_unknown_images(study):
    ds = written(study)
    for contour in contours_of(ds):
        contour.ContourImageSequence[0].ReferencedSOPInstanceUID = "2.25.1234"
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert "not in the target" in messages


def test_other_frame_of_reference_with_matching_images_is_trusted(study):
    ds = written(study)
    ds.FrameOfReferenceUID = "2.25.42"
    ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID = "2.25.42"
    mask, messages = read_mask(ds, study)
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    assert "trusting the image references" in messages


def test_other_frame_of_reference_without_matching_images_is_refused(study):
    ds = written(study)
    ds.FrameOfReferenceUID = "2.25.42"
    del ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence
    for contour in contours_of(ds):
        del contour.ContourImageSequence
    with pytest.raises(GridMismatchError, match="references none of the target's images"):
        read_rtstruct(ds).mask(LIVER, study.source)


def test_damaged_contour_items(study):
    ds = written(study)
    items = contours_of(ds)
    items[0].NumberOfContourPoints = 3  # wrong count
    items[1].ContourData = ["1.0", "2.0"]  # not triplets
    point = Dataset()
    point.ContourGeometricType = "POINT"
    point.ContourData = [0, 0, float(study.source.slice_positions()[0][2])]
    items.append(point)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rs = read_rtstruct(ds)
        mask = rs.mask(LIVER, study.source).array
    messages = " | ".join(str(w.message) for w in caught)
    assert "Number of Contour Points that differs" in messages
    assert "not x, y, z triplets" in messages
    assert "POINT/OPEN contours enclose no area" in messages
    truth = study.labels == LIVER
    assert mask.sum() < truth.sum() and not (mask & ~truth).any()


def test_rois_missing_from_the_structure_sequence(study):
    ds = written(study)
    del ds.StructureSetROISequence
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rs = read_rtstruct(ds)
    assert "no Structure Set ROI item" in str(caught[-1].message)
    assert rs.rois[LIVER].name == f"ROI {LIVER}"


def test_rois_by_name_and_number(study):
    rs = read_rtstruct(written(study, (2, 3, LIVER)))
    assert rs.roi("liver").number == LIVER and rs.roi(2).name == "Lung_L"
    with pytest.raises(InvalidAttributeError, match="no ROI 'spleen'") as err:
        rs.roi("spleen")
    assert "Lung_R" in str(err.value)


def test_any_grid_in_the_frame_of_reference(study):
    ds = written(study)
    truth = study.labels == LIVER
    volume = read_volume(study.folder)
    np.testing.assert_array_equal(read_rtstruct(ds).mask(LIVER, volume).array, truth)
    geometry = study.source.geometry
    np.testing.assert_array_equal(read_rtstruct(ds).mask(LIVER, geometry).array, truth)
    # twice as fine in-plane: each pixel becomes 2x2, centres a quarter pixel off the old ones
    affine = geometry.affine.copy()
    affine[:3, 1:3] /= 2
    affine[:3, 3] -= (geometry.affine[:3, 1] + geometry.affine[:3, 2]) / 4
    fine = VolumeGeometry(
        (geometry.shape[0], geometry.shape[1] * 2, geometry.shape[2] * 2),
        affine,
        geometry.frame_of_reference_uid,
    )
    upsampled = truth.repeat(2, axis=1).repeat(2, axis=2)
    assert dice(read_rtstruct(ds).mask(LIVER, fine).array, upsampled) >= 0.95


def test_overlapping_rois_in_a_label_map(study):
    body = study.labels > 0
    ds = encode_rtstruct(
        np.stack([body, study.labels == LIVER]),
        study.source,
        [ROIDescription(1, "External", "EXTERNAL"), ROIDescription(2, "Liver")],
    )
    with pytest.raises(DecodingError, match="overlap"):
        read_rtstruct(ds).label_volume(study.source)
    with pytest.raises(InvalidAttributeError, match="overlap policy"):
        read_rtstruct(ds).label_volume(study.source, overlap="largest")


def test_not_a_structure_set(study, tmp_path):
    with pytest.raises(UnsupportedObjectError, match="not an RT Structure Set"):
        read_rtstruct(study.datasets[0])
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all" * 20)
    with pytest.raises(NotDicomError):
        read_rtstruct(junk)
    with pytest.raises(NotDicomError):
        read_rtstruct(tmp_path / "missing.dcm")


def test_a_structure_set_without_regions_gives_an_empty_label_map():
    """Found by the fuzz campaign: a truncated file with no ROI left crashed in a reshape."""
    from radbridge.iods.common import StackedMasks, label_map

    grid = VolumeGeometry((2, 3, 4), np.eye(4))
    empty = StackedMasks(np.zeros((0, 2, 3, 4), bool), grid, ())
    volume = label_map(empty, overlap="error")
    assert volume.array.shape == (2, 3, 4) and not volume.array.any()


def test_a_count_or_frame_number_that_is_no_number_does_not_crash(study):
    """Found by the fuzz campaign: a damaged Number of Contour Points crashed int()."""
    ds = written(study)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = bytearray(buffer.getvalue())
    at = data.index(b"\x06\x30\x46\x00IS")  # (3006,0046) Number of Contour Points
    data[at + 8] = ord("X")
    damaged = dcmread(io.BytesIO(bytes(data)))
    mask, said = read_mask(damaged, study)
    clean, _ = read_mask(ds, study)
    np.testing.assert_array_equal(mask, clean)  # the points still define the contour
    assert "Number of Contour Points" in said or "point" in said.lower()


@pytest.mark.parametrize("number", [0, -3])
def test_an_roi_numbered_below_one_cannot_be_a_label_and_says_so(study, number):
    # ROI 0 vanished into the background; a negative one raised numpy's OverflowError
    ds = written(study, numbers=(1, LIVER))
    for item in ds.StructureSetROISequence:
        if int(item.ROINumber) == LIVER:
            item.ROINumber = number
    for item in (*ds.RTROIObservationsSequence, *ds.ROIContourSequence):
        if int(item.ReferencedROINumber) == LIVER:
            item.ReferencedROINumber = number
    structure_set = read_rtstruct(ds)
    assert structure_set.mask(number, study.source).array.sum() > 0  # the ROI is there
    with pytest.raises(DecodingError, match="must be 1 to 65535") as caught:
        structure_set.label_volume(study.source)
    assert caught.value.attribute == "ROIContourSequence"


def test_contours_of_two_planes_near_one_slice_do_not_cancel_out(study):
    """An ROI drawn on finer slices than the target's: the nearest plane's contours are used.

    The contours of one image combine with the even-odd rule; combining the outlines of
    two neighbouring planes as well erased the ROI wherever they agree (both near one
    target slice), which is most of it.
    """
    ds = written(study)
    geometry = study.source.geometry
    step = geometry.affine[:3, 0]
    affine = geometry.affine.copy()
    affine[:3, 0] = 2 * step  # every other plane, 5 mm further along the normal
    affine[:3, 3] += 5.0 * step / np.linalg.norm(step)
    coarse = VolumeGeometry(
        (geometry.shape[0] // 2, *geometry.shape[1:]), affine, geometry.frame_of_reference_uid
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 15 mm reaches both neighbouring planes (5 and 13.75 mm away)
        mask = read_rtstruct(ds).mask(LIVER, coarse, tolerance_mm=15.0).array
    np.testing.assert_array_equal(mask, study.labels[::2] == LIVER)
    assert "lie on another plane than the contours nearest" in " ".join(
        str(w.message) for w in caught
    )


def test_an_roi_in_another_frame_of_reference_is_not_put_on_the_target(study):
    """PS3.3 C.8.8.5: an ROI's contours are in its own Referenced Frame of Reference UID.

    An ROI of a registered MR, in the MR's frame, was filled on the CT at the MR's
    coordinates with only a warning about unknown images.
    """
    ds = written(study)
    ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID = "2.25.42"
    with pytest.warns(UserWarning, match="trusting them"):  # it names the CT's images
        mask = read_rtstruct(ds).mask(LIVER, study.source).array
    np.testing.assert_array_equal(mask, study.labels == LIVER)
    for contour in contours_of(ds):
        contour.ContourImageSequence[0].ReferencedSOPInstanceUID = "2.25.43"  # the MR's
    with pytest.raises(GridMismatchError, match=r"ROI 5 .* frame of reference 2\.25\.42"):
        read_rtstruct(ds).stacked_volume(study.source)


@pytest.mark.parametrize("tolerance", [-1.0, float("nan")])
def test_a_tolerance_that_is_no_distance_is_refused(study, tolerance):
    """A negative or NaN tolerance left every contour out and returned an empty mask."""
    with pytest.raises(InvalidAttributeError, match="tolerance"):
        read_rtstruct(written(study)).mask(LIVER, study.source, tolerance_mm=tolerance)
