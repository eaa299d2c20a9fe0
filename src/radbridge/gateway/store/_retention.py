"""Retention: which series are finished, and the purge of their rows and files.

A purge is claimed in one transaction (:meth:`Retention.claim_purge`): the
series is checked to be finished — every job of every version done or dead, no
delivery or alert pending, no hold, no open transfer, all its content made into
versions, and nothing new for the retention period — and then its instance rows
are dropped, its versions marked purged and its spool files and outbox folders
listed in ``purge_files``, all at once. The files are removed after that commit
and each ``purge_files`` row only once its file is gone
(:meth:`Retention.purge_files_removed`), so a crash at any point leaves either
the rows naming files that are all there, or the list of files still to remove
— never a record a job could read that names a missing file. What was purged is
counted on the series (``purged_*``), so the totals survive a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from pathlib import Path

from radbridge.gateway.store._pseudonyms import Pseudonyms
from radbridge.gateway.store.records import Purge, PurgeFile

__all__ = ["Retention"]

#: A series whose files may go: finished, and nothing about it newer than :cutoff (nor the
#: upgrade that brought retention, for a series an older gateway received). A hold does
#: not keep it: with all it received made into versions, a held series has nothing new
#: to wait for (an aborted re-send of what it had, a refused instance never stored),
#: and the hold's transfer end (``settled_at``) starts its retention like any event.
_FINISHED = """
SELECT s.* FROM series s
WHERE s.version > s.purged_version AND s.revision = s.assembled_revision
  AND s.open_transfers = 0
  AND s.last_received_at <= :cutoff AND s.settled_at <= :cutoff
  AND COALESCE(s.retention_from, 0) <= :cutoff
  AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.series_instance_uid = s.series_instance_uid
                  AND v.created_at > :cutoff)
  AND NOT EXISTS (
    SELECT 1 FROM jobs j WHERE j.series_instance_uid = s.series_instance_uid AND (
      j.state NOT IN ('done', 'dead') OR j.finished_at IS NULL OR j.finished_at > :cutoff
      OR EXISTS (SELECT 1 FROM deliveries d WHERE d.job_id = j.id AND d.state = 'pending')
      OR EXISTS (SELECT 1 FROM alerts a WHERE a.job_id = j.id
                 AND (a.state = 'pending' OR a.sent_at > :cutoff))))
