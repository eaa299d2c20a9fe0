"""Versions: the frozen input set of each completion of a series, and its jobs."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from radbridge.errors import GatewayError
from radbridge.gateway.store._arrivals import Arrivals
from radbridge.gateway.store.records import Job, JobSpec, JobState, Snapshot, VersionInput

__all__ = ["Versions", "refuse_purged"]


def refuse_purged(db: sqlite3.Connection, job: Job) -> None:
    """Raise if the retention sweep removed the files of the job's version.

    Raises
    ------
    GatewayError
        The version's spool files and results are gone: the job cannot run or
        deliver again.
    """
    row = db.execute(
        "SELECT purged_at FROM versions WHERE series_instance_uid = ? AND version = ?",
        (job.series_instance_uid, job.version),
    ).fetchone()
    if row is None or row["purged_at"] is None:
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(row["purged_at"])))
    raise GatewayError(
        f"job {job.id} cannot run again: the spool files and results of version "
        f"{job.version} of series {job.series_instance_uid} were removed at {when}, "
        "after the series was finished for spool_retention_h",
        attribute="spool_retention_h",
        hint="send the series to the gateway again (from the PACS): it makes a new version "
        "and runs the rules on it",
    )


class Versions(Arrivals):
    """Freeze inputs as a version of a series and queue its jobs, atomically."""

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
        inputs: Sequence[VersionInput],
        jobs: list[JobSpec],
        *,
        complete: bool,
        note: str | None = None,
        snapshot: Snapshot | None,
        rerun_of: Job | None = None,
        now: float | None = None,
    ) -> tuple[int, list[int]]:
        """Freeze ``inputs`` as the next version of a series and queue its jobs, atomically.

        ``snapshot`` is what the assembler read the inputs from: the series
        counts as assembled up to its revision, and the hold it was read under is
        lifted — a hold placed since (a transfer cut while the version was being
        frozen) stays. None (a forced re-run) leaves both alone. Returns the
        version and the job ids.

        Raises
        ------
        GatewayError
            ``rerun_of`` (the job a forced re-run repeats) is of a version the
            retention sweep purged (checked in the transaction, so a purge and a
            re-run never both go ahead).
        """
        stamp = now or time.time()
        with self._transaction() as db:
            if rerun_of is not None:
                refuse_purged(db, rerun_of)
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
                "INSERT INTO versions (series_instance_uid, version, created_at, instance_count, "
                "last_received_at, complete, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            db.execute(
                "UPDATE series SET version = ? WHERE series_instance_uid = ?",
                (version, series_uid),
            )
            if snapshot is not None:  # an assembly (not a forced re-run)
                self._assembled(db, snapshot)
        return version, ids

    @staticmethod
    def _assembled(db: sqlite3.Connection, snapshot: Snapshot) -> None:
        """Count the series as assembled up to the snapshot; lift the hold it was read under."""
        db.execute(
            "UPDATE series SET assembled_revision = MAX(assembled_revision, ?) "
            "WHERE series_instance_uid = ?",
            (snapshot.revision, snapshot.series_instance_uid),
        )
        db.execute(
            "UPDATE series SET held_reason = NULL, held_since = NULL, held_at = NULL "
            "WHERE series_instance_uid = ? AND holds = ?",
            (snapshot.series_instance_uid, snapshot.holds),
        )

    @staticmethod
    def _insert_job(
        db: sqlite3.Connection,
        study_uid: str,
        series_uid: str,
        version: int,
        count: int,
        job: JobSpec,
        stamp: float,
    ) -> int:
        state = job.state
        cursor = db.execute(
            "INSERT INTO jobs (series_instance_uid, study_instance_uid, version, rule, model, "
            "priority, state, next_attempt_at, created_at, instance_count, error, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                series_uid,
                study_uid,
                version,
                job.rule,
                job.model,
                job.priority,
                state,
                stamp,
                stamp,
                count,
                job.error,
                stamp if state == JobState.DEAD else None,
            ),
        )
        return int(cursor.lastrowid or 0)
