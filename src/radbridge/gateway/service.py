"""The gateway service: the loops that move work from the spool to the destinations.

:class:`Gateway` owns the state store and four kinds of workers:

- the **assembler** finds complete series and queues jobs;
- **runners** (``workers`` threads) claim jobs by priority and run them (an
  urgent result's alerts are queued with its deliveries);
- the **senders** deliver outbox files with retries, one thread per destination a
  rule names (at most 8), one file per destination at a time, so a slow or stalled
  destination delays only its own deliveries;
- the **alerter** sends critical-finding alerts with retries
  (:mod:`radbridge.gateway.alerting`), apart from the deliveries so an alert
  never waits behind a long delivery queue;
- in the assembler's loop, the **retention sweep**
  (:mod:`radbridge.gateway.retention`) removes the spool files and outbox
  folders of series finished ``spool_retention_h`` ago.

The gateway is the receivers' :class:`~radbridge.net.ReceiverSink`: the
C-STORE SCP and the STOW-RS server report each transfer's start and end and each
instance stored or refused, and the gateway decides from that which series are
complete (:mod:`radbridge.gateway.assembler`). :meth:`Gateway.step` runs one
round of every loop synchronously (tests and single-threaded use).

Restart safety: on start, jobs left running are queued again, transfers left open
by a crash end as ``failed`` (their series are held), temporary files in the
outbox and archive are removed, and every step resumes from what the database
says.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radbridge.errors import RadbridgeError, StorageError
from radbridge.gateway.alerting import AlertSender, alert_rows, send_queued_alert
from radbridge.gateway.assembler import assemble, pacs_count_source
from radbridge.gateway.audit import AuditLog
from radbridge.gateway.conditions import Conditions
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.delivery import (
    DestinationSender,
    deliver,
    is_permanent,
    network_sender,
    status_class,
)
from radbridge.gateway.executors import make_executor
from radbridge.gateway.metrics import GatewayMetrics
from radbridge.gateway.orphans import OrphanSweep
from radbridge.gateway.retention import Sweeper
from radbridge.gateway.runner import ModelCache, PermanentJobError, run_job
from radbridge.gateway.store import Alert, Delivery, Job, Retry, Store
from radbridge.io.part10 import same_dataset
from radbridge.io.storage import make_dirs, remove_stale_temporaries
from radbridge.net import StoredInstance, TransferOutcome, send_alert

if TYPE_CHECKING:
    from radbridge.net import StorageSCP, StowServer

__all__ = ["Gateway", "prepare_data_dir"]

log = logging.getLogger(__name__)

#: Most sender threads: one per destination the rules name, up to this many.
MAX_SENDERS = 8


def prepare_data_dir(config: GatewayConfig) -> None:
    """Create the data directory's folders and files that do not exist yet, private.

    Folders get ``config.dir_mode`` and the state database and audit log
    ``config.file_mode`` (0700/0600 by default: they hold patient data); SQLite
    gives its WAL and shared-memory files the database's mode.
    """
    for folder in (config.data_dir, config.spool_dir, config.outbox_dir, config.archive_dir):
        make_dirs(folder, config.dir_mode)
    for path in (config.database, config.audit_log):
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, config.file_mode)
        except FileExistsError:
            continue
        os.fchmod(handle, config.file_mode)
        os.close(handle)


def _about(item: Delivery) -> dict[str, Any]:
    """Return the audit fields that name a delivery."""
    return {
        "job": item.job_id,
        "destination": item.destination,
        "sop_instance_uid": item.sop_instance_uid,
    }


def _alert_about(item: Alert) -> dict[str, Any]:
    """Return the audit fields that name an alert."""
    return {"job": item.job_id, "destination": item.target, "key": item.idempotency_key}


def _check_present(paths: list[str]) -> None:
    """Refuse to record spool files that are gone (registered, so nothing removes them now).

    The retention sweep may have removed a file of a purged series just before
    a receiver registered it (the same instance sent again), and the sweep of
    unrecorded files one renamed onto an unrecorded file's name: it is refused
    then, never acknowledged without its file.
    """
    for path in paths:
        if not os.path.exists(path):
            raise StorageError(
                "the spool file was removed (by a sweep) while it was being recorded",
                path=path,
                hint="send the instance again",
            )


def _reason(exc: BaseException) -> str:
    """Say why a job or alert failed: our errors' message, else the exception's type and text."""
    if isinstance(exc, RadbridgeError):
        return str(exc)
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class Gateway:
    """The gateway's processing core.

    It owns the state store, the audit log, the executor, the model cache
    (:class:`~radbridge.gateway.runner.ModelCache`: each model loaded once, closed
    by :meth:`close`) and its Prometheus metrics
    (:class:`~radbridge.gateway.metrics.GatewayMetrics`). The objects a job makes
    come from the output kinds of :mod:`radbridge.results` its rule names.

    Parameters
    ----------
    config
        The configuration.
    sender
        Sends a file to a named peer; by default
        :func:`~radbridge.gateway.delivery.network_sender` for the configuration's
        ``[peers]`` (each peer's transport's :class:`~radbridge.net.Sender`).
    alert_sender
        Sends an alert to a destination of ``[alerts]``; by default
        :func:`radbridge.net.send_alert`.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        sender: DestinationSender | None = None,
        alert_sender: AlertSender | None = None,
    ) -> None:
        self.config = config
        prepare_data_dir(config)
        self.store = Store(config.database)
        self.audit = AuditLog(config.audit_log)
        self.sender = sender or network_sender(config.peers, ae_title=config.ae_title)
        self.alert_sender = alert_sender or send_alert
        self.executor = make_executor(config.executor)
        self.models = ModelCache()
        self.metrics = GatewayMetrics(
            self.store, config.spool_dir, min_free_disk_mb=config.min_free_disk_mb
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._receiving = threading.Lock()
        self._recording = threading.Lock()
        self._spooling: Counter[str] = Counter()  # spool files being recorded
        self._sending: set[str] = set()  # destinations a sender thread is sending to
        self._claiming = threading.Lock()
        self._running = 0  # loop threads not yet ended
        self._closing: bool | None = None  # None: open; False: close asked; True: closed
        self._refusals: dict[str, tuple[int, set[str], float]] = {}
        self._unrecorded: set[int] = set()  # jobs left running: their outcome was not recorded
        self._ended: deque[tuple[str, TransferOutcome, Any, float]] = deque()
        self._conditions = Conditions(log)
        self._disk_ok = True
        self._count_source = pacs_count_source(config)
        parts, lock = (self.store, config, self.audit), self._recording
        self.sweeper = Sweeper(*parts, recording=lock, in_use=self._in_use)
        self.orphans = OrphanSweep(*parts, recording=lock, in_use=self._in_use)
        self._recover()

    def _recover(self) -> None:
        """Resume after a crash: requeue running jobs, hold cut series, drop temporaries."""
        recovered = self.store.recover_jobs()
        ended, held = self.store.recover_open_transfers()
        stale = sum(  # no writer of this gateway has started yet
            remove_stale_temporaries(folder, grace_s=0.0)
            for folder in (self.config.spool_dir, self.config.outbox_dir, self.config.archive_dir)
        )
        if stale:
            self.store.count_swept("partial", stale, 0)
        if recovered or ended or stale:
            log.warning(
                "recovered %d interrupted jobs, %d open transfers (%d series held), "
                "%d partial result files",
                recovered,
                ended,
                len(held),
                stale,
            )
            self.audit.write(
                "recovered", jobs=recovered, transfers=ended, held=held, partial_files=stale
            )

    # -- the receiver contract (radbridge.net.ReceiverSink) -----------

    def transfer_opened(self, transfer_id: str) -> None:
        """Record that a transfer started (its series wait for its end)."""
        self.store.open_transfer(transfer_id)

    def instance_stored(self, instance: StoredInstance, transfer_id: str) -> None:
        """Record an instance the receiver has durably stored; raise to have it refused.

        An identical re-send is a duplicate; a different content under a known
        SOP Instance UID is kept beside the first (a new version follows).
        """
        self.instances_stored([instance], transfer_id)

    def instances_stored(self, instances: Sequence[StoredInstance], transfer_id: str) -> None:
        """Record durable instances in one transaction, all or none; raise to have all refused.

        The STOW-RS receiver hands over the parts of a request together (see
        :class:`~radbridge.net.receiver.BatchSink`); each is recorded as by
        :meth:`instance_stored`.
        """
        spooled = [str(instance.path) for instance in instances]
        self._register(spooled)  # files named by content: another transfer may record this one
        try:
            prepared = [self._prepare(instance) for instance in instances]
            kept = [path for _, _, path in prepared if path not in spooled]
            self._register(kept)  # an earlier file this content is recorded as
            spooled += kept
            _check_present(spooled)
            rows = [
                (i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid, sha256, path)
                for i, (_, sha256, path) in zip(instances, prepared, strict=True)
            ]
            kinds = self.store.record_instances(rows, transfer=transfer_id)
        finally:
            with self._recording:
                self._spooling.subtract(spooled)
                self._spooling = +self._spooling  # drop the zero counts
        for instance, (redundant, sha256, path), kind in zip(
            instances, prepared, kinds, strict=True
        ):
            if redundant is not None and redundant != Path(path):
                self._drop_redundant(instance, redundant)
            if kind == "changed":
                log.warning(
                    "SOP instance %s re-sent with other content: both kept",
                    instance.sop_instance_uid,
                )
            self.audit.write(
                "received",
                study_instance_uid=instance.study_instance_uid,
                series_instance_uid=instance.series_instance_uid,
                sop_instance_uid=instance.sop_instance_uid,
                sha256=sha256,
                transfer=transfer_id,
                duplicate=kind == "duplicate",
                changed=kind == "changed",
            )

    def _in_use(self, path: str) -> bool:
        """Whether a receiver is recording the spool file ``path`` (call under the lock)."""
        return self._spooling[path] > 0

    def _register(self, paths: list[str]) -> None:
        """Mark spool files as being recorded: the retention sweep leaves them alone."""
        with self._recording:
            self._spooling.update(paths)

    def _drop_redundant(self, instance: StoredInstance, redundant: Path) -> None:
        """Remove a copy of recorded data, unless a record of that very file is made or kept.

        Spool files are named by their content, so the same re-encoded copy sent on
        two transfers at once is one file: one transfer may find it redundant while
        the other, which looked before the first content was recorded, records it.
        """
        with self._recording:
            if self._spooling[str(redundant)]:
                return
            recorded = self.store.contents(instance.series_instance_uid, instance.sop_instance_uid)
            if str(redundant) not in {content.path for content in recorded}:
                redundant.unlink(missing_ok=True)

    def _prepare(self, instance: StoredInstance) -> tuple[Path | None, str, str]:
        """Return (the file to drop as redundant, the digest, the path to record) for it."""
        series, sop = instance.series_instance_uid, instance.sop_instance_uid
        sha256, path = instance.sha256, str(instance.path)
        known = self.store.contents(series, sop)
        redundant = None
        if known and sha256 not in {k.sha256 for k in known}:
            if same_dataset(Path(known[-1].path), instance.path):  # re-encoded, same data
                redundant, sha256, path = instance.path, known[-1].sha256, known[-1].path
        elif not known and len(others := self.store.series_of_sop(sop)) > 0:
            log.warning("SOP instance %s also in series %s: kept in both", sop, others[0])
        return redundant, sha256, path

    def instance_refused(
        self, transfer_id: str, series_uid: str | None, reason: str, status: int | None = None
    ) -> None:
        """Remember a refused instance (its transfer then holds its series); never raises.

        ``status`` is the DICOM status it was refused with (counted in the metrics).
        """
        self.metrics.refused(status)
        with self._receiving:
            count, series, _ = self._refusals.get(transfer_id, (0, set(), 0.0))
            if series_uid:
                series.add(series_uid)
            self._refusals[transfer_id] = (count + 1, series, time.time())
        self.audit.write(
            "refused", transfer=transfer_id, series_instance_uid=series_uid, reason=reason[:200]
        )

    def transfer_ended(self, transfer_id: str, outcome: TransferOutcome) -> None:
        """Record how a transfer ended (kept in memory and retried if the database fails)."""
        with self._receiving:
            refused = self._refusals.pop(transfer_id, None)
            self._ended.append((transfer_id, outcome, refused, time.time()))
        self._record_ends()

    def _record_ends(self) -> None:
        with self._receiving:
            while self._ended:
                transfer_id, outcome, refused, stamp = self._ended[0]
                count, series, last = refused or (0, set(), 0.0)
                try:
                    held = self.store.end_transfer(
                        transfer_id,
                        outcome,
                        refused=count,
                        refused_series=series,
                        last_activity_at=last,
                        now=stamp,
                    )
                except Exception as exc:  # disk full: the series stay open until recorded
                    self._conditions.report("recording transfer ends", exc)
                    return
                self._conditions.clear("recording transfer ends")
                self._ended.popleft()
                for series_uid in held:
                    self.audit.write(
                        "series held",
                        series_instance_uid=series_uid,
                        transfer=transfer_id,
                        outcome=outcome,
                        refused=count,
                    )

    def stow_server(self, *, port: int = 0, **options: Any) -> StowServer:
        """Return the gateway's STOW-RS receiver (not started), set up from the configuration.

        Host, credentials, limits, TLS and file mode come from the configuration;
        ``options`` override them (see :class:`~radbridge.net.StowServer`).
        The status page and ``/metrics`` (:class:`~radbridge.gateway.web.StatusSite`)
        are served on the same port, behind the same credentials. A part in a
        transfer syntax radbridge cannot decode here is refused (``0xC122``).
        """
        from radbridge.gateway.web import StatusSite
        from radbridge.net import StowServer
        from radbridge.pixels.codecs import decodable_syntaxes

        settings: dict[str, Any] = {
            "host": self.config.host,
            "auth": self.config.stow_auth,
            "limits": self.config.stow,
            "tls": self.config.tls,
            "tls_handshake_timeout_s": self.config.tls_handshake_timeout_s,
            "file_mode": self.config.file_mode,
            "transfer_syntaxes": decodable_syntaxes(),
        } | options
        settings.setdefault("site", StatusSite(self, credentials=settings["auth"] is not None))
        return StowServer(
            self.config.spool_dir,
            self,
            port=port,
            accepting=self.disk_ok,
            unique_contents=True,
            **settings,
        )

    def receiver(self, *, port: int | None = None) -> StorageSCP:
        """Return the gateway's C-STORE SCP (not started): it spools and records instances.

        An instance is acknowledged only after its file is durable *and* its row is
        committed in the state database. Presentation contexts are accepted only in
        transfer syntaxes radbridge can decode here
        (:func:`~radbridge.pixels.codecs.decodable_syntaxes`), so that a PACS falls
        back to one of them instead of sending a series no model can read.
        """
        from radbridge.net import StorageSCP
        from radbridge.pixels.codecs import decodable_syntaxes

        return StorageSCP(
            self.config.spool_dir,
            ae_title=self.config.ae_title,
            host=self.config.host,
            port=self.config.port if port is None else port,
            allowed_calling_aets=self.config.allowed_calling_aets,
            max_associations=self.config.max_associations,
            timeout_s=self.config.network_timeout_s,
            sink=self,
            accepting=self.disk_ok,
            unique_contents=True,
            tls=self.config.tls,
            tls_handshake_timeout_s=self.config.tls_handshake_timeout_s,
            file_mode=self.config.file_mode,
            transfer_syntaxes=decodable_syntaxes(),
        )

    def serve(self, stop: threading.Event) -> None:
        """Run everything — receivers, assembler, runners, sender — until ``stop`` is set."""
        receivers: list[Any] = []
        try:
            # the STOW-RS port is taken first: if it is busy, nothing has started yet
            stow = self.stow_server(port=self.config.stow_port) if self.config.stow_port else None
            receivers.append(self.receiver().start())
            if stow is not None:
                receivers.append(stow.start())
            self.start()
            log.info("gateway %s serving on port %d", self.config.ae_title, receivers[0].port)
            stop.wait()
        finally:
            for receiver in receivers:
                receiver.stop()
            self.close()

    def disk_ok(self) -> bool:
        """Whether there is room to accept more instances (the low-water mark)."""
        try:
            free = shutil.disk_usage(self.config.spool_dir).free / 2**20
        except OSError as exc:
            self._conditions.report("checking free disk space", exc)
            return False
        ok = free >= self.config.min_free_disk_mb
        if ok != self._disk_ok:
            self._disk_ok = ok
            if ok:
                log.warning("free disk space back above %.0f MB: receiving again", free)
            else:
                log.error(
                    "free disk space %.0f MB below min_free_disk_mb %.0f: refusing instances",
                    free,
                    self.config.min_free_disk_mb,
                )
        return ok

    # -- one round of each loop ----------------------------------------------

    def assemble_once(self) -> int:
        """Queue jobs for complete series; return how many series completed."""
        self._record_ends()
        done = assemble(self.store, self.config, count_source=self._count_source)
        for item in done:
            if item.held:
                self.audit.write(
                    "series held", series_instance_uid=item.series_instance_uid, reason=item.held
                )
                continue
            after = {"after_purge": item.after_purge} if item.after_purge else {}
            self.audit.write(
                "series complete" if item.complete else "series incomplete",
                series_instance_uid=item.series_instance_uid,
                version=item.version,
                jobs=list(item.job_ids),
                **after,
            )
        return sum(1 for item in done if not item.held)

    def sweep_once(self, *, now: float | None = None) -> bool:
        """Run one round of the retention sweep (see :mod:`radbridge.gateway.retention`).

        ``now``: the time retention is measured to (default: the clock). Returns
        whether anything was purged or removed.
        """
        return self.sweeper.sweep(now=now)

    def _assembler_round(self) -> bool:
        """Assemble, then the sweeps when due (their failures apart): the assembler loop's body."""
        busy = self.assemble_once() > 0
        orphans, sweeper = self.orphans, self.sweeper
        busy = self._guarded("removing unrecorded files", orphans.due, orphans.sweep) or busy
        return self._guarded("removing purged files", sweeper.due, self.sweep_once) or busy

    def _guarded(self, what: str, due: Callable[[], bool], sweep: Callable[[], bool]) -> bool:
        """Run one round of a sweep if it is due; its failure is reported, never raised."""
        if not due():
            return False
        try:
            swept = sweep()
        except Exception as exc:  # a sweep must never stop the assembling
            self._conditions.report(what, exc)
            return False
        self._conditions.clear(what)
        return swept

    def run_once(self) -> bool:
        """Run the most urgent ready job, if any; return whether one ran.

        A job whose outcome cannot be recorded (the database locked or full when
        its run ends) is queued again once the database works, and runs again
        with the same UIDs, as after a crash; until then the error propagates.
        """
        self._requeue_unrecorded()
        if not self._outbox_ok():
            return False
        job = self.store.claim_job()
        if job is None:
            return False
        try:
            self._run(job)
        except BaseException:
            with self._claiming:
                self._unrecorded.add(job.id)
            raise
        return True

    def _outbox_ok(self) -> bool:
        """Whether the outbox has ``min_free_disk_mb`` free: below it, no job is started.

        A run whose results cannot be written would only run the model again and
        again; the jobs wait in the queue (logged once) until there is room.
        """
        try:
            free = shutil.disk_usage(self.config.outbox_dir).free / 2**20
            if free < self.config.min_free_disk_mb:
                raise StorageError(
                    f"{free:.0f} MB free, below min_free_disk_mb "
                    f"{self.config.min_free_disk_mb:g}: no job is started",
                    path=self.config.outbox_dir,
                    hint="free disk space; the queued jobs then run",
                )
        except (OSError, StorageError) as exc:
            self._conditions.report("writing results to the outbox", exc)
            return False
        self._conditions.clear("writing results to the outbox")
        return True

    def _requeue_unrecorded(self) -> None:
        with self._claiming:
            ids = set(self._unrecorded)
        if not ids:
            return
        queued = self.store.requeue_jobs(ids)  # raises while the database still fails
        with self._claiming:
            self._unrecorded -= ids
        log.warning("queued %d job(s) again whose outcome could not be recorded", queued)

    def _run(self, job: Job) -> None:
        """Run a claimed job and record its outcome (results and deliveries, or the failure)."""
        self.audit.write(
            "job started",
            job=job.id,
            series_instance_uid=job.series_instance_uid,
            version=job.version,
            rule=job.rule,
            attempt=job.attempts,
        )
        try:
            output = run_job(
                job, self.store, self.config, models=self.models, executor=self.executor
            )
        except StorageError as exc:  # the outbox disk (full): not the job's fault
            retry = Retry(self.config.max_attempts, self.config.retry_base_s)
            self._job_failed(job.id, _reason(exc), retry, False, exc, counted=False)
            return
        except Exception as exc:  # every failure is recorded; the loop keeps serving
            reason = _reason(exc)
            retry = Retry(self.config.max_attempts, self.config.retry_base_s)
            self._job_failed(job.id, reason, retry, isinstance(exc, PermanentJobError), exc)
            return
        self.metrics.job_ran(job.model, model_s=output.model_s, encode_s=output.encode_s)
        rule = next(r for r in self.config.rules if r.name == job.rule)
        results = [(f.kind, f.sop_instance_uid, str(f.path), f.sha256) for f in output.files]
        alerts = alert_rows(job, rule, output)
        try:
            self.store.start_delivering(job.id, results, rule.destinations, alerts=alerts)
        except RadbridgeError as exc:  # a result UID with other content: never sent
            self._job_failed(job.id, str(exc), Retry(1, 0.0), True, exc)
            return
        self.audit.write(
            "job encoded",
            job=job.id,
            seconds=round(output.seconds, 3),
            objects=[f.sop_instance_uid for f in output.files],
            sha256=[f.sha256 for f in output.files],
            urgent=[r.criterion for r in output.reasons] or None,
        )
        for destination, key, _ in alerts:
            self.audit.write("alert queued", job=job.id, destination=destination, key=key)

    def _job_failed(
        self,
        job_id: int,
        reason: str,
        retry: Retry,
        permanent: bool,
        exc: Exception,
        *,
        counted: bool = True,
    ) -> None:
        state = self.store.fail_job(job_id, reason, retry, permanent=permanent, counted=counted)
        log.warning("job %d failed (%s): %s", job_id, state, type(exc).__name__)
        self.audit.write("job failed", job=job_id, state=state, error=reason[:500])

    def deliver_once(self) -> bool:
        """Deliver the next ready file, if any; return whether one was attempted.

        A file to a destination another thread is sending to waits, so each
        destination gets one file at a time and a stalled one holds one thread.
        """
        with self._claiming:
            item = self.store.claim_delivery(skip=tuple(self._sending))
            if item is None:
                return False
            self._sending.add(item.destination)
        try:
            self._deliver(item)
        finally:
            with self._claiming:
                self._sending.discard(item.destination)
        return True

    def _deliver(self, item: Delivery) -> None:
        try:
            status = deliver(item, self.config, self.sender, sha256=item.sha256)
        except Exception as exc:  # temporary failures back off, permanent ones dead-letter
            self.metrics.delivery_attempted(item.destination, status_class(exc))
            permanent = is_permanent(exc)
            retry = Retry(self.config.delivery_attempts, self.config.retry_base_s)
            reason = ("permanent: " if permanent else "") + str(exc)
            state = self.store.delivery_failed(item, reason, retry, permanent=permanent)
            self.audit.write(
                "delivery failed",
                **_about(item),
                state=state,
                permanent=permanent,
                error=str(exc)[:500],
            )
            return
        self.metrics.delivery_attempted(item.destination)
        self.store.delivered(item)
        if status:
            log.warning(
                "job %d: %s stored %s with warning 0x%04X",
                item.job_id,
                item.destination,
                item.sop_instance_uid,
                status,
            )
        self.audit.write(
            "delivered",
            **_about(item),
            attempt=item.attempts,
            sha256=item.sha256,
            warning=f"0x{status:04X}" if status else None,
        )

    def retry(self, job_id: int) -> Job:
        """Run a dead-lettered job again (see :meth:`~radbridge.gateway.store.Store.retry_job`).

        Raises
        ------
        KeyError
            No such job.
        GatewayError
            The job is not dead.
        """
        job = self.store.retry_job(job_id)
        self.audit.write(
            "job retried", job=job.id, series_instance_uid=job.series_instance_uid, state=job.state
        )
        return job

    def alert_once(self) -> bool:
        """Send the next ready alert, if any; return whether one was attempted."""
        item = self.store.claim_alert()
        if item is None:
            return False
        try:
            answer = send_queued_alert(item, self.store, self.config, self.alert_sender)
        except Exception as exc:  # temporary failures back off, permanent ones dead-letter
            self._alert_failed(item, exc)
            return True
        self.store.alert_sent(item, answer)
        log.info("job %d: alert sent to %s (%s)", item.job_id, item.target, answer)
        self.audit.write("alert sent", **_alert_about(item), attempt=item.attempts, answer=answer)
        return True

    def _alert_failed(self, item: Alert, exc: Exception) -> None:
        permanent = is_permanent(exc)
        reason = _reason(exc)
        retry = Retry(self.config.alert_attempts, self.config.retry_base_s)
        state = self.store.alert_failed(
            item, ("permanent: " if permanent else "") + reason, retry, permanent=permanent
        )
        log.warning("job %d: alert to %s failed (%s): %s", item.job_id, item.target, state, reason)
        self.audit.write(
            "alert failed",
            **_alert_about(item),
            attempt=item.attempts,
            state=state,
            permanent=permanent,
            error=reason[:500],
        )

    def step(self) -> bool:
        """Run one round of every loop; return whether anything happened."""
        did = self._assembler_round()
        did = self.run_once() or did
        while self.alert_once():
            did = True
        while self.deliver_once():
            did = True
        return did

    # -- threads ---------------------------------------------------------------

    def start(self) -> None:
        """Start the assembler, runner, sender and alerter threads."""
        self._stop.clear()
        loops: list[tuple[str, Callable[[], Any]]] = [("assembler", self._assembler_round)]
        loops += [(f"runner-{i}", self.run_once) for i in range(self.config.workers)]
        destinations = {d for rule in self.config.rules for d in rule.destinations}
        senders = min(max(len(destinations), 1), MAX_SENDERS)
        loops += [(f"sender-{i}", self.deliver_once) for i in range(senders)]
        loops.append(("alerter", self.alert_once))
        for name, body in loops:
            thread = threading.Thread(
                target=self._loop, args=(name, body), name=f"radbridge-{name}", daemon=True
            )
            with self._claiming:
                self._running += 1
            thread.start()
            self._threads.append(thread)

    def _loop(self, name: str, body: Callable[[], Any]) -> None:
        try:
            while not self._stop.is_set():
                try:
                    busy = body()
                except Exception as exc:  # a loop must survive anything; the database keeps it
                    self._conditions.report(name, exc)
                    busy = False
                else:
                    self._conditions.clear(name)
                if not busy:
                    self._stop.wait(self.config.poll_s)
        finally:
            with self._claiming:
                self._running -= 1
                last = self._running == 0 and self._closing is False
            if last:  # close() found this loop busy and left the closing to it
                self._release()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the loops after their current step (jobs in flight finish first).

        A loop still busy after ``timeout`` seconds (a model still running, a send
        to a stalled peer within its ``timeout_s``) ends when that step ends.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        if self._threads:
            names = ", ".join(thread.name for thread in self._threads)
            log.warning("still busy after %g s, ending after this step: %s", timeout, names)

    def close(self, *, timeout: float = 30.0) -> None:
        """Stop, disconnect from the cluster, close the loaded models and the database.

        If a loop is still busy after ``timeout`` seconds, the models and the
        database are closed when its step ends, never under it: the step's outcome
        is recorded (or, if the process exits first, the step is done again at
        the next start).
        """
        self.stop(timeout=timeout)
        with self._claiming:
            if self._closing is not None:
                return
            self._closing = False
            busy = self._running > 0
        if not busy:
            self._release()

    def _release(self) -> None:
        with self._claiming:
            if self._closing:
                return
            self._closing = True
        if self.executor is not None:
            self.executor.close()
        self.models.close()
        self.store.close()
