"""Decide when a received series is complete, freeze its inputs, queue a job per rule.

A series is complete when it has new content, every transfer that brought it
has ended, none of them ended badly (aborted, failed, refused instances, cut
by a restart — those put the series on *hold*), its last arrival or transfer
end is ``quiet_period_s`` old, and — where the data or the source PACS says how
many instances to expect (:mod:`radbridge.gateway.completeness`) — the count is
reached. A short count holds the series too.

Each completion makes a new *version* of the series: its exact input set (SOP
Instance UIDs and content digests) is frozen with its jobs in one transaction,
and a job only ever reads that set. Instances arriving later make version 2,
3, ... with new result UIDs (results are never replaced).

A series whose files the retention sweep removed (:mod:`radbridge.gateway.retention`)
starts afresh when instances of it arrive again: its next version is made of what
arrived since (``after_purge``), logged with the count of the purged instances.

A held series becomes complete when a clean transfer of it (opened after the
bad one's last activity) ends; a series held for a short count is counted again
when new instances of it arrive or any transfer of it ends cleanly. If neither
comes within ``incomplete_after_s`` of its last activity, a version is made of
what arrived, marked incomplete: a rule with ``on_incomplete = "run"`` runs on
it, the default ``"hold"`` dead-letters its job with the reason ``incomplete
transfer`` (``gateway retry`` runs it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pydicom.dataset import Dataset

from radbridge.gateway.completeness import expected_from_headers, expected_from_pacs
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.routing import SeriesFacts, priority_of
from radbridge.gateway.store import JobSpec, JobState, SeriesState, Snapshot, Store, VersionInput
from radbridge.io.series import load_datasets

__all__ = ["INCOMPLETE", "Assembled", "assemble", "pacs_count_source"]

log = logging.getLogger(__name__)

#: The reason a job of an incomplete version is dead-lettered with (``on_incomplete = "hold"``).
INCOMPLETE = "incomplete transfer"

#: Asks another source how many instances a series has: (study, series) -> (count, signal).
CountSource = Callable[[str, str], "tuple[int, str] | None"]


@dataclass(frozen=True)
class Assembled:
    """What the assembler did with a series: a version made, or a hold."""

    series_instance_uid: str
    version: int
    job_ids: tuple[int, ...]
    complete: bool = True
    held: str | None = None
    #: the instances of the series purged before this version (0: none)
    after_purge: int = 0


def _headers(inputs: Sequence[VersionInput], series_uid: str) -> list[Dataset] | None:
    try:
        return load_datasets([Path(i.path) for i in inputs], headers_only=True)
    except Exception as exc:  # an unreadable spool file must not stop the assembler
        log.warning("series %s: headers unreadable (%s); no job", series_uid, type(exc).__name__)
        return None


def _jobs(
    config: GatewayConfig, facts: SeriesFacts | None, *, complete: bool, note: str | None
) -> list[JobSpec]:
    jobs: list[JobSpec] = []
    if facts is None:
        return jobs
    for rule in config.rules:
        if not rule.matches(facts):
            continue
        job = JobSpec(
            rule.name, rule.model, priority_of(facts, config.priorities, base=rule.priority)
        )
        if not complete and rule.on_incomplete == "hold":
            why = f"{INCOMPLETE} ({note}); `radbridge gateway retry JOB` runs it on what arrived"
            job = replace(job, state=JobState.DEAD, error=why)
        jobs.append(job)
    return jobs


def _after_purge(row: SeriesState, version: int, count: int) -> int:
    """Log that a series starts afresh after a purge; return the purged count (0: none)."""
    if not row.purged_version or row.purged_version != row.version:
        return 0
    log.info(
        "series %s: its %d earlier instances (versions up to %d) were purged after "
        "spool_retention_h; version %d is made of the %d instances received since",
        row.series_instance_uid,
        row.purged_instances,
        row.purged_version,
        version,
        count,
    )
    return row.purged_instances


def _expected(
    headers: list[Dataset], row: SeriesState, count_source: CountSource | None
) -> tuple[int, str] | None:
    found = [expected_from_headers(headers)]
    if count_source is not None:
        found.append(count_source(row.study_instance_uid, row.series_instance_uid))
    known = [item for item in found if item is not None]
    return max(known) if known else None


def _settled(
    store: Store,
    config: GatewayConfig,
    row: SeriesState,
    count_source: CountSource | None,
    stamp: float,
) -> Assembled | None:
    series_uid = row.series_instance_uid
    read = _read(store, row)
    if read is None:  # changed since it was chosen: the next round decides
        return None
    snapshot, headers, facts = read
    inputs = snapshot.inputs
    if headers:
        expected = _expected(headers, row, count_source)
        if expected is not None and len(inputs) < expected[0]:
            count, signal = expected
            reason = f"waiting for the rest: {len(inputs)} of {count} instances ({signal})"
            if not store.hold_short(series_uid, reason, snapshot, now=stamp):
                return None  # changed meanwhile: the next round decides
            log.warning("series %s held: %s", series_uid, reason)
            return Assembled(series_uid, row.version, (), complete=False, held=reason)
    jobs = _jobs(config, facts, complete=True, note=None)
    version, ids = store.create_version(
        series_uid, inputs, jobs, complete=True, snapshot=snapshot, now=stamp
    )
    log.info(
        "series %s complete (version %d, %d instances): %d jobs",
        series_uid,
        version,
        len(inputs),
        len(ids),
    )
    purged = _after_purge(row, version, len(inputs))
    return Assembled(series_uid, version, tuple(ids), after_purge=purged)


def _read(
    store: Store, row: SeriesState
) -> tuple[Snapshot, list[Dataset] | None, SeriesFacts | None] | None:
    """Return the series' snapshot, its headers and routing facts; None if it changed."""
    snapshot = store.snapshot_inputs(row)
    if snapshot is None:
        return None
    headers = _headers(snapshot.inputs, row.series_instance_uid)
    return snapshot, headers, SeriesFacts.from_headers(headers) if headers else None


