"""compare_with_prior (issue 19): the gateway finds the prior study on a real Orthanc.

Orthanc holds the phantom's baseline (CT, and radbridge's SEG and SR of it); the
follow-up visit (lesions resolved, grown, shrunk, stable, new; the patient moved by a
known shift and rotation, so a new frame of reference) goes from Orthanc to the
gateway, whose rule compares with the prior: C-FIND finds the baseline, C-GET brings
its SR (and, the frames differing, its CT for a rigid registration) — or QIDO-RS and
WADO-RS for a DICOMweb peer — and the comparison SR arrives back in Orthanc in the
follow-up study.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import replace

import pydicom
import pytest

from radbridge.errors import ConfigError
from radbridge.gateway import Gateway
from radbridge.gateway.store import Job, JobState
from radbridge.io.phantom import FollowUp, write_phantom
from radbridge.io.series import read_series
from radbridge.models import SeriesInfo
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.net import Peer
from radbridge.results import encode_results
from radbridge.sr import longitudinal, read_measurement_report
from tests.gateway.conftest import query
from tests.gateway.processes import wait_until
from tests.peers import free_port, wait_for_port

SHAPE = {"slices": 60, "size": 128, "seed": 3, "nifti": False}


def _baseline(folder):
    return _baseline_like(folder, None)


def _baseline_like(folder, follow_up):
    """Write a visit of the phantom with radbridge's SEG and SR of it (paths, SR)."""
    files = write_phantom(folder, follow_up=follow_up, **SHAPE)
    series = read_series(files.dicom_dir)
    result = ReferenceCTModel()(series.volume(rescale=True), SeriesInfo(modality="CT"))
    objects = encode_results(series, result, ["seg", "sr"])
    paths = sorted(files.dicom_dir.glob("*.dcm"))
    for kind, ds in objects.items():
        ds.save_as(folder / f"{kind}.dcm", enforce_file_format=True)
        paths.append(folder / f"{kind}.dcm")
    return paths, objects["sr"]


def _comparisons(orthanc, study_uid):
    found = []
    for uid in orthanc.sop_instance_uids():
        (item,) = orthanc.lookup(uid)
        ds = pydicom.dcmread(io.BytesIO(orthanc.instance_bytes(item["ID"])))
        if ds.StudyInstanceUID == study_uid and ds.get("SeriesDescription") == (
            "radbridge longitudinal comparison"
        ):
            found.append(ds)
    return found


def _setup(orthanc_factory, config, transport="dimse"):
    gateway_port = free_port()
    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", gateway_port)})
    pacs = Peer(
        "ORTHANC",
        "127.0.0.1",
        orthanc.dicom_port,
        name="pacs",
        transport=transport,  # dicomweb: QIDO-RS, WADO-RS and STOW-RS instead of DIMSE
        dicomweb_url=orthanc.dicomweb_url,
    )
    rule = replace(
        config.rules[0], outputs=("seg", "sr"), destinations=("pacs",), compare_with_prior=True
    )
    settings = replace(
        config, port=gateway_port, peers={"pacs": pacs}, rules=(rule,), quiet_period_s=0.5
    )
    return orthanc, settings


