"""Files no record names: unrecorded spool files and partial writes are swept, nothing else.

A spool file renamed but never committed (a crash between the two, or a record
that failed: never acknowledged) and a temporary file a killed writer left are
removed; a file a record names, or a receiver is recording, never is. The slow
tests kill a real `radbridge gateway run` between a rename and its commit, and
race the sweep against DCMTK storescu.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pydicom
import pytest

from radbridge.gateway import Gateway
from radbridge.gateway.status import status
from radbridge.io.storage import StreamedFile, remove_stale_temporaries
from tests.gateway.processes import (
    GatewayProcess,
    Storescu,
    audit_events,
    db_rows,
    gateway_status,
    jobs_done,
    wait_until,
    write_config,
)
from tests.peers import free_port

from .conftest import files_of, query, receive, spool

HOUR = 3600.0


def _audit(gateway, event):
    lines = gateway.config.audit_log.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event]


def _partial(folder: Path, name: str = ".rb-tmp-0123abcd") -> Path:
    """A temporary file as a writer killed mid-write leaves it (no lock, written a while ago)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"half an instance")
    old = time.time() - 120
    os.utime(path, (old, old))
    return path


def _recorded(gateway):
    return {Path(r["path"]) for r in query(gateway, "SELECT path FROM instances")}


def test_what_a_crash_left_is_removed_at_the_next_start_and_nothing_recorded(config, phantom_study):
    files = files_of(phantom_study)
    first = Gateway(config)
    receive(first, files[:20])
    unrecorded = spool(first, files[20]).path  # renamed, then the crash: never committed
    series_dir = unrecorded.parent
    partials = [_partial(series_dir), _partial(config.outbox_dir / "3")]
    foreign = series_dir / "notes.txt"  # not a name the spool gives: never touched
    foreign.write_text("kept")
    recorded = _recorded(first)
    first.close()

    gateway = Gateway(config)  # the restart
    try:
        while gateway.orphans.sweep():
            pass
        assert not unrecorded.exists() and not any(p.exists() for p in partials)
        assert foreign.exists()
        assert all(path.is_file() for path in recorded) and len(recorded) == 20
        assert sorted(series_dir.glob("*.dcm")) == sorted(recorded)
        swept = status(gateway.store)["swept"]
        assert swept["unrecorded"] == 1 and swept["partial"] == 2
        assert swept["unrecorded_bytes"] == files[20].stat().st_size
        metrics = gateway.metrics.exposition()[0].decode()
        assert 'radbridge_swept_files_total{kind="unrecorded"} 1.0' in metrics
        assert 'radbridge_swept_files_total{kind="partial"} 2.0' in metrics
        (event,) = _audit(gateway, "unrecorded files removed")
        sop = str(pydicom.dcmread(files[20], stop_before_pixels=True).SOPInstanceUID)
        assert event["sop_instance_uids"] == [sop] and event["files"] == 1
        name = str(pydicom.dcmread(files[0], stop_before_pixels=True).PatientName)
        assert name not in gateway.config.audit_log.read_text()
        # the sender sends the instance again: recorded as a new one, and kept
        receive(gateway, files[20:], "a2")
        assert not gateway.orphans.sweep(now=time.time() + 10 * HOUR)
        assert len(_recorded(gateway)) == 24 and all(p.is_file() for p in _recorded(gateway))
    finally:
        gateway.close()


def test_an_unrecorded_file_of_this_run_goes_only_after_an_hour(config, phantom_study):
    files = files_of(phantom_study)
    gateway = Gateway(config)
    try:
        receive(gateway, files[:3])
        refused = spool(gateway, files[3]).path  # its record failed: refused, never acknowledged
        assert not gateway.orphans.sweep(now=time.time() + HOUR - 60)
        assert refused.exists()
        gateway.orphans.sweep(now=time.time() + HOUR + 60)
        assert not refused.exists() and len(_recorded(gateway)) == 3
        assert all(path.is_file() for path in _recorded(gateway))
    finally:
        gateway.close()


def test_a_file_a_receiver_is_recording_is_never_removed(config, phantom_study, monkeypatch):
    """The receiver registers its file, checks it is there, commits; the sweep runs meanwhile."""
    files = files_of(phantom_study)
    gateway = Gateway(config)
    try:
        real = gateway.store.record_instances
        far = time.time() + 10 * HOUR  # any file not in use or recorded would go

        def record_while_sweeping(rows, **options):
            gateway.orphans.sweep(now=far)
            return real(rows, **options)

        monkeypatch.setattr(gateway.store, "record_instances", record_while_sweeping)
        receive(gateway, files[:5])
        monkeypatch.undo()
        gateway.orphans.sweep(now=far)
        recorded = _recorded(gateway)
        assert len(recorded) == 5 and all(path.is_file() for path in recorded)
        assert status(gateway.store)["swept"]["unrecorded"] == 0
    finally:
        gateway.close()


