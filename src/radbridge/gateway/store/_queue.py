"""The job queue and the delivery queue.

Jobs move ``queued → running → delivering → done``; a failed run goes back to
``queued`` after an exponential backoff (``retry_base_s * 2**(attempts - 1)``) and
to ``dead`` after ``max_attempts``, keeping the reason. Urgent jobs (higher
priority) are claimed first, then the oldest. Every step is idempotent: after a
crash, running jobs are queued again and re-run with the same UIDs.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Sequence

from radbridge.errors import GatewayError
from radbridge.gateway.store._alerts import Alerts, queue_alerts, retry_failed_alerts
from radbridge.gateway.store._versions import refuse_purged
from radbridge.gateway.store.records import Delivery, Job, JobSpec, JobState, Retry

__all__ = ["Queue"]


def _finish_if_delivered(db: sqlite3.Connection, job_id: int, stamp: float) -> None:
    left = db.execute(
        "SELECT COUNT(*) FROM deliveries WHERE job_id = ? AND state != 'delivered'", (job_id,)
    ).fetchone()[0]
    if not left:
        db.execute(
            "UPDATE jobs SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
            (JobState.DONE, stamp, job_id, JobState.DELIVERING),
        )


class Queue(Alerts):
    """Claim, fail, retry and finish jobs; queue, claim and record deliveries."""

    def enqueue(
        self,
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
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (series_instance_uid, study_instance_uid, version, "
                "rule, model, priority, state, next_attempt_at, created_at, instance_count) "
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

    def job(self, job_id: int) -> Job:
        """Return one job (KeyError if there is none)."""
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", job_id)
        if not rows:
            raise KeyError(job_id)
        return Job.from_row(rows[0])

    def job_states(self, series_uid: str) -> set[str]:
        """Return the states of every job of a series."""
        rows = self._rows("SELECT state FROM jobs WHERE series_instance_uid = ?", series_uid)
        return {str(row["state"]) for row in rows}

    def claim_job(self, *, now: float | None = None) -> Job | None:
        """Take the most urgent ready job and mark it running (one attempt counted)."""
        stamp = now or time.time()
        with self._transaction() as db:
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

    def fail_job(
        self,
        job_id: int,
        error: str,
        retry: Retry,
        *,
        permanent: bool = False,
        counted: bool = True,
        now: float | None = None,
    ) -> str:
        """Record a failed run: back to the queue after a backoff, or dead; return the state.

        ``counted=False`` (the gateway's own disk failed, not the job): back to the
        queue after the first backoff, the attempt not counted, never dead.
        """
        stamp = now or time.time()
        with self._transaction() as db:
            row = db.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
            attempts = int(row["attempts"])
            if not counted:
                db.execute(
                    "UPDATE jobs SET attempts = MAX(attempts - 1, 0) WHERE id = ?", (job_id,)
                )
                attempts, retry = 1, Retry(2, retry.base_s, retry.max_delay_s)
            again = retry.next_attempt_at(attempts, stamp, permanent=permanent)
            if again is None:
                db.execute(
                    "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                    (JobState.DEAD, error[:2000], stamp, job_id),
                )
                return JobState.DEAD
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, next_attempt_at = ? WHERE id = ?",
                (JobState.QUEUED, error[:2000], again, job_id),
            )
        return JobState.QUEUED

    def recover_jobs(self) -> int:
        """After a crash: jobs left running are queued again (their attempt stays counted)."""
        with self._transaction() as db:
            return int(
                db.execute(
                    "UPDATE jobs SET state = ?, next_attempt_at = 0 WHERE state = ?",
                    (JobState.QUEUED, JobState.RUNNING),
                ).rowcount
            )

    def requeue_jobs(self, job_ids: Collection[int], *, now: float | None = None) -> int:
        """Queue again jobs still ``running`` whose run's outcome could not be recorded.

        For the gateway's own runners (e.g. the database was locked or full when the
        run ended): like :meth:`recover_jobs` after a crash, for those jobs only.
        Returns how many were queued.
        """
        if not job_ids:
            return 0
        stamp = now or time.time()
        marks = ", ".join("?" * len(job_ids))
        with self._transaction() as db:
            return int(
                db.execute(
                    f"UPDATE jobs SET state = ?, next_attempt_at = ? WHERE state = ? "
                    f"AND id IN ({marks})",
                    (JobState.QUEUED, stamp, JobState.RUNNING, *job_ids),
                ).rowcount
            )

    def retry_job(self, job_id: int, *, force: bool = False, now: float | None = None) -> Job:
        """Run a dead-lettered job again, or (``force``) any job as a new version.

        A dead job whose results were written keeps them: its failed deliveries are
        queued again and re-send the outbox bytes unchanged (and its dead-lettered
        alerts, with the same idempotency key); its times stay those of the run that
        wrote them. A dead job without results is queued to run again (an
        incomplete one runs on what arrived) as if queued now: ``created_at`` (the
        status page's "Queued at") becomes the retry time and ``started_at`` is
        cleared, so "Waited" measures this attempt, not the time spent dead.
        ``force`` freezes the job's inputs as a new version of the series and
        queues a job for the same rule: new result UIDs, the old ones untouched.

        Raises
        ------
        KeyError
            No such job.
        GatewayError
            The job is not dead and has no dead-lettered alert (done: use
            ``force``; queued, running or delivering: it is in progress); or the
            retention sweep removed its version's files (a dead job or ``force``:
            nothing is left to run on or to deliver; its failed alerts are still
            retried, but one to a destination that names the patient then fails
            for good: the patient block is read from the removed spool files).
        """
        stamp = now or time.time()
        job = self.job(job_id)
        if force:
            return self._new_version_of(job, stamp)
        if job.state != JobState.DEAD:
            if any(a.state == "failed" for a in self.alerts_of(job_id)):
                with self._transaction() as db:
                    retry_failed_alerts(db, job_id, stamp)
                return self.job(job_id)
            hint = (
                "its results were delivered; `--force` runs it again as a new version (new UIDs)"
                if job.state == JobState.DONE
                else "it is still in progress"
            )
            raise GatewayError(f"job {job_id} is {job.state}, not dead", attribute="job", hint=hint)
        with self._transaction() as db:
            refuse_purged(db, job)
            written = db.execute(
                "SELECT COUNT(*) FROM results WHERE job_id = ?", (job_id,)
            ).fetchone()
            state = JobState.DELIVERING if written[0] else JobState.QUEUED
            db.execute(
                "UPDATE jobs SET state = ?, attempts = 0, next_attempt_at = ?, error = NULL, "
                "finished_at = NULL WHERE id = ?",
                (state, stamp, job_id),
            )
            if state == JobState.QUEUED:  # a new run: its wait starts now
                db.execute(
                    "UPDATE jobs SET created_at = ?, started_at = NULL WHERE id = ?",
                    (stamp, job_id),
                )
            db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ? "
                "WHERE job_id = ? AND state = 'failed'",
                (stamp, job_id),
            )
            retry_failed_alerts(db, job_id, stamp)
        return self.job(job_id)

    def _new_version_of(self, job: Job, stamp: float) -> Job:
        inputs = self.version_inputs(job.series_instance_uid, job.version)
        (original,) = self._rows(
            "SELECT complete FROM versions WHERE series_instance_uid = ? AND version = ?",
            job.series_instance_uid,
            job.version,
        )
        _, (new_id,) = self.create_version(
            job.series_instance_uid,
            inputs,
            [JobSpec(job.rule, job.model, job.priority)],
            complete=bool(original["complete"]),
            note=f"forced re-run of job {job.id} (version {job.version})",
            snapshot=None,
            rerun_of=job,
            now=stamp,
        )
        return self.job(new_id)

    # -- results and deliveries ------------------------------------------------

    def start_delivering(
        self,
        job_id: int,
        results: list[tuple[str, str, str, str]],
        destinations: tuple[str, ...],
        *,
        alerts: Sequence[tuple[str, str, str]] = (),
        now: float | None = None,
    ) -> None:
        """Record a run's results ``(kind, sop_uid, path, sha256)`` and queue their deliveries.

        ``alerts`` — ``(destination, idempotency key, payload)`` — are queued in the
        same transaction (an urgent result's alerts; none twice for one job).

        Raises
        ------
        GatewayError
            A result SOP Instance UID is already recorded with other content (one
            UID never carries two contents; the job is dead-lettered).
        """
        stamp = now or time.time()
        with self._transaction() as db:
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
            queue_alerts(db, job_id, alerts, stamp)
            db.execute(
                "UPDATE jobs SET state = ?, error = NULL WHERE id = ?",
                (JobState.DELIVERING, job_id),
            )
            _finish_if_delivered(db, job_id, stamp)

    def claim_delivery(
        self, *, now: float | None = None, skip: Collection[str] = ()
    ) -> Delivery | None:
        """Take the next ready delivery to a destination not in ``skip``."""
        stamp = now or time.time()
        others = f"AND d.destination NOT IN ({', '.join('?' * len(skip))}) " if skip else ""
        with self._transaction() as db:
            row = db.execute(
                "SELECT d.*, r.sha256 FROM deliveries d JOIN jobs j ON j.id = d.job_id "
                "LEFT JOIN results r ON r.sop_instance_uid = d.sop_instance_uid "
                f"WHERE d.state = 'pending' AND d.next_attempt_at <= ? {others}"
                "ORDER BY j.priority DESC, d.job_id LIMIT 1",
                (stamp, *skip),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1 WHERE job_id = ? AND "
                "destination = ? AND sop_instance_uid = ?",
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

    def delivered(self, delivery: Delivery, *, now: float | None = None) -> None:
        """Record a successful delivery (and finish the job when it was the last)."""
        stamp = now or time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET state = 'delivered', delivered_at = ?, error = NULL "
                "WHERE job_id = ? AND destination = ? AND sop_instance_uid = ?",
                (stamp, delivery.job_id, delivery.destination, delivery.sop_instance_uid),
            )
            _finish_if_delivered(db, delivery.job_id, stamp)

    def delivery_failed(
        self,
        delivery: Delivery,
        error: str,
        retry: Retry,
        *,
        permanent: bool = False,
        now: float | None = None,
    ) -> str:
        """Back off and retry, or give up (the job becomes dead with the reason).

        A ``permanent`` failure gives up at once.
        """
        stamp = now or time.time()
        key = (delivery.job_id, delivery.destination, delivery.sop_instance_uid)
        where = "WHERE job_id = ? AND destination = ? AND sop_instance_uid = ?"
        again = retry.next_attempt_at(delivery.attempts, stamp, permanent=permanent)
        with self._transaction() as db:
            if again is None:
                db.execute(
                    f"UPDATE deliveries SET state = 'failed', error = ? {where}",
                    (error[:2000], *key),
                )
                reason = f"delivery to {delivery.destination} failed: {error}"[:2000]
                db.execute(
                    "UPDATE jobs SET state = ?, error = ?, finished_at = ? WHERE id = ?",
                    (JobState.DEAD, reason, stamp, delivery.job_id),
                )
                return "failed"
            db.execute(
                f"UPDATE deliveries SET error = ?, next_attempt_at = ? {where}",
                (error[:2000], again, *key),
            )
        return "pending"