def _run_gateway(settings, orthanc, study, until, what):
    """Serve the gateway while Orthanc sends it ``study``, until ``until()`` is true."""
    gateway = Gateway(settings)
    stop = threading.Event()
    serving = threading.Thread(target=gateway.serve, args=(stop,), daemon=True)
    serving.start()
    try:
        wait_for_port("127.0.0.1", settings.port, timeout=30)
        orthanc.store_to("gateway", [study])
        wait_until(until, what=what, timeout=300)
    finally:
        stop.set()
        serving.join(60)
    assert not serving.is_alive()


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["dimse", "dicomweb"])
def test_the_gateway_compares_with_the_prior_study_on_orthanc(
    orthanc_factory, config, tmp_path, transport
):
    orthanc, settings = _setup(orthanc_factory, config, transport)
    prior_paths, prior_sr = _baseline(tmp_path / "visit0")
    orthanc.upload_many(prior_paths)
    motion = FollowUp(days=91, shift_mm=(8.0, -5.0, 12.0), rotation_deg=3.0)
    follow_up = write_phantom(tmp_path / "visit1", follow_up=motion, **SHAPE)
    before = set(orthanc.studies())
    orthanc.upload_many(sorted(follow_up.dicom_dir.glob("*.dcm")))
    (new_study,) = set(orthanc.studies()) - before
    _run_gateway(
        settings,
        orthanc,
        new_study,
        lambda: _comparisons(orthanc, follow_up.study_instance_uid),
        "the comparison SR in Orthanc",
    )
    (comparison,) = _comparisons(orthanc, follow_up.study_instance_uid)
    report = read_measurement_report(comparison)
    statuses = {
        e.value: g.tracking_uid
        for g in report.groups
        for e in g.evaluations
        if e.concept == longitudinal.QUALITATIVE_DIFFERENCE
    }
    assert set(statuses) == set(longitudinal.STATUS_CODES.values())
    prior_uids = {g.tracking_uid for g in read_measurement_report(prior_sr).groups}
    new = longitudinal.STATUS_CODES["new"]
    assert {uid for status, uid in statuses.items() if status != new} <= prior_uids
    assert statuses[new] not in prior_uids
    (pertinent,) = comparison.PertinentOtherEvidenceSequence
    assert pertinent.StudyInstanceUID == prior_sr.StudyInstanceUID
    referenced = {
        ref.ReferencedSOPInstanceUID
        for series in pertinent.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert prior_sr.SOPInstanceUID in referenced


@pytest.mark.peer
@pytest.mark.slow
def test_without_a_prior_study_the_results_go_without_a_comparison(
    orthanc_factory, config, tmp_path
):
    orthanc, settings = _setup(orthanc_factory, config)
    files = write_phantom(tmp_path / "only", **SHAPE)
    orthanc.upload_many(sorted(files.dicom_dir.glob("*.dcm")))
    (study,) = orthanc.studies()

    def modalities():
        return {
            orthanc.get(f"/series/{s}")["MainDicomTags"].get("Modality")
            for s in orthanc.get(f"/studies/{study}")["Series"]
        }

    _run_gateway(settings, orthanc, study, lambda: {"SEG", "SR"} <= modalities(), "SEG, SR")
    (job,) = query(settings.database, "SELECT state FROM jobs")
    assert job["state"] == JobState.DONE
    kinds = {row["kind"] for row in query(settings.database, "SELECT kind FROM results")}
    assert kinds == {"seg", "sr"}
    assert not _comparisons(orthanc, files.study_instance_uid)


def test_compare_with_prior_needs_an_sr_and_a_pacs(config):
    no_sr = replace(config.rules[0], outputs=("seg",), compare_with_prior=True)
    with pytest.raises(ConfigError, match="no sr output"):
        replace(config, rules=(no_sr,)).check()
    no_pacs = replace(config.rules[0], compare_with_prior=True)
    with pytest.raises(ConfigError, match="names no PACS"):
        replace(config, rules=(no_pacs,)).check()
    unknown = replace(config.rules[0], prior_from="elsewhere")
    with pytest.raises(ConfigError, match="elsewhere"):
        replace(config, rules=(unknown,)).check()


@pytest.mark.slow
def test_a_third_visit_starts_from_the_previous_comparison(tmp_path):
    """Among a prior study's SRs the comparison is taken: it carries the chain's UIDs."""
    from radbridge.gateway.prior import prior_reports
    from radbridge.sr import compare_reports, encode_comparison

    _, first_sr = _baseline(tmp_path / "visit0")
    second_paths, second_sr = _baseline_like(tmp_path / "visit1", FollowUp(days=91))
    comparison = encode_comparison(compare_reports(first_sr, second_sr))
    folder = tmp_path / "retrieved"
    folder.mkdir()
    second_sr.save_as(folder / "a.dcm", enforce_file_format=True)
    comparison.save_as(folder / "b.dcm", enforce_file_format=True)
    (folder / "image.dcm").write_bytes(second_paths[0].read_bytes())
    chosen = prior_reports(folder)
    assert [ds.SOPInstanceUID for ds in chosen] == [
        comparison.SOPInstanceUID,
        second_sr.SOPInstanceUID,
    ]


def _study_like(files, folder, **attrs):
    """Copy ``files`` into a new study (new UIDs) with ``attrs`` set; return its UID, paths."""
    study, series, paths = pydicom.uid.generate_uid(), pydicom.uid.generate_uid(), []
    folder.mkdir()
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        for keyword, value in attrs.items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f"{i}.dcm", enforce_file_format=True)
        paths.append(folder / f"{i}.dcm")
    return study, paths


@pytest.mark.peer
def test_a_study_later_the_same_day_is_not_the_prior(orthanc_factory, tmp_path):
    from radbridge.gateway.prior import find_prior_study

    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", free_port())})
    files = write_phantom(tmp_path / "p", slices=3, size=32, nifti=False)
    slices = sorted(files.dicom_dir.glob("*.dcm"))
    current = pydicom.dcmread(slices[0], stop_before_pixels=True)
    current.StudyDate, current.StudyTime = "20260402", "090000"
    studies = {
        "baseline": {"StudyDate": "20260101", "StudyTime": "090000"},
        "earlier today": {"StudyDate": "20260402", "StudyTime": "0830"},  # HHMM is a TM too
        "later today": {"StudyDate": "20260402", "StudyTime": "170000"},
        "today, no time": {"StudyDate": "20260402", "StudyTime": ""},
    }
    uids = {}
    for n, (name, attrs) in enumerate(studies.items()):
        uids[name], paths = _study_like(slices, tmp_path / str(n), **attrs)
        orthanc.upload_many(paths)
    peer = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port)
    prior = find_prior_study(peer, current, ae_title="RADBRIDGE")
    assert prior is not None and prior.study_instance_uid == uids["earlier today"]
    current.StudyTime = "080000"  # before both: the baseline (the other day) is the prior
    prior = find_prior_study(peer, current, ae_title="RADBRIDGE")
    assert prior is not None and prior.study_instance_uid == uids["baseline"]


