"""Group commit of arrival records: concurrent arrivals share one SQLite commit.

Each receiver thread waits until the commit holding its record is durable; a
failed shared commit fails every record in it and records none of them. The
commit fault is injected into the store's own SQLite connection with SQLite's
hooks (a trace callback sees the statements, a progress handler interrupts the
COMMIT of a transaction that holds instance rows): a real disk cannot be made to
fail exactly there on demand. The senders are real DCMTK ``storescu`` processes,
several associations at once. The order of the system calls (no Success before
the fdatasync of the WAL that holds its row) is checked with strace in
tests/gateway/test_durability.py.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest

from radbridge.errors import StorageError
from radbridge.gateway import Gateway
from radbridge.gateway.store import Store
from radbridge.io.phantom import write_phantom
from tests.peers import free_port
from tests.peers.dcmtk import storescu_at_once

from .conftest import query

THREADS = 8


@contextmanager
def failing_instance_commits(store: Store) -> Iterator[None]:
    """Make every COMMIT of a transaction that inserted an instance row fail (interrupted)."""
    state = threading.local()

    def trace(sql: str) -> None:
        text = sql.lstrip().upper()
        if text.startswith("BEGIN"):
            state.instances = False
        elif text.startswith("INSERT INTO INSTANCES"):
            state.instances = True
        state.sql = text

    def interrupt() -> int:
        return int(getattr(state, "sql", "").startswith("COMMIT") and state.instances)

    connection: sqlite3.Connection = store._db  # the fault belongs in this very connection
    connection.set_trace_callback(trace)
    connection.set_progress_handler(interrupt, 1)
    try:
        yield
    finally:
        connection.set_progress_handler(None, 1)
        connection.set_trace_callback(None)


@contextmanager
def writer_busy(database: Path, seconds: float) -> Iterator[None]:
    """Another connection holds SQLite's write lock for ``seconds`` (as a CLI writing would).

    The first record waits for it in BEGIN, and the records of the other threads
    queue meanwhile: they share its commit, whatever the scheduling.
    """
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, other.execute, ("COMMIT",))
    release.start()
    try:
        yield
    finally:
        release.join()
        other.close()


def record_at_once(store: Store, sops: list[str]) -> list[str | BaseException]:
    """Record one instance per thread, all threads started while the writer is busy."""

    def record(sop: str) -> str | BaseException:
        try:
            return store.record_instance("1.2", "1.2.3", sop, "ab" * 32, f"{sop}.dcm", transfer="t")
        except Exception as exc:
            return exc

    with writer_busy(store.path, 0.5), ThreadPoolExecutor(len(sops)) as pool:
        return list(pool.map(record, sops))


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "gateway.sqlite")
    opened.open_transfer("t")
    yield opened
    opened.close()


def test_records_made_at_once_share_commits(store):
    outcomes = record_at_once(store, [f"1.2.3.{k}" for k in range(THREADS)])
    assert outcomes == ["new"] * THREADS
    counts = store.commit_counts
    assert counts.units == THREADS and counts.failed == 0
    assert counts.commits < THREADS, counts  # at least one commit held several records
    assert store.series_row("1.2.3").instance_count == THREADS


def test_one_record_alone_commits_at_once(store):
    assert store.record_instance("1.2", "1.2.3", "1.2.3.1", "ab" * 32, "a.dcm") == "new"
    assert store.commit_counts.commits == 1 and store.commit_counts.units == 1


def test_a_failed_shared_commit_fails_every_record_in_it_and_records_none(store, tmp_path):
    with failing_instance_commits(store):
        outcomes = record_at_once(store, [f"1.2.3.{k}" for k in range(THREADS)])
    assert all(isinstance(o, StorageError) for o in outcomes), outcomes
    assert "none of them was recorded" in str(outcomes[0])
    counts = store.commit_counts
    assert counts.failed == counts.commits and counts.units == THREADS
    assert counts.commits < THREADS, counts  # a failed commit held several records
    assert query(tmp_path / "gateway.sqlite", "SELECT * FROM instances") == []
    assert query(tmp_path / "gateway.sqlite", "SELECT * FROM series") == []
    # the connection is usable afterwards (no transaction left open)
    assert store.record_instance("1.2", "1.2.3", "1.2.3.1", "ab" * 32, "a.dcm") == "new"


def test_a_record_that_fails_alone_leaves_the_others_of_its_commit(store):
    sops = [f"1.2.3.{k}" for k in range(THREADS)]
    sops[3] = None  # its INSERT fails (NOT NULL); the others are recorded
    outcomes = record_at_once(store, sops)
    assert isinstance(outcomes[3], sqlite3.IntegrityError)
    assert [o for k, o in enumerate(outcomes) if k != 3] == ["new"] * (THREADS - 1)
    assert store.series_row("1.2.3").instance_count == THREADS - 1
    assert store.commit_counts.failed == 0


@pytest.fixture(scope="module")
def sixty_four_slices(tmp_path_factory) -> list[Path]:
    study = write_phantom(tmp_path_factory.mktemp("group"), slices=64, size=32, seed=5)
    return sorted(study.dicom_dir.glob("*.dcm"))


def send_on_four_associations(files: list[Path], port: int) -> list[int]:
    """Four storescu processes at once (no halt on a failure: exit code 0 even then)."""
    sent = storescu_at_once(files, "127.0.0.1", port, 4, called_aet="RADBRIDGE", extra_args=["-nh"])
    return [result.returncode for result in sent]


def recorded_sops(gateway: Gateway) -> set[str]:
    return {r[0] for r in query(gateway, "SELECT sop_instance_uid FROM instances")}


@pytest.mark.peer
def test_four_associations_share_commits_and_a_failed_one_refuses_all(config, sixty_four_slices):
    files = sixty_four_slices
    sops = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    gateway = Gateway(config)
    scp = gateway.receiver(port=free_port()).start()
    try:
        # the writer held busy at the start: the first instances of the four associations
        # queue behind it and share a commit whatever the machine's load (without it,
        # on a busy machine each commit could happen to hold one instance)
        with failing_instance_commits(gateway.store), writer_busy(gateway.store.path, 1.5):
            send_on_four_associations(sixty_four_slices, scp.port)
        assert scp.stats.stored == 0 and scp.stats.failed == len(sixty_four_slices)
        assert recorded_sops(gateway) == set()
        failed = gateway.store.commit_counts
        assert failed.failed == failed.commits and failed.units == len(sixty_four_slices)
        assert failed.commits < failed.units, failed  # failed commits held several instances
        # the same files again, the disk healthy: every one recorded, fewer commits than files
        with writer_busy(gateway.store.path, 1.5):
            sent = send_on_four_associations(sixty_four_slices, scp.port)
        assert sent == [0, 0, 0, 0]
        assert recorded_sops(gateway) == sops
        counts = gateway.store.commit_counts
        assert counts.units - failed.units == len(sixty_four_slices)
        assert counts.commits - failed.commits < len(sixty_four_slices), counts
    finally:
        scp.stop()
        gateway.close()
