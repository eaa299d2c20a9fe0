"""Retention (`spool_retention_h`): the files of finished series go, nothing else does.

The sweep's clock is the ``now=`` of :meth:`Gateway.sweep_once`, so hours pass in an
instant; the kill -9 test runs a real `radbridge gateway run` fed by DCMTK storescu
with a retention of seconds and kills it inside the sweep.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest

from radbridge.errors import ConfigError, GatewayError, SendError, StorageError
from radbridge.gateway import Gateway, load_gateway_config
from radbridge.gateway.routing import Match, Rule
from radbridge.gateway.status import status
from radbridge.gateway.store import SCHEMA_VERSION, JobState, Retry, Store
from radbridge.io.phantom import write_phantom
from tests.gateway.processes import (
    GatewayProcess,
    Storescu,
    audit_events,
    db_rows,
    gateway_status,
    wait_until,
    write_config,
)
from tests.peers import free_port

from .conftest import (
    BEFORE_RETENTION,
    files_of,
    query,
    receive,
    receive_open,
    run_until_idle,
    spool,
)

HOUR = 3600.0


def spool_files(gateway):
    return sorted(gateway.config.spool_dir.rglob("*.dcm"))


def job_states(gateway):
    return [(r["id"], r["version"], r["state"]) for r in query(gateway, "SELECT * FROM jobs")]


def recorded_paths(gateway):
    return [Path(r["path"]) for r in query(gateway, "SELECT path FROM instances")]


@pytest.fixture
def processed(config, phantom_study):
    """A gateway (retention 1 h) that received the phantom series and delivered its SEG."""
    gateway = Gateway(replace(config, spool_retention_h=1.0))
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    assert job_states(gateway) == [(1, 1, JobState.DONE)]
    yield gateway
    gateway.close()


def test_a_processed_series_is_removed_after_the_retention_and_not_before(processed):
    gateway = processed
    outbox = gateway.config.outbox_dir / "1"
    results = sorted(outbox.iterdir())
    size = sum(path.stat().st_size for path in spool_files(gateway) + results)
    archived = sorted(gateway.config.archive_dir.rglob("*.dcm"))
    finished = time.time()

    assert not gateway.sweep_once(now=finished + HOUR - 60)  # finished 59 minutes ago
    assert len(spool_files(gateway)) == 24 and outbox.is_dir()

    assert gateway.sweep_once(now=finished + HOUR + 1)
    assert spool_files(gateway) == [] and not outbox.exists()
    assert list(gateway.config.spool_dir.iterdir()) == []  # the emptied folders went too
    assert sorted(gateway.config.archive_dir.rglob("*.dcm")) == archived  # a destination
    assert query(gateway, "SELECT COUNT(*) FROM instances")[0][0] == 0
    assert query(gateway, "SELECT COUNT(*) FROM purge_files")[0][0] == 0
    report = status(gateway.store)
    assert report["purged"] == {
        "series": 1,
        "instances": 24,
        "results": len(results),
        "bytes": size,
        "files_left": 0,
    }
    assert report["received"] == {"series": 1, "instances": 24}  # counted still
    (event,) = [e for e in _audit(gateway) if e["event"] == "series purged"]
    assert (event["instances"], event["versions"], event["jobs"]) == (24, [1], [1])
    assert not gateway.sweep_once(now=finished + 10 * HOUR)  # nothing left to do


def test_the_pseudonym_map_of_a_purged_version_goes_with_its_files(config, phantom_study):
    """The map links pseudonyms to the originals; no job of a purged version runs again."""
    rule = replace(config.rules[0], deidentify=True)
    gateway = Gateway(replace(config, spool_retention_h=1.0, rules=(rule,)))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        assert job_states(gateway) == [(1, 1, JobState.DONE)]
        assert query(gateway, "SELECT COUNT(*) FROM deid_uids")[0][0] > 24
        assert gateway.sweep_once(now=time.time() + HOUR + 1)
        for table in ("deid_uids", "deid_seeds"):
            assert query(gateway, f"SELECT COUNT(*) FROM {table}")[0][0] == 0, table
    finally:
        gateway.close()


def _audit(gateway):
    lines = gateway.config.audit_log.read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("case", ["held", "open transfer", "queued job"])
def test_a_series_not_finished_is_kept(processed, phantom_study, case, tmp_path):
    gateway = processed
    files = files_of(phantom_study)
    if case == "held":  # sent again with a changed instance, cut off: new content held
        changed = pydicom.dcmread(files[0])
        changed.ImageComments = "re-sent"
        changed.save_as(tmp_path / "changed.dcm")
        receive(gateway, [tmp_path / "changed.dcm", *files[1:3]], "a2", outcome="aborted")
        assert gateway.store.series_row(phantom_study.series_instance_uid).held_reason
    elif case == "open transfer":  # being sent again
        gateway.transfer_opened("a2")
        receive_open(gateway, files[:3], "a2")
    else:
        gateway.store.retry_job(1, force=True)
    far = time.time() + 10 * HOUR

    assert not gateway.sweep_once(now=far)
    kept = 25 if case == "held" else 24
    assert len(spool_files(gateway)) == kept and len(recorded_paths(gateway)) == kept

    # the same sweep purges it once that reason is gone
    if case == "held":
        receive(gateway, files[:3], "a3")  # sent again whole: the hold is lifted
    elif case == "open transfer":
        gateway.transfer_ended("a2", "released")
    else:
        run_until_idle(gateway)
    run_until_idle(gateway)
    assert gateway.sweep_once(now=far)
    assert spool_files(gateway) == []


def test_a_held_series_with_nothing_new_is_released_and_purged_after_the_retention(
    processed, phantom_study
):
    """An aborted re-send of what the series had: nothing to wait for, so not kept forever."""
    gateway = processed
    uid = phantom_study.series_instance_uid
    files = files_of(phantom_study)
    receive(gateway, files[:3], "a2", outcome="aborted")  # identical instances, cut off
    run_until_idle(gateway)
    row = gateway.store.series_row(uid)
    assert row.held_reason == "transfer aborted" and row.revision == row.assembled_revision
    held_at = time.time()

    assert not gateway.sweep_once(now=held_at + HOUR - 60)  # the hold's retention runs
    assert len(spool_files(gateway)) == 24
    assert gateway.sweep_once(now=held_at + HOUR + 1)
    assert spool_files(gateway) == [] and not (gateway.config.outbox_dir / "1").exists()
    assert gateway.store.series_row(uid).held_reason is None  # released
    assert status(gateway.store)["held_series"] == []
    (event,) = [e for e in _audit(gateway) if e["event"] == "series purged"]
    assert event["released_hold"] == "transfer aborted" and event["instances"] == 24

    receive(gateway, files, "a3")  # sent again later: a new version, not held by the old hold
    run_until_idle(gateway)
    assert job_states(gateway) == [(1, 1, JobState.DONE), (2, 2, JobState.DONE)]


def test_a_dead_job_with_a_delivery_still_pending_is_kept(config, phantom_study):
    sent = []

    def sender(destination, path):
        sent.append(path)
        failure = SendError("PACS answered 0xA900" if len(sent) == 1 else "no association")
        failure.permanent = len(sent) == 1  # the SEG refused; the SR to be tried again
        raise failure

    rule = Rule(
        "ct",
        model="reference-ct",
        match=Match(modality=("CT",)),
        outputs=("seg", "sr"),
        destinations=("pacs",),
    )
    changes = {"rules": (rule,), "spool_retention_h": 1.0, "retry_base_s": HOUR}
    gateway = Gateway(replace(config, **changes), sender=sender)
    try:
        receive(gateway, files_of(phantom_study))
        gateway.assemble_once()
        assert gateway.run_once()
        while gateway.deliver_once():
            pass
        assert job_states(gateway) == [(1, 1, JobState.DEAD)]
        states = sorted(r[0] for r in query(gateway, "SELECT state FROM deliveries"))
        assert states == ["failed", "pending"]
        far = time.time() + 10 * HOUR

        assert not gateway.sweep_once(now=far)
        assert len(spool_files(gateway)) == 24

        item = gateway.store.claim_delivery(now=far)  # the last try fails for good
        gateway.store.delivery_failed(item, "no association", Retry(1, 0.0), now=far)
        assert gateway.sweep_once(now=far + 2 * HOUR)
        assert spool_files(gateway) == []
    finally:
        gateway.close()


def test_a_file_that_cannot_be_removed_does_not_stop_the_other_purges(
    processed, phantom_study, tmp_path, monkeypatch
):
    """A purged file the gateway may not remove (a read-only folder) stays listed, alone."""
    gateway = processed
    other = write_phantom(tmp_path / "other", slices=4, size=32, seed=2)
    receive(gateway, files_of(other), "a2")
    run_until_idle(gateway)
    (stuck,) = query(gateway, "SELECT path FROM instances ORDER BY id LIMIT 1")
    real = Path.unlink

    def unlink(path, missing_ok=False):
        if str(path) == stuck[0]:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, missing_ok=missing_ok)

    far = time.time() + 2 * HOUR
    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", unlink)
        with pytest.raises(StorageError, match="cannot remove 1 purged file") as err:
            for _ in range(5):  # a round per series; the failure is said at each look
                gateway.sweep_once(now=far)
        assert stuck[0] in str(err.value)
        for _ in range(10):  # the look that failed went on: the other series is purged too
            with pytest.raises(StorageError):  # said at each round until the next look
                gateway.sweep_once(now=far)
            if gateway.sweeper.due() is False:  # this look is over
                break
    assert {r[0] for r in query(gateway, "SELECT purged_at IS NOT NULL FROM series")} == {1}
    assert [Path(stuck[0])] == spool_files(gateway)  # only the file that could not go
    assert query(gateway, "SELECT path FROM purge_files") == [stuck]
    gateway.sweeper._next = 0.0  # the next look (permissions fixed) removes it
    gateway.sweep_once(now=far)
    assert spool_files(gateway) == [] and status(gateway.store)["purged"]["files_left"] == 0


def test_retention_0_keeps_everything(config, phantom_study):
    gateway = Gateway(replace(config, spool_retention_h=0.0))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        assert not gateway.sweep_once(now=time.time() + 1000 * HOUR)
        assert len(spool_files(gateway)) == 24
        assert (gateway.config.outbox_dir / "1" / "seg.dcm").is_file()
        assert status(gateway.store)["purged"]["series"] == 0
    finally:
        gateway.close()


@pytest.mark.parametrize(("value", "said"), [("-1", "0 or more"), ('"72"', "a number")])
def test_a_wrong_retention_is_refused_when_the_file_loads(tmp_path, value, said):
    toml = tmp_path / "gateway.toml"
    toml.write_text(f"[gateway]\nspool_retention_h = {value}\n")
    with pytest.raises(ConfigError, match="spool_retention_h") as err:
        load_gateway_config(toml)
    assert said in str(err.value)
    toml.write_text("[gateway]\nspool_retention_h = 0\n")
    assert load_gateway_config(toml).spool_retention_h == 0.0
    assert load_gateway_config(None).spool_retention_h == 72.0


def test_a_late_instance_of_a_purged_series_starts_it_afresh(processed, phantom_study, caplog):
    gateway = processed
    files = files_of(phantom_study)
    assert gateway.sweep_once(now=time.time() + 2 * HOUR)
    with caplog.at_level(logging.INFO, logger="radbridge.gateway"):
        receive(gateway, files[:6], "a2")
        run_until_idle(gateway)
    assert job_states(gateway) == [(1, 1, JobState.DONE), (2, 2, JobState.DONE)]
    inputs = gateway.store.version_inputs(phantom_study.series_instance_uid, 2)
    sent = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files[:6]}
    assert {i.sop_instance_uid for i in inputs} == sent  # only what came since
    assert all(Path(i.path).is_file() for i in inputs)
    seg = pydicom.dcmread(gateway.config.outbox_dir / "2" / "seg.dcm")
    first = query(gateway, "SELECT sop_instance_uid FROM results WHERE job_id = 1")
    assert seg.SOPInstanceUID not in {row[0] for row in first}  # a new version: new UIDs
    said = [r.getMessage() for r in caplog.records if "were purged" in r.getMessage()]
    assert len(said) == 1 and "24 earlier instances" in said[0] and "6 instances" in said[0]
    assert "RB-PHANTOM" not in caplog.text  # UIDs and counts only
    assert gateway.store.series_row(phantom_study.series_instance_uid).instance_count == 6
    assert status(gateway.store)["received"]["instances"] == 30
    complete = [e for e in _audit(gateway) if e["event"] == "series complete"]
    assert complete[-1]["after_purge"] == 24


def test_retry_of_a_purged_job_fails_naming_the_job(processed, tmp_path, capsys):
    from radbridge.cli import main

    gateway = processed
    assert gateway.sweep_once(now=time.time() + 2 * HOUR)
    with pytest.raises(GatewayError, match="job 1 cannot run again") as err:
        gateway.store.retry_job(1, force=True)
    assert "spool_retention_h" in str(err.value) and "Send the series" in str(err.value)
    assert job_states(gateway) == [(1, 1, JobState.DONE)]  # no version made
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'[gateway]\ndata_dir = "{gateway.config.data_dir}"\n')
    assert main(["gateway", "retry", "1", "--force", "--config", str(toml)]) == 1
    assert "job 1 cannot run again" in capsys.readouterr().err


def test_a_purged_dead_job_is_not_retried(config, phantom_study, tmp_path, monkeypatch):
    (tmp_path / "gpu_gone.py").write_text("def model(v, s):\n    raise RuntimeError('no GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = Rule("flaky", model="gpu_gone:model", match=Match(modality=("CT",)))
    gateway = Gateway(replace(config, rules=(rule,), max_attempts=1, spool_retention_h=1.0))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        assert job_states(gateway) == [(1, 1, JobState.DEAD)]
        assert gateway.sweep_once(now=time.time() + 2 * HOUR)  # dead is finished too
        with pytest.raises(GatewayError, match="job 1 cannot run again"):
            gateway.store.retry_job(1)
        assert job_states(gateway) == [(1, 1, JobState.DEAD)]
    finally:
        gateway.close()


def test_a_purged_jobs_alert_that_names_the_patient_fails_for_good_naming_the_purge(
    config, phantom_study
):
    """Its patient block is read from the spool at send time: after the purge, not there."""
    from radbridge.gateway.triage import Urgency
    from radbridge.net import AlertTargets, FhirTarget

    from .alert_receivers import HttpReceiver

    ris = HttpReceiver([403], fhir=True)  # refused once: dead-lettered
    target = FhirTarget(url=ris.url, name="ris", patient_identifiers=True, patient_system="1")
    rule = Rule(
        "ct",
        model="reference-ct",
        match=Match(modality=("CT",)),
        destinations=("archive",),
        urgent=Urgency(findings=("lung nodule: present",)),
        alert=("ris",),
    )
    changes = {"rules": (rule,), "alerts": AlertTargets(fhir={"ris": target})}
    gateway = Gateway(replace(config, spool_retention_h=1.0, **changes))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        assert [tuple(r) for r in query(gateway, "SELECT state FROM alerts")] == [("failed",)]
        assert gateway.sweep_once(now=time.time() + 2 * HOUR)
        gateway.store.retry_job(1)  # queued again: other destinations need no spool file
        assert gateway.alert_once()
        ((state, attempts, error),) = query(gateway, "SELECT state, attempts, error FROM alerts")
    finally:
        gateway.close()
        ris.stop()
    assert (state, attempts, len(ris.requests)) == ("failed", 1, 1)  # not retried in vain
    assert error.startswith("permanent: the alert of job 1 to ris names the patient")
    assert "retention sweep removed them" in error and "send the series" in error.lower()


def test_an_instance_sent_again_during_the_sweep_is_kept_or_refused(
    processed, phantom_study, monkeypatch
):
    """Same content, same file name: the sweep must not remove what a receiver records."""
    gateway = processed
    files = files_of(phantom_study)
    far = time.time() + 2 * HOUR
    purge = gateway.store.claim_purge(far - HOUR, gateway.config.outbox_dir, now=far)
    assert purge is not None and purge.files == 25  # rows gone, files listed, none removed yet
    written = spool(gateway, files[2])  # written, not yet recorded, when the sweep comes
    receive(gateway, files[:1], "a2")  # recorded before the sweep comes

    real = gateway.store.record_instances

    def record_while_sweeping(rows, **options):
        gateway.sweep_once(now=far)  # the sweep runs while this instance is being recorded
        return real(rows, **options)

    with monkeypatch.context() as patch:
        patch.setattr(gateway.store, "record_instances", record_while_sweeping)
        receive(gateway, files[1:2], "a3")
    assert not written.path.exists()  # the sweep removed it: the receiver must not record it
    gateway.transfer_opened("a4")
    with pytest.raises(StorageError, match="removed"):
        gateway.instance_stored(written, "a4")
    gateway.sweep_once(now=far)

    assert query(gateway, "SELECT COUNT(*) FROM purge_files")[0][0] == 0
    recorded = recorded_paths(gateway)
    assert len(recorded) == 2 and all(path.is_file() for path in recorded)
    assert spool_files(gateway) == sorted(recorded)


# -- kill -9 of a real gateway inside the sweep ---------------------------------------

HARNESS = """
import sys, time
import radbridge.gateway.retention as retention

