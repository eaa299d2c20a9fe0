"""The alert queue: one row per job and alert destination, retried like a delivery.

Alerts are queued in the transaction that records a job's results
(:func:`queue_alerts`, called by ``start_delivering``), so a job whose results
are recorded always has its alerts queued, and a job that runs again after a
crash queues none twice (the key is the job and the destination; the job is one
version of one series). An alert moves ``pending → sent``, or to ``failed`` (the
dead letter) with the reason after ``alert_attempts`` temporary failures or one
permanent failure, backing off as a delivery does (:class:`Retry`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from radbridge.gateway.store._versions import Versions
from radbridge.gateway.store.records import Alert, AlertState, Retry

__all__ = ["Alerts", "queue_alerts", "retry_failed_alerts"]


def queue_alerts(
    db: sqlite3.Connection, job_id: int, alerts: Sequence[tuple[str, str, str]], stamp: float
) -> None:
    """Queue ``(destination, idempotency key, payload)`` alerts of a job (idempotent)."""
    for target, key, payload in alerts:
        db.execute(
            "INSERT OR IGNORE INTO alerts (job_id, target, idempotency_key, payload, state, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job_id, target, key, payload, AlertState.PENDING, stamp, stamp),
        )


def retry_failed_alerts(db: sqlite3.Connection, job_id: int, stamp: float) -> int:
    """Queue a job's dead-lettered alerts again (same key, attempts reset); return how many."""
    return int(
        db.execute(
            "UPDATE alerts SET state = ?, attempts = 0, next_attempt_at = ? "
            "WHERE job_id = ? AND state = ?",
            (AlertState.PENDING, stamp, job_id, AlertState.FAILED),
        ).rowcount
    )


class Alerts(Versions):
    """Claim, record and count alerts."""

    def claim_alert(self, *, now: float | None = None) -> Alert | None:
        """Take the next ready alert (the most urgent job first); one attempt counted."""
        stamp = now or time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT a.job_id, a.target FROM alerts a JOIN jobs j ON j.id = a.job_id "
                "WHERE a.state = ? AND a.next_attempt_at <= ? "
                "ORDER BY j.priority DESC, a.created_at, a.job_id LIMIT 1",
                (AlertState.PENDING, stamp),
            ).fetchone()
            if row is None:
                return None
            key = (row["job_id"], row["target"])
            db.execute(
                "UPDATE alerts SET attempts = attempts + 1 WHERE job_id = ? AND target = ?", key
            )
            claimed = db.execute("SELECT * FROM alerts WHERE job_id = ? AND target = ?", key)
            return Alert.from_row(claimed.fetchone())

    def alert_sent(self, alert: Alert, answer: str, *, now: float | None = None) -> None:
        """Record that the destination took the alert (``answer``: what it said)."""
        stamp = now or time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE alerts SET state = ?, sent_at = ?, answer = ?, error = NULL "
                "WHERE job_id = ? AND target = ?",
                (AlertState.SENT, stamp, answer[:200], alert.job_id, alert.target),
            )

    def alert_failed(
        self,
        alert: Alert,
        error: str,
        retry: Retry,
        *,
        permanent: bool = False,
        now: float | None = None,
    ) -> str:
        """Back off and retry, or dead-letter the alert with the reason; return its state."""
        stamp = now or time.time()
        key = (alert.job_id, alert.target)
        again = retry.next_attempt_at(alert.attempts, stamp, permanent=permanent)
        with self._transaction() as db:
            if again is None:
                db.execute(
                    "UPDATE alerts SET state = ?, error = ? WHERE job_id = ? AND target = ?",
                    (AlertState.FAILED, error[:2000], *key),
                )
                return AlertState.FAILED
            db.execute(
                "UPDATE alerts SET error = ?, next_attempt_at = ? WHERE job_id = ? AND target = ?",
                (error[:2000], again, *key),
            )
        return AlertState.PENDING

    def alerts_of(self, job_id: int) -> list[Alert]:
        """Return the alerts of one job."""
        rows = self._rows("SELECT * FROM alerts WHERE job_id = ? ORDER BY target", job_id)
        return [Alert.from_row(row) for row in rows]

    def alert_counts(self) -> dict[str, int]:
        """Return the number of alerts in each state."""
        return self._state_counts("alerts")

    def recent_alerts(self, limit: int, *, state: str | None = None) -> list[Alert]:
        """Return the newest ``limit`` alerts (of one ``state``), newest first."""
        where, args = ("WHERE state = ?", [state]) if state else ("", [])
        rows = self._rows(
            f"SELECT * FROM alerts {where} ORDER BY created_at DESC, job_id DESC LIMIT ?",
            *args,
            limit,
        )
        return [Alert.from_row(row) for row in rows]

    def alert_latencies(self) -> list[float]:
        """Return the seconds from a version's last instance to its alert, for every sent alert."""
        rows = self._rows(
            "SELECT a.sent_at - v.last_received_at AS seconds FROM alerts a "
            "JOIN jobs j ON j.id = a.job_id JOIN versions v ON "
            "v.series_instance_uid = j.series_instance_uid AND v.version = j.version "
            "WHERE a.state = ? AND a.sent_at IS NOT NULL",
            AlertState.SENT,
        )
        return [float(row["seconds"]) for row in rows]
