"""--series-description, --series-number (and --content-creator) on the encode commands.

Given alone, an option changes only its attribute: the rest stays the encoder's own
default (the CLI's table of defaults is checked against the encoders here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radbridge.cli import main

KEPT = ("SeriesDescription", "SeriesNumber", "ContentLabel", "ContentCreatorName")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    assert main(["-q", "phantom", str(out), "--slices", "6", "--size", "48"]) == 0
    np.save(out / "map.npy", np.load(out / "labels.npy").astype(np.float32) / 7)
    report = {"groups": [{"tracking_id": "ich", "evaluations": [{
        "concept": {"value": "50960005", "scheme": "SCT", "meaning": "Hemorrhage"},
        "value": {"value": "121053", "scheme": "DCM", "meaning": "Present"}}]}]}  # fmt: skip
    (out / "report.json").write_text(json.dumps(report))
    return out


def _commands(study: Path) -> dict[str, list[str]]:
    dicom, labels = str(study / "dicom"), str(study / "labels.json")
    uid = json.loads((study / "phantom.json").read_text())["sop_instance_uids"][2]
    return {
        "seg": ["seg", "encode", "--source", dicom, "--mask", str(study / "labels.npy"),
                "--labels", labels],
        "pm": ["pm", "encode", "--source", dicom, "--map", str(study / "map.npy"),
               "--units", "1"],
        "rtstruct": ["rtstruct", "encode", "--source", dicom, "--mask",
                     str(study / "labels.npy"), "--labels", labels, "--allow-empty"],
        "sr": ["sr", "encode", str(study / "report.json"), "--source", dicom],
        "ko": ["ko", "encode", "--source", dicom, "--key", uid],
    }  # fmt: skip


def _attributes(argv: list[str], out: Path) -> dict[str, str]:
    assert main(["-q", *argv, "-o", str(out)]) == 0
    ds = pydicom.dcmread(out)
    return {key: str(ds.get(key, "")) for key in KEPT}


@pytest.mark.parametrize("kind", ["seg", "pm", "rtstruct", "sr", "ko"])
def test_one_option_changes_one_attribute(study, tmp_path, kind):
    argv = _commands(study)[kind]
    default = _attributes(argv, tmp_path / "default.dcm")
    numbered = _attributes([*argv, "--series-number", "7"], tmp_path / "numbered.dcm")
    assert numbered == {**default, "SeriesNumber": "7"}
    described = _attributes([*argv, "--series-description", "Mine"], tmp_path / "described.dcm")
    assert described == {**default, "SeriesDescription": "Mine"}


@pytest.mark.parametrize("kind", ["seg", "pm"])
def test_content_creator(study, tmp_path, kind):
    argv = [*_commands(study)[kind], "--content-creator", "Doe^Jane"]
    assert _attributes(argv, tmp_path / "x.dcm")["ContentCreatorName"] == "Doe^Jane"