after, config = int(sys.argv[1]), sys.argv[-1]  # argv: N --config FILE
real, removed = retention.Sweeper._remove_spool_file, []

def remove(self, item):
    if len(removed) == after:  # parked inside the sweep, N files removed
        print("STAGE sweep", flush=True)
        while True:
            time.sleep(3600)
    removed.append(item)
    return real(self, item)

retention.Sweeper._remove_spool_file = remove
from radbridge.cli import main
sys.exit(main(["gateway", "run", "--config", config]))
"""


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 10])
def test_kill_9_during_the_sweep_leaves_a_consistent_store(tmp_path, phantom_study, after):
    port = free_port()
    config = write_config(
        tmp_path,
        port=port,
        pacs_port=free_port(),
        quiet=0.5,
        destinations=("archive",),
        extra="spool_retention_h = 0.001",  # 3.6 s
    )
    data = tmp_path / "data"
    files = files_of(phantom_study)
    command = [sys.executable, "-c", HARNESS, str(after)]
    gateway = GatewayProcess(config, port, command=command)
    try:
        assert Storescu(files, port).wait() == 0
        wait_until(lambda: "STAGE sweep" in gateway.log.read_text(), 120, "parked in the sweep")
        assert db_rows(data, "SELECT state FROM jobs") == [("done",)]
        assert db_rows(data, "SELECT COUNT(*) FROM instances") == [(0,)]  # claimed
        assert db_rows(data, "SELECT COUNT(*) FROM purge_files") == [(25,)]  # none forgotten
        assert len(list((data / "spool").rglob("*.dcm"))) == 24 - after
        gateway.kill9()
    finally:
        gateway.stop()

    before = len(gateway.log.read_text())
    restarted = GatewayProcess(config, port)
    try:
        wait_until(lambda: not db_rows(data, "SELECT * FROM purge_files"), 60, "files removed")
        assert list((data / "spool").rglob("*.dcm")) == []
        assert not (data / "outbox" / "1").exists()
        purged = gateway_status(config)["purged"]
        assert purged["bytes"] > 0  # (files removed before the kill are not counted)
        assert purged | {"bytes": 0} == {
            "series": 1,
            "instances": 24,
            "results": 1,
            "bytes": 0,
            "files_left": 0,
        }
        assert len(audit_events(data, "series purged")) == 1  # claimed once
        assert Storescu(files, port).wait() == 0  # the series sent again: a new version
        wait_until(lambda: len(db_rows(data, "SELECT * FROM jobs WHERE state = 'done'")) == 2)
        assert db_rows(data, "SELECT id, version, state FROM jobs ORDER BY id") == [
            (1, 1, "done"),
            (2, 2, "done"),
        ]
    finally:
        restarted.stop()
    log = restarted.log.read_text()[before:]
    assert "Traceback" not in log and "ERROR" not in log, log


def test_a_schema_5_database_gains_the_purge_records(tmp_path):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    store.record_instance("1.2", "1.2.3", "1.2.3.4", "ab" * 32, "a.dcm", now=2.0)
    store.close()
    with sqlite3.connect(path) as old:  # what a schema-5 gateway left behind
        old.executescript(BEFORE_RETENTION + "PRAGMA user_version = 5;")
    store = Store(path)
    try:
        row = store.series_row("1.2.3")
        assert (row.instance_count, row.purged_at, row.purged_instances) == (1, None, 0)
        assert store.purge_counts()["series"] == 0
        assert store.received_counts() == (1, 1)
    finally:
        store.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 8


def test_series_of_an_upgraded_database_are_kept_for_the_retention_from_the_upgrade(
    config, phantom_study, tmp_path, monkeypatch
):
    """A job an older gateway dead-lettered days ago can still be retried after the upgrade."""
    (tmp_path / "gpu_gone.py").write_text("def model(v, s):\n    raise RuntimeError('no GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = Rule("flaky", model="gpu_gone:model", match=Match(modality=("CT",)))
    changes = {"rules": (rule,), "max_attempts": 1, "spool_retention_h": 0.0}
    gateway = Gateway(replace(config, **changes))
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    gateway.close()
    ago = 100 * HOUR  # a schema-5 gateway dead-lettered the job 100 h ago
    times = {
        "series": ("first_received_at", "last_received_at", "settled_at"),
        "versions": ("created_at", "last_received_at"),
        "jobs": ("created_at", "started_at", "finished_at", "next_attempt_at"),
    }
    with sqlite3.connect(config.database) as old:
        for table, columns in times.items():
            old.execute(f"UPDATE {table} SET " + ", ".join(f"{c} = {c} - {ago}" for c in columns))
        old.executescript(BEFORE_RETENTION + "PRAGMA user_version = 5;")

    upgraded = time.time()
    gateway = Gateway(replace(config, **(changes | {"spool_retention_h": 72.0})))
    try:
        assert job_states(gateway) == [(1, 1, JobState.DEAD)]
        assert not gateway.sweep_once()  # the first start after the upgrade removes nothing
        assert not gateway.sweep_once(now=upgraded + 71 * HOUR)
        assert len(spool_files(gateway)) == 24
        assert gateway.sweep_once(now=upgraded + 73 * HOUR)  # 72 h after the upgrade
        assert spool_files(gateway) == []
    finally:
        gateway.close()
