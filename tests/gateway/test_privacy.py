"""No patient data in what the gateway records: audit log, state store, status.

A phantom series whose patient and study attributes hold marker strings goes through
a gateway whose model fails quoting what it was given; every file the gateway wrote
(but the spool, outbox and archive, which hold the DICOM objects) and the status
report are searched for the markers.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pydicom

from radbridge.gateway import Gateway
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.status import status
from radbridge.gateway.store import JobState

from .conftest import files_of, query, receive

#: Attribute -> a value found nowhere else (names, IDs, free text, a birth date).
MARKERS = {
    "PatientName": "MARKER^NAME7F3A",
    "PatientID": "MARKER-PID-7F3A",
    "AccessionNumber": "MRK-ACC-7F3A",
    "StudyDescription": "MARKER-STUDYDESC-7F3A",
    "SeriesDescription": "MARKER-SERDESC-7F3A",
    "InstitutionName": "MARKER-INST-7F3A",
    "PatientBirthDate": "19010203",
}


def marked_copy(files: list[Path], folder: Path) -> list[Path]:
    """Copy a series with the marker values in its patient and study attributes."""
    folder.mkdir()
    datasets = [pydicom.dcmread(path) for path in files]
    for ds in datasets:
        ds.update(MARKERS)
    copies = [folder / path.name for path in files]
    for ds, copy in zip(datasets, copies, strict=True):
        ds.save_as(copy)
    return copies


def leaks(text: str) -> list[str]:
    """Return the marker values (or their parts) found in ``text``."""
    parts = {part for value in MARKERS.values() for part in value.split("^")}
    return sorted(part for part in parts if part.lower() in text.lower())


def written_by_gateway(data: Path) -> str:
    """Every file under ``data`` but the DICOM folders, as text."""
    skip = {"spool", "outbox", "archive"}
    return "\n".join(
        path.read_bytes().decode("latin-1")
        for path in sorted(data.rglob("*"))
        if path.is_file() and not skip & set(path.relative_to(data).parts)
    )


class QuotingModel:
    """A model whose exception quotes the descriptions it was given."""

    name = "quoting"
    version = "1.0"

    def __call__(self, volume, series):
        raise ValueError(
            f"no liver in {series.study_description!r} / {series.series_description.lower()}"
        )


def test_a_model_failure_quoting_the_study_leaves_no_patient_data(
    config, phantom_study, tmp_path, capsys
):
    files = marked_copy(files_of(phantom_study), tmp_path / "marked")
    rule = Rule("ct", model=f"{__name__}:QuotingModel", match=Match(modality=("CT",)))
    gateway = Gateway(replace(config, rules=(rule,), max_attempts=2, retry_base_s=0.01))
    try:
        receive(gateway, files)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            gateway.step()
            states = [r["state"] for r in query(gateway, "SELECT state FROM jobs")]
            if states == [JobState.DEAD]:
                break
            time.sleep(0.02)
        report = status(gateway.store)
    finally:
        gateway.close()
    (error,) = [r["error"] for r in query(gateway.config.database, "SELECT error FROM jobs")]
    # still says what failed, and where the quoted values came from
    assert "ValueError: no liver in '<StudyDescription>' / <SeriesDescription>" in error
    assert leaks(json.dumps(report)) == []
    assert leaks(written_by_gateway(config.data_dir)) == []
    assert leaks(capsys.readouterr().err) == []
