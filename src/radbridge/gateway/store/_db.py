"""The connection under the gateway store: schema, pragmas, one lock, transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from radbridge.errors import GatewayError
from radbridge.gateway.store._group import CommitCounts, GroupCommit

__all__ = ["SCHEMA_VERSION", "Database"]

T = TypeVar("T")

#: Bumped whenever the tables change; an older database is upgraded by ``_MIGRATIONS``.
SCHEMA_VERSION = 8

_ALERTS = """
CREATE TABLE IF NOT EXISTS alerts (
    job_id INTEGER NOT NULL,
    target TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    answer TEXT,
    error TEXT,
    PRIMARY KEY (job_id, target)
);
CREATE INDEX IF NOT EXISTS alerts_ready ON alerts(state, next_attempt_at);
"""

#: The pseudonyms of de-identified series versions (schema 4; radbridge.gateway.deid).
_PSEUDONYMS = """
CREATE TABLE IF NOT EXISTS deid_seeds (
    series_instance_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    seed TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (series_instance_uid, version)
);
CREATE TABLE IF NOT EXISTS deid_uids (
    series_instance_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    original_uid TEXT NOT NULL,
    pseudonym_uid TEXT NOT NULL,
    PRIMARY KEY (series_instance_uid, version, original_uid)
);
"""

#: How many holds were ever placed on a series (schema 5): a version lifts only the hold
#: its inputs were read under, never one placed while it was being frozen.
_HOLDS = "ALTER TABLE series ADD COLUMN holds INTEGER NOT NULL DEFAULT 0;"

#: The files the retention sweep is removing (schema 6; radbridge.gateway.retention): a
#: purge records them here in the transaction that drops their instance rows, and a
#: row goes only once its file is gone, so a crash midway resumes the removal.
_PURGE_FILES = """
CREATE TABLE IF NOT EXISTS purge_files (
    path TEXT PRIMARY KEY,
    series_instance_uid TEXT NOT NULL,
    sop_instance_uid TEXT,
    kind TEXT NOT NULL
);
"""

#: What retention removed (schema 6): per series, when and how much; per version, when.
_PURGED = (
    """
ALTER TABLE series ADD COLUMN purged_at REAL;
ALTER TABLE series ADD COLUMN purged_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN purged_instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN purged_results INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN purged_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN purged_at REAL;
"""
    + _PURGE_FILES
)

#: Schema 7: the retention of the series a database already has when it is upgraded
#: counts from the upgrade (``retention_from``), not from their last event, so a
#: dead-lettered job of an older gateway can still be retried within spool_retention_h.
_RETENTION_FROM = (
    "ALTER TABLE series ADD COLUMN retention_from REAL; "
    "UPDATE series SET retention_from = (julianday('now') - 2440587.5) * 86400.0;"
)

#: Schema 8: what the sweep of unrecorded files removed (radbridge.gateway.orphans), by
#: kind: ``unrecorded`` spool files (renamed, never committed: never acknowledged) and
#: ``partial`` temporary files of writes a crash cut.
_SWEPT = """
CREATE TABLE IF NOT EXISTS swept (
    kind TEXT PRIMARY KEY,
    files INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
"""

#: schema version -> the statements that upgrade a database of that version by one
_MIGRATIONS = {2: _ALERTS, 3: _PSEUDONYMS, 4: _HOLDS, 5: _PURGED, 6: _RETENTION_FROM, 7: _SWEPT}

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY,
    opened_at REAL NOT NULL,
    last_activity_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT,
    refused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS transfer_series (
    transfer TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    PRIMARY KEY (transfer, series_instance_uid)
);
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series_instance_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    path TEXT NOT NULL,
    transfer TEXT,
    received_at REAL NOT NULL,
    UNIQUE (series_instance_uid, sop_instance_uid, sha256)
);
CREATE INDEX IF NOT EXISTS instances_sop ON instances(sop_instance_uid);
CREATE TABLE IF NOT EXISTS series (
    series_instance_uid TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    instance_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL NOT NULL,
    last_received_at REAL NOT NULL,
    settled_at REAL NOT NULL,
    open_transfers INTEGER NOT NULL DEFAULT 0,
    revision INTEGER NOT NULL DEFAULT 0,
    assembled_revision INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    expected_count INTEGER,
    held_reason TEXT,
    held_since REAL,
    held_at REAL,
    holds INTEGER NOT NULL DEFAULT 0,
    purged_at REAL,
    purged_version INTEGER NOT NULL DEFAULT 0,
    purged_instances INTEGER NOT NULL DEFAULT 0,
    purged_results INTEGER NOT NULL DEFAULT 0,
    purged_bytes INTEGER NOT NULL DEFAULT 0,
    retention_from REAL
);
CREATE TABLE IF NOT EXISTS versions (
    series_instance_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    instance_count INTEGER NOT NULL,
    last_received_at REAL NOT NULL,
    complete INTEGER NOT NULL,
    note TEXT,
    purged_at REAL,
    PRIMARY KEY (series_instance_uid, version)
);
CREATE TABLE IF NOT EXISTS version_inputs (
    series_instance_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (series_instance_uid, version, sop_instance_uid)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    series_instance_uid TEXT NOT NULL,
    study_instance_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    rule TEXT NOT NULL,
    model TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    instance_count INTEGER NOT NULL,
    error TEXT,
    UNIQUE (series_instance_uid, version, rule)
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, priority, next_attempt_at);
CREATE TABLE IF NOT EXISTS results (
    sop_instance_uid TEXT PRIMARY KEY,
    job_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    job_id INTEGER NOT NULL,
    destination TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    delivered_at REAL,
    error TEXT,
    PRIMARY KEY (job_id, destination, sop_instance_uid)
);
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries(state, next_attempt_at);
"""
    + _ALERTS
    + _PSEUDONYMS
    + _PURGE_FILES
    + _SWEPT
)


