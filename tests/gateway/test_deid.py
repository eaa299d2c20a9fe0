"""De-identification before a model (issue 18, part 1), through a real gateway process.

A series with a patient name, ID, birth date, dates, institution and descriptions goes
to a gateway whose model (``tests.gateway.recording_model``, marked external) writes
down everything it is given and kills its process (SIGKILL) the first time — after the
series was de-identified, before anything was delivered. The restarted gateway runs the
job again. Checked:

- the model never saw the patient's name, ID, birth date, the study's dates, the
  institution, the descriptions or any original UID — in the SeriesInfo, the volume's
  references or the headers it was given — and it saw the same pseudonyms both times
  (the mapping kept in the database before the crash was used again);
- the SEG, SR and KOS that DCMTK storescp received are in the original study: original
  patient module and UIDs, references to the original instances only, no pseudonym
  anywhere; dciodvfy reports no error, highdicom reads all three, and dcmjs draws the
  SR's long axes on original images;
- the mapping is in the state database (mode 0600) and in no log.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import highdicom as hd
import pydicom
import pytest

from tests.gateway.processes import (
    GatewayProcess,
    Storescu,
    db_rows,
    jobs_done,
    wait_until,
    write_config,
)
from tests.peers import REPO_ROOT, free_port
from tests.peers.dcmjs import dcmjs_read_annotations
from tests.peers.dicom3tools import dciodvfy

pytestmark = [pytest.mark.peer, pytest.mark.slow]

OUTPUTS = ("seg", "sr", "ko")
IDENTITY = {
    "PatientName": "Doerflinger^Janeska^Q",
    "PatientID": "MRN-0042-XYZ",
    "PatientBirthDate": "19610417",
    "StudyDate": "20240229",
    "SeriesDate": "20240229",
    "AcquisitionDate": "20240229",
    "ContentDate": "20240229",
    "InstitutionName": "St Elsewhere General",
    "ReferringPhysicianName": "Housemeyer^Gregorin",
    "AccessionNumber": "ACC-777-31",
    "StudyDescription": "CT CHEST JANESKA DOERFLINGER FOLLOW-UP",
    "SeriesDescription": "AXIAL MRN-0042",
    "OtherPatientIDs": "OTHER-55",
}


@pytest.fixture
def identified(phantom_study, tmp_path):
    """The phantom series with a real-looking identity written into every file."""
    folder = tmp_path / "identified"
    folder.mkdir()
    for path in sorted(phantom_study.dicom_dir.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for keyword, value in IDENTITY.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / path.name)
    return sorted(folder.glob("*.dcm"))


def _originals(files):
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    first = headers[0]
    return {
        "study": str(first.StudyInstanceUID),
        "series": str(first.SeriesInstanceUID),
        "frame": str(first.FrameOfReferenceUID),
        "sops": {str(h.SOPInstanceUID) for h in headers},
    }


def _uids(ds, found=None):
    """Every UI value of a data set, at any depth (class UIDs included)."""
    found = set() if found is None else found
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _uids(item, found)
        elif element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            found.update(str(v) for v in values)
    return found


def test_the_identity_is_not_among_dicognitos_pseudonyms():
    """dicognito replaces names with names from its lists: an original name that is in
    them (it has HOUSE, JANE, GREGORY) could come back as a pseudonym and fail the
    checks below by chance, so the identity's words must not be there."""
    from dicognito.pnanonymizer import PNAnonymizer

    names = {
        n.upper()
        for table in ("_female_first_names", "_male_first_names", "_last_names")
        for n in getattr(PNAnonymizer, table)
    }
    assert len(names) > 1000  # the lists are where this test looks for them
    words = {w for v in IDENTITY.values() for w in re.findall(r"[A-Z0-9-]+", v.upper())}
    assert not words & names


def _check_seen(text: str, originals) -> None:
    words = set(re.findall(r"[A-Z0-9-]+", text.upper()))  # whole words: "JANEIRO" is not "JANE"
    for keyword, value in IDENTITY.items():
        for part in re.findall(r"[A-Z0-9-]+", str(value).upper()):
            if len(part) > 2 and part not in ("CHEST", "AXIAL", "CT"):
                assert part not in words, f"the model saw {keyword} ({part})"
    for uid in (originals["study"], originals["series"], originals["frame"], *originals["sops"]):
        assert uid not in text, "the model saw an original UID"
    assert "20240229" not in text and "19610417" not in text


