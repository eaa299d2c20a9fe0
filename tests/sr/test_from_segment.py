"""``MeasurementGroup.from_segment``: a TID 1411 group from a segment of our SEG, in one call."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from radbridge.coding import Code, sct
from radbridge.errors import EncodingError, InvalidAttributeError
from radbridge.iods.content import AlgorithmIdentification
from radbridge.iods.seg import SegmentDescription, encode_segmentation
from radbridge.iods.sr import (
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    encode_measurement_report,
    read_measurement_report,
)
from tests.peers.dcmqi import tid1500reader
from tests.peers.dcmtk import dsrdump
from tests.peers.dicom3tools import dciodvfy
from tests.peers.pixelmed import validate_sr

MM3 = Code("mm3", "UCUM", "cubic millimeter")
LEFT = sct("7771000", "Left")
NODULE_UID = "1.2.826.0.1.3680043.10.1234.31"


@pytest.fixture(scope="module")
def described_seg(source):
    """A SEG with one lung nodule (tracking, left lung) and one liver segment (nothing else)."""
    mask = np.zeros(source.geometry.shape, np.uint8)
    mask[4:6, 10:20, 10:20] = 1
    mask[6:9, 30:40, 30:40] = 2
    model = AlgorithmIdentification("nodule-net", "3.1")
    segments = [
        SegmentDescription(
            1,
            "nodule",
            sct("49755003", "Morphologically Abnormal Structure"),
            sct("27925004", "Nodule"),
            anatomic_region=sct("39607008", "Lung"),
            anatomic_region_modifiers=(LEFT,),
            algorithm=model,
            tracking_id="nodule A",
            tracking_uid=NODULE_UID,
        ),
        SegmentDescription(
            2,
            "liver",
            sct("91723000", "Anatomical Structure"),
            sct("10200004", "Liver"),
            algorithm=model,
        ),
    ]
    return encode_segmentation(mask, source, segments)


def test_group_takes_codes_tracking_and_algorithm_from_the_segment(described_seg):
    volume = Measurement(sct("118565006", "Volume"), 200.0, MM3)
    nodule = MeasurementGroup.from_segment(described_seg, 1, measurements=(volume,))
    assert nodule.template == "1411"
    assert (nodule.tracking_id, nodule.tracking_uid) == ("nodule A", NODULE_UID)
    assert nodule.finding == sct("27925004", "Nodule")
    assert nodule.finding_category == sct("49755003", "Morphologically Abnormal Structure")
    assert nodule.finding_site == sct("39607008", "Lung") and nodule.laterality == LEFT
    assert nodule.algorithm is not None and nodule.algorithm.name == "nodule-net"
    assert nodule.segment is not None
    assert nodule.segment.sop_instance_uid == described_seg.SOPInstanceUID
    assert nodule.segment.segment_number == 1
    assert nodule.segment.source_series_uid == (
        described_seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    )
    liver = MeasurementGroup.from_segment(described_seg, 2, tracking_id="liver 1")
    assert liver.tracking_id == "liver 1" and liver.tracking_uid is None
    assert liver.finding_site is None and liver.laterality is None


def test_groups_from_segments_round_trip_and_agree_with_highdicom(described_seg, source, tmp_path):
    import highdicom as hd

    groups = tuple(
        MeasurementGroup.from_segment(
            described_seg,
            number,
            measurements=(Measurement(sct("118565006", "Volume"), value, MM3),),
        )
        for number, value in ((1, 200.0), (2, 300.0))
    )
    report = MeasurementReport(groups=groups)
    sr = encode_measurement_report(report, source)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    back = read_measurement_report(path)
    assert [g.segment for g in back.groups] == [g.segment for g in groups]
    assert back.groups[0].tracking_uid == NODULE_UID
    assert back.groups[0].laterality == LEFT
    content = hd.sr.srread(path).content
    theirs = content.get_volumetric_roi_measurement_groups()
    assert theirs[0].tracking_uid == NODULE_UID
    assert [int(g.referenced_segment.referenced_segment_numbers[0]) for g in theirs] == [1, 2]
    assert [float(g.get_measurements()[0].value) for g in theirs] == [200.0, 300.0]
    seg_series = described_seg.SeriesInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert seg_series in {s.SeriesInstanceUID for s in evidence}


@pytest.mark.peer
@pytest.mark.slow
def test_validators_and_dcmqi_accept_the_report(described_seg, source, tmp_path):
    groups = tuple(
        MeasurementGroup.from_segment(
            described_seg, n, measurements=(Measurement(sct("118565006", "Volume"), v, MM3),)
        )
        for n, v in ((1, 1.5), (2, 2.25))
    )
    path = tmp_path / "sr.dcm"
    encode_measurement_report(MeasurementReport(groups=groups), source).save_as(
        path, enforce_file_format=True
    )
    result = dciodvfy(path)
    assert not result.errors, result.summary()
    assert dsrdump(path, "+Pt").returncode == 0
    pixelmed = validate_sr([path])[path.absolute()]
    assert "Root Template Validation Complete" in pixelmed.output
    errors = [line for line in pixelmed.output.splitlines() if line.startswith("Error")]
    assert not errors, errors[:3]
    metadata = tid1500reader(path, tmp_path / "dcmqi.json")
    assert [g["TrackingIdentifier"] for g in metadata["Measurements"]] == ["nodule A", "liver"]
    assert [float(g["measurementItems"][0]["value"]) for g in metadata["Measurements"]] == [
        1.5,
        2.25,
    ]
    assert metadata["Measurements"][0]["Finding"]["CodeValue"] == "27925004"


def test_missing_segment_or_not_a_seg_is_refused(described_seg, study):
    with pytest.raises(InvalidAttributeError) as err:
        MeasurementGroup.from_segment(described_seg, 7)
    assert err.value.attribute == "ReferencedSegmentNumber"
    assert "[1, 2]" in str(err.value)
    image = pydicom.dcmread(next(study.dicom_dir.glob("*.dcm")), stop_before_pixels=True)
    with pytest.raises(InvalidAttributeError) as err:
        MeasurementGroup.from_segment(image, 1)
    assert err.value.attribute == "SOPClassUID"


def test_laterality_without_finding_site_is_refused(source):
    volume = Measurement(sct("118565006", "Volume"), 1.0, MM3, laterality=LEFT)
    group = MeasurementGroup("a", finding=sct("27925004", "Nodule"), measurements=(volume,))
    with pytest.raises(EncodingError) as err:
        encode_measurement_report(MeasurementReport(groups=(group,)), source)
    assert err.value.attribute == "laterality" and "Volume" in str(err.value)
    alone = MeasurementGroup("b", finding=sct("27925004", "Nodule"), laterality=LEFT)
    with pytest.raises(EncodingError, match="group 'b' has a laterality"):
        encode_measurement_report(MeasurementReport(groups=(alone,)), source)
    sited = MeasurementGroup(
        "c",
        finding=sct("27925004", "Nodule"),
        finding_site=sct("39607008", "Lung"),
        laterality=LEFT,
    )
    back = read_measurement_report(
        encode_measurement_report(MeasurementReport(groups=(sited,)), source)
    )
    assert back.groups[0].laterality == LEFT


@pytest.fixture(scope="module")
def kidneys_seg(source):
    """ "left kidney" and "right kidney" from the name table: type Kidney with a Segmented
    Property Type Modifier Left / Right, and no Anatomic Region."""
    mask = np.zeros(source.geometry.shape, np.uint8)
    mask[4:6, 10:20, 10:20] = 1
    mask[4:6, 30:40, 30:40] = 2
    return encode_segmentation(mask, source, {1: "left kidney", 2: "right kidney"})


def _kidney_report(seg, source, path):
    groups = tuple(
        MeasurementGroup.from_segment(
            seg, n, measurements=(Measurement(sct("118565006", "Volume"), float(n), MM3),)
        )
        for n in (1, 2)
    )
    encode_measurement_report(MeasurementReport(groups=groups), source).save_as(
        path, enforce_file_format=True
    )
    return groups


def test_laterality_of_the_property_type_is_the_finding_sites(kidneys_seg, source, tmp_path):
    """The laterality of "left kidney" is on its Segmented Property Type, not on an Anatomic
    Region: the group used to say Finding = Kidney alone, so highdicom (and dcmqi) read the
    left and right kidney alike. Now it is Finding Site Kidney with Laterality Left (PS3.17
    RRR.3; what highdicom's FindingSite and dcmqi's tid1500writer write)."""
    import highdicom as hd

    types = [item.SegmentedPropertyTypeCodeSequence[0] for item in kidneys_seg.SegmentSequence]
    assert [t.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue for t in types] == [
        "7771000",
        "24028007",
    ]
    assert not any("AnatomicRegionSequence" in item for item in kidneys_seg.SegmentSequence)
    path = tmp_path / "sr.dcm"
    groups = _kidney_report(kidneys_seg, source, path)
    kidney, right = sct("64033007", "Kidney"), sct("24028007", "Right")
    assert [(g.finding, g.finding_site, g.laterality) for g in groups] == [
        (kidney, kidney, LEFT),
        (kidney, kidney, right),
    ]
    theirs = hd.sr.srread(path).content.get_volumetric_roi_measurement_groups()
    sites = [[(s.value.value, s.laterality.value) for s in g.finding_sites] for g in theirs]
    assert sites == [[("64033007", "7771000")], [("64033007", "24028007")]]
    back = read_measurement_report(path)
    assert [(g.finding_site, g.laterality) for g in back.groups] == [
        (kidney, LEFT),
        (kidney, right),
    ]


@pytest.mark.peer
def test_dcmqi_tells_the_left_kidney_from_the_right(kidneys_seg, source, tmp_path):
    path = tmp_path / "sr.dcm"
    _kidney_report(kidneys_seg, source, path)
    metadata = tid1500reader(path, tmp_path / "dcmqi.json")
    read = [
        (g["Finding"]["CodeValue"], g["FindingSite"]["CodeValue"], g["Laterality"]["CodeValue"])
        for g in metadata["Measurements"]
    ]
    assert read == [("64033007", "64033007", "7771000"), ("64033007", "64033007", "24028007")]
    result = dciodvfy(path)
    assert not result.errors, result.summary()
    dump = dsrdump(path, "+Pt")
    assert dump.returncode == 0
    assert 'CODE:(,,"Laterality")=(7771000,SCT,"Left")' in dump.output


def test_laterality_of_a_finding_without_anatomy_is_not_made_a_site(source, caplog):
    """A "Mass" with a laterality modifier but no Anatomic Region: the mass is no finding
    site, so the laterality cannot be written; the group says so instead of inventing one."""
    mask = np.zeros(source.geometry.shape, np.uint8)
    mask[4:6, 10:20, 10:20] = 1
    mass = SegmentDescription(
        1,
        "left mass",
        sct("49755003", "Morphologically Abnormal Structure"),
        sct("4147007", "Mass"),
        property_type_modifiers=(LEFT,),
        algorithm=AlgorithmIdentification("mass-net", "1"),
    )
    seg = encode_segmentation(mask, source, [mass])
    with caplog.at_level("WARNING"):
        group = MeasurementGroup.from_segment(seg, 1)
    assert (group.finding_site, group.laterality) == (None, None)
    assert "left mass" in caplog.text and "Anatomic Region" in caplog.text
