"""What the gateway store returns: plain frozen records, never database rows."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, fields
from typing import Any, Self

__all__ = [
    "Alert",
    "AlertState",
    "Delivery",
    "DeliveryState",
    "Job",
    "JobSpec",
    "JobState",
    "Purge",
    "PurgeFile",
    "Retry",
    "SeriesState",
    "Snapshot",
    "VersionInput",
]


def _columns(record: Any, row: Any) -> dict[str, Any]:
    """Return the values of the row's columns named like the record's fields."""
    return {field.name: row[field.name] for field in fields(record)}


class _FromRow:
    """A record read from a row of its table, whose columns are named like its fields."""

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """Build from a row of the record's table (``jobs``, ``alerts``, ...)."""
        return cls(**_columns(cls, row))


class JobState:
    """Job states (a job moves queued → running → delivering → done, or → dead)."""

    QUEUED = "queued"
    RUNNING = "running"
    DELIVERING = "delivering"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True)
class Retry:
    """How often a failed job, delivery or alert is tried, and the first backoff (doubling).

    Examples
    --------
    >>> retry = Retry(max_attempts=4, base_s=2.0)
    >>> [retry.delay(n) for n in (1, 2, 3)], retry.exhausted(3), retry.exhausted(4)
    ([2.0, 4.0, 8.0], False, True)
    >>> retry.next_attempt_at(2, 100.0), retry.next_attempt_at(4, 100.0)
    (104.0, None)
    """

    max_attempts: int
    base_s: float
    #: the longest wait between two attempts
    max_delay_s: float = 300.0

    def delay(self, attempts: int) -> float:
        """Return the wait after the ``attempts``-th failed attempt (1-based), doubling."""
        return float(min(self.base_s * 2 ** max(attempts - 1, 0), self.max_delay_s))

    def exhausted(self, attempts: int) -> bool:
        """Tell whether ``attempts`` tries are all there are."""
        return attempts >= self.max_attempts

    def next_attempt_at(
        self, attempts: int, now: float, *, permanent: bool = False
    ) -> float | None:
        """Return when to try again after ``attempts`` failed tries, or ``None`` to give up.

        A ``permanent`` failure, or the last allowed attempt, gives up.
        """
        if permanent or self.exhausted(attempts):
            return None
        return now + self.delay(attempts)


@dataclass(frozen=True)
class VersionInput:
    """One instance content a version of a series is built from."""

    sop_instance_uid: str
    sha256: str
    path: str


@dataclass(frozen=True)
class JobSpec:
    """A job to queue with a new version: its rule, model and priority.

    ``state`` and ``error`` make a job that is dead from the start (a version its
    rule holds as incomplete).
    """

    rule: str
    model: str
    priority: int
    state: str = JobState.QUEUED
    error: str | None = None


@dataclass(frozen=True)
class Job(_FromRow):
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
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def results_time(self) -> _dt.datetime:
        """Return the date and time the job's results carry: when it was queued.

        Local time of this machine, to the second, as a modality dates its images.
        It is fixed by the job, so a re-run of the same job writes the same bytes
        (a dead job run again from scratch is queued, and dated, anew).

        Examples
        --------
        >>> job = Job(1, "1.2", "1.2.3", 1, "rule", "model", 0, "queued", 0, 3, created_at=0.5)
        >>> job.results_time() == _dt.datetime.fromtimestamp(0)
        True
        """
        if self.created_at is None:  # a record made by hand: a fixed, recognisable date
            return _dt.datetime(2000, 1, 1) + _dt.timedelta(seconds=self.version)
        return _dt.datetime.fromtimestamp(int(self.created_at))


@dataclass(frozen=True)
class Delivery:
    """One result file for one destination (``sha256``: the digest its bytes must have)."""

    job_id: int
    destination: str
    sop_instance_uid: str
    path: str
    attempts: int
    sha256: str | None = None


@dataclass(frozen=True)
class DeliveryState(_FromRow):
    """Where one result file stands for one destination (``state``: pending, delivered, failed)."""

    job_id: int
    destination: str
    sop_instance_uid: str
    state: str
    attempts: int
    delivered_at: float | None
    error: str | None


class AlertState:
    """Alert states: ``pending`` (queued or backing off) → ``sent``, or ``failed`` (dead letter)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Alert(_FromRow):
    """One critical-finding alert of one job version for one destination.

    ``payload`` is the stored :class:`~radbridge.net.AlertMessage` JSON (UIDs, codes
    and values; no patient data); ``answer`` is what the destination said.
    """

    job_id: int
    target: str
    idempotency_key: str
    payload: str
    state: str
    attempts: int
    created_at: float
    sent_at: float | None = None
    answer: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SeriesState(_FromRow):
    """The arrival bookkeeping of one series (UIDs, counts, times; no patient data).

    ``revision`` counts content changes, ``assembled_revision`` the last one a
    version was made of; ``held_reason`` is set while the series is on hold,
    ``held_since`` is the last activity of the transfer that held it (None for a
    short count), and ``holds`` counts the holds ever placed on it. ``purged_at``
    is when the retention sweep last removed its files, ``purged_version`` the
    newest version removed then (versions after it hold instances received since),
    and the ``purged_*`` counts add up what every purge of it removed
    (``instance_count`` counts only the instances received since the last purge).
    """

    series_instance_uid: str
    study_instance_uid: str
    instance_count: int
    first_received_at: float
    last_received_at: float
    settled_at: float
    open_transfers: int
    revision: int
    assembled_revision: int
    version: int
    expected_count: int | None
    held_reason: str | None
    held_since: float | None
    held_at: float | None
    holds: int
    purged_at: float | None = None
    purged_version: int = 0
    purged_instances: int = 0
    purged_results: int = 0
    purged_bytes: int = 0


@dataclass(frozen=True)
class Purge:
    """A finished series the retention sweep claimed: its rows are gone, its files go next.

    ``versions`` are the versions purged now, ``instances`` the received instances
    and ``results`` the result objects whose files are removed, ``files`` the
    spool files and outbox folders queued for removal (:class:`PurgeFile`).
    ``released_hold`` is the reason of the hold the purge released (a held series
    with nothing new, given up on after the retention), if any.
    """

    series_instance_uid: str
    versions: tuple[int, ...]
    jobs: tuple[int, ...]
    instances: int
    results: int
    files: int
    released_hold: str | None = None


@dataclass(frozen=True)
class PurgeFile(_FromRow):
    """A spool file (``kind`` ``spool``) or outbox folder (``outbox``) a purge removes."""

    path: str
    series_instance_uid: str
    sop_instance_uid: str | None
    kind: str


@dataclass(frozen=True)
class Snapshot:
    """The inputs of a series read for a new version, and the state they were read in.

    ``revision`` is the series' content revision and ``holds`` how many holds had
    been placed on it when the inputs were read: a version made of them lifts
    only a hold that was already there, never one placed while it was frozen.
    """

    series_instance_uid: str
    revision: int
    holds: int
    inputs: tuple[VersionInput, ...]
