"""What ``radbridge gateway status`` reports: queue, recent jobs, latencies, failures.

UIDs, states, counts and timings only — no patient data.

Examples
--------
>>> import tempfile, pathlib
>>> from radbridge.gateway.store import Store
>>> report = status(Store(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite"))
>>> report["queue"], report["recent_jobs"], report["arriving_series"], report["held_series"]
({}, [], [], [])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from radbridge.gateway.store import Alert, AlertState, Job, JobState, SeriesState, Store

__all__ = ["status"]

_JOB_FIELDS = (
    "id",
    "series_instance_uid",
    "study_instance_uid",
    "version",
    "rule",
    "model",
    "priority",
    "state",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "error",
)


_FAILURE_FIELDS = ("id", "series_instance_uid", "attempts", "error")


def _job(job: Job, fields: tuple[str, ...] = _JOB_FIELDS) -> dict[str, Any]:
    return {name: getattr(job, name) for name in fields}


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "job": alert.job_id,
        "destination": alert.target,
        "key": alert.idempotency_key,
        "attempts": alert.attempts,
        "error": alert.error,
    }


def _series(series: SeriesState, *, held: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "series_instance_uid": series.series_instance_uid,
        "study_instance_uid": series.study_instance_uid,
        "instances": series.instance_count,
    }
    if held:
        row.update(reason=series.held_reason, held_at=series.held_at)
        row.update(last_activity_at=series.settled_at)
    else:
        row.update(expected=series.expected_count, open_transfers=series.open_transfers)
        row.update(first_received_at=series.first_received_at)
        row.update(last_received_at=series.last_received_at)
    return row


def status(store: Store, *, recent: int = 20) -> dict[str, Any]:
    """Summarise the gateway's state as a JSON-ready dictionary."""
    latencies = np.array(store.done_latencies(), dtype=float).reshape(-1, 2)
    series, instances = store.received_counts()
    return {
        "queue": store.job_counts(),
        "deliveries": store.delivery_counts(),
        "alerts": store.alert_counts(),
        "received": {"series": series, "instances": instances},
        "purged": store.purge_counts(),
        "swept": store.swept_counts(),
        "latency_s": _summary(latencies[:, 0]),
        "run_s": _summary(latencies[:, 1]),
        "alert_latency_s": _summary(np.array(store.alert_latencies(), dtype=float)),
        "arriving_series": [_series(s, held=False) for s in store.arriving_series(recent)],
        "held_series": [_series(s, held=True) for s in store.held_series(recent)],
        "recent_jobs": [_job(j) for j in store.recent_jobs(recent)],
        "failures": [
            _job(j, _FAILURE_FIELDS) for j in store.recent_jobs(recent, state=JobState.DEAD)
        ],
        "alert_failures": [_alert(a) for a in store.recent_alerts(recent, state=AlertState.FAILED)],
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
