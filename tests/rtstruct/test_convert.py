"""SEG ↔ RTSTRUCT conversion: our SEGs, dcmqi's SEGs, and rt-utils' structure set."""

from __future__ import annotations

import copy
import warnings
from dataclasses import replace

import numpy as np
import pytest

from radbridge.codes import TISSUE
from radbridge.errors import MissingAttributeError
from radbridge.io.series import read_series_datasets
from radbridge.iods.seg import encode_segmentation, read_segmentation
from radbridge.iods.source import SourceSeries
from radbridge.rtstruct import read_rtstruct, rtstruct_to_seg, seg_to_rtstruct
from tests.peers import dciodvfy

from .conftest import PHANTOM, rois, segment


def segments():
    return [segment(n) for n in PHANTOM]


@pytest.fixture(scope="module")
def seg(study):
    return encode_segmentation(study.labels, study.source, segments())


def test_seg_to_rtstruct_keeps_everything(study, seg):
    rs = seg_to_rtstruct(seg, study.source)
    structure_set = read_rtstruct(rs)
    np.testing.assert_array_equal(structure_set.label_volume(study.source).array, study.labels)
    for item, observation, number in zip(
        rs.StructureSetROISequence, rs.RTROIObservationsSequence, PHANTOM, strict=True
    ):
        source = item.DefinitionSourceSequence[0]
        assert source.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert int(source.ReferencedSegmentNumber) == number
        assert item.ROIName == PHANTOM[number][0]
        code = observation.RTROIIdentificationCodeSequence[0].CodeValue
        assert code == PHANTOM[number][1].value
    colours = [tuple(int(v) for v in i.ROIDisplayColor) for i in rs.ROIContourSequence]
    # colours travel through CIELab in the SEG; sRGB comes back within rounding
    expected = [segment(n).display_rgb for n in PHANTOM]
    assert np.abs(np.array(colours) - np.array(expected)).max() <= 1


def test_a_seg_without_its_sop_instance_uid_is_refused_by_name(study, seg, tmp_path):
    damaged = copy.deepcopy(seg)
    del damaged.SOPInstanceUID
    path = tmp_path / "damaged.dcm"
    damaged.save_as(path, enforce_file_format=False)
    with pytest.raises(MissingAttributeError, match="no SOP Instance UID") as info:
        seg_to_rtstruct(path, study.source)
    assert info.value.attribute == "SOPInstanceUID" and str(path) in str(info.value)


def test_rtstruct_to_seg_keeps_everything(study):
    rs = seg_to_rtstruct(encode_segmentation(study.labels, study.source, segments()), study.source)
    back = read_segmentation(rtstruct_to_seg(rs, study.source))
    np.testing.assert_array_equal(back.label_volume(study.source.geometry).array, study.labels)
    for number, (name, property_type, category) in PHANTOM.items():
        described = back.segments[number]
        assert described.label == name
        assert described.property_type == property_type and described.category == category
        assert described.algorithm.name == "radbridge-test"


def test_rtstruct_to_labelmap_seg_renumbers_rois(study):
    mask = np.where(study.labels == 5, 9, 0).astype(np.uint8)
    from radbridge.iods.rtstruct import encode_rtstruct

    rs = encode_rtstruct(mask, study.source, {9: "PTV_boost"})  # free text, not in the table
    with pytest.warns(UserWarning, match='SCT 85756007 "Tissue"'):
        converted = rtstruct_to_seg(rs, study.source, segmentation_type="labelmap")
    back = read_segmentation(converted)
    assert list(back.segments) == [1] and back.segments[1].label == "PTV_boost"
    assert back.segments[1].property_type == TISSUE  # no codes in the file, not in a table
    np.testing.assert_array_equal(
        back.label_volume(study.source.geometry).array, (study.labels == 5).astype(np.uint8)
    )
    named = rtstruct_to_seg(encode_rtstruct(mask, study.source, {9: "Liver"}), study.source)
    assert read_segmentation(named).segments[1].property_type.value == "10200004"


def test_fractional_seg_is_contoured_at_one_half(study):
    yy, xx = np.mgrid[: study.labels.shape[1], : study.labels.shape[2]]
    prob = np.clip(1.2 - np.hypot(yy - 31.2, xx - 29.7) / 15.0, 0, 1)
    stacked = np.zeros((1, *study.labels.shape), np.float32)
    stacked[0, 4:9] = prob
    liver = replace(segment(5), segment_number=1)
    fractional = encode_segmentation(stacked, study.source, [liver], segmentation_type="fractional")
    rs = read_rtstruct(seg_to_rtstruct(fractional, study.source))
    stored = read_segmentation(fractional).stacked_volume(study.source).array[0]
    assert 0 < (stored >= 0.5).sum() < (stored > 0).sum()
    np.testing.assert_array_equal(rs.mask(1, study.source).array, stored >= 0.5)


def test_empty_segment_needs_allow_empty(study):
    one = np.where(study.labels == 5, 1, 0).astype(np.uint8)
    two_segments = encode_segmentation(
        np.stack([one == 1, np.zeros_like(one, bool)]),
        study.source,
        [replace(segment(5), segment_number=1), segment(2)],
    )
    with pytest.raises(ValueError, match="has no voxels"):
        seg_to_rtstruct(two_segments, study.source)
    rs = seg_to_rtstruct(two_segments, study.source, allow_empty=True)
    assert len(rs.StructureSetROISequence) == 2


@pytest.mark.peer
@pytest.mark.parametrize("name", ["liver.dcm", "partial_overlaps.dcm"])
def test_dcmqi_segs_become_valid_structure_sets(interop, tmp_path, name):
    source = SourceSeries.from_datasets(
        read_series_datasets(interop / "images" / "ct-3slice", headers_only=True)
    )
    seg_file = read_segmentation(interop / "seg" / "dcmqi" / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dcmqi leaves the algorithm version empty
        rs = seg_to_rtstruct(seg_file, source, allow_empty=True)
    path = tmp_path / "rs.dcm"
    rs.save_as(path, enforce_file_format=True)
    assert dciodvfy(path).errors == [], dciodvfy(path).output
    masks = read_rtstruct(path).stacked_volume(source)
    np.testing.assert_array_equal(masks.array, seg_file.stacked_volume(source).array)
    # and back: a SEG again, equal voxel for voxel
    seg_path = tmp_path / "seg.dcm"
    rtstruct_to_seg(path, source).save_as(seg_path, enforce_file_format=True)
    assert dciodvfy(seg_path).errors == [], dciodvfy(seg_path).output
    again = read_segmentation(seg_path).stacked_volume(source)
    np.testing.assert_array_equal(again.array, masks.array)


@pytest.mark.peer
def test_rtutils_structure_set_becomes_a_seg(interop, tmp_path):
    ct = interop / "images" / "rtutils_ct"
    source = SourceSeries.from_datasets(read_series_datasets(ct, headers_only=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = rtstruct_to_seg(interop / "rtstruct" / "rt-utils" / "rt.dcm", source)
    assert any("Tissue" in str(w.message) for w in caught)  # no codes in the file
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy(path).errors == [], dciodvfy(path).output
    seg_file = read_segmentation(path)
    assert seg_file.segments[1].label == "ROI-1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = read_rtstruct(interop / "rtstruct" / "rt-utils" / "rt.dcm").mask("ROI-1", source)
    np.testing.assert_array_equal(seg_file.stacked_volume(source).array[0], expected.array)


def test_rois_helper_matches_segments():
    assert [r.name for r in rois()] == [s.label for s in segments()]
