"""The gateway's durable state: one SQLite database (WAL, synchronous=FULL) beside the spool.

Tables: ``transfers`` (each association or STOW-RS request and how it ended),
``instances`` (every stored content, written after its file is durable),
``series`` (arrival bookkeeping, holds, completeness), ``versions`` and
``version_inputs`` (the frozen input set of each version), ``jobs`` (the
queue), ``results`` (every result object and its digest) and ``deliveries``
(one row per result file and destination). Every state change is a single
committed transaction, so a crash at any point leaves a state the gateway
resumes from. Only UIDs, digests, counts and timings are stored — no patient
data.

Examples
--------
>>> import tempfile, pathlib
>>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "gateway.sqlite")
>>> store.open_transfer("t1", now=1.0)
>>> store.record_instance("1.2.3", "1.2.3.4", "1.2.3.4.5", "ab" * 32, "a.dcm",
...                       transfer="t1", now=2.0)
'new'
>>> store.end_transfer("t1", "aborted", now=3.0)
['1.2.3.4']
>>> store.series_row("1.2.3.4")["held_reason"]
'transfer aborted'
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radbridge.errors import GatewayError

__all__ = ["JobState", "Store", "VersionInput"]

#: Bumped whenever the tables change incompatibly.
SCHEMA_VERSION = 2

_SCHEMA = """
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
    held_at REAL
);
CREATE TABLE IF NOT EXISTS versions (
    series_instance_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    instance_count INTEGER NOT NULL,
    last_received_at REAL NOT NULL,
    complete INTEGER NOT NULL,
    note TEXT,
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


class JobState:
    """Job states (a job moves queued → running → delivering → done, or → dead)."""

    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True)
class VersionInput:
    """One instance content a version of a series is built from."""

    sop_instance_uid: str
    sha256: str
    path: str


def _hold_reason(outcome: str, refused: int) -> str:
    if outcome == "released":
        return f"{refused} instance(s) refused"
    return f"transfer {outcome}"


