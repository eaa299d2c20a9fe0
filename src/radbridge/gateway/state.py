"""The gateway's durable state: one SQLite database (WAL) beside the spool.

Tables: ``instances`` (every stored instance, written after its file is durable),
``series`` (arrival bookkeeping and completeness), ``jobs`` (the queue), and
``deliveries`` (one row per result file and destination). Every state change is a
single committed transaction, so a crash at any point leaves a state the gateway
resumes from. Only UIDs, counts and timings are stored — no patient data.

Examples
--------
>>> import tempfile, pathlib
>>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "gateway.sqlite")
>>> store.record_instance("1.2.3", "1.2.3.4", "1.2.3.4.5", "spool/a.dcm", association="a1")
True
>>> store.series_row("1.2.3.4")["instance_count"]
1
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["JobState", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    path TEXT NOT NULL,
    association TEXT,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_series ON instances(series_instance_uid);
CREATE TABLE IF NOT EXISTS series (
    series_instance_uid TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    instance_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL NOT NULL,
    last_received_at REAL NOT NULL,
    open_associations INTEGER NOT NULL DEFAULT 0,
    expected_count INTEGER,
    version INTEGER NOT NULL DEFAULT 0,
    processed_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS associations (
    id TEXT PRIMARY KEY,
    opened_at REAL NOT NULL,
    released_at REAL
);
CREATE TABLE IF NOT EXISTS association_series (
    association TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    PRIMARY KEY (association, series_instance_uid)
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


class JobState:
    """Job states (a job moves queued → running → delivering → done, or → dead)."""

    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"
    DONE = "done"
    DEAD = "dead"


class Store:
    """Thread-safe access to the gateway database.

    Parameters
    ----------
    path
        The SQLite file (created with its folder).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements in one committed transaction (rolled back on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        """Run a read query."""
        with self._lock:
            return list(self._db.execute(sql, args))

    # -- arrivals -------------------------------------------------------------

    def open_association(self, association: str, now: float | None = None) -> None:
        """Record that an association started (its series are not complete before release)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO associations (id, opened_at) VALUES (?, ?)",
                (association, now or time.time()),
            )

    def release_association(self, association: str, now: float | None = None) -> None:
        """Record that an association ended (released or aborted)."""
        stamp = now or time.time()
        with self.transaction() as db:
            db.execute("UPDATE associations SET released_at = ? WHERE id = ?", (stamp, association))
            db.execute(
                "UPDATE series SET open_associations = MAX(open_associations - 1, 0), "
                "last_received_at = MAX(last_received_at, ?) WHERE series_instance_uid IN "
                "(SELECT series_instance_uid FROM association_series WHERE association = ?)",
                (stamp, association),
            )

    def record_instance(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        path: str,
        *,
        association: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Record a durably stored instance; return False for a duplicate SOP Instance UID."""
        stamp = now or time.time()
        with self.transaction() as db:
            seen = db.execute(
                "SELECT 1 FROM instances WHERE sop_instance_uid = ?", (sop_uid,)
            ).fetchone()
            if seen:
                db.execute(
                    "UPDATE series SET last_received_at = ? WHERE series_instance_uid = ?",
                    (stamp, series_uid),
                )
                return False
            db.execute(
                "INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?)",
                (sop_uid, study_uid, series_uid, path, association, stamp),
            )
            db.execute(
                "INSERT INTO series (series_instance_uid, study_instance_uid, instance_count, "
                "first_received_at, last_received_at) VALUES (?, ?, 1, ?, ?) "
                "ON CONFLICT(series_instance_uid) DO UPDATE SET "
                "instance_count = instance_count + 1, last_received_at = excluded.last_received_at",
                (series_uid, study_uid, stamp, stamp),
            )
            if association:
                added = db.execute(
                    "INSERT OR IGNORE INTO association_series VALUES (?, ?)",
                    (association, series_uid),
                ).rowcount
                if added:
                    db.execute(
                        "UPDATE series SET open_associations = open_associations + 1 "
                        "WHERE series_instance_uid = ?",
                        (series_uid,),
                    )
            return True

    def series_row(self, series_uid: str) -> sqlite3.Row:
        """Return the bookkeeping row of one series."""
        rows = self.query("SELECT * FROM series WHERE series_instance_uid = ?", series_uid)
        if not rows:
            raise KeyError(series_uid)
        return rows[0]

    def instance_paths(self, series_uid: str) -> list[str]:
        """Spool paths of a series' instances, in arrival order."""
        return [
            row["path"]
            for row in self.query(
                "SELECT path FROM instances WHERE series_instance_uid = ? ORDER BY received_at",
                series_uid,
            )
        ]

    def recover_open_associations(self) -> int:
        """After a restart no association is open: close what a crash left open."""
        with self.transaction() as db:
            count = db.execute(
                "UPDATE associations SET released_at = opened_at WHERE released_at IS NULL"
            ).rowcount
            db.execute("UPDATE series SET open_associations = 0")
        return int(count)