def test_external_model_sees_no_patient_and_results_come_back_identified(
    identified, tmp_path, storescp_factory
):
    pacs = storescp_factory(aet="PACS", extra_args=("+uf",))
    port = free_port()
    config = write_config(tmp_path, port=port, pacs_port=pacs.port, quiet=0.5, outputs=OUTPUTS)
    config.write_text(
        config.read_text().replace(
            'model = "reference-ct"', 'model = "tests.gateway.recording_model:RecordingModel"'
        )
    )
    data, records, marker = tmp_path / "data", tmp_path / "seen", tmp_path / "killed"
    env = {
        "PYTHONPATH": str(REPO_ROOT),
        "RADBRIDGE_RECORD_DIR": str(records),
        "RADBRIDGE_KILL_ONCE": str(marker),
    }
    originals = _originals(identified)
    gateway = GatewayProcess(config, port, env=env)
    try:
        assert Storescu(identified, port).wait(120) == 0
        wait_until(lambda: marker.exists() and gateway.proc.poll() is not None, 120, "the kill")
    finally:
        gateway.stop()
    assert gateway.proc.returncode == -9  # killed inside the model, after de-identification
    saved = db_rows(data, "SELECT original_uid, pseudonym_uid FROM deid_uids")
    assert pacs.received() == [] and len(saved) >= len(identified) + 3
    restarted = GatewayProcess(config, port, env=env)
    try:
        wait_until(lambda: jobs_done(data), 180, "the job done after the restart")
        wait_until(lambda: len(pacs.received()) >= len(OUTPUTS), 60, "results at the PACS")
    finally:
        restarted.stop()

    seen = [json.loads(p.read_text()) for p in sorted(records.glob("seen-*.json"))]
    assert len(seen) == 2
    for record in seen:
        assert record["headers"], "an external model gets the (pseudonymised) headers"
        _check_seen(json.dumps(record), originals)
        assert record["info"]["study_instance_uid"] == dict(saved)[originals["study"]]
    assert seen[0]["info"] == seen[1]["info"]  # the same pseudonyms after the crash
    assert seen[0]["slice_refs"] == seen[1]["slice_refs"]
    pseudonyms = {p for _, p in saved}
    assert db_rows(data, "SELECT original_uid, pseudonym_uid FROM deid_uids") == saved

    delivered = {str(pydicom.dcmread(p).Modality): p for p in pacs.received()}
    assert set(delivered) == {"SEG", "SR", "KO"}
    for modality, path in delivered.items():
        ds = pydicom.dcmread(path)
        assert str(ds.StudyInstanceUID) == originals["study"], modality
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate"):
            assert str(ds[keyword].value) == IDENTITY[keyword], (modality, keyword)
        assert "PatientIdentityRemoved" not in ds
        assert not _uids(ds) & pseudonyms, f"a pseudonym left in the {modality}"
        assert dciodvfy(path).errors == [], modality
    seg = hd.seg.segread(delivered["SEG"])
    uids = seg.get_source_image_uids()
    assert {(str(study), str(series)) for study, series, _ in uids} == {
        (originals["study"], originals["series"])
    }
    sources = {str(sop) for _, _, sop in uids}
    assert sources and sources <= originals["sops"]
    assert str(seg.FrameOfReferenceUID) == originals["frame"]
    sr = hd.sr.srread(delivered["SR"])
    evidence = {
        str(ref.ReferencedSOPInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert originals["sops"] <= evidence
    key = hd.ko.KeyObjectSelectionDocument.from_dataset(pydicom.dcmread(delivered["KO"]))
    (referenced,) = {
        str(r.ReferencedSOPInstanceUID)
        for s in key.CurrentRequestedProcedureEvidenceSequence
        for e in s.ReferencedSeriesSequence
        for r in e.ReferencedSOPSequence
    }
    assert referenced in originals["sops"]
    lengths = dcmjs_read_annotations(delivered["SR"], tmp_path)["Length"]  # OHIF's lines
    assert lengths and {a["sopInstanceUid"] for a in lengths} <= originals["sops"]

    database = data / "gateway.sqlite"
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600
    logs = (tmp_path / "gateway.log").read_text() + (data / "audit.jsonl").read_text()
    assert not any(p in logs for p in pseudonyms), "a pseudonym was logged"
    assert IDENTITY["PatientName"] not in logs
    assert Path(marker).read_text() == "killed"
