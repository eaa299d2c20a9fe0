"""``radbridge sr``/``ko``: bad input exits 1 with radbridge's message and writes nothing."""

from __future__ import annotations

import json

import pytest

from radbridge.cli import main

VOLUME = {"value": "118565006", "scheme": "SCT", "meaning": "Volume"}


@pytest.fixture
def report_json(tmp_path):
    def write(segment):
        document = {
            "groups": [
                {
                    "tracking_id": "liver",
                    "segment": segment,
                    "measurements": [{"concept": VOLUME, "value": 12.5, "unit": "ml"}],
                }
            ]
        }
        path = tmp_path / "report.json"
        path.write_text(json.dumps(document))
        return path

    return write


def run(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_seg_that_is_not_dicom(study, report_json, tmp_path, capsys):
    fake = tmp_path / "seg.dcm"
    fake.write_text("not a segmentation")
    out = tmp_path / "sr.dcm"
    code, err = run(
        capsys,
        "sr",
        "encode",
        report_json(1),
        "--source",
        study.dicom_dir,
        "--seg",
        fake,
        "-o",
        out,
    )
    assert code == 1 and "not a DICOM file" in err and "seg.dcm" in err
    assert not out.exists()


def test_segment_missing_from_the_seg(study, seg_file, report_json, tmp_path, capsys):
    out = tmp_path / "sr.dcm"
    args = ["sr", "encode", report_json(99), "--source", study.dicom_dir, "--seg", seg_file]
    code, err = run(capsys, *args, "-o", out)
    assert code == 1 and "ReferencedSegmentNumber" in err and "no segment 99" in err
    assert not out.exists()


def test_non_ucum_unit_in_json(study, tmp_path, capsys):
    document = {
        "groups": [
            {
                "tracking_id": "a",
                "measurements": [
                    {
                        "concept": VOLUME,
                        "value": 1.0,
                        "unit": {"value": "ml", "scheme": "DCM", "meaning": "ml"},
                    }
                ],
            }
        ]
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    out = tmp_path / "sr.dcm"
    code, err = run(capsys, "sr", "encode", path, "--source", study.dicom_dir, "-o", out)
    assert code == 1 and "MeasurementUnitsCodeSequence" in err and "UCUM" in err
    assert not out.exists()


def test_decode_of_damaged_or_foreign_files(study, tmp_path, capsys):
    text = tmp_path / "notes.dcm"
    text.write_text("hello")
    code, err = run(capsys, "sr", "decode", text)
    assert code == 1 and "not a DICOM file" in err
    image = next(study.dicom_dir.glob("*.dcm"))
    code, err = run(capsys, "sr", "decode", image)
    assert code == 1 and "not a structured report" in err
