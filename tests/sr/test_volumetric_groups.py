"""TID 1411 volumetric groups as highdicom reads them, and the SEGs they name in the evidence.

PS3.16 TID 1411: a Volume Surface (SCOORD3D) or a Referenced Segment comes with its
"Source series for segmentation" (or source images); 3D outlines of a volumetric ROI
are its Volume Surface, not SCOORD3D "Image Region" items. PS3.3 C.17.2.3: every
referenced instance is in the evidence. highdicom's reader (``group.roi``,
``group.referenced_segment``) and dciodvfy are the judges.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import highdicom as hd
import pytest

from radbridge.coding import Code, sct
from radbridge.errors import EncodingError
from radbridge.iods.sr.report import ImageRegion, SegmentationFrameReference
from radbridge.sr import (
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    SegmentReference,
    encode_measurement_report,
    read_measurement_report,
)
from tests.peers.dicom3tools import dciodvfy

from .test_sr import seg  # noqa: F401  (fixture)

VOLUME = Measurement(sct("118565006", "Volume"), 200.0, Code("mm3", "UCUM", "mm3"))
TUMOR = sct("108369006", "Tumor")


def _outline(z: float) -> tuple[float, ...]:
    corners = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)]
    return tuple(v for x, y in corners for v in (x, y, z))


def _surfaces(frame_of_reference):
    ellipsoid = (0, 5, 5, 10, 5, 5, 5, 2, 5, 5, 8, 5, 5, 5, 3, 5, 5, 7)
    outlines = [
        ImageRegion("POLYGON", _outline(z), frame_of_reference_uid=frame_of_reference)
        for z in (4.0, 5.0, 6.0)
    ]
    return {
        "ellipsoid": (
            {
                "region": ImageRegion(
                    "ELLIPSOID",
                    tuple(map(float, ellipsoid)),
                    frame_of_reference_uid=frame_of_reference,
                )
            },
            "ELLIPSOID",
            1,
        ),
        "point-volume-surface": (
            {
                "region": ImageRegion(
                    "POINT",
                    (1.0, 2.0, 5.0),
                    frame_of_reference_uid=frame_of_reference,
                    volume_surface=True,
                )
            },
            "POINT",
            1,
        ),
        "3d-outlines": ({"region": outlines[0], "regions": tuple(outlines[1:])}, "POLYGON", 3),
    }


def _write(source, tmp_path, *, related=(), **group):
    report = MeasurementReport(
        groups=(MeasurementGroup("lesion", finding=TUMOR, measurements=(VOLUME,), **group),)
    )
    path = tmp_path / "sr.dcm"
    encode_measurement_report(report, source, related=related).save_as(
        path, enforce_file_format=True
    )
    return report, path


def _volumetric(path):
    (group,) = hd.sr.srread(path).content.get_volumetric_roi_measurement_groups()
    return group


@pytest.mark.parametrize("name", ["ellipsoid", "point-volume-surface", "3d-outlines"])
def test_volume_surfaces_are_read_by_highdicom_with_their_source_series(source, tmp_path, name):
    group, graphic_type, items = _surfaces(source.frame_of_reference_uid)[name]
    report, path = _write(source, tmp_path, **group)
    roi = _volumetric(path).roi
    assert isinstance(roi, hd.sr.VolumeSurface)
    assert roi.graphic_type.value == graphic_type
    assert len(roi) == items + 1  # the surface items and the source series
    assert roi.source_series_for_segmentation.value == source.series_instance_uid
    assert not dciodvfy(path, "-new").errors
    (back,) = read_measurement_report(path).groups
    assert replace(back, tracking_uid=None) == report.groups[0]


def test_a_segment_without_its_source_series_gets_the_source_series(source, seg, tmp_path):  # noqa: F811
    reference = SegmentReference.from_segmentation(seg, 5)
    bare = replace(reference, source_series_uid=None)
    _, path = _write(source, tmp_path, segment=bare)
    segment = _volumetric(path).referenced_segment
    assert segment.source_series_for_segmentation.value == source.series_instance_uid
    assert [int(n) for n in segment.referenced_segment_numbers] == [5]
    assert not dciodvfy(path, "-new").errors


def _evidence(path):
    ds = hd.sr.srread(path)
    return {
        str(r.ReferencedSOPInstanceUID)
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for r in series.ReferencedSOPSequence
    }


def test_a_seg_without_its_series_is_refused_unless_passed_as_related(source, seg, tmp_path):  # noqa: F811
    ref = source.slice_refs[4]
    reference = SegmentReference.from_segmentation(seg, 5)
    cases = {
        "segment": replace(reference, series_instance_uid=None),
        "segmentation_frame": SegmentationFrameReference(
            str(seg.SOPClassUID),
            str(seg.SOPInstanceUID),
            3,
            ref.sop_class_uid,
            ref.sop_instance_uid,
        ),
    }
    for key, value in cases.items():
        with pytest.raises(EncodingError) as err:
            _write(source, tmp_path, **{key: value})
        assert err.value.attribute == "SeriesInstanceUID" and "related=" in err.value.hint
        _, path = _write(source, tmp_path, related=[seg], **{key: value})
        assert str(seg.SOPInstanceUID) in _evidence(path)
        assert not dciodvfy(path, "-new").errors


def test_a_volume_surface_on_a_source_without_series_is_made_with_a_warning(
    source, tmp_path, caplog
):
    # a source known only as a volume names no series: the SR cannot say which one was
    # segmented, so the item is left out with a warning (the results layer encodes SEG
    # and SR of Series.from_volume sources), never written as "None"
    first = MeasurementGroup("first", finding=TUMOR, measurements=(VOLUME,))
    other = encode_measurement_report(MeasurementReport(groups=(first,)), source)
    del other.CurrentRequestedProcedureEvidenceSequence  # no images, so no series known
    group, *_ = _surfaces(source.frame_of_reference_uid)["ellipsoid"]
    report = MeasurementReport(
        groups=(MeasurementGroup("lesion", finding=TUMOR, measurements=(VOLUME,), **group),)
    )
    with caplog.at_level(logging.WARNING, logger="radbridge.iods.sr.writer"):
        made = encode_measurement_report(report, other)
    assert "names no series" in caplog.text
    assert "None" not in str(made.ContentSequence)


def test_volumetric_groups_that_mix_outline_kinds_are_refused(source):
    for_ = source.frame_of_reference_uid
    ref = source.slice_refs[0]
    flat = ImageRegion("POLYLINE", (1.0, 1.0, 5.0, 5.0), ref.sop_class_uid, ref.sop_instance_uid)
    polygon = ImageRegion("POLYGON", _outline(5.0), frame_of_reference_uid=for_)
    ellipse = ImageRegion(
        "ELLIPSE", (0, 5, 6, 10, 5, 6, 5, 2, 6, 5, 8, 6), frame_of_reference_uid=for_
    )
    for regions, attribute in (((flat, polygon), "regions"), ((polygon, ellipse), "GraphicType")):
        group = MeasurementGroup(
            "g", finding=TUMOR, region=regions[0], regions=regions[1:], measurements=(VOLUME,)
        )
        with pytest.raises(EncodingError) as err:
            encode_measurement_report(MeasurementReport(groups=(group,)), source)
        assert err.value.attribute == attribute and err.value.hint
