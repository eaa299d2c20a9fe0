"""label_volume and rtstruct_to_seg fill ROIs slice by slice: the same output, not N volumes.

It used to fill one whole-volume mask per ROI and then combine them: 60 ROIs on a
200x512x512 CT took 3 GB on top of the label map, a 117-ROI TotalSegmentator
structure set on 500 slices about 15 GB.
"""

from __future__ import annotations

import datetime
import io
import logging
import warnings

import numpy as np
import pytest

from radbridge.errors import DecodingError, EncodingError
from radbridge.geometry import Volume
from radbridge.iods.common import SeriesOptions, label_map
from radbridge.iods.rtstruct import ROIDescription, StructureSet, encode_rtstruct, read_rtstruct
from radbridge.iods.seg import read_segmentation
from radbridge.iods.source import Series
from radbridge.rtstruct import rtstruct_to_seg
from tests.foundation.regions import overlapping_masks, peak_of, reference_label_map
from tests.peers import dciodvfy


def overlapping_structure_set(study):
    """Phantom organs plus ROIs that overlap them and each other, ties and an empty ROI."""
    masks = overlapping_masks(study.labels)
    descriptions = [
        ROIDescription(n, f"R{n}") for n in (300, 5, 17, 40, 41, 2, 6, 9)
    ]  # numbers not in ascending order of the masks
    order = np.argsort([d.roi_number for d in descriptions])
    ds = encode_rtstruct(
        masks[order], study.source, [descriptions[i] for i in order], allow_empty=True
    )
    return ds, masks[order], tuple(sorted(d.roi_number for d in descriptions))


def test_overlaps_resolve_as_before(study):
    ds, masks, numbers = overlapping_structure_set(study)
    rs = read_rtstruct(ds)
    stacked = rs.stacked_volume(study.source)
    assert stacked.segment_numbers == numbers
    np.testing.assert_array_equal(stacked.array, masks)  # the writer's masks come back
    volume = rs.label_volume(study.source, overlap="smallest")
    got = volume.array
    assert got.dtype == np.uint16  # ROI 300 needs 16 bits
    np.testing.assert_array_equal(got, reference_label_map(masks, numbers))
    former = label_map(stacked, overlap="smallest")  # the former way: combine full masks
    np.testing.assert_array_equal(got, former.array)
    assert got.dtype == former.array.dtype
    assert volume.geometry.shape == former.geometry.shape
    np.testing.assert_array_equal(volume.affine, former.affine)
    assert {6, 40, 41} <= set(np.unique(got).tolist())  # both twins and the later liver show
    assert 5 not in np.unique(got)  # the liver's twin, later in the file, wins the tie
    with pytest.raises(DecodingError, match="overlap"):
        rs.label_volume(study.source)


def test_the_same_warnings_in_the_same_order(study):
    """A damaged file: each ROI's placement warning comes once, as when every ROI was filled."""
    ds, _, numbers = overlapping_structure_set(study)
    for item in ds.ROIContourSequence:
        for contour in item.get("ContourSequence", []):
            contour.ContourImageSequence[0].ReferencedSOPInstanceUID = "2.25.1"
    rs = read_rtstruct(ds)

    def said(call):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call()
        return result, [str(w.message) for w in caught]

    stacked, expected = said(lambda: rs.stacked_volume(study.source))
    assert len(expected) == len(numbers) - 1  # one per ROI with contours
    volume, messages = said(lambda: rs.label_volume(study.source, overlap="smallest"))
    assert messages == expected
    np.testing.assert_array_equal(volume.array, reference_label_map(stacked.array, numbers))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DecodingError, match="overlap"):
            rs.label_volume(study.source)
    assert [str(w.message) for w in caught] == expected  # all ROIs are read before refusing


@pytest.fixture(scope="module")
def many_rois():
    """40 boxes with holes on a 100x256x256 grid: the source, the label map, the structure set."""
    shape = (100, 256, 256)
    source = Series.from_volume(
        Volume(np.zeros(shape, np.int16), np.diag([2.5, 1.0, 1.0, 1.0]), "1.2.826.0.1.3680043.2")
    )
    labels = np.zeros(shape, np.uint8)
    for i in range(40):
        r, c = divmod(i, 8)
        labels[10:90, 10 + r * 48 : 50 + r * 48, 5 + c * 31 : 33 + c * 31] = i + 1
    labels[40:60, 20:200, 20:200] = 0  # holes through every second row of boxes
    structure_set = read_rtstruct(
        encode_rtstruct(labels, source, {n: f"R{n}" for n in range(1, 41)})
    )
    return source, labels, structure_set