class Database:
    """One SQLite connection (WAL, synchronous=FULL) shared by threads under one lock.

    Parameters
    ----------
    path
        The SQLite file (created with its folder).

    Raises
    ------
    GatewayError
        The file holds the tables of a radbridge too old to upgrade (or newer), or
        the upgrade cannot be written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a WAL commit is fsynced before it returns (NORMAL would lose the last
        # commits on power loss: instances already acknowledged to the sender)
        self._db.execute("PRAGMA synchronous=FULL")
        self._check_schema()
        self._group = GroupCommit(self._db, self._lock, self.path)
        # the receivers' look-ups before a record read the last commit here, without
        # waiting for the writer's lock while a commit (an fsync) is under way
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._reader.row_factory = sqlite3.Row
        self._reader.execute("PRAGMA query_only=1")
        self._reading = threading.Lock()

    def _check_schema(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        tables = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if tables and version != SCHEMA_VERSION:
            self._upgrade(version)
        if not tables:  # a new database (an existing one is never written here: a
            # reader such as `gateway status` must work on a full disk)
            self._db.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )

    def _upgrade(self, version: int) -> None:
        """Bring a database of an older schema up to date, one committed step at a time."""
        if version > SCHEMA_VERSION or version not in _MIGRATIONS:
            self._db.close()
            raise GatewayError(
                f"the state database has schema {version}, this radbridge needs {SCHEMA_VERSION}",
                path=self.path,
                hint="let the old gateway finish its jobs, then start this one on a new data_dir",
            )
        while version < SCHEMA_VERSION:
            try:
                self._db.executescript(
                    f"BEGIN; {_MIGRATIONS[version]} PRAGMA user_version = {version + 1}; COMMIT;"
                )
            except sqlite3.Error as exc:
                self._db.close()
                raise GatewayError(
                    f"cannot upgrade the state database from schema {version} ({exc})",
                    path=self.path,
                    hint="free disk space and make the data directory writable, then start again",
                ) from exc
            version += 1

    def close(self) -> None:
        """Close the database."""
        with self._lock, self._reading:
            self._reader.close()
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements in one committed transaction (rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT may leave it open
                    self._db.execute("ROLLBACK")
                raise

    def _grouped(self, work: Callable[[sqlite3.Connection], T], *, records: int = 1) -> T:
        """Run ``work`` in a transaction shared with concurrent callers; return once durable.

        See :mod:`radbridge.gateway.store._group`: one commit (one fdatasync of
        the WAL) serves every record queued while the previous one ran.
        ``records``: how many arrival records ``work`` makes (counted).
        """
        return self._group.run(work, records=records)

    @property
    def commit_counts(self) -> CommitCounts:
        """The shared commits of arrival records so far (see :class:`CommitCounts`)."""
        return self._group.counts

    def _state_counts(self, table: str) -> dict[str, int]:
        """Return how many rows of ``table`` (jobs, deliveries, alerts) are in each state."""
        rows = self._rows(f"SELECT state, COUNT(*) AS n FROM {table} GROUP BY state")
        return {str(row["state"]): int(row["n"]) for row in rows}

    def _committed_rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        """Run a read query on what is committed, not waiting for a commit under way."""
        with self._reading:
            return list(self._reader.execute(sql, args))

    def _rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        """Run a read query."""
        with self._lock:
            return list(self._db.execute(sql, args))
