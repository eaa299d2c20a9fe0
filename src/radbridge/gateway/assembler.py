"""Decide when a received series is complete, and queue a job per matching rule.

A series is complete when no association that brought it is still open and its
last instance arrived at least ``quiet_period_s`` ago — or as soon as an
expected instance count is reached. Each completion gives the series a new
*version*: instances that arrive after a series was processed make version 2,
3, ... and a new job whose results get new UIDs (results are never silently
replaced). Series that match no rule are recorded as processed and left alone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.queue import enqueue
from radbridge.gateway.routing import SeriesFacts, priority_of
from radbridge.gateway.state import Store
from radbridge.io.series import load_datasets

__all__ = ["Assembled", "assemble"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assembled:
    """A series found complete, and the jobs queued for it."""

    series_instance_uid: str
    version: int
    job_ids: tuple[int, ...]


def _ready(store: Store, quiet_period_s: float, now: float) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT * FROM series WHERE instance_count > processed_count AND ("
        "(expected_count IS NOT NULL AND instance_count >= expected_count) OR "
        "(open_associations = 0 AND last_received_at + ? <= ?))",
        quiet_period_s,
        now,
    )
    return [dict(row) for row in rows]


def assemble(store: Store, config: GatewayConfig, *, now: float | None = None) -> list[Assembled]:
    """Queue jobs for every series that became complete; return what was queued."""
    stamp = now or time.time()
    out = []
    for row in _ready(store, config.quiet_period_s, stamp):
        series_uid = str(row["series_instance_uid"])
        paths = store.instance_paths(series_uid)
        try:
            headers = load_datasets([Path(p) for p in paths], headers_only=True)
            facts = SeriesFacts.from_headers(headers)
        except Exception as exc:  # an unreadable spool file must not stop the assembler
            log.warning(
                "series %s: headers unreadable (%s); no job", series_uid, type(exc).__name__
            )
            facts = None
        version = int(row["version"]) + 1
        job_ids = []
        if facts is not None:
            for rule in config.rules:
                if not rule.matches(facts):
                    continue
                job_ids.append(
                    enqueue(
                        store,
                        series_uid,
                        str(row["study_instance_uid"]),
                        version=version,
                        rule=rule.name,
                        model=rule.model,
                        priority=priority_of(facts, config.priorities, base=rule.priority),
                        instance_count=int(row["instance_count"]),
                        now=stamp,
                    )
                )
        with store.transaction() as db:
            db.execute(
                "UPDATE series SET version = ?, processed_count = ? WHERE series_instance_uid = ?",
                (version, int(row["instance_count"]), series_uid),
            )
        log.info(
            "series %s complete (version %d, %d instances): %d jobs",
            series_uid,
            version,
            row["instance_count"],
            len(job_ids),
        )
        out.append(Assembled(series_uid, version, tuple(job_ids)))
    return out
