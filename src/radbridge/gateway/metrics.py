"""The gateway's Prometheus metrics, served at ``GET /metrics`` on the STOW-RS port.

What the state database keeps is read from it at every scrape, so those values
survive a restart and agree with ``radbridge gateway status``:

==========================================  =========================================
``radbridge_instances_received_total``      instances stored (every series' count)
``radbridge_instances_refused_total``       instances refused, by ``reason`` (the
                                            DICOM status: ``0xa700``, ``0xc000``, ...)
``radbridge_series_held``                   series on hold now
``radbridge_series_complete_total``         versions assembled complete
``radbridge_series_incomplete_total``       versions run although incomplete
``radbridge_jobs``                          jobs by ``state``
``radbridge_queue_depth``                   jobs waiting to run (``queued``)
``radbridge_deliveries``                    result deliveries by ``state``
``radbridge_alerts``                        critical-finding alerts by ``state``
                                            (pending, sent, failed; docs/triage.md)
``radbridge_purged_series_total``           series the retention sweep purged
``radbridge_purged_instances_total``        received instances it removed
``radbridge_purged_bytes_total``            bytes it freed (spool and outbox)
``radbridge_swept_files_total``             files no record named that the sweep
                                            removed, by ``kind``: ``unrecorded``
                                            (spool files never acknowledged),
                                            ``partial`` (writes a crash cut)
``radbridge_swept_bytes_total``             bytes they held, by ``kind``
``radbridge_disk_free_bytes``               free space where the spool is
``radbridge_disk_min_free_bytes``           the low-water mark (``min_free_disk_mb``)
==========================================  =========================================

What only this process sees is counted from its start:

==========================================  =========================================
``radbridge_model_seconds``                 histogram of model run times, by ``model``
``radbridge_encode_seconds``                histogram of result encoding times, by
                                            ``model``
``radbridge_delivery_attempts_total``       delivery attempts, by ``destination``
``radbridge_delivery_failures_total``       failed attempts, by ``destination`` and
                                            ``status_class`` (see
                                            :func:`radbridge.gateway.delivery.status_class`)
``radbridge_arrival_commits_total``         SQLite commits of arrival records, by
                                            ``outcome`` (``committed``, ``failed``)
``radbridge_arrival_records_total``         arrival records those commits held (more
                                            than commits: commits were shared)
==========================================  =========================================

The refusals' reasons are counted in this process too (the database keeps how
many, not why): their sum over ``reason`` is the database's count for refusals
since the start, ``unknown`` holding those of earlier runs. Labels are UIDs-free:
states, status codes, rule model specs and peer names only.

Examples
--------
>>> import tempfile, pathlib
>>> from prometheus_client.parser import text_string_to_metric_families
>>> from radbridge.gateway.store import Store
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> metrics = GatewayMetrics(Store(folder / "s.sqlite"), folder, min_free_disk_mb=200)
>>> metrics.job_ran("reference-ct", model_s=1.5, encode_s=0.2)
>>> body, content_type = metrics.exposition()
>>> families = {f.name: f for f in text_string_to_metric_families(body.decode())}
>>> [s.value for s in families["radbridge_model_seconds"].samples if s.name.endswith("_count")]
[1.0]
>>> families["radbridge_disk_min_free_bytes"].samples[0].value
209715200.0
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from radbridge.gateway.store import AlertState, CommitCounts, JobState, Store

__all__ = ["GatewayMetrics", "refusal_reason"]

#: Seconds: from a small model on a small series to a large one on a big CT.
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_JOB_STATES = (
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.DELIVERING,
    JobState.DONE,
    JobState.DEAD,
)
_DELIVERY_STATES = ("pending", "delivered", "failed")
_ALERT_STATES = (AlertState.PENDING, AlertState.SENT, AlertState.FAILED)


def refusal_reason(status: int | None) -> str:
    """Return the ``reason`` label of a refused instance: its DICOM status, or ``unknown``.

    Examples
    --------
    >>> refusal_reason(0xA700), refusal_reason(None)
    ('0xa700', 'unknown')
    """
    return "unknown" if status is None else f"0x{status:04x}"


class _StoreCollector(Collector):
    """Read the database's counts at each scrape (see the module docstring)."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        store = self.metrics.store
        _, instances = store.received_counts()
        yield CounterMetricFamily(
            "radbridge_instances_received", "Instances stored by the receivers.", instances
        )
        yield self.metrics.refusals(store.refused_count())
        series = store.series_counts()
        yield GaugeMetricFamily("radbridge_series_held", "Series on hold.", series["held"])
        for kind in ("complete", "incomplete"):
            yield CounterMetricFamily(
                f"radbridge_series_{kind}", f"Series versions assembled {kind}.", series[kind]
            )
        jobs = store.job_counts()
        yield _by_state("radbridge_jobs", "Jobs by state.", _JOB_STATES, jobs)
        yield GaugeMetricFamily(
            "radbridge_queue_depth", "Jobs waiting to run.", jobs.get(JobState.QUEUED, 0)
        )
        deliveries = store.delivery_counts()
        yield _by_state(
            "radbridge_deliveries", "Result deliveries by state.", _DELIVERY_STATES, deliveries
        )
        yield _by_state(
            "radbridge_alerts",
            "Critical-finding alerts by state.",
            _ALERT_STATES,
            store.alert_counts(),
        )
        yield from _purge_metrics(store.purge_counts())
        yield from _swept_metrics(store.swept_counts())
        yield from _commit_metrics(store.commit_counts)
        yield GaugeMetricFamily(
            "radbridge_disk_free_bytes",
            "Free disk space where the spool is.",
            self.metrics.free_bytes(),
        )
        yield GaugeMetricFamily(
            "radbridge_disk_min_free_bytes",
            "Below this free space the receivers refuse instances.",
            self.metrics.min_free_bytes,
        )