def _lesion_sr(source):
    """radbridge's TID 1500 SR of one lesion (a centre) in the study of ``source``."""
    from radbridge.coding import Code, sct
    from radbridge.sr import (
        ImageRegion,
        Measurement,
        MeasurementGroup,
        MeasurementReport,
        concepts,
        encode_measurement_report,
    )

    centre = ImageRegion(
        "POINT",
        (1.0, 2.0, 3.0),
        frame_of_reference_uid=source.FrameOfReferenceUID,
        purpose=concepts.CENTER_OF_MASS,
    )
    volume = Measurement(sct("118565006", "Volume"), 2.0, Code("ml", "UCUM", "ml"), region=centre)
    report = MeasurementReport(groups=(MeasurementGroup("nodule 1", measurements=(volume,)),))
    return encode_measurement_report(report, source)


def _job(source: pydicom.Dataset) -> Job:
    """The gateway's record of a running job on ``source``'s series."""
    series, study = str(source.SeriesInstanceUID), str(source.StudyInstanceUID)
    return Job(1, series, study, 1, "rule", "model", 0, "running", 1, 1, created_at=time.time())


def test_a_report_without_lesions_is_not_taken_as_the_prior(interop, tmp_path):
    """A reading's TID 1500 (planar ROIs, dated later) must not hide radbridge's report."""
    from radbridge.gateway.prior import prior_reports

    files = write_phantom(tmp_path / "p", slices=3, size=32, nifti=False)
    ours = _lesion_sr(pydicom.dcmread(next(files.dicom_dir.glob("*.dcm"))))
    ours.ContentDate = "20000101"  # made before the reading (the reading is dated later)
    folder = tmp_path / "retrieved"
    folder.mkdir()
    ours.save_as(folder / "a.dcm", enforce_file_format=True)
    reading = pydicom.dcmread(interop / "sr/highdicom/sr_document_with_multiple_groups.dcm")
    reading.save_as(folder / "b.dcm", enforce_file_format=True)
    assert [ds.SOPInstanceUID for ds in prior_reports(folder)] == [ours.SOPInstanceUID]


@pytest.mark.peer
@pytest.mark.slow
def test_the_registration_uses_the_series_the_prior_report_measured(
    orthanc_factory, config, tmp_path
):
    """A scout stored first in the prior study: C-FIND lists it first, it is not registered."""
    from radbridge.gateway.prior import compare_with_prior

    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", free_port())})
    prior_paths, _ = _baseline(tmp_path / "visit0")
    scout = pydicom.dcmread(prior_paths[30])
    scout.SeriesInstanceUID = pydicom.uid.generate_uid()
    scout.SOPInstanceUID = pydicom.uid.generate_uid()
    scout.SeriesNumber, scout.ImageType = 1, ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.save_as(tmp_path / "scout.dcm", enforce_file_format=True)
    orthanc.upload_many([tmp_path / "scout.dcm", *prior_paths])
    motion = FollowUp(days=91, shift_mm=(8.0, -5.0, 12.0), rotation_deg=3.0)
    current_paths, current_sr = _baseline_like(tmp_path / "visit1", motion)
    images = [str(p) for p in current_paths if p.parent.name == "dicom"]
    pacs = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, name="pacs")
    rule = replace(config.rules[0], compare_with_prior=True, prior_from="pacs")
    settings = replace(config, peers={"pacs": pacs}, ae_title="RADBRIDGE")
    source = pydicom.dcmread(images[0], stop_before_pixels=True)
    job = _job(source)
    comparison = compare_with_prior(job, rule, settings, source, current_sr, images)
    assert comparison is not None  # the old code registered the one-image scout: ITK error
    statuses = {
        e.value
        for g in read_measurement_report(comparison).groups
        for e in g.evaluations
        if e.concept == longitudinal.QUALITATIVE_DIFFERENCE
    }
    assert statuses == set(longitudinal.STATUS_CODES.values())


