"""The reader recovers what real files get wrong, and explains what it cannot recover."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from radbridge.errors import DecodingError, GridMismatchError, NotDicomError, UnsupportedObjectError
from radbridge.iods.seg import encode_segmentation, read_segmentation

from .conftest import descriptions


def saved(ds) -> pydicom.Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.fixture
def seg(study):
    return saved(encode_segmentation(study.labels, study.source, descriptions(7)))


def reread(ds) -> pydicom.Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_missing_codes_stay_missing(seg, study):
    del seg.SegmentSequence[2].SegmentedPropertyTypeCodeSequence
    del seg.SegmentSequence[3].SegmentedPropertyCategoryCodeSequence[0].CodeValue
    read = read_segmentation(reread(seg))
    with pytest.warns(UserWarning, match="left uncoded"):  # descriptions parse on first use
        assert read.segments[3].property_type is None
    assert read.segments[3].category is not None
    assert read.segments[4].category is None and read.segments[4].property_type is not None
    np.testing.assert_array_equal(read.label_volume(study.source).array, study.labels)


def test_missing_dimension_index_values_and_stack_position_zero(seg, study):
    for item in seg.PerFrameFunctionalGroupsSequence:
        content = item.FrameContentSequence[0]
        del content.DimensionIndexValues
        content.InStackPositionNumber = 0
    del seg.DimensionIndexSequence
    read = read_segmentation(reread(seg))
    np.testing.assert_array_equal(read.label_volume(study.source).array, study.labels)


def test_frames_without_segment_in_single_segment_seg(study):
    ds = saved(
        encode_segmentation((study.labels == 5).astype(np.uint8), study.source, descriptions(1))
    )
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.SegmentIdentificationSequence
    with pytest.warns(UserWarning, match="assuming segment 1"):
        read = read_segmentation(reread(ds))
    np.testing.assert_array_equal(read.label_volume(study.source).array, study.labels == 5)


def test_frames_without_segment_in_multi_segment_seg_is_an_error(seg):
    del seg.PerFrameFunctionalGroupsSequence[0].SegmentIdentificationSequence
    with pytest.raises(DecodingError, match="name no segment") as err:
        read_segmentation(reread(seg))
    assert err.value.attribute == "ReferencedSegmentNumber"


def test_undescribed_segment_is_warned(seg):
    seg.PerFrameFunctionalGroupsSequence[0].SegmentIdentificationSequence[
        0
    ].ReferencedSegmentNumber = 42
    with pytest.warns(UserWarning, match=r"undescribed segments \[42\]"):
        read_segmentation(reread(seg))


def test_an_undescribed_segment_above_255_still_makes_a_label_map(seg, study):
    # the label map's type came from the described segments only: numpy's OverflowError
    items = seg.PerFrameFunctionalGroupsSequence
    renamed = [
        i
        for i, item in enumerate(items)
        if item.SegmentIdentificationSequence[0].ReferencedSegmentNumber == 7
    ]
    for i in renamed:
        items[i].SegmentIdentificationSequence[0].ReferencedSegmentNumber = 300
    with pytest.warns(UserWarning, match=r"undescribed segments \[300\]"):
        read = read_segmentation(reread(seg))
    labels = read.label_volume(study.source).array
    np.testing.assert_array_equal(labels == 300, study.labels == 7)


def test_truncated_pixel_data(seg):
    seg.PixelData = seg.PixelData[: len(seg.PixelData) // 2]
    read = read_segmentation(reread(seg))
    with pytest.raises(DecodingError, match="truncated"):
        read.label_volume()


def test_not_a_seg_and_not_dicom(study, tmp_path):
    with pytest.raises(UnsupportedObjectError, match="not a Segmentation") as err:
        read_segmentation(study.folder / "CT000001.dcm")
    assert err.value.attribute == "SOPClassUID"
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all" * 40)
    with pytest.raises(NotDicomError):
        read_segmentation(junk)


def test_frames_off_the_target_grid(seg, study):
    read = read_segmentation(reread(seg))
    shifted = study.source.geometry
    affine = shifted.affine.copy()
    affine[:3, 3] += 0.5 * affine[:3, 2]  # half a column
    from radbridge.geometry import VolumeGeometry

    with pytest.raises(GridMismatchError, match="between the target's voxels"):
        read.label_volume(VolumeGeometry(shifted.shape, affine, shifted.frame_of_reference_uid))
    other = VolumeGeometry(shifted.shape, shifted.affine, "2.25.5")
    with pytest.raises(GridMismatchError, match="frames of reference"):
        read.label_volume(other)


def test_masks_for_one_source_instance(seg, study):
    read = read_segmentation(reread(seg))
    k = int(np.flatnonzero((study.labels == 5).any(axis=(1, 2)))[0])
    uid = study.source.slice_refs[k].sop_instance_uid
    masks = read.masks_for_source(uid)
    assert 5 in masks
    np.testing.assert_array_equal(masks[5], study.labels[k] == 5)
    assert read.masks_for_source("2.25.404") == {}


def test_frames_on_a_source_with_uneven_spacing(interop):
    import warnings

    from radbridge.io.series import read_source_series

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = read_source_series(
            interop / "images" / "pydicom_CT2", allow_nonuniform_spacing=True
        )
    seg = read_segmentation(interop / "seg" / "highdicom" / "seg_image_ct_binary_overlap.dcm")
    placed = seg.stacked_volume(source)
    assert placed.array.shape == (2, 4, 16, 16)  # one slice per acquired position
    own = seg.stacked_volume()
    assert int(placed.array.sum()) == int(own.array.sum()) > 0
    uids = {ref.sop_instance_uid for ref in source.slice_refs}
    assert set(seg.frames.source_uids) <= uids


def _strip_source_references(path) -> bytes:
    """The file as PixelMed and some vendors write it: frames name no source image."""
    ds = pydicom.dcmread(path)
    for item in ds.PerFrameFunctionalGroupsSequence:
        if "DerivationImageSequence" in item:
            del item.DerivationImageSequence
    for keyword in ("ReferencedSeriesSequence", "SourceImageSequence"):
        if keyword in ds:
            delattr(ds, keyword)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_masks_for_source_without_frame_references_places_frames_by_position(interop):
    from radbridge.io.series import read_source_series

    path = interop / "seg/dcmqi/partial_overlaps.dcm"
    source = read_source_series(interop / "images/ct-3slice")
    referenced = read_segmentation(path)
    stripped = read_segmentation(_strip_source_references(path))
    assert not any(stripped.frames.source_uids)
    uid = source.slice_refs[1].sop_instance_uid
    with pytest.raises(UnsupportedObjectError, match="source series") as info:
        stripped.masks_for_source(uid)
    assert info.value.attribute == "DerivationImageSequence"
    found = 0
    for ref in source.slice_refs:
        expected = referenced.masks_for_source(ref.sop_instance_uid)
        got = stripped.masks_for_source(ref.sop_instance_uid, source=source)
        assert sorted(got) == sorted(expected)
        for number, mask in expected.items():
            np.testing.assert_array_equal(got[number], mask)
            found += int(mask.any())
    assert found >= 3, "the file has segments on several images"
    with pytest.raises(GridMismatchError, match="not in the source"):
        stripped.masks_for_source("1.2.3.4", source=source)


def test_a_bad_value_in_an_unused_attribute_is_tolerated(seg, study):
    """Only damage that matters is refused: 'N/A' in Instance Number (IS) is not read."""
    data = reread(seg)
    number = str(seg.InstanceNumber).encode()
    field = number + b" " * (len(number) % 2)
    start = data.index(b"\x20\x00\x13\x00IS")  # (0020,0013) Instance Number, explicit VR
    value = start + 8
    assert data[value : value + len(field)] == field
    damaged = data[:value] + b"N/A"[: len(field)].ljust(len(field)) + data[value + len(field) :]
    read = read_segmentation(damaged)
    np.testing.assert_array_equal(read.label_volume(study.source).array, study.labels)


def test_a_damaged_display_colour_is_dropped(seg, study):
    seg.SegmentSequence[1].RecommendedDisplayCIELabValue = [40000]  # one value, not three
    read = read_segmentation(reread(seg))
    with pytest.warns(UserWarning, match="damaged display colour"):
        assert read.segments[2].display_rgb is None
    assert read.segments[1].display_rgb is None or len(read.segments[1].display_rgb) == 3
    np.testing.assert_array_equal(read.label_volume(study.source).array, study.labels)


@pytest.mark.peer
def test_segments_read_from_dcmqi_encode_again_without_an_empty_algorithm_version(
    interop, tmp_path
):
    # dcmqi names the algorithm without its identification macro; the macro written
    # again held an empty Algorithm Version (Type 1), which dciodvfy reports
    from radbridge.io.series import read_source_series
    from tests.peers.dicom3tools import dciodvfy

    read = read_segmentation(interop / "seg/dcmqi/liver.dcm")
    source = read_source_series(interop / "images/ct-3slice")
    again = encode_segmentation(
        read.label_volume(source).array, source, list(read.segments.values())
    )
    item = again.SegmentSequence[0]
    assert item.SegmentAlgorithmName == read.segments[1].algorithm.name
    again.save_as(tmp_path / "again.dcm", enforce_file_format=True)
    assert dciodvfy(tmp_path / "again.dcm").errors == []