def _given_up(
    store: Store, config: GatewayConfig, row: SeriesState, stamp: float
) -> Assembled | None:
    series_uid = row.series_instance_uid
    note = str(row.held_reason)
    read = _read(store, row)
    if read is None:  # changed since it was chosen: the next round decides
        return None
    snapshot, _, facts = read
    inputs = snapshot.inputs
    jobs = _jobs(config, facts, complete=False, note=note)
    version, ids = store.create_version(
        series_uid, inputs, jobs, complete=False, note=note, snapshot=snapshot, now=stamp
    )
    log.warning(
        "series %s incomplete after %.0f s (%s): version %d of %d instances, %d jobs",
        series_uid,
        config.incomplete_after_s,
        note,
        version,
        len(inputs),
        len(ids),
    )
    purged = _after_purge(row, version, len(inputs))
    return Assembled(series_uid, version, tuple(ids), complete=False, after_purge=purged)


def pacs_count_source(config: GatewayConfig) -> CountSource | None:
    """Return the C-FIND count check of ``verify_count_with`` (None when not configured)."""
    if not config.verify_count_with:
        return None
    peer = config.peers[config.verify_count_with]

    def ask(study_uid: str, series_uid: str) -> tuple[int, str] | None:
        return expected_from_pacs(peer, study_uid, series_uid, ae_title=config.ae_title)

    return ask


def assemble(
    store: Store,
    config: GatewayConfig,
    *,
    count_source: CountSource | None = None,
    now: float | None = None,
) -> list[Assembled]:
    """Make versions of complete series, hold short ones, give up on stale holds."""
    stamp = now or time.time()
    done = [
        _settled(store, config, row, count_source, stamp)
        for row in store.settled_series(config.quiet_period_s, stamp)
    ]
    done += [
        _given_up(store, config, row, stamp)
        for row in store.stale_held_series(config.incomplete_after_s, stamp)
    ]
    return [item for item in done if item is not None]
