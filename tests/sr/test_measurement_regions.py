"""The SR reader keeps the geometry of every measurement, as dcmjs/OHIF write it.

The fixture is written by dcmjs itself (its Cornerstone3D measurement-report adapter,
the code OHIF saves reports with): each Length and Bidirectional axis is a NUM with
the SCOORD POLYLINE it was measured on as an INFERRED FROM child. radbridge reads the
polylines back, keeps them through its JSON form and writer, and dcmjs rebuilds the
same annotations from radbridge's file.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pydicom
import pytest
from pydicom.dataset import Dataset

from radbridge.cli import main
from radbridge.iods.sr import (
    encode_measurement_report,
    read_measurement_report,
    report_from_json,
    report_to_json,
)
from tests.peers import dciodvfy
from tests.peers.dcmjs import dcmjs_read_annotations, dcmjs_write_measurements

pytestmark = pytest.mark.peer

LENGTH = [[3.5, 4.25], [40.75, 19.5]]
LONG, SHORT = [[2.0, 2.0], [50.0, 50.0]], [[40.0, 10.0], [10.0, 40.0]]


@pytest.fixture(scope="module")
def ohif_sr(source, tmp_path_factory):
    """An SR written by dcmjs from two Length and one Bidirectional annotation."""
    folder = tmp_path_factory.mktemp("dcmjs-sr")
    refs = source.slice_refs
    images = {
        f"image{k}": {
            "sopInstanceUID": ref.sop_instance_uid,
            "sopClassUID": ref.sop_class_uid,
            "studyInstanceUID": source.study_instance_uid,
            "seriesInstanceUID": source.series_instance_uid,
        }
        for k, ref in enumerate(refs)
    }
    tools = [
        {"type": "Length", "imageId": "image3", "points": LENGTH, "length": 38.2},
        {"type": "Length", "imageId": "image5", "points": [[1, 2], [3, 4]], "length": 2.8},
        {
            "type": "Bidirectional",
            "imageId": "image7",
            "points": [*LONG, *SHORT],
            "length": 67.9,
            "width": 42.4,
        },
    ]
    path = dcmjs_write_measurements({"images": images, "tools": tools}, folder / "ohif.dcm")
    return path, refs


def _nums_with_scoords(path) -> int:
    """How many NUMs carry a SCOORD child in the file (pydicom, not radbridge)."""
    ds = pydicom.dcmread(path)

    def walk(items) -> int:
        found = 0
        for item in items:
            children = item.get("ContentSequence", [])
            if item.ValueType == "NUM":
                found += any(c.ValueType == "SCOORD" for c in children)
            found += walk(children)
        return found

    return walk(ds.ContentSequence)


def test_every_dcmjs_measurement_keeps_its_polyline(ohif_sr):
    path, refs = ohif_sr
    assert _nums_with_scoords(path) == 4, "the fixture has the dcmjs structure"
    report = read_measurement_report(path)
    lengths = [m for g in report.groups for m in g.measurements if m.concept.meaning == "Length"]
    assert [m.region.points for m in lengths] == [(3.5, 4.25, 40.75, 19.5), (1, 2, 3, 4)]
    assert lengths[0].region.graphic_type == "POLYLINE"
    assert lengths[0].region.sop_instance_uid == refs[3].sop_instance_uid
    bidirectional = next(g for g in report.groups if "Bidirectional" in g.tracking_id)
    axes = {m.concept.meaning: m for m in bidirectional.measurements}
    assert axes["Long Axis"].value == pytest.approx(67.9)
    assert axes["Long Axis"].region.points == (2, 2, 50, 50)
    assert axes["Short Axis"].region.points == (40, 10, 10, 40)
    assert {m.region.sop_instance_uid for m in axes.values()} == {refs[7].sop_instance_uid}


def test_sr_decode_json_shows_the_geometry(ohif_sr, capsys):
    path, refs = ohif_sr
    assert main(["sr", "decode", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    regions = [m.get("region") for g in document["groups"] for m in g["measurements"]]
    assert all(r and r["graphic_type"] == "POLYLINE" for r in regions) and len(regions) == 4
    assert regions[0]["points"] == [3.5, 4.25, 40.75, 19.5]
    assert regions[0]["sop_instance_uid"] == refs[3].sop_instance_uid


def test_written_again_dcmjs_draws_the_same_annotations(ohif_sr, source, tmp_path):
    path, _ = ohif_sr
    read = read_measurement_report(path)
    # dcmjs names every annotation of a tool alike ("...:Length"); Tracking Identifiers
    # must be unique in a report (TID 1501), so the writer takes one group per name.
    unique = {g.tracking_id: g for g in reversed(read.groups)}
    report = report_from_json(report_to_json(replace(read, groups=tuple(unique.values()))))
    ours = tmp_path / "ours.dcm"
    encode_measurement_report(report, source).save_as(ours, enforce_file_format=True)
    assert _nums_with_scoords(ours) == 3
    assert dciodvfy(ours).errors == []
    theirs, again = dcmjs_read_annotations(path, tmp_path), dcmjs_read_annotations(ours, tmp_path)
    assert theirs["Length"][0]["points"] == LENGTH
    assert again["Length"] == theirs["Length"][:1]
    assert again["Bidirectional"] == theirs["Bidirectional"]


def _imaging_measurements(ds: Dataset) -> Dataset:
    return next(
        i
        for i in ds.ContentSequence
        if i.get("ConceptNameCodeSequence")
        and i.ConceptNameCodeSequence[0].CodeMeaning == "Imaging Measurements"
    )


def _by_reference(path) -> Dataset:
    """The dcmjs file with the Length's SCOORD moved up to its group and named by reference."""
    ds = pydicom.dcmread(path)
    imaging = _imaging_measurements(ds)
    group_index, group = next(
        (k, g)
        for k, g in enumerate(imaging.ContentSequence, start=1)
        if any(i.get("TextValue", "").endswith("Length") for i in g.ContentSequence)
    )
    num = next(i for i in group.ContentSequence if i.ValueType == "NUM")
    scoord = num.ContentSequence[0]
    moved = copy.deepcopy(scoord)
    moved.RelationshipType = "CONTAINS"
    group.ContentSequence.append(moved)
    reference = Dataset()
    reference.RelationshipType = "INFERRED FROM"
    imaging_index = list(ds.ContentSequence).index(imaging) + 1
    reference.ReferencedContentItemIdentifier = [
        1,
        imaging_index,
        group_index,
        len(group.ContentSequence),
    ]
    num.ContentSequence = [reference]
    return ds