def _purge_metrics(counts: dict[str, int]) -> Iterator[Metric]:
    """Yield what the retention sweep removed (``spool_retention_h``), from the database."""
    for key, what in (
        ("series", "Series whose files retention removed."),
        ("instances", "Received instances retention removed."),
        ("bytes", "Bytes retention freed in the spool and outbox."),
    ):
        yield CounterMetricFamily(f"radbridge_purged_{key}", what, counts[key])


def _swept_metrics(counts: dict[str, int]) -> Iterator[Metric]:
    """Yield what the sweep of unrecorded and partial files removed, from the database."""
    files = CounterMetricFamily(
        "radbridge_swept_files", "Files no record named that the sweep removed.", labels=["kind"]
    )
    size = CounterMetricFamily(
        "radbridge_swept_bytes", "Bytes of the files no record named.", labels=["kind"]
    )
    for kind in ("unrecorded", "partial"):
        files.add_metric([kind], counts[kind])
        size.add_metric([kind], counts[f"{kind}_bytes"])
    yield files
    yield size


def _commit_metrics(counts: CommitCounts) -> Iterator[Metric]:
    """Yield the group commit counts of arrival records in this process (see above)."""
    commits = CounterMetricFamily(
        "radbridge_arrival_commits", "SQLite commits of arrival records.", labels=["outcome"]
    )
    commits.add_metric(["committed"], counts.commits - counts.failed)
    commits.add_metric(["failed"], counts.failed)
    yield commits
    yield CounterMetricFamily(
        "radbridge_arrival_records", "Arrival records the commits held.", counts.units
    )


def _by_state(
    name: str, documentation: str, states: tuple[str, ...], counts: dict[str, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state in (*states, *sorted(set(counts) - set(states))):
        family.add_metric([state], counts.get(state, 0))
    return family


class GatewayMetrics:
    """The metrics of one gateway, in a registry of their own (two gateways, two registries).

    Parameters
    ----------
    store
        The gateway's state store (read at each scrape).
    spool_dir
        Where the free disk space is measured.
    min_free_disk_mb
        The low-water mark, reported beside it.
    """

    def __init__(self, store: Store, spool_dir: Path, *, min_free_disk_mb: float) -> None:
        self.store = store
        self.spool_dir = Path(spool_dir)
        self.min_free_bytes = float(min_free_disk_mb) * 2**20
        self.registry = CollectorRegistry(auto_describe=False)
        self._lock = threading.Lock()
        self._refused: dict[str, int] = {}
        self.model_seconds, self.encode_seconds = (
            Histogram(name, text, ["model"], buckets=_BUCKETS, registry=self.registry)
            for name, text in (
                ("radbridge_model_seconds", "Model run time per job."),
                ("radbridge_encode_seconds", "Result encoding time per job."),
            )
        )
        self.delivery_attempts = Counter(
            "radbridge_delivery_attempts",
            "Delivery attempts.",
            ["destination"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "radbridge_delivery_failures",
            "Failed delivery attempts.",
            ["destination", "status_class"],
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(self))

    def refused(self, status: int | None) -> None:
        """Count a refused instance under its DICOM status."""
        reason = refusal_reason(status)
        with self._lock:
            self._refused[reason] = self._refused.get(reason, 0) + 1

    def refusals(self, total: int) -> CounterMetricFamily:
        """Return the refusals by reason; ``total`` (the database's) fills ``unknown``."""
        family = CounterMetricFamily(
            "radbridge_instances_refused", "Instances refused by the receivers.", labels=["reason"]
        )
        with self._lock:
            counted = dict(self._refused)
        earlier = max(total - sum(counted.values()), 0)
        counted["unknown"] = counted.get("unknown", 0) + earlier
        for reason in sorted(counted):
            family.add_metric([reason], counted[reason])
        return family

    def job_ran(self, model: str, *, model_s: float, encode_s: float) -> None:
        """Observe one job's model and encoding times."""
        self.model_seconds.labels(model=model).observe(model_s)
        self.encode_seconds.labels(model=model).observe(encode_s)

    def delivery_attempted(self, destination: str, failure: str | None = None) -> None:
        """Count a delivery attempt, and its failure's status class (if it failed)."""
        self.delivery_attempts.labels(destination=destination).inc()
        if failure is not None:
            self.delivery_failures.labels(destination=destination, status_class=failure).inc()

    def free_bytes(self) -> float:
        """Return the free space where the spool is (NaN when it cannot be measured)."""
        try:
            return float(shutil.disk_usage(self.spool_dir).free)
        except OSError:
            return float("nan")

    def exposition(self) -> tuple[bytes, str]:
        """Return the metrics in Prometheus's text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
