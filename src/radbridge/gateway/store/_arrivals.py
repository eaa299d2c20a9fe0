"""Arrivals: transfers, stored instances, holds, and which series are ready to assemble."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from radbridge.gateway.store._db import Database
from radbridge.gateway.store.records import SeriesState, Snapshot, VersionInput

__all__ = ["Arrivals"]


def _hold_reason(outcome: str, refused: int) -> str:
    if outcome == "released":
        return f"{refused} instance(s) refused"
    return f"transfer {outcome}"


class Arrivals(Database):
    """What the receivers report, and the series that are complete or given up on."""

    # -- transfers and arrivals ------------------------------------------------

    def open_transfer(self, transfer: str, *, now: float | None = None) -> None:
        """Record that a transfer started (its series are not complete before it ends)."""
        stamp = now or time.time()
        with self._transaction() as db:
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

        Returns once the record is committed (durable). Records made at the same
        time by other threads share the transaction and its commit (group
        commit); if that commit fails, every record in it fails with
        :class:`~radbridge.errors.StorageError` and none is recorded.
        """
        row = (study_uid, series_uid, sop_uid, sha256, path)
        return self.record_instances([row], transfer=transfer, now=now)[0]

    def record_instances(
        self,
        rows: Sequence[tuple[str, str, str, str, str]],
        *,
        transfer: str | None = None,
        now: float | None = None,
    ) -> list[str]:
        """Record several contents in one transaction, all or none (see :meth:`record_instance`).

        ``rows`` are ``(study, series, sop, sha256, path)``; returns each one's
        kind. If any fails, or the commit does, none is recorded and the error
        is raised.
        """
        stamp = now or time.time()

        def record(db: sqlite3.Connection) -> list[str]:
            return [self._record(db, row, transfer, stamp) for row in rows]

        return self._grouped(record, records=len(rows))

    def _record(
        self,
        db: sqlite3.Connection,
        uids: tuple[str, str, str, str, str],
        transfer: str | None,
        stamp: float,
    ) -> str:
        study_uid, series_uid, sop_uid, sha256, path = uids
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
        if kind != "duplicate":  # new content: a short count is counted again
            db.execute(
                "UPDATE series SET revision = revision + 1, "
                "instance_count = instance_count + ? WHERE series_instance_uid = ?",
                (int(kind == "new"), series_uid),
            )
            db.execute(
                "UPDATE series SET held_reason = NULL, held_at = NULL WHERE "
                "series_instance_uid = ? AND held_reason IS NOT NULL AND held_since IS NULL",
                (series_uid,),
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
        """Return the contents stored for a SOP Instance UID of a series, oldest first.

        Reads what is committed without waiting for a commit under way (a
        receiver asks before it records).
        """
        rows = self._committed_rows(
            "SELECT * FROM instances WHERE series_instance_uid = ? AND sop_instance_uid = ? "
            "ORDER BY id",
            series_uid,
            sop_uid,
        )
        return [VersionInput(r["sop_instance_uid"], r["sha256"], r["path"]) for r in rows]

    def _inputs(self, sql: str, *args: Any) -> list[VersionInput]:
        return [
            VersionInput(row["sop_instance_uid"], row["sha256"], row["path"])
            for row in self._rows(sql, *args)
        ]

    def series_of_sop(self, sop_uid: str) -> list[str]:
        """Return every series that holds a SOP Instance UID (what is committed)."""
        return [
            row[0]
            for row in self._committed_rows(
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
        ended. A clean transfer lifts the holds placed before it opened, and
        every hold for a short count (see :meth:`hold_short`) of its series.
        """
        stamp = now or time.time()
        with self._transaction() as db:
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
                    "(held_since IS NULL OR held_since < ?) AND series_instance_uid IN "
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
                "held_at = ?, holds = holds + 1, settled_at = MAX(settled_at, ?) "
                "WHERE series_instance_uid = ?",
                (reason, since, stamp, stamp, series_uid),
            )
            held.append(series_uid)
        return held

    def hold_short(
        self, series_uid: str, reason: str, snapshot: Snapshot, *, now: float | None = None
    ) -> bool:
        """Hold a series whose count, read in ``snapshot``, is short; return whether it is held.

        No transfer ended badly, so there is none to wait out (``held_since``
        stays None): the next new content of the series, or the clean end of any
        transfer of it, lifts the hold and the assembler counts again. Nothing
        is held when the series changed since the snapshot — new content (the
        count is stale: the next round counts again) or a hold placed (a
        transfer cut meanwhile: that hold stays).
        """
        stamp = now or time.time()
        with self._transaction() as db:
            return bool(
                db.execute(
                    "UPDATE series SET held_reason = ?, held_since = NULL, held_at = ?, "
                    "holds = holds + 1 WHERE series_instance_uid = ? AND holds = ? "
                    "AND revision = ?",
                    (reason, stamp, series_uid, snapshot.holds, snapshot.revision),
                ).rowcount
            )

    def recover_open_transfers(self, *, now: float | None = None) -> tuple[int, list[str]]:
        """After a restart no transfer is open: end what a crash left open, as ``failed``.

        Their series are held. Series waiting for their quiet period restart it
        now (the gateway was not listening for part of it). Returns the number of
        transfers ended and the series held.
        """
        stamp = now or time.time()
        open_ids = [
            r[0] for r in self._rows("SELECT id FROM transfers WHERE ended_at IS NULL ORDER BY id")
        ]
        held: list[str] = []
        for transfer in open_ids:
            held += self.end_transfer(
                transfer, "failed", reason="transfer interrupted by a restart", now=stamp
            )
        with self._transaction() as db:
            db.execute("UPDATE series SET open_transfers = 0")
            db.execute(
                "UPDATE series SET settled_at = MAX(settled_at, ?) "
                "WHERE revision > assembled_revision",
                (stamp,),
            )
        return len(open_ids), sorted(set(held))

    def series_row(self, series_uid: str) -> SeriesState:
        """Return the bookkeeping of one series (KeyError if unknown)."""
        rows = self._rows("SELECT * FROM series WHERE series_instance_uid = ?", series_uid)
        if not rows:
            raise KeyError(series_uid)
        return SeriesState.from_row(rows[0])

    # -- what is ready to assemble ------------------------------------------------

    def settled_series(self, quiet_period_s: float, now: float) -> list[SeriesState]:
        """Series with new content, no open transfer, no hold, quiet for ``quiet_period_s``."""
        return self._quiet_series(quiet_period_s, now, held=False)

    def stale_held_series(self, incomplete_after_s: float, now: float) -> list[SeriesState]:
        """Held series with new content and no arrival or transfer for ``incomplete_after_s``."""
        return self._quiet_series(incomplete_after_s, now, held=True)

    def current_inputs(self, series_uid: str) -> list[VersionInput]:
        """Return the newest content of every SOP Instance UID of a series (arrival order)."""
        return self._inputs(
            "SELECT i.* FROM instances i JOIN (SELECT MAX(id) AS id FROM instances "
            "WHERE series_instance_uid = ? GROUP BY sop_instance_uid) m ON m.id = i.id "
            "ORDER BY i.id",
            series_uid,
        )

    def snapshot_inputs(self, chosen: SeriesState) -> Snapshot | None:
        """Read the :meth:`current_inputs` of a series the assembler chose, consistently.

        ``chosen`` is the series as :meth:`settled_series` or
        :meth:`stale_held_series` returned it. None when the series changed since
        (an arrival, a transfer opened or ended, a hold placed or lifted): what
        was decided on it no longer holds, the next round decides again.
        """
        series_uid = chosen.series_instance_uid
        with self._lock:
            row = self.series_row(series_uid)
            if row != chosen:
                return None
            inputs = tuple(self.current_inputs(series_uid))
            return Snapshot(series_uid, row.revision, row.holds, inputs)

    def _quiet_series(self, quiet_s: float, now: float, *, held: bool) -> list[SeriesState]:
        """Series (``held`` or not) with new content and no open transfer, quiet for ``quiet_s``."""
        sql = (
            "SELECT * FROM series WHERE revision > assembled_revision AND open_transfers = 0 "
            f"AND held_reason IS {'NOT NULL' if held else 'NULL'} AND settled_at + ? <= ?"
        )
        return self._series(sql, quiet_s, now)

    def _series(self, sql: str, *args: Any) -> list[SeriesState]:
        return [SeriesState.from_row(row) for row in self._rows(sql, *args)]
