"""The job queue and the delivery queue, on the gateway's SQLite store.

Jobs move ``queued → running → delivering → done``; a failed run goes back to
``queued`` after an exponential backoff (``retry_base_s * 2**(attempts - 1)``) and
to ``dead`` after ``max_attempts``, keeping the reason. Urgent jobs (higher
priority) are claimed first, then the oldest. Every step is idempotent: after a
crash, running jobs are queued again and re-run with the same UIDs.

Examples
--------
>>> import tempfile, pathlib
>>> from radbridge.gateway.state import Store
>>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "q.sqlite")
>>> job_id = enqueue(store, "1.2.3", "1.2", version=1, rule="r", model="m", priority=0,
...                  instance_count=10, now=100.0)
>>> claim(store, now=100.0).id == job_id
True
>>> fail(store, job_id, "boom", max_attempts=3, retry_base_s=2.0, now=100.0)
'queued'
>>> claim(store, now=101.0) is None, claim(store, now=102.0).attempts
(True, 2)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from radbridge.gateway.state import JobState, Store

__all__ = [
    "Delivery",
    "Job",
    "claim",
    "claim_delivery",
    "delivered",
    "delivery_failed",
    "enqueue",
    "fail",
    "recover",
    "retry_job",
    "start_delivering",
]


@dataclass(frozen=True)
class Job:
    """One queued model run on one version of a series."""

    id: int
    series_instance_uid: str
    study_instance_uid: str
    version: int
    rule: str
    model: str
    priority: int
    state: str
    attempts: int
    instance_count: int
    error: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        """Build from a ``jobs`` row."""
        return cls(
            row["id"],
            row["series_instance_uid"],
            row["study_instance_uid"],
            row["version"],
            row["rule"],
            row["model"],
            row["priority"],
            row["state"],
            row["attempts"],
            row["instance_count"],
            row["error"],
        )


@dataclass(frozen=True)
class Delivery:
    """One result file for one destination."""

    job_id: int
    destination: str
    sop_instance_uid: str
    path: str
    attempts: int


def enqueue(
    store: Store,
    series_uid: str,
    study_uid: str,
    *,
    version: int,
    rule: str,
    model: str,
    priority: int,
    instance_count: int,
    now: float | None = None,
) -> int:
    """Queue a job (idempotent: the same series, version and rule give the same job)."""
    stamp = now or time.time()
    with store.transaction() as db:
        db.execute(
            "INSERT OR IGNORE INTO jobs (series_instance_uid, study_instance_uid, version, rule, "
            "model, priority, state, next_attempt_at, created_at, instance_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                series_uid,
                study_uid,
                version,
                rule,
                model,
                priority,
                JobState.QUEUED,
                stamp,
                stamp,
                instance_count,
            ),
        )
        row = db.execute(
            "SELECT id FROM jobs WHERE series_instance_uid = ? AND version = ? AND rule = ?",
            (series_uid, version, rule),
        ).fetchone()
    return int(row["id"])


def claim(store: Store, *, now: float | None = None) -> Job | None:
    """Take the most urgent ready job and mark it running (one attempt counted)."""
    stamp = now or time.time()
    with store.transaction() as db:
        row = db.execute(
            "SELECT * FROM jobs WHERE state = ? AND next_attempt_at <= ? "
            "ORDER BY priority DESC, created_at, id LIMIT 1",
            (JobState.QUEUED, stamp),
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE jobs SET state = ?, attempts = attempts + 1, started_at = ? WHERE id = ?",
            (JobState.RUNNING, stamp, row["id"]),
        )
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
    return Job.from_row(row)


def fail(
    store: Store,
    job_id: int,
    error: str,
    *,
    max_attempts: int,
    retry_base_s: float,
    permanent: bool = False,
    now: float | None = None,
) -> str:
    """Record a failed run: back to the queue after a backoff, or dead; return the new state."""
    stamp = now or time.time()
    with store.transaction() as db:
        row = db.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        attempts = int(row["attempts"])
        if permanent or attempts >= max_attempts:
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                (JobState.DEAD, error[:2000], stamp, job_id),
            )
            return JobState.DEAD
        delay = retry_base_s * 2 ** max(attempts - 1, 0)
        db.execute(
            "UPDATE jobs SET state = ?, error = ?, next_attempt_at = ? WHERE id = ?",
            (JobState.QUEUED, error[:2000], stamp + delay, job_id),
        )
    return JobState.QUEUED


def start_delivering(
    store: Store, job_id: int, files: list[tuple[str, str, str]], *, now: float | None = None
) -> None:
    """Mark a run finished and queue its deliveries ``(destination, sop_uid, path)``."""
    stamp = now or time.time()
    with store.transaction() as db:
        for destination, sop_uid, path in files:
            db.execute(
                "INSERT OR IGNORE INTO deliveries (job_id, destination, sop_instance_uid, path, "
                "state, next_attempt_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                (job_id, destination, sop_uid, path, stamp),
            )
        db.execute(
            "UPDATE jobs SET state = ?, error = NULL WHERE id = ?", (JobState.DELIVERING, job_id)
        )
        _finish_if_delivered(db, job_id, stamp)


def _finish_if_delivered(db: Any, job_id: int, stamp: float) -> None:
    left = db.execute(
        "SELECT COUNT(*) FROM deliveries WHERE job_id = ? AND state != 'delivered'", (job_id,)
    ).fetchone()[0]
    if not left:
        db.execute(
            "UPDATE jobs SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
            (JobState.DONE, stamp, job_id, JobState.DELIVERING),
        )


def claim_delivery(store: Store, *, now: float | None = None) -> Delivery | None:
    """Take the next ready delivery."""
    stamp = now or time.time()
    with store.transaction() as db:
        row = db.execute(
            "SELECT d.* FROM deliveries d JOIN jobs j ON j.id = d.job_id "
            "WHERE d.state = 'pending' AND d.next_attempt_at <= ? "
            "ORDER BY j.priority DESC, d.job_id LIMIT 1",
            (stamp,),
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE deliveries SET attempts = attempts + 1 WHERE job_id = ? AND destination = ? "
            "AND sop_instance_uid = ?",
            (row["job_id"], row["destination"], row["sop_instance_uid"]),
        )
    return Delivery(
        row["job_id"],
        row["destination"],
        row["sop_instance_uid"],
        row["path"],
        int(row["attempts"]) + 1,
    )


def delivered(store: Store, delivery: Delivery, *, now: float | None = None) -> None:
    """Record a successful delivery (and finish the job when it was the last)."""
    stamp = now or time.time()
    with store.transaction() as db:
        db.execute(
            "UPDATE deliveries SET state = 'delivered', delivered_at = ?, error = NULL "
            "WHERE job_id = ? AND destination = ? AND sop_instance_uid = ?",
            (stamp, delivery.job_id, delivery.destination, delivery.sop_instance_uid),
        )
        _finish_if_delivered(db, delivery.job_id, stamp)


def delivery_failed(
    store: Store,
    delivery: Delivery,
    error: str,
    *,
    max_attempts: int,
    retry_base_s: float,
    now: float | None = None,
) -> str:
    """Back off and retry, or give up (the job becomes dead with the reason)."""
    stamp = now or time.time()
    with store.transaction() as db:
        key = (delivery.job_id, delivery.destination, delivery.sop_instance_uid)
        if delivery.attempts >= max_attempts:
            db.execute(
                "UPDATE deliveries SET state = 'failed', error = ? WHERE job_id = ? AND "
                "destination = ? AND sop_instance_uid = ?",
                (error[:2000], *key),
            )
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                (
                    JobState.DEAD,
                    f"delivery to {delivery.destination} failed: {error}"[:2000],
                    stamp,
                    delivery.job_id,
                ),
            )
            return "failed"
        delay = min(retry_base_s * 2 ** (delivery.attempts - 1), 300.0)
        db.execute(
            "UPDATE deliveries SET error = ?, next_attempt_at = ? WHERE job_id = ? AND "
            "destination = ? AND sop_instance_uid = ?",
            (error[:2000], stamp + delay, *key),
        )
    return "pending"


def recover(store: Store) -> int:
    """After a crash: jobs left running are queued again (their attempt stays counted)."""
    with store.transaction() as db:
        return int(
            db.execute(
                "UPDATE jobs SET state = ?, next_attempt_at = 0 WHERE state = ?",
                (JobState.QUEUED, JobState.RUNNING),
            ).rowcount
        )


def retry_job(store: Store, job_id: int, *, now: float | None = None) -> Job:
    """Queue a dead (or any unfinished) job again with a fresh attempt count.

    Raises
    ------
    KeyError
        No such job.
    """
    stamp = now or time.time()
    with store.transaction() as db:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        db.execute(
            "UPDATE jobs SET state = ?, attempts = 0, next_attempt_at = ?, error = NULL, "
            "finished_at = NULL WHERE id = ?",
            (JobState.QUEUED, stamp, job_id),
        )
        db.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ? "
            "WHERE job_id = ? AND state = 'failed'",
            (stamp, job_id),
        )
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return Job.from_row(row)