def test_a_measurement_naming_its_scoord_by_reference(ohif_sr, tmp_path):
    path, refs = ohif_sr
    ds = _by_reference(path)
    ds.save_as(tmp_path / "byref.dcm")
    lengths = [
        m
        for g in read_measurement_report(tmp_path / "byref.dcm").groups
        for m in g.measurements
        if m.concept.meaning == "Length"
    ]
    assert lengths[0].region.points == (3.5, 4.25, 40.75, 19.5)
    assert lengths[0].region.sop_instance_uid == refs[3].sop_instance_uid


def test_scoord3d_of_a_measurement(ohif_sr, source, tmp_path):
    """dcmjs writes SCOORD3D (with a frame of reference) for 3D annotations: kept too."""
    path, _ = ohif_sr
    ds = pydicom.dcmread(path)
    imaging = _imaging_measurements(ds)
    num = next(i for i in imaging.ContentSequence[0].ContentSequence if i.ValueType == "NUM")
    scoord = num.ContentSequence[0]
    scoord.ValueType = "SCOORD3D"
    scoord.GraphicData = [10.5, -20.0, 30.25, 12.0, -18.5, 30.25]
    scoord.ReferencedFrameOfReferenceUID = source.frame_of_reference_uid
    del scoord.ContentSequence
    ds.save_as(tmp_path / "3d.dcm")
    region = read_measurement_report(tmp_path / "3d.dcm").groups[0].measurements[0].region
    assert region.is_3d and region.points == (10.5, -20.0, 30.25, 12.0, -18.5, 30.25)
    assert region.frame_of_reference_uid == source.frame_of_reference_uid
    report = read_measurement_report(tmp_path / "3d.dcm")
    encoded = encode_measurement_report(replace(report, groups=report.groups[:1]), source)
    assert encoded.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    back = read_measurement_report(encoded).groups[0].measurements[0].region
    assert back == region


@pytest.mark.slow
def test_pixelmed_accepts_measurements_with_their_scoords(ohif_sr, source, tmp_path):
    from tests.peers.pixelmed import validate_sr

    path, _ = ohif_sr
    read = read_measurement_report(path)
    report = replace(read, groups=tuple({g.tracking_id: g for g in read.groups}.values()))
    ours = tmp_path / "ours.dcm"
    encode_measurement_report(report, source).save_as(ours, enforce_file_format=True)
    result = validate_sr([ours])[ours.absolute()]
    assert "Root Template Validation Complete" in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert not errors, errors[:3]
