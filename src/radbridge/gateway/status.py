"""What ``radbridge gateway status`` reports: queue, recent jobs, latencies, failures.

UIDs, states, counts and timings only — no patient data.

Examples
--------
>>> import tempfile, pathlib
>>> from radbridge.gateway.state import Store
>>> report = status(Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite"))
>>> report["queue"], report["recent_jobs"], report["held_series"]
({}, [], [])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radbridge.gateway.state import JobState, Store

__all__ = ["status"]


def status(store: Store, *, recent: int = 20) -> dict[str, Any]:
    """Summarise the gateway's state as a JSON-ready dictionary."""
    queue = {
        row["state"]: row["n"]
        for row in store.query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
    }
    deliveries = {
        row["state"]: row["n"]
        for row in store.query("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
    }
    jobs = [
        {
            "id": row["id"],
            "series_instance_uid": row["series_instance_uid"],
            "study_instance_uid": row["study_instance_uid"],
            "version": row["version"],
            "rule": row["rule"],
            "model": row["model"],
            "priority": row["priority"],
            "state": row["state"],
            "attempts": row["attempts"],
            "created_at": row["created_at"],
            "started_at": row["started_at"],
            "finished_at": row["finished_at"],
            "error": row["error"],
        }
        for row in store.query("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", recent)
    ]
    # from the last instance of the version the job ran on (later arrivals are another
    # version), so a latency is never negative
    latency_rows = store.query(
        "SELECT j.finished_at - v.last_received_at AS total, j.finished_at - j.started_at AS run "
        "FROM jobs j JOIN versions v ON v.series_instance_uid = j.series_instance_uid "
        "AND v.version = j.version WHERE j.state = ? AND j.finished_at IS NOT NULL",
        JobState.DONE,
    )
    totals = np.array([r["total"] for r in latency_rows], dtype=float)
    runs = np.array([r["run"] for r in latency_rows], dtype=float)
    failures = [
        {
            "id": row["id"],
            "series_instance_uid": row["series_instance_uid"],
            "attempts": row["attempts"],
            "error": row["error"],
        }
        for row in store.query(
            "SELECT * FROM jobs WHERE state = ? ORDER BY id DESC LIMIT ?", JobState.DEAD, recent
        )
    ]
    held = [
        {
            "series_instance_uid": row["series_instance_uid"],
            "study_instance_uid": row["study_instance_uid"],
            "instances": row["instance_count"],
            "reason": row["held_reason"],
            "held_at": row["held_at"],
            "last_activity_at": row["settled_at"],
        }
        for row in store.query(
            "SELECT * FROM series WHERE held_reason IS NOT NULL ORDER BY held_at DESC LIMIT ?",
            recent,
        )
    ]
    counts = store.query(
        "SELECT COUNT(*) AS series, COALESCE(SUM(instance_count), 0) AS n FROM series"
    )[0]
    return {
        "queue": queue,
        "deliveries": deliveries,
        "received": {"series": counts["series"], "instances": counts["n"]},
        "latency_s": _summary(totals),
        "run_s": _summary(runs),
        "held_series": held,
        "recent_jobs": jobs,
        "failures": failures,
    }


def _summary(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    return {
        "count": int(values.size),
        "median": round(float(np.median(values)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "max": round(float(values.max()), 3),
    }