ORDER BY s.last_received_at LIMIT 1
"""


class Retention(Pseudonyms):
    """Claim finished series for the retention sweep; track the files it removes."""

    def claim_purge(
        self, cutoff: float, outbox_dir: Path, *, now: float | None = None
    ) -> Purge | None:
        """Purge the rows of one series finished before ``cutoff``; None if there is none.

        In one transaction: the series' instance rows are dropped (an instance
        received later starts the series afresh), a hold on it is released, its
        unpurged versions are marked purged (their jobs cannot be retried), its
        instance counts move to
        ``purged_instances``, and its spool files and the outbox folders of its
        jobs (``outbox_dir/<job>``) are listed in ``purge_files`` for the sweep
        to remove.
        """
        stamp = now or time.time()
        with self._transaction() as db:
            row = db.execute(_FINISHED, {"cutoff": cutoff}).fetchone()
            if row is None:
                return None
            uid = str(row["series_instance_uid"])
            versions = tuple(
                int(r[0])
                for r in db.execute(
                    "SELECT version FROM versions WHERE series_instance_uid = ? AND "
                    "purged_at IS NULL ORDER BY version",
                    (uid,),
                )
            )
            jobs = tuple(
                int(r[0])
                for r in db.execute(
                    "SELECT id FROM jobs WHERE series_instance_uid = ? AND version > ? ORDER BY id",
                    (uid, row["purged_version"]),
                )
            )
            marks = ", ".join("?" * len(jobs))
            (results,) = db.execute(
                f"SELECT COUNT(*) FROM results WHERE job_id IN ({marks})", jobs
            ).fetchone()
            spool = [
                tuple(r)
                for r in db.execute(
                    "SELECT path, ?, sop_instance_uid, 'spool' FROM instances "
                    "WHERE series_instance_uid = ?",
                    (uid, uid),
                )
            ]
            outbox = [(str(outbox_dir / str(job)), uid, None, "outbox") for job in jobs]
            db.executemany(
                "INSERT OR IGNORE INTO purge_files VALUES (?, ?, ?, ?)", [*spool, *outbox]
            )
            db.execute("DELETE FROM instances WHERE series_instance_uid = ?", (uid,))
            # no job of these versions runs again, so no result is re-identified: their
            # pseudonym maps (which link pseudonyms to the originals) go with the files
            for table in ("deid_uids", "deid_seeds"):
                db.execute(
                    f"DELETE FROM {table} WHERE series_instance_uid = ? AND version IN "
                    "(SELECT version FROM versions WHERE series_instance_uid = ? "
                    "AND purged_at IS NULL)",
                    (uid, uid),
                )
            db.execute(
                "UPDATE versions SET purged_at = ? WHERE series_instance_uid = ? "
                "AND purged_at IS NULL",
                (stamp, uid),
            )
            db.execute(
                "UPDATE series SET purged_at = ?, purged_version = version, "
                "purged_instances = purged_instances + instance_count, instance_count = 0, "
                "purged_results = purged_results + ?, held_reason = NULL, held_since = NULL, "
                "held_at = NULL WHERE series_instance_uid = ?",
                (stamp, int(results), uid),
            )
        count, held = int(row["instance_count"]), row["held_reason"]
        files = len(spool) + len(outbox)
        return Purge(uid, versions, jobs, count, int(results), files, released_hold=held)

    def version_purged_at(self, series_uid: str, version: int) -> float | None:
        """Return when the retention sweep removed a version's files (None: not removed)."""
        rows = self._rows(
            "SELECT purged_at FROM versions WHERE series_instance_uid = ? AND version = ?",
            series_uid,
            version,
        )
        return None if not rows or rows[0]["purged_at"] is None else float(rows[0]["purged_at"])

    def purge_files(self, limit: int, *, skip: Collection[str] = ()) -> list[PurgeFile]:
        """Return up to ``limit`` files claimed purges still have to remove, oldest first.

        ``skip``: paths left out (files whose removal just failed).
        """
        rows = self._rows(
            "SELECT * FROM purge_files WHERE path NOT IN (SELECT value FROM json_each(?)) "
            "ORDER BY rowid LIMIT ?",
            json.dumps(sorted(skip)),
            limit,
        )
        return [PurgeFile.from_row(row) for row in rows]

    def purge_files_removed(self, removed: Sequence[tuple[PurgeFile, int]]) -> list[str]:
        """Forget removed files ``(file, bytes freed)``; return the series now wholly purged."""
        with self._transaction() as db:
            for item, size in removed:
                db.execute("DELETE FROM purge_files WHERE path = ?", (item.path,))
                db.execute(
                    "UPDATE series SET purged_bytes = purged_bytes + ? "
                    "WHERE series_instance_uid = ?",
                    (size, item.series_instance_uid),
                )
            touched = sorted({item.series_instance_uid for item, _ in removed})
            left = {
                str(r[0])
                for r in db.execute(
                    "SELECT DISTINCT series_instance_uid FROM purge_files WHERE "
                    "series_instance_uid IN (SELECT value FROM json_each(?))",
                    (json.dumps(touched),),
                )
            }
        return [uid for uid in touched if uid not in left]

    # -- files no record names (radbridge.gateway.orphans) ---------------------

    def spool_file_named(self, series_uid: str, sop_uid: str, name: str) -> bool:
        """Whether an instance row, or a purge still removing it, names a spool file.

        Compared by file name within the series (``<sop>.<digest>.dcm``), so a data
        directory that was moved does not make its recorded files unrecorded.
        """
        rows = self._rows(
            "SELECT path FROM instances WHERE series_instance_uid = ? AND sop_instance_uid = ? "
            "UNION ALL SELECT path FROM purge_files WHERE series_instance_uid = ? "
            "AND sop_instance_uid = ?",
            series_uid,
            sop_uid,
            series_uid,
            sop_uid,
        )
        return any(Path(str(row["path"])).name == name for row in rows)

    def first_arrival_at(self) -> float | None:
        """Return when this database first heard of a transfer or an instance (None: never)."""
        (row,) = self._rows(
            "SELECT MIN(t) AS t FROM (SELECT MIN(opened_at) AS t FROM transfers "
            "UNION ALL SELECT MIN(first_received_at) FROM series)"
        )
        return None if row["t"] is None else float(row["t"])

    def count_swept(self, kind: str, files: int, size: int) -> None:
        """Add ``files`` removed files of ``bytes`` to what the sweep of ``kind`` removed."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO swept (kind, files, bytes) VALUES (?, ?, ?) ON CONFLICT(kind) "
                "DO UPDATE SET files = files + excluded.files, bytes = bytes + excluded.bytes",
                (kind, files, size),
            )

    def swept_counts(self) -> dict[str, int]:
        """Return the files (and bytes) removed as ``unrecorded`` and ``partial`` so far."""
        counts = dict.fromkeys(("unrecorded", "unrecorded_bytes", "partial", "partial_bytes"), 0)
        for row in self._rows("SELECT kind, files, bytes FROM swept"):
            counts[str(row["kind"])] = int(row["files"])
            counts[f"{row['kind']}_bytes"] = int(row["bytes"])
        return counts

    def purge_counts(self) -> dict[str, int]:
        """Return what retention removed so far: series, instances, results, bytes; files left."""
        (row,) = self._rows(
            "SELECT COUNT(purged_at) AS series, COALESCE(SUM(purged_instances), 0) AS instances, "
            "COALESCE(SUM(purged_results), 0) AS results, "
            "COALESCE(SUM(purged_bytes), 0) AS bytes FROM series"
        )
        (left,) = self._rows("SELECT COUNT(*) AS n FROM purge_files")
        counts = {key: int(row[key]) for key in ("series", "instances", "results", "bytes")}
        return counts | {"files_left": int(left["n"])}
