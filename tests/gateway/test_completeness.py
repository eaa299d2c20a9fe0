"""When is a series complete? Transfers that ended badly hold it; counts make it wait.

Driven through the receiver contract (what the C-STORE SCP and the STOW-RS server
report), without the network; tests/gateway/test_faults.py does the same with real
peers.
"""

from __future__ import annotations

from dataclasses import replace

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from radbridge.gateway import Gateway
from radbridge.gateway.assembler import INCOMPLETE
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.state import JobState
from tests.net.helpers import dataset_bytes

from .conftest import receive, receive_open


def files_of(study):
    return sorted(study.dicom_dir.glob("*.dcm"))


def jobs(gateway):
    return [dict(r) for r in gateway.store.query("SELECT * FROM jobs ORDER BY id")]


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
    assert row["held_reason"] == f"transfer {outcome}"
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
    assert "refused" in holding.store.series_row(phantom_study.series_instance_uid)["held_reason"]


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
        assert row["held_reason"] == "transfer interrupted by a restart"
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
    reason = holding.store.series_row(phantom_study.series_instance_uid)["held_reason"]
    assert reason == "waiting for the rest: 20 of 24 instances (Images in Acquisition)"
    receive(holding, files[20:], "rest")
    assert holding.assemble_once() == 1
    (job,) = jobs(holding)
    assert len(inputs_of(holding, job)) == 24


def test_temporal_positions_make_a_short_series_wait(holding, phantom_study, tmp_path):
    files = files_of(phantom_study)
    twelve = _with(files[:12], tmp_path, NumberOfTemporalPositions=2, TemporalPositionIdentifier=1)
    receive(holding, twelve, "first-phase")
    assert holding.assemble_once() == 0
    assert "12 of 24" in holding.store.series_row(phantom_study.series_instance_uid)["held_reason"]


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
    assert gateway.store.series_row(phantom_study.series_instance_uid)["instance_count"] == 24


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
    assert row["instance_count"] == 1 and row["version"] == 1
