"""Third-party TID 1500 SRs: our groups agree with highdicom's, group by group; volume surfaces.

The groups' finding sites are compared too: dcmqi names the concept with the retired
SNOMED-RT code (SRT, G-C0E3), which highdicom, and radbridge, read as Finding Site.
"""

from __future__ import annotations

import pydicom
import pytest

from radbridge.coding import Code, sct
from radbridge.iods.sr import (
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    encode_measurement_report,
    read_measurement_report,
    read_structured_report,
    report_from_json,
    report_to_json,
)
from tests.peers import interop_dir
from tests.peers.dicom3tools import dciodvfy
from tests.peers.pixelmed import validate_sr

from .test_sr import full_report, seg  # noqa: F401  (fixtures)

_KINDS = {
    "get_image_measurement_groups": "1501",
    "get_planar_roi_measurement_groups": "1410",
    "get_volumetric_roi_measurement_groups": "1411",
}


def _tid1500_files():
    files = []
    for path in sorted((interop_dir() / "sr").rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.Modality == "SR" and read_structured_report(ds).report is not None:
            files.append(path)
    return files


def _theirs(path):
    import highdicom as hd

    content = hd.sr.srread(path).content
    rows = []
    for getter, kind in _KINDS.items():
        for group in getattr(content, getter)():
            finding = getattr(group, "finding_type", None)
            segment = getattr(group, "referenced_segment", None)
            rows.append(
                (
                    kind,
                    str(group.tracking_identifier),
                    str(group.tracking_uid),
                    finding.value if finding is not None else None,
                    tuple(
                        (round(float(m.value), 6), m.unit.value) for m in group.get_measurements()
                    ),
                    tuple(int(n) for n in segment.referenced_segment_numbers) if segment else (),
                    tuple((s.value.value, s.value.scheme_designator) for s in group.finding_sites),
                )
            )
    return sorted(rows, key=repr)


def _ours(path):
    rows = []
    for group in read_measurement_report(path).groups:
        rows.append(
            (
                group.template,
                group.tracking_id,
                group.tracking_uid,
                group.finding.value if group.finding is not None else None,
                tuple((round(m.value, 6), m.unit.value) for m in group.measurements),
                (group.segment.segment_number,) if group.segment is not None else (),
                ((site.value, site.scheme),) if (site := group.finding_site) else (),
            )
        )
    return sorted(rows, key=repr)


def test_there_are_third_party_tid1500_files():
    assert len(_tid1500_files()) >= 3


@pytest.mark.parametrize("path", _tid1500_files(), ids=lambda p: p.parent.name + "/" + p.name)
def test_groups_agree_with_highdicom(path):
    assert _ours(path) == _theirs(path)


def test_volume_surface_is_read_as_volumetric_and_written_back_as_one():
    path = interop_dir() / "sr" / "highdicom" / "sr_document_with_multiple_groups.dcm"
    (vertebra,) = [g for g in read_measurement_report(path).groups if g.template == "1411"]
    assert vertebra.region is not None and vertebra.region.volume_surface
    assert vertebra.region.graphic_type == "POINT"


@pytest.fixture
def surface_report(source):
    region = ImageRegion(
        "POINT",
        (1.0, 2.0, 3.0),
        frame_of_reference_uid=source.frame_of_reference_uid,
        volume_surface=True,
    )
    volume = Measurement(sct("118565006", "Volume"), 200.0, Code("mm3", "UCUM", "mm3"))
    group = MeasurementGroup(
        "vertebra", finding=sct("51282000", "Vertebra"), region=region, measurements=(volume,)
    )
    return MeasurementReport(groups=(group,))


def test_volume_surface_round_trips(surface_report, source):
    assert surface_report.groups[0].template == "1411"
    sr = encode_measurement_report(surface_report, source)
    back = read_measurement_report(sr)
    assert back.groups[0].region == surface_report.groups[0].region
    assert back.groups[0].template == "1411"
    document = report_to_json(back)
    assert document["groups"][0]["region"]["volume_surface"] is True
    assert report_from_json(document).groups[0].region == surface_report.groups[0].region


@pytest.mark.peer
@pytest.mark.slow
def test_volume_surface_passes_validators_and_highdicom(surface_report, source, tmp_path):
    import highdicom as hd

    path = tmp_path / "surface.dcm"
    encode_measurement_report(surface_report, source).save_as(path, enforce_file_format=True)
    assert not dciodvfy(path).errors
    result = validate_sr([path])[path.absolute()]
    assert "Root Template Validation Complete" in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert not errors, errors[:3]
    content = hd.sr.srread(path).content
    assert len(content.get_volumetric_roi_measurement_groups()) == 1


def _to_srt(items, legacy):
    """Rename every SCT concept name that has a retired SNOMED-RT code to that code."""
    for item in items:
        for name in item.get("ConceptNameCodeSequence", []):
            if name.CodingSchemeDesignator == "SCT" and name.CodeValue in legacy:
                name.CodeValue, name.CodingSchemeDesignator = legacy[name.CodeValue], "SRT"
        _to_srt(item.get("ContentSequence", []), legacy)


def test_concept_names_in_legacy_srt_codes_are_read(full_report, source, tmp_path):  # noqa: F811
    import highdicom as hd
    from pydicom.sr._snomed_dict import mapping

    # the concepts the reader looks up: finding site, laterality, measurement method
    looked_up = ("363698007", "272741003", "370129005")
    legacy = {v: srt for srt, v in mapping["SRT"].items() if v in looked_up}
    sr = encode_measurement_report(full_report, source)
    _to_srt(sr.ContentSequence, legacy)
    names = {str(n.CodeValue) for n in _concept_names(sr.ContentSequence)}
    assert set(legacy.values()) <= names and not names & set(looked_up)
    path = tmp_path / "srt.dcm"
    sr.save_as(path, enforce_file_format=True)
    back = read_measurement_report(path)
    assert (
        back.groups
        == read_measurement_report(encode_measurement_report(full_report, source)).groups
    )
    (planar, *_) = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    (site,) = planar.finding_sites
    assert (site.value.value, site.value.scheme_designator) == (
        back.groups[1].finding_site.value,
        back.groups[1].finding_site.scheme,
    )


def _concept_names(items):
    for item in items:
        yield from item.get("ConceptNameCodeSequence", [])
        yield from _concept_names(item.get("ContentSequence", []))