class Store:
    """Thread-safe access to the gateway database.

    Parameters
    ----------
    path
        The SQLite file (created with its folder).

    Raises
    ------
    GatewayError
        The file holds the tables of an older radbridge.
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

    def _check_schema(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        tables = self._db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if tables and version != SCHEMA_VERSION:
            self._db.close()
            raise GatewayError(
                f"the state database has schema {version}, this radbridge needs {SCHEMA_VERSION}",
                path=self.path,
                hint="let the old gateway finish its jobs, then start this one on a new data_dir",
            )
        if not tables:  # a new database (an existing one is never written here: a
            # reader such as `gateway status` must work on a full disk)
            self._db.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )

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

    # -- transfers and arrivals ------------------------------------------------

    def open_transfer(self, transfer: str, *, now: float | None = None) -> None:
        """Record that a transfer started (its series are not complete before it ends)."""
        stamp = now or time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO transfers (id, opened_at, last_activity_at) "
                "VALUES (?, ?, ?)",
                (transfer, stamp, stamp),
            )

    def record_instance(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        sha256: str,
        path: str,
        *,
        transfer: str | None = None,
        now: float | None = None,
    ) -> str:
        """Record a durably stored content; return ``new``, ``changed`` or ``duplicate``.

        ``duplicate``: this series already holds this SOP Instance UID with this
        digest (an identical re-send). ``changed``: it holds the UID with another
        digest; both contents are kept and the series needs a new version.
        """
        stamp = now or time.time()
        with self.transaction() as db:
            known = {
                row[0]
                for row in db.execute(
                    "SELECT sha256 FROM instances WHERE series_instance_uid = ? AND "
                    "sop_instance_uid = ?",
                    (series_uid, sop_uid),
                )
            }
            kind = "duplicate" if sha256 in known else ("changed" if known else "new")
            if kind != "duplicate":
                db.execute(
                    "INSERT INTO instances (series_instance_uid, sop_instance_uid, sha256, "
                    "study_instance_uid, path, transfer, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (series_uid, sop_uid, sha256, study_uid, path, transfer, stamp),
                )
            db.execute(
                "INSERT INTO series (series_instance_uid, study_instance_uid, first_received_at, "
                "last_received_at, settled_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(series_instance_uid) DO UPDATE SET "
                "last_received_at = excluded.last_received_at, settled_at = excluded.settled_at",
                (series_uid, study_uid, stamp, stamp, stamp),
            )
            if kind != "duplicate":
                db.execute(
                    "UPDATE series SET revision = revision + 1, "
                    "instance_count = instance_count + ? WHERE series_instance_uid = ?",
                    (int(kind == "new"), series_uid),
                )
            if transfer:
                self._link(db, transfer, series_uid, stamp)
            return kind

    @staticmethod
    def _link(db: sqlite3.Connection, transfer: str, series_uid: str, stamp: float) -> None:
        db.execute("UPDATE transfers SET last_activity_at = ? WHERE id = ?", (stamp, transfer))
        added = db.execute(
            "INSERT OR IGNORE INTO transfer_series VALUES (?, ?)", (transfer, series_uid)
        ).rowcount
        if added:
            db.execute(
                "UPDATE series SET open_transfers = open_transfers + 1 "
                "WHERE series_instance_uid = ?",
                (series_uid,),
            )

    def contents(self, series_uid: str, sop_uid: str) -> list[VersionInput]:
        """Return the contents stored for a SOP Instance UID of a series, oldest first."""
        return self._inputs(
            "SELECT * FROM instances WHERE series_instance_uid = ? AND sop_instance_uid = ? "
            "ORDER BY id",
            series_uid,
            sop_uid,
        )

    def _inputs(self, sql: str, *args: Any) -> list[VersionInput]:
        return [
            VersionInput(row["sop_instance_uid"], row["sha256"], row["path"])
            for row in self.query(sql, *args)
        ]

    def series_of_sop(self, sop_uid: str) -> list[str]:
        """Return every series that holds a SOP Instance UID."""
        return [
            row[0]
            for row in self.query(
                "SELECT DISTINCT series_instance_uid FROM instances WHERE sop_instance_uid = ?",
                sop_uid,
            )
        ]

    def end_transfer(
        self,
        transfer: str,
        outcome: str,
        *,
        refused: int = 0,
        refused_series: Iterable[str] = (),
        last_activity_at: float | None = None,
        reason: str | None = None,
        now: float | None = None,
    ) -> list[str]:
        """Record how a transfer ended; return the series it put on hold.

        A transfer that was not released, or had refused instances, holds every
        series it touched (and every series of a refused instance) — unless a
        clean transfer of that series opened after its last activity already
        ended. A clean transfer lifts the holds placed before it opened.
        """
        stamp = now or time.time()
        with self.transaction() as db:
            row = db.execute("SELECT * FROM transfers WHERE id = ?", (transfer,)).fetchone()
            if row is None or row["ended_at"] is not None:
                return []
            db.execute(
                "UPDATE transfers SET ended_at = ?, outcome = ?, refused = ? WHERE id = ?",
                (stamp, outcome, refused, transfer),
            )
            db.execute(
                "UPDATE series SET open_transfers = MAX(open_transfers - 1, 0), "
                "settled_at = MAX(settled_at, ?) WHERE series_instance_uid IN "
                "(SELECT series_instance_uid FROM transfer_series WHERE transfer = ?)",
                (stamp, transfer),
            )
            for series_uid in set(refused_series):
                db.execute(
                    "INSERT OR IGNORE INTO transfer_series SELECT ?, series_instance_uid "
                    "FROM series WHERE series_instance_uid = ?",
                    (transfer, series_uid),
                )
            touched = [
                r[0]
                for r in db.execute(
                    "SELECT series_instance_uid FROM transfer_series WHERE transfer = ?",
                    (transfer,),
                )
            ]
            if outcome == "released" and not refused:
                db.execute(
                    "UPDATE series SET held_reason = NULL, held_since = NULL, held_at = NULL, "
                    "settled_at = MAX(settled_at, ?) WHERE held_reason IS NOT NULL AND "
                    "held_since < ? AND series_instance_uid IN "
                    "(SELECT series_instance_uid FROM transfer_series WHERE transfer = ?)",
                    (stamp, row["opened_at"], transfer),
                )
                return []
            since = max(float(row["last_activity_at"]), last_activity_at or 0.0)
            why = reason or _hold_reason(outcome, refused)
            return self._hold_touched(db, touched, why, since, stamp)

    @staticmethod
    def _hold_touched(
        db: sqlite3.Connection, touched: list[str], reason: str, since: float, stamp: float
    ) -> list[str]:
        held = []
        for series_uid in touched:
            cleared_later = db.execute(
                "SELECT 1 FROM transfer_series ts JOIN transfers t ON t.id = ts.transfer "
                "WHERE ts.series_instance_uid = ? AND t.outcome = 'released' AND t.refused = 0 "
                "AND t.opened_at > ?",
                (series_uid, since),
            ).fetchone()
            if cleared_later:
                continue
            db.execute(
                "UPDATE series SET held_reason = ?, held_since = MAX(COALESCE(held_since, 0), ?), "
                "held_at = ?, settled_at = MAX(settled_at, ?) WHERE series_instance_uid = ?",
                (reason, since, stamp, stamp, series_uid),
            )
            held.append(series_uid)
        return held

    def hold(self, series_uid: str, reason: str, *, now: float | None = None) -> None:
        """Put a series on hold (a later clean transfer of it lifts the hold)."""
        stamp = now or time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE series SET held_reason = ?, held_since = ?, held_at = ? "
                "WHERE series_instance_uid = ?",
                (reason, stamp, stamp, series_uid),
            )

    def recover_open_transfers(self, *, now: float | None = None) -> tuple[int, list[str]]:
        """After a restart no transfer is open: end what a crash left open, as ``failed``.

        Their series are held. Series waiting for their quiet period restart it
        now (the gateway was not listening for part of it). Returns the number of
        transfers ended and the series held.
        """
        stamp = now or time.time()
        open_ids = [
            r[0] for r in self.query("SELECT id FROM transfers WHERE ended_at IS NULL ORDER BY id")
        ]
        held: list[str] = []
        for transfer in open_ids:
            held += self.end_transfer(
                transfer, "failed", reason="transfer interrupted by a restart", now=stamp
            )
        with self.transaction() as db:
            db.execute("UPDATE series SET open_transfers = 0")
            db.execute(
                "UPDATE series SET settled_at = MAX(settled_at, ?) "
                "WHERE revision > assembled_revision",
                (stamp,),
            )
        return len(open_ids), sorted(set(held))

    def series_row(self, series_uid: str) -> sqlite3.Row:
        """Return the bookkeeping row of one series."""
        rows = self.query("SELECT * FROM series WHERE series_instance_uid = ?", series_uid)
        if not rows:
            raise KeyError(series_uid)
        return rows[0]

    # -- completeness and versions ---------------------------------------------

    def settled_series(self, quiet_period_s: float, now: float) -> list[sqlite3.Row]:
        """Series with new content, no open transfer, no hold, quiet for ``quiet_period_s``."""
        return self.query(
            "SELECT * FROM series WHERE revision > assembled_revision AND open_transfers = 0 "
            "AND held_reason IS NULL AND settled_at + ? <= ?",
            quiet_period_s,
            now,
        )

    def stale_held_series(self, incomplete_after_s: float, now: float) -> list[sqlite3.Row]:
        """Held series with new content and no arrival or transfer for ``incomplete_after_s``."""
        return self.query(
            "SELECT * FROM series WHERE revision > assembled_revision AND open_transfers = 0 "
            "AND held_reason IS NOT NULL AND settled_at + ? <= ?",
            incomplete_after_s,
            now,
        )

    def current_inputs(self, series_uid: str) -> list[VersionInput]:
        """Return the newest content of every SOP Instance UID of a series (arrival order)."""
        return self._inputs(
            "SELECT i.* FROM instances i JOIN (SELECT MAX(id) AS id FROM instances "
            "WHERE series_instance_uid = ? GROUP BY sop_instance_uid) m ON m.id = i.id "
            "ORDER BY i.id",
            series_uid,
        )

    def snapshot_inputs(self, series_uid: str) -> tuple[int, list[VersionInput]]:
        """Return the series' revision and :meth:`current_inputs`, read consistently."""
        with self._lock:
            revision = int(self.series_row(series_uid)["revision"])
            return revision, self.current_inputs(series_uid)

    def version_inputs(self, series_uid: str, version: int) -> list[VersionInput]:
        """Return the frozen inputs of one version of a series."""
        return self._inputs(
            "SELECT * FROM version_inputs WHERE series_instance_uid = ? AND version = ? "
            "ORDER BY rowid",
            series_uid,
            version,
        )

    def create_version(
        self,
        series_uid: str,
        inputs: list[VersionInput],
        jobs: list[dict[str, Any]],
        *,
        complete: bool,
        note: str | None = None,
        revision: int | None,
        now: float | None = None,
    ) -> tuple[int, list[int]]:
        """Freeze ``inputs`` as the next version of a series and queue its jobs, atomically.

        ``jobs`` are dicts with ``rule``, ``model``, ``priority`` and optionally
        ``state`` and ``error`` (a job created dead). ``revision`` is the series
        revision the inputs were read at: the series counts as assembled up to
        it and its hold is lifted; None (a forced re-run) leaves both alone.
        Returns the version and the job ids.
        """
        stamp = now or time.time()
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM series WHERE series_instance_uid = ?", (series_uid,)
            ).fetchone()
            version = int(row["version"]) + 1
            received = db.execute(
                "SELECT MAX(received_at) FROM instances WHERE series_instance_uid = ? AND "
                "sha256 IN (SELECT value FROM json_each(?))",
                (series_uid, json.dumps([i.sha256 for i in inputs])),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (series_uid, version, stamp, len(inputs), received or stamp, int(complete), note),
            )
            db.executemany(
                "INSERT INTO version_inputs VALUES (?, ?, ?, ?, ?)",
                [(series_uid, version, i.sop_instance_uid, i.sha256, i.path) for i in inputs],
            )
            study_uid = str(row["study_instance_uid"])
            ids = [
                self._insert_job(db, study_uid, series_uid, version, len(inputs), job, stamp)
                for job in jobs
            ]
            if revision is None:  # not an assembly (a forced re-run): holds stay
                db.execute(
                    "UPDATE series SET version = ? WHERE series_instance_uid = ?",
                    (version, series_uid),
                )
            else:
                db.execute(
                    "UPDATE series SET version = ?, "
                    "assembled_revision = MAX(assembled_revision, ?), "
                    "held_reason = NULL, held_since = NULL, held_at = NULL "
                    "WHERE series_instance_uid = ?",
                    (version, revision, series_uid),
                )
        return version, ids

    @staticmethod
    def _insert_job(
        db: sqlite3.Connection,
        study_uid: str,
        series_uid: str,
        version: int,
        count: int,
        job: dict[str, Any],
        stamp: float,
    ) -> int:
        state = job.get("state", JobState.QUEUED)
        cursor = db.execute(
            "INSERT INTO jobs (series_instance_uid, study_instance_uid, version, rule, model, "
            "priority, state, next_attempt_at, created_at, instance_count, error, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                series_uid,
                study_uid,
                version,
                job["rule"],
                job["model"],
                job["priority"],
                state,
                stamp,
                stamp,
                count,
                job.get("error"),
                stamp if state == JobState.DEAD else None,
            ),
        )
        return int(cursor.lastrowid or 0)