def test_peak_memory_does_not_grow_with_the_number_of_rois(many_rois, caplog):
    """40 ROIs: at most twice the label map (6.6 MB); one mask each was 270 MB."""
    caplog.set_level(logging.ERROR)
    source, labels, structure_set = many_rois
    volume, peak = peak_of(lambda: structure_set.label_volume(source.geometry, overlap="smallest"))
    np.testing.assert_array_equal(volume.array, labels)
    assert peak < 2 * labels.nbytes, f"peak {peak / 1e6:.1f} MB"


def test_rtstruct_to_seg_does_not_hold_one_volume_per_roi(many_rois, caplog):
    """The SEG (26 MB of frames) plus a few label maps; one mask per ROI was 320 MB."""
    caplog.set_level(logging.ERROR)
    source, labels, structure_set = many_rois
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no codes: coded as Tissue, said per ROI
        seg, peak = peak_of(lambda: rtstruct_to_seg(structure_set, source))
    np.testing.assert_array_equal(read_segmentation(seg).label_volume(source).array, labels)
    assert peak < 8 * labels.nbytes, f"peak {peak / 1e6:.1f} MB"


FIXED = SeriesOptions(
    sop_instance_uid="2.25.1001",
    series_instance_uid="2.25.1002",
    timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5),
)


@pytest.mark.peer
@pytest.mark.parametrize("overlapping", [False, True])
@pytest.mark.parametrize("kind", ["binary", "labelmap"])
def test_rtstruct_to_seg_writes_what_it_wrote_from_stacked_masks(
    study, monkeypatch, tmp_path, kind, overlapping
):
    """The same SEG as from one mask per ROI (the former way), an empty ROI included.

    One attribute differs, for the better: a BINARY SEG of ROIs that do not overlap now
    says Segments Overlap NO (they were checked) where stacked masks left it UNDEFINED.
    """
    if overlapping:
        ds, _, _ = overlapping_structure_set(study)
    else:
        mask = np.where(np.isin(study.labels, (2, 5, 7)), study.labels, 0)
        described = [ROIDescription(n, f"R{n}") for n in (2, 5, 7, 9)]  # 9 has no voxels
        ds = encode_rtstruct(mask, study.source, described, allow_empty=True)
    structure_set = read_rtstruct(ds)

    def convert():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no codes: coded as Tissue, said per ROI
            try:
                return rtstruct_to_seg(
                    structure_set, study.source, segmentation_type=kind, options=FIXED
                )
            except EncodingError as error:  # a LABELMAP cannot hold overlapping ROIs
                return str(error)

    now = convert()
    if not overlapping:
        array, _ = structure_set.compact_masks(study.source)
        assert array.ndim == 3  # the label map, not one volume per ROI
    with monkeypatch.context() as patched:
        patched.setattr(
            StructureSet,
            "compact_masks",
            lambda self, target, tolerance_mm=None: (
                self.stacked_volume(target).array,
                tuple(self.rois),
            ),
        )
        before = convert()
    assert isinstance(now, str) == (overlapping and kind == "labelmap")
    if isinstance(now, str):
        assert now == before
        return
    if kind == "binary" and not overlapping:
        assert (now.SegmentsOverlap, before.SegmentsOverlap) == ("NO", "UNDEFINED")
        now.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
        assert dciodvfy(tmp_path / "seg.dcm").errors == []
        before.SegmentsOverlap = "NO"
    assert saved(now) == saved(before)


def saved(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.peer
def test_a_structure_set_rt_utils_wrote_resolves_as_before(study, tmp_path):
    """Overlapping ROIs written by an independent writer (rt-utils): the same label map."""
    from rt_utils import RTStructBuilder

    builder = RTStructBuilder.create_new(str(study.folder))
    box = np.zeros(study.labels.shape, bool)
    box[2:14, 16:48, 16:48] = True
    for name, mask in (("Body", study.labels > 0), ("Liver", study.labels == 5), ("Box", box)):
        builder.add_roi(mask=np.moveaxis(mask, 0, 2), name=name)  # it takes [row, column, slice]
    path = tmp_path / "rtutils.dcm"
    builder.save(str(path))
    rs = read_rtstruct(path)
    stacked = rs.stacked_volume(study.source)
    assert stacked.array.any(axis=(1, 2, 3)).all()
    assert (stacked.array.sum(axis=0) > 1).any()  # they overlap
    got = rs.label_volume(study.source, overlap="smallest").array
    np.testing.assert_array_equal(got, label_map(stacked, overlap="smallest").array)
    np.testing.assert_array_equal(got, reference_label_map(stacked.array, stacked.segment_numbers))