def _pacs_with_a_phantom(orthanc_factory, tmp_path, transport):
    """A real Orthanc, the Peer for it over ``transport``, and 3 phantom slices to copy."""
    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", free_port())})
    files = write_phantom(tmp_path / "p", slices=3, size=32, nifti=False)
    pacs = Peer(
        "ORTHANC",
        "127.0.0.1",
        orthanc.dicom_port,
        transport=transport,
        dicomweb_url=orthanc.dicomweb_url,
    )
    return orthanc, pacs, sorted(files.dicom_dir.glob("*.dcm"))


@pytest.mark.peer
@pytest.mark.parametrize("transport", ["dimse", "dicomweb"])
def test_a_prior_of_another_body_part_is_passed_over(orthanc_factory, tmp_path, transport):
    """QIDO-RS returns Body Part Examined only when asked (includefield)."""
    from radbridge.gateway.prior import find_prior_study

    orthanc, pacs, slices = _pacs_with_a_phantom(orthanc_factory, tmp_path, transport)
    current = pydicom.dcmread(slices[0], stop_before_pixels=True)
    current.StudyDate, current.BodyPartExamined = "20260402", "CHEST"
    head = {"StudyDate": "20260101", "BodyPartExamined": "HEAD"}
    _, paths = _study_like(slices, tmp_path / "head", **head)
    orthanc.upload_many(paths)
    older = {"StudyDate": "20251201", "BodyPartExamined": "CHEST"}
    chest, paths = _study_like(slices, tmp_path / "chest", **older)
    orthanc.upload_many(paths)
    prior = find_prior_study(pacs, current, ae_title="RADBRIDGE")
    assert prior is not None and prior.study_instance_uid == chest  # not the newer head CT


@pytest.mark.peer
def test_a_newer_study_without_a_report_does_not_hide_the_analysed_one(
    orthanc_factory, config, tmp_path
):
    """Baseline analysed, an interim CT imported without a report, then the follow-up."""
    from radbridge.gateway.prior import compare_with_prior

    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", free_port())})
    files = write_phantom(tmp_path / "p", slices=3, size=32, nifti=False)
    slices = sorted(files.dicom_dir.glob("*.dcm"))
    baseline, paths = _study_like(slices, tmp_path / "baseline", StudyDate="20260101")
    baseline_sr = _lesion_sr(pydicom.dcmread(paths[0]))
    baseline_sr.save_as(tmp_path / "baseline-sr.dcm", enforce_file_format=True)
    orthanc.upload_many([*paths, tmp_path / "baseline-sr.dcm"])
    _, paths = _study_like(slices, tmp_path / "interim", StudyDate="20260301")
    orthanc.upload_many(paths)
    _, paths = _study_like(slices, tmp_path / "current", StudyDate="20260402")
    source = pydicom.dcmread(paths[0])
    pacs = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, name="pacs")
    rule = replace(config.rules[0], compare_with_prior=True, prior_from="pacs")
    settings = replace(config, peers={"pacs": pacs}, ae_title="RADBRIDGE")
    job = _job(source)
    comparison = compare_with_prior(
        job, rule, settings, source, _lesion_sr(source), [str(p) for p in paths]
    )
    assert comparison is not None  # the old code gave up at the interim study
    (pertinent,) = comparison.PertinentOtherEvidenceSequence
    assert pertinent.StudyInstanceUID == baseline


@pytest.mark.peer
@pytest.mark.parametrize("transport", ["dimse", "dicomweb"])
def test_a_prior_is_only_ever_the_same_patients(orthanc_factory, tmp_path, transport):
    """An ID with a wildcard character matches others' IDs; an ID of another issuer is not ours."""
    from radbridge.gateway.prior import find_prior_study

    orthanc, pacs, slices = _pacs_with_a_phantom(orthanc_factory, tmp_path, transport)
    wildcard = transport == "dimse"  # Orthanc's QIDO-RS finds no ID holding a '?' at all
    patient = "PAT1?" if wildcard else "PAT1"
    current = pydicom.dcmread(slices[0], stop_before_pixels=True)
    current.PatientID, current.IssuerOfPatientID, current.StudyDate = patient, "HOSP", "20260402"
    studies = {
        "another issuer": {
            "PatientID": patient,
            "IssuerOfPatientID": "OTHER",
            "StudyDate": "20260201",
        },
        "ours": {"PatientID": patient, "IssuerOfPatientID": "HOSP", "StudyDate": "20251201"},
    }
    if wildcard:
        studies["another patient"] = {"PatientID": "PAT1X", "StudyDate": "20260301"}
    uids = {}
    for n, (name, attrs) in enumerate(studies.items()):
        uids[name], paths = _study_like(slices, tmp_path / str(n), **attrs)
        orthanc.upload_many(paths)
    prior = find_prior_study(pacs, current, ae_title="RADBRIDGE")
    assert prior is not None and prior.study_instance_uid == uids["ours"]