def test_files_older_than_the_database_are_kept(config, phantom_study):
    """A database deleted (or replaced) does not make the whole spool unrecorded."""
    files = files_of(phantom_study)
    first = Gateway(config)
    receive(first, files[:4])
    first.close()
    time.sleep(0.05)
    for path in (config.database, config.database.with_name(config.database.name + "-wal")):
        path.unlink(missing_ok=True)
    config.database.with_name(config.database.name + "-shm").unlink(missing_ok=True)
    gateway = Gateway(config)  # a new, empty database beside the old spool
    try:
        receive(gateway, files[10:12], "a2")
        gateway.orphans.sweep(now=time.time() + 10 * HOUR)
        assert len(list(config.spool_dir.rglob("*.dcm"))) == 6
    finally:
        gateway.close()


def test_a_live_temporary_file_is_kept(config):
    gateway = Gateway(config)
    try:
        folder = config.spool_dir / "1.2.3" / "1.2.3.4"
        writing = StreamedFile(folder)  # a STOW-RS part streaming in
        writing.write(b"part of a part")
        writing.sync()  # synced and closed, waiting in its batch for the rename
        old = time.time() - HOUR
        os.utime(writing.temporary, (old, old))
        gateway.orphans.sweep(now=time.time() + HOUR)
        assert writing.temporary.exists()
        writing.place(folder / "1.2.3.4.5.0123456789abcdef.dcm")
    finally:
        gateway.close()


def test_the_start_sweep_of_temporaries_keeps_a_live_writers_file(tmp_path):
    """`gateway run` starts the C-STORE SCP, then the STOW-RS server sweeps the spool."""
    folder = tmp_path / "spool" / "1.2" / "1.2.3"
    writing = StreamedFile(folder)  # an instance arriving by C-STORE meanwhile
    writing.write(b"DICM" * 100)
    assert remove_stale_temporaries(tmp_path / "spool", grace_s=0.0) == 0
    writing.commit(folder / "1.2.3.4.dcm")  # stored, not refused
    assert (folder / "1.2.3.4.dcm").read_bytes() == b"DICM" * 100


# -- real gateway processes --------------------------------------------------------

KILL_BEFORE_COMMIT = """
import sys, time
from pathlib import Path
import radbridge.gateway.service as service
from radbridge.io.storage import StreamedFile, remove_stale_temporaries

park_at, config = int(sys.argv[1]), sys.argv[-1]  # argv: N --config FILE
real, seen = service.Gateway.instances_stored, []

def instances_stored(self, instances, transfer_id):
    seen.extend(instances)
    if len(seen) == park_at:  # renamed into the spool, its row not yet committed
        writing = StreamedFile(Path(instances[0].path).parent)  # a write the kill cuts
        writing.write(b"half an instance")
        writing.flush()
        print("STAGE recording " + instances[0].sop_instance_uid, flush=True)
        while True:
            time.sleep(3600)
    return real(self, instances, transfer_id)

service.Gateway.instances_stored = instances_stored
from radbridge.cli import main
sys.exit(main(["gateway", "run", "--config", config]))
"""


def _setup(tmp_path: Path, **options) -> tuple[Path, int, Path]:
    """A gateway.toml delivering to the archive; its port and data folder."""
    port = free_port()
    options = {"quiet": 0.5, **options}
    config = write_config(
        tmp_path, port=port, pacs_port=free_port(), destinations=("archive",), **options
    )
    return config, port, tmp_path / "data"


def _acknowledged(sender: Storescu) -> set[str]:
    """The files storescu was told were stored (Success after their Sending line)."""
    acked, current = set(), None
    for line in sender.output:
        if "Sending file:" in line:
            current = line.split("Sending file:", 1)[1].strip()
        elif "Received Store Response (Success)" in line and current:
            acked.add(str(pydicom.dcmread(current, stop_before_pixels=True).SOPInstanceUID))
    return acked


def _check_acknowledged_present(data: Path, acked: set[str]) -> None:
    rows = db_rows(data, "SELECT sop_instance_uid, path FROM instances")
    recorded = {sop for sop, _ in rows}
    assert acked <= recorded, acked - recorded
    assert all(Path(path).is_file() for _, path in rows)


