"""When is a series complete? Transfers that ended badly hold it; counts make it wait.

Driven through the receiver contract (what the C-STORE SCP and the STOW-RS server
report), without the network; tests/gateway/test_faults.py does the same with real
peers.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import ImplicitVRLittleEndian

from radbridge.gateway import Gateway
from radbridge.gateway.assembler import INCOMPLETE
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.store import SCHEMA_VERSION, JobState, Store
from radbridge.net import Peer
from radbridge.uids import new_uid
from tests.net.helpers import dataset_bytes, send_claiming
from tests.peers import free_port
from tests.peers.dcmtk import storescu

from .conftest import BEFORE_RETENTION, query, receive, receive_open


def files_of(study):
    return sorted(study.dicom_dir.glob("*.dcm"))


def jobs(gateway):
    return [dict(r) for r in query(gateway, "SELECT * FROM jobs ORDER BY id")]


def inputs_of(gateway, job):
    return gateway.store.version_inputs(job["series_instance_uid"], job["version"])


@pytest.fixture
def holding(config):
    """A gateway that never gives up on a held series during a test."""
    gw = Gateway(replace(config, incomplete_after_s=3600.0))
    yield gw
    gw.close()


@pytest.mark.parametrize("outcome", ["aborted", "failed"])
def test_a_cut_transfer_holds_the_series_until_the_resend(holding, phantom_study, outcome):
    files = files_of(phantom_study)
    receive(holding, files[:10], "cut", outcome=outcome)
    assert holding.assemble_once() == 0 and jobs(holding) == []
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.held_reason == f"transfer {outcome}"
    receive(holding, files, "resend")  # the modality sends the whole series again
    assert holding.assemble_once() == 1
    (job,) = jobs(holding)
    assert len(inputs_of(holding, job)) == 24 and job["version"] == 1


def test_a_refused_instance_holds_a_released_transfer(holding, phantom_study):
    files = files_of(phantom_study)
    holding.transfer_opened("full")
    receive_open(holding, files[:10], "full")
    holding.instance_refused("full", phantom_study.series_instance_uid, "disk full")
    holding.transfer_ended("full", "released")
    assert holding.assemble_once() == 0
    assert "refused" in holding.store.series_row(phantom_study.series_instance_uid).held_reason


def test_a_refusal_in_a_later_transfer_holds_a_series_sent_cleanly_before(holding, phantom_study):
    files = files_of(phantom_study)
    receive(holding, files[:10], "first")  # clean, but the rest...
    holding.transfer_opened("second")
    holding.instance_refused("second", phantom_study.series_instance_uid, "low on disk space")
    holding.transfer_ended("second", "released")  # ...was refused in the next association
    assert holding.assemble_once() == 0 and jobs(holding) == []


def test_a_transfer_concurrent_with_the_cut_one_does_not_lift_the_hold(holding, phantom_study):
    files = files_of(phantom_study)
    holding.transfer_opened("other")  # opened before the cut transfer's last activity
    receive(holding, files[:10], "cut", outcome="aborted")
    receive_open(holding, files[10:12], "other")
    holding.transfer_ended("other", "released")
    assert holding.assemble_once() == 0


def test_a_restart_holds_what_an_open_transfer_brought(config, phantom_study):
    first = Gateway(replace(config, incomplete_after_s=3600.0))
    first.transfer_opened("crashed")
    receive_open(first, files_of(phantom_study)[:10], "crashed")
    first.close()  # no transfer_ended: the process died
    again = Gateway(replace(config, incomplete_after_s=3600.0))
    try:
        assert again.assemble_once() == 0
        row = again.store.series_row(phantom_study.series_instance_uid)
        assert row.held_reason == "transfer interrupted by a restart"
    finally:
        again.close()


def test_a_held_series_is_dead_lettered_as_incomplete_unless_the_rule_runs_it(
    config, phantom_study
):
    hold = Rule("hold", model="reference-ct", match=Match(modality=("CT",)))
    run = Rule("run", model="reference-ct", match=Match(modality=("CT",)), on_incomplete="run")
    gateway = Gateway(replace(config, rules=(hold, run), incomplete_after_s=0.0))
    try:
        receive(gateway, files_of(phantom_study)[:10], "cut", outcome="aborted")
        gateway.assemble_once()
        by_rule = {j["rule"]: j for j in jobs(gateway)}
        assert by_rule["hold"]["state"] == JobState.DEAD
        assert INCOMPLETE in by_rule["hold"]["error"]
        assert by_rule["run"]["state"] == JobState.QUEUED
        assert len(inputs_of(gateway, by_rule["run"])) == 10
    finally:
        gateway.close()


def _with(files, tmp_path, **attributes):
    out = []
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(tmp_path / path.name)
        out.append(tmp_path / path.name)
    return out


def test_images_in_acquisition_makes_a_short_series_wait(holding, phantom_study, tmp_path):
    files = _with(files_of(phantom_study), tmp_path, ImagesInAcquisition=24)
    receive(holding, files[:20], "short")  # a clean transfer, but 20 of 24
    assert holding.assemble_once() == 0
    reason = holding.store.series_row(phantom_study.series_instance_uid).held_reason
    assert reason == "waiting for the rest: 20 of 24 instances (Images in Acquisition)"
    receive(holding, files[20:], "rest")
    assert holding.assemble_once() == 1
    (job,) = jobs(holding)
    assert len(inputs_of(holding, job)) == 24


def test_a_short_count_is_counted_again_on_a_transfer_open_before_the_hold(
    holding, phantom_study, tmp_path
):
    (tmp_path / "s2").mkdir()
    files = _with(files_of(phantom_study), tmp_path, ImagesInAcquisition=24)
    other = _with(files_of(phantom_study)[:1], tmp_path / "s2", SeriesInstanceUID="2.25.31337")
    holding.transfer_opened("b1")  # open for another series of the study
    receive_open(holding, other, "b1")
    holding.transfer_opened("c1")
    receive(holding, files[:20], "a1")
    holding.assemble_once()
    series = phantom_study.series_instance_uid
    reason = holding.store.series_row(series).held_reason
    assert reason == "waiting for the rest: 20 of 24 instances (Images in Acquisition)"
    receive_open(holding, files[20:22], "b1")  # more, on associations opened before the hold
    holding.transfer_ended("b1", "released")
    holding.assemble_once()
    reason = holding.store.series_row(series).held_reason
    assert reason == "waiting for the rest: 22 of 24 instances (Images in Acquisition)"
    receive_open(holding, files[22:], "c1")
    holding.transfer_ended("c1", "released")
    assert holding.assemble_once() == 1
    (job,) = [j for j in jobs(holding) if j["series_instance_uid"] == series]
    assert job["state"] == JobState.QUEUED and len(inputs_of(holding, job)) == 24
    assert holding.store.series_row(series).held_reason is None


def test_a_short_count_is_not_held_when_the_rest_came_while_it_was_counted(
    holding, phantom_study, tmp_path, monkeypatch
):
    files = _with(files_of(phantom_study), tmp_path, ImagesInAcquisition=24)
    receive(holding, files[:20], "a1")

    def count_source(study_uid, series_uid):  # while the C-FIND runs, the rest arrives
        receive(holding, files[20:], "rest")
        return None

    monkeypatch.setattr(holding, "_count_source", count_source)
    assert holding.assemble_once() == 0  # counted 20 of 24, but that is stale
    monkeypatch.setattr(holding, "_count_source", None)
    assert holding.store.series_row(phantom_study.series_instance_uid).held_reason is None
    assert holding.assemble_once() == 1
    (job,) = jobs(holding)
    assert job["state"] == JobState.QUEUED and len(inputs_of(holding, job)) == 24


def test_temporal_positions_make_a_short_series_wait(holding, phantom_study, tmp_path):
    files = files_of(phantom_study)
    twelve = _with(files[:12], tmp_path, NumberOfTemporalPositions=2, TemporalPositionIdentifier=1)
    receive(holding, twelve, "first-phase")
    assert holding.assemble_once() == 0
    assert "12 of 24" in holding.store.series_row(phantom_study.series_instance_uid).held_reason


def test_the_job_reads_its_frozen_inputs_not_later_arrivals(gateway, phantom_study):
    files = files_of(phantom_study)
    receive(gateway, files[:20], "a1")
    gateway.assemble_once()
    receive(gateway, files[20:], "a2")  # arrives before the job runs
    (job,) = jobs(gateway)
    frozen = {i.sop_instance_uid for i in inputs_of(gateway, job)}
    assert len(frozen) == 20
    gateway.run_once()
    seg = pydicom.dcmread(next(gateway.config.outbox_dir.rglob("seg.dcm")))
    referenced = {
        str(item.ReferencedSOPInstanceUID)
        for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced <= frozen
    gateway.assemble_once()  # the 4 late slices make version 2
    assert [j["version"] for j in jobs(gateway)] == [1, 2]
    assert len(inputs_of(gateway, jobs(gateway)[1])) == 24


def test_same_uid_other_content_is_kept_and_makes_a_new_version(gateway, phantom_study, tmp_path):
    files = files_of(phantom_study)
    receive(gateway, files, "first")
    gateway.assemble_once()
    changed = _with(files[:1], tmp_path, WindowCenter=123)  # same SOP Instance UID
    receive(gateway, changed, "corrected")
    receive(gateway, files[1:2], "identical")  # an identical re-send changes nothing
    gateway.assemble_once()
    first, second = jobs(gateway)
    sop = str(pydicom.dcmread(files[0], stop_before_pixels=True).SOPInstanceUID)
    old = {i.sop_instance_uid: i for i in inputs_of(gateway, first)}[sop]
    new = {i.sop_instance_uid: i for i in inputs_of(gateway, second)}[sop]
    assert old.sha256 != new.sha256 and old.path != new.path
    assert pydicom.dcmread(old.path).get("WindowCenter") != 123  # the first is kept
    assert pydicom.dcmread(new.path).WindowCenter == 123
    assert gateway.store.series_row(phantom_study.series_instance_uid).instance_count == 24


def test_same_data_in_another_transfer_syntax_is_a_duplicate(gateway, phantom_study, tmp_path):
    files = files_of(phantom_study)
    receive(gateway, files, "first")
    gateway.assemble_once()
    ds = pydicom.dcmread(files[0])
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(tmp_path / "implicit.dcm")
    assert dataset_bytes(tmp_path / "implicit.dcm") != dataset_bytes(files[0])
    receive(gateway, [tmp_path / "implicit.dcm"], "implicit")
    assert gateway.assemble_once() == 0  # no new version
    spooled = list(gateway.config.spool_dir.rglob(f"{ds.SOPInstanceUID}.*.dcm"))
    assert len(spooled) == 1  # the redundant copy is removed


def test_same_uid_in_another_series_is_kept_under_its_own_series(gateway, phantom_study, tmp_path):
    files = files_of(phantom_study)
    receive(gateway, files, "first")
    other = _with(files[:1], tmp_path, SeriesInstanceUID="2.25.31337")
    receive(gateway, other, "second")
    gateway.assemble_once()
    sop = str(pydicom.dcmread(files[0], stop_before_pixels=True).SOPInstanceUID)
    assert set(gateway.store.series_of_sop(sop)) == {
        phantom_study.series_instance_uid,
        "2.25.31337",
    }
    row = gateway.store.series_row("2.25.31337")
    assert row.instance_count == 1 and row.version == 1


def test_a_transfer_end_the_database_could_not_take_is_recorded_later(
    holding, phantom_study, monkeypatch
):
    files = files_of(phantom_study)
    holding.transfer_opened("full")
    receive_open(holding, files[:10], "full")
    real = holding.store.end_transfer

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(holding.store, "end_transfer", disk_full)
    holding.instance_refused("full", phantom_study.series_instance_uid, "No space left on device")
    holding.transfer_ended("full", "released")  # must not raise into the receiver
    assert holding.assemble_once() == 0  # the transfer is still open in the database
    monkeypatch.setattr(holding.store, "end_transfer", real)  # space is back
    assert holding.assemble_once() == 0
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.held_reason == "1 instance(s) refused" and row.open_transfers == 0


def _cut_meanwhile(gateway, files, transfer="b1"):
    """What a receiver thread does while the assembler works: a transfer brings files, is cut."""
    receive(gateway, files, transfer, outcome="aborted")


def test_a_transfer_cut_while_a_version_is_frozen_keeps_its_hold(
    holding, phantom_study, monkeypatch
):
    files = files_of(phantom_study)
    receive(holding, files[:20], "a1")

    def count_source(study_uid, series_uid):  # the C-FIND of verify_count_with takes a while
        _cut_meanwhile(holding, files[20:22])
        return None

    monkeypatch.setattr(holding, "_count_source", count_source)
    assert holding.assemble_once() == 1  # the 20 the clean transfer brought
    monkeypatch.setattr(holding, "_count_source", None)
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.held_reason == "transfer aborted"  # b1's hold stays
    assert holding.assemble_once() == 0  # no version of the cut transfer's data
    (job,) = jobs(holding)
    assert job["state"] == JobState.QUEUED and len(inputs_of(holding, job)) == 20
    receive(holding, files, "resend")
    assert holding.assemble_once() == 1
    assert [(j["version"], len(inputs_of(holding, j))) for j in jobs(holding)] == [(1, 20), (2, 24)]


def test_a_transfer_cut_after_the_series_was_chosen_makes_no_version(
    holding, phantom_study, monkeypatch
):
    files = files_of(phantom_study)
    receive(holding, files[:20], "a1")
    chosen = holding.store.settled_series

    def settled_series(*args):  # chosen; the other series' C-FINDs take a while
        rows = chosen(*args)
        _cut_meanwhile(holding, files[20:22])
        return rows

    monkeypatch.setattr(holding.store, "settled_series", settled_series)
    assert holding.assemble_once() == 0
    assert jobs(holding) == []
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.held_reason == "transfer aborted" and row.instance_count == 22


def test_a_transfer_cut_while_an_incomplete_version_is_frozen_keeps_its_hold(
    config, phantom_study, monkeypatch
):
    files = files_of(phantom_study)
    gateway = Gateway(replace(config, incomplete_after_s=0.0))
    try:
        receive(gateway, files[:10], "a1", outcome="aborted")
        freeze = gateway.store.create_version

        def create_version(*args, **kwargs):  # the headers of a large series take a while
            _cut_meanwhile(gateway, files[10:12])
            return freeze(*args, **kwargs)

        monkeypatch.setattr(gateway.store, "create_version", create_version)
        assert gateway.assemble_once() == 1
        monkeypatch.setattr(gateway.store, "create_version", freeze)
        row = gateway.store.series_row(phantom_study.series_instance_uid)
        assert row.held_reason == "transfer aborted"
        assert gateway.assemble_once() == 1  # given up on again: incomplete, not run
        assert [(j["state"], len(inputs_of(gateway, j))) for j in jobs(gateway)] == [
            (JobState.DEAD, 10),
            (JobState.DEAD, 12),
        ]
        assert all(INCOMPLETE in j["error"] for j in jobs(gateway))
    finally:
        gateway.close()


def test_a_transfer_cut_while_the_count_is_checked_keeps_its_hold(
    holding, phantom_study, tmp_path, monkeypatch
):
    files = _with(files_of(phantom_study), tmp_path, ImagesInAcquisition=24)
    receive(holding, files[:20], "a1")

    def count_source(study_uid, series_uid):
        _cut_meanwhile(holding, files[20:22])
        return None

    monkeypatch.setattr(holding, "_count_source", count_source)
    assert holding.assemble_once() == 0
    monkeypatch.setattr(holding, "_count_source", None)
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.held_reason == "transfer aborted"  # not overwritten by "20 of 24"
    assert holding.assemble_once() == 0 and jobs(holding) == []


def test_a_schema_4_database_gains_the_hold_count(tmp_path):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    store.open_transfer("t", now=1.0)
    store.record_instance("1.2", "1.2.3", "1.2.3.4", "ab" * 32, "a.dcm", transfer="t", now=2.0)
    store.end_transfer("t", "aborted", now=3.0)
    store.close()
    with sqlite3.connect(path) as old:  # what a schema-4 gateway left behind
        old.executescript(
            BEFORE_RETENTION + "ALTER TABLE series DROP COLUMN holds; PRAGMA user_version = 4;"
        )
    store = Store(path)
    try:
        row = store.series_row("1.2.3")
        assert (row.held_reason, row.holds) == ("transfer aborted", 0)
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8


@pytest.mark.peer
def test_the_source_pacs_count_makes_a_short_series_wait(config, phantom_study, orthanc_factory):
    files = files_of(phantom_study)
    orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", 1)})
    orthanc.upload_many(files)  # the PACS holds all 24; it forwards only 16 at first
    pacs = Peer("ORTHANC", "127.0.0.1", orthanc.dicom_port, name="pacs", timeout_s=10)
    gateway = Gateway(
        replace(config, peers={"pacs": pacs}, verify_count_with="pacs", incomplete_after_s=3600)
    )
    try:
        receive(gateway, files[:16], "first")
        assert gateway.assemble_once() == 0
        reason = gateway.store.series_row(phantom_study.series_instance_uid).held_reason
        assert reason == "waiting for the rest: 16 of 24 instances (C-FIND to pacs)"
        receive(gateway, files[16:], "rest")
        assert gateway.assemble_once() == 1
    finally:
        gateway.close()


def test_a_source_pacs_that_cannot_be_asked_leaves_the_decision_to_the_transfer(
    config, phantom_study, caplog
):
    nobody = Peer("ORTHANC", "127.0.0.1", free_port(), name="pacs", timeout_s=2)
    gateway = Gateway(replace(config, peers={"pacs": nobody}, verify_count_with="pacs"))
    try:
        receive(gateway, files_of(phantom_study))
        assert gateway.assemble_once() == 1
        assert "cannot ask pacs for its count" in caplog.text
    finally:
        gateway.close()


def _multipart(files):
    boundary = "cut-here"
    body = b"".join(
        b"--"
        + boundary.encode()
        + b"\r\nContent-Type: application/dicom\r\n\r\n"
        + path.read_bytes()
        + b"\r\n"
        for path in files
    )
    return body + b"--" + boundary.encode() + b"--\r\n", boundary


def test_stow_a_request_with_a_refused_part_holds_its_series(holding, phantom_study, tmp_path):
    files = files_of(phantom_study)
    evil = pydicom.dcmread(files[1])
    evil.SOPInstanceUID = "../../etc/passwd"  # refused, but its series can be read
    evil.save_as(tmp_path / "evil.dcm")
    server = holding.stow_server().start()
    try:
        body, boundary = _multipart([files[0], tmp_path / "evil.dcm"])
        answer = requests.post(
            f"{server.url}/studies",
            data=body,
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
            },
            timeout=30,
        )
        assert answer.status_code == 202  # one stored, one failed
    finally:
        server.stop()
    assert holding.assemble_once() == 0
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.held_reason == "1 instance(s) refused"


def test_stow_a_request_cut_midway_holds_the_series(holding, phantom_study):
    files = files_of(phantom_study)
    server = holding.stow_server().start()
    try:
        body, boundary = _multipart(files[:10])
        head = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
        assert requests.post(f"{server.url}/studies", data=body, headers=head, timeout=30).ok
        body, boundary = _multipart(files[10:])
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            sock.sendall(
                f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n"
                f'Content-Type: multipart/related; type="application/dicom"; boundary={boundary}'
                f"\r\nContent-Length: {len(body) + 4096}\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
            sock.shutdown(socket.SHUT_WR)  # the client goes away mid-body
            sock.recv(1024)
    finally:
        server.stop()
    assert holding.assemble_once() == 0
    row = holding.store.series_row(phantom_study.series_instance_uid)
    # the parts that arrived whole may be spooled (never acknowledged); the series waits
    assert row.held_reason == "transfer aborted" and 10 <= row.instance_count < 24


@pytest.mark.peer
def test_a_c_store_claiming_another_instance_holds_its_series(holding, phantom_study, tmp_path):
    """0xA900 for a request whose Affected SOP Instance UID is not the data set's.

    DCMTK storescu sends all but one slice; the last comes from the fault injector
    (pynetdicom) under another UID than its own. Nothing of it is stored, and the
    series waits for a clean resend instead of running without that slice.
    """
    files = files_of(phantom_study)
    with holding.receiver(port=0) as scp:
        sent = storescu(files[1:], "127.0.0.1", scp.port, called_aet="RADBRIDGE")
        assert sent.returncode == 0, sent.output
        assert send_claiming(scp.port, files[0], tmp_path, sop_instance=new_uid()) == 0xA900
    assert holding.assemble_once() == 0 and jobs(holding) == []
    row = holding.store.series_row(phantom_study.series_instance_uid)
    assert row.instance_count == 23 and "refused" in row.held_reason
    receive(holding, files, "resend")
    assert holding.assemble_once() == 1


@pytest.mark.parametrize("c_commits", ["after B", "while B records"])
def test_a_redundant_copy_is_kept_while_another_transfer_records_that_file(
    gateway, phantom_study, tmp_path, monkeypatch, c_commits
):
    """Three copies of one instance at once, two of them in Implicit VR (one spool file).

    C (implicit) looks before A (explicit) is recorded, so it will record its file;
    B (implicit, the same file) looks after A and finds its copy redundant. B must not
    remove the file while C's record of it is under way, nor once C has recorded it:
    C's acknowledged instance would point at nothing.
    """
    first = files_of(phantom_study)[0]
    ds = pydicom.dcmread(first)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit = tmp_path / "implicit.dcm"
    ds.save_as(implicit)
    real = gateway.store.record_instances
    looked, go_on = threading.Event(), threading.Event()

    def record(rows, *, transfer=None, now=None):
        if transfer == "c":  # C has looked (found nothing) and is recording
            looked.set()
            assert go_on.wait(30)
        if transfer == "b" and c_commits == "while B records":
            go_on.set()
            c.join(30)
        return real(rows, transfer=transfer, now=now)

    monkeypatch.setattr(gateway.store, "record_instances", record)
    c = threading.Thread(target=receive, args=(gateway, [implicit], "c"))
    c.start()
    assert looked.wait(30)
    receive(gateway, [first], "a")
    receive(gateway, [implicit], "b")  # redundant: the same data as A's
    go_on.set()
    c.join(30)
    for content in gateway.store.contents(phantom_study.series_instance_uid, ds.SOPInstanceUID):
        assert Path(content.path).is_file(), "a recorded content's spool file was removed"
