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

from radbridge.errors import GatewayError
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
    """One result file for one destination (``sha256``: the digest its bytes must have)."""

    job_id: int
    destination: str
    sop_instance_uid: str
    path: str
    attempts: int
    sha256: str | None = None


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
    store: Store,
    job_id: int,
    results: list[tuple[str, str, str, str]],
    destinations: tuple[str, ...],
    *,
    now: float | None = None,
) -> None:
    """Record a run's results ``(kind, sop_uid, path, sha256)`` and queue their deliveries.

    Raises
    ------
    GatewayError
        A result SOP Instance UID is already recorded with other content (one
        UID never carries two contents; the job is dead-lettered).
    """
    stamp = now or time.time()
    with store.transaction() as db:
        for kind, sop_uid, path, sha256 in results:
            known = db.execute(
                "SELECT sha256, job_id FROM results WHERE sop_instance_uid = ?", (sop_uid,)
            ).fetchone()
            if known is not None and known["sha256"] != sha256:
                raise GatewayError(
                    f"job {job_id}: result {sop_uid} was recorded with other content by job "
                    f"{known['job_id']}; it is not sent",
                    attribute="SOPInstanceUID",
                    hint="run it again as a new version: `radbridge gateway retry JOB --force`",
                )
            db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?)",
                (sop_uid, job_id, kind, sha256, path),
            )
            for destination in destinations:
                db.execute(
                    "INSERT OR IGNORE INTO deliveries (job_id, destination, sop_instance_uid, "
                    "path, state, next_attempt_at) VALUES (?, ?, ?, ?, 'pending', ?)",
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
            "SELECT d.*, r.sha256 FROM deliveries d JOIN jobs j ON j.id = d.job_id "
            "LEFT JOIN results r ON r.sop_instance_uid = d.sop_instance_uid "
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
        row["sha256"],
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
    permanent: bool = False,
    now: float | None = None,
) -> str:
    """Back off and retry, or give up (the job becomes dead with the reason).

    A ``permanent`` failure gives up at once.
    """
    stamp = now or time.time()
    with store.transaction() as db:
        key = (delivery.job_id, delivery.destination, delivery.sop_instance_uid)
        if permanent or delivery.attempts >= max_attempts:
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


def retry_job(store: Store, job_id: int, *, force: bool = False, now: float | None = None) -> Job:
    """Run a dead-lettered job again, or (``force``) any job as a new version.

    A dead job whose results were written keeps them: its failed deliveries are
    queued again and re-send the outbox bytes unchanged. A dead job without
    results is queued to run again (an incomplete one runs on what arrived).
    ``force`` freezes the job's inputs as a new version of the series and
    queues a job for the same rule: new result UIDs, the old ones untouched.

    Raises
    ------
    KeyError
        No such job.
    GatewayError
        The job is not dead (done: use ``force``; queued, running or
        delivering: it is in progress).
    """
    stamp = now or time.time()
    rows = store.query("SELECT * FROM jobs WHERE id = ?", job_id)
    if not rows:
        raise KeyError(job_id)
    job = Job.from_row(rows[0])
    if force:
        return _new_version_of(store, job, stamp)
    if job.state != JobState.DEAD:
        hint = (
            "its results were delivered; `--force` runs it again as a new version (new UIDs)"
            if job.state == JobState.DONE
            else "it is still in progress"
        )
        raise GatewayError(f"job {job_id} is {job.state}, not dead", attribute="job", hint=hint)
    with store.transaction() as db:
        written = db.execute("SELECT COUNT(*) FROM results WHERE job_id = ?", (job_id,)).fetchone()
        state = JobState.DELIVERING if written[0] else JobState.QUEUED
        db.execute(
            "UPDATE jobs SET state = ?, attempts = 0, next_attempt_at = ?, error = NULL, "
            "finished_at = NULL WHERE id = ?",
            (state, stamp, job_id),
        )
        db.execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ? "
            "WHERE job_id = ? AND state = 'failed'",
            (stamp, job_id),
        )
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return Job.from_row(row)


def _new_version_of(store: Store, job: Job, stamp: float) -> Job:
    inputs = store.version_inputs(job.series_instance_uid, job.version)
    (original,) = store.query(
        "SELECT complete FROM versions WHERE series_instance_uid = ? AND version = ?",
        job.series_instance_uid,
        job.version,
    )
    spec = {"rule": job.rule, "model": job.model, "priority": job.priority}
    _, (new_id,) = store.create_version(
        job.series_instance_uid,
        inputs,
        [spec],
        complete=bool(original["complete"]),
        note=f"forced re-run of job {job.id} (version {job.version})",
        revision=None,
        now=stamp,
    )
    return Job.from_row(store.query("SELECT * FROM jobs WHERE id = ?", new_id)[0])