@pytest.mark.peer
@pytest.mark.slow
def test_kill_9_between_rename_and_commit_leaves_nothing_behind(tmp_path, phantom_study):
    config, port, data = _setup(tmp_path)
    files = files_of(phantom_study)
    gateway = GatewayProcess(config, port, command=[sys.executable, "-c", KILL_BEFORE_COMMIT, "10"])
    sender = Storescu(files, port)
    try:
        line = wait_until(
            lambda: next(
                (x for x in gateway.log.read_text().splitlines() if "STAGE recording" in x), None
            ),
            120,
            "parked before the commit",
        )
        sop = line.split()[-1]
        gateway.kill9()
    finally:
        gateway.stop()
    sender.wait(60)
    acked = _acknowledged(sender)
    assert len(acked) == 9 and sop not in acked  # the tenth was never acknowledged
    (unrecorded,) = (data / "spool").rglob(f"{sop}.*.dcm")
    (partial,) = (data / "spool").rglob(".rb-tmp-*")
    assert db_rows(data, "SELECT COUNT(*) FROM instances") == [(9,)]

    before = len(gateway.log.read_text())
    restarted = GatewayProcess(config, port)
    try:
        wait_until(lambda: not unrecorded.exists() and not partial.exists(), 60, "swept")
        _check_acknowledged_present(data, acked)
        swept = gateway_status(config)["swept"]
        assert (swept["unrecorded"], swept["partial"]) == (1, 1)
        assert swept["unrecorded_bytes"] > 0
        (event,) = audit_events(data, "unrecorded files removed")
        assert event["sop_instance_uids"] == [sop]
        assert Storescu(files, port).wait() == 0  # the sender sends the series again
        wait_until(lambda: jobs_done(data), 180, "the job done")
        assert db_rows(data, "SELECT instance_count FROM jobs") == [(24,)]
        _check_acknowledged_present(data, {str(pydicom.dcmread(f).SOPInstanceUID) for f in files})
    finally:
        restarted.stop()
    log = restarted.log.read_text()[before:]
    assert "Traceback" not in log and "ERROR" not in log, log


RACING = """
import sys
import radbridge.gateway.orphans as orphans

if sys.argv[1] == "at-once":
    # every unrecorded file is fair game at once: only the receivers' registration,
    # the records and the check before the commit protect what is being received
    orphans.UNRECORDED_AGE_S = 0.0
orphans.PASS_INTERVAL_S = 0.0
orphans.ENTRIES_PER_ROUND = 8
real, rounds = orphans.OrphanSweep.sweep, [0]

def sweep(self, **options):
    rounds[0] += 1
    if rounds[0] % 20 == 0:
        print(f"ROUNDS {rounds[0]}", flush=True)
    return real(self, **options)

orphans.OrphanSweep.sweep = sweep
from radbridge.cli import main
sys.exit(main(["gateway", "run", "--config", sys.argv[-1]]))
"""


@pytest.mark.peer
@pytest.mark.slow
@pytest.mark.parametrize("age", ["at-once", "default"])
def test_a_sweep_racing_live_receivers_loses_no_acknowledged_instance(tmp_path, phantom_study, age):
    # quiet 30 s: no job reads the spool meanwhile, the race is the receivers' alone
    config, port, data = _setup(tmp_path, quiet=30.0, extra="poll_s = 0.005")
    files = files_of(phantom_study)
    gateway = GatewayProcess(config, port, command=[sys.executable, "-c", RACING, age])

    def rounds() -> int:
        lines = gateway.log.read_text().splitlines()
        return max([int(x.split()[1]) for x in lines if x.startswith("ROUNDS")], default=0)

    try:
        before = wait_until(rounds, 60, "the sweep running")
        senders = []
        for _ in range(3):  # three associations at once, then three more: same names raced
            senders += [Storescu(files, port) for _ in range(3)]
            for sender in senders[-3:]:
                sender.wait(120)
        acked = set().union(*map(_acknowledged, senders))
        assert rounds() > before, "the sweep did not run while receiving"
        assert len(acked) == 24
        _check_acknowledged_present(data, acked)
        assert db_rows(data, "SELECT COUNT(*) FROM instances") == [(24,)]
        if age == "default":  # the age keeps the sweep off what receivers renamed just now
            assert all(sender.proc.returncode == 0 for sender in senders)
            assert gateway_status(config)["swept"]["unrecorded"] == 0
    finally:
        gateway.stop()
