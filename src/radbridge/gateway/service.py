"""The gateway service: the loops that move work from the spool to the destinations.

:class:`Gateway` owns the state store and three kinds of workers:

- the **assembler** finds complete series and queues jobs;
- **runners** (``workers`` threads) claim jobs by priority and run them;
- the **sender** delivers outbox files with retries.

The receiver (C-STORE SCP, STOW-RS) calls :meth:`Gateway.stored` for each instance
it has made durable, and :meth:`Gateway.association_opened` /
:meth:`Gateway.association_released` around associations. :meth:`Gateway.step`
runs one round of every loop synchronously (tests and single-threaded use).

Restart safety: on start, jobs left running and associations left open by a crash
are recovered, and every step resumes from what the database says.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radbridge.errors import RadbridgeError
from radbridge.gateway.assembler import assemble
from radbridge.gateway.audit import AuditLog
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.delivery import Sender, deliver, network_sender
from radbridge.gateway.executors import make_executor
from radbridge.gateway.queue import (
    claim,
    claim_delivery,
    delivered,
    delivery_failed,
    fail,
    recover,
    start_delivering,
)
from radbridge.gateway.runner import PermanentJobError, ReportEncoder, run_job
from radbridge.gateway.state import Store

if TYPE_CHECKING:
    from radbridge.net.scp import StorageSCP

__all__ = ["Gateway"]

log = logging.getLogger(__name__)


class Gateway:
    """The gateway's processing core.

    Parameters
    ----------
    config
        The configuration.
    sender
        Sends a file to a named peer; by default the networking layer's
        C-STORE/STOW-RS sender for the configuration's ``[peers]``.
    report_encoders
        SR and KOS encoders by output kind (``"sr"``, ``"ko"``); by default
        :data:`radbridge.gateway.reports.DEFAULT_REPORT_ENCODERS`.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        sender: Sender | None = None,
        report_encoders: dict[str, ReportEncoder] | None = None,
    ) -> None:
        self.config = config
        config.spool_dir.mkdir(parents=True, exist_ok=True)
        config.outbox_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.database)
        self.audit = AuditLog(config.audit_log)
        self.sender = sender or network_sender(config.peers, ae_title=config.ae_title)
        if report_encoders is None:
            from radbridge.gateway.reports import DEFAULT_REPORT_ENCODERS

            report_encoders = dict(DEFAULT_REPORT_ENCODERS)
        self.report_encoders = report_encoders
        self.executor = make_executor(config.executor)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        recovered = recover(self.store)
        closed = self.store.recover_open_associations()
        if recovered or closed:
            log.warning("recovered %d interrupted jobs, %d open associations", recovered, closed)
            self.audit.write("recovered", jobs=recovered, associations=closed)

    # -- receiver hooks -------------------------------------------------------

    def association_opened(self, association: str) -> None:
        """Record that an association started (the receiver calls this)."""
        self.store.open_association(association)

    def association_released(self, association: str) -> None:
        """Record that an association ended, released or aborted (the receiver calls this)."""
        self.store.release_association(association)

    def stored(
        self, study_uid: str, series_uid: str, sop_uid: str, path: str, association: str | None
    ) -> None:
        """Record an instance the receiver has durably stored in the spool."""
        new = self.store.record_instance(
            study_uid, series_uid, sop_uid, path, association=association
        )
        self.audit.write(
            "received",
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            association=association,
            duplicate=not new,
        )

    def receive_part(self, data: bytes, association: str) -> tuple[str, str, str]:
        """Store one STOW-RS part durably in the spool and record it; return its UIDs."""
        from radbridge.gateway.stow import spool_part
        from radbridge.net.durable import instance_path, write_durably

        study, series, sop = spool_part(data, self.config.spool_dir, write_durably)
        path = instance_path(self.config.spool_dir, study, series, sop)
        self.stored(study, series, sop, str(path), association)
        return study, series, sop

    def stow_server(self, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Any:
        """Return a :class:`~radbridge.gateway.stow.StowServer` feeding this gateway."""
        from radbridge.gateway.stow import StowServer

        return StowServer(
            self.receive_part,
            host=host,
            port=port,
            accepting=self.disk_ok,
            opened=self.association_opened,
            closed=self.association_released,
            **options,
        )

    def receiver(self, *, port: int | None = None) -> StorageSCP:
        """Return the gateway's C-STORE SCP (not started): it spools and records instances.

        An instance is acknowledged only after its file is durable *and* its row is
        committed in the state database.
        """
        from radbridge.net.scp import StorageSCP

        def stored(study: str, series: str, sop: str, path: Path, association: str) -> None:
            self.stored(study, series, sop, str(path), association)

        return StorageSCP(
            self.config.spool_dir,
            ae_title=self.config.ae_title,
            host=self.config.host,
            port=self.config.port if port is None else port,
            allowed_calling_aets=self.config.allowed_calling_aets,
            max_associations=self.config.max_associations,
            timeout_s=self.config.network_timeout_s,
            on_stored=stored,
            on_opened=self.association_opened,
            on_closed=self.association_released,
            accepting=self.disk_ok,
            tls=self.config.tls,
        )

    def serve(self, stop: threading.Event) -> None:
        """Run everything — receivers, assembler, runners, sender — until ``stop`` is set."""
        receivers: list[Any] = [self.receiver().start()]
        if self.config.stow_port:
            tls = self.config.tls.server_context() if self.config.tls else None
            receivers.append(
                self.stow_server(
                    host=self.config.host,
                    port=self.config.stow_port,
                    auth=self.config.stow_auth,
                    tls=tls,
                ).start()
            )
        self.start()
        log.info("gateway %s serving on port %d", self.config.ae_title, receivers[0].port)
        try:
            stop.wait()
        finally:
            for receiver in receivers:
                receiver.stop()
            self.close()

    def disk_ok(self) -> bool:
        """Whether there is room to accept more instances (the low-water mark)."""
        free = shutil.disk_usage(self.config.spool_dir).free / 2**20
        return free >= self.config.min_free_disk_mb

    # -- one round of each loop ----------------------------------------------

    def assemble_once(self) -> int:
        """Queue jobs for complete series; return how many series completed."""
        done = assemble(self.store, self.config)
        for item in done:
            self.audit.write(
                "series complete",
                series_instance_uid=item.series_instance_uid,
                version=item.version,
                jobs=list(item.job_ids),
            )
        return len(done)

    def run_once(self) -> bool:
        """Run the most urgent ready job, if any; return whether one ran."""
        job = claim(self.store)
        if job is None:
            return False
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
                job,
                self.store,
                self.config,
                report_encoders=self.report_encoders,
                executor=self.executor,
            )
        except Exception as exc:  # every failure is recorded; the loop keeps serving
            permanent = isinstance(exc, PermanentJobError)
            reason = (
                str(exc)
                if isinstance(exc, RadbridgeError)
                else "".join(traceback.format_exception_only(type(exc), exc)).strip()
            )
            state = fail(
                self.store,
                job.id,
                reason,
                max_attempts=self.config.max_attempts,
                retry_base_s=self.config.retry_base_s,
                permanent=permanent,
            )
            log.warning("job %d failed (%s): %s", job.id, state, type(exc).__name__)
            self.audit.write("job failed", job=job.id, state=state, error=reason[:500])
            return True
        rule = next(r for r in self.config.rules if r.name == job.rule)
        files = [
            (destination, f.sop_instance_uid, str(f.path))
            for f in output.files
            for destination in rule.destinations
        ]
        start_delivering(self.store, job.id, files)
        self.audit.write(
            "job encoded",
            job=job.id,
            seconds=round(output.seconds, 3),
            objects=[f.sop_instance_uid for f in output.files],
        )
        return True

    def deliver_once(self) -> bool:
        """Deliver the next ready file, if any; return whether one was attempted."""
        item = claim_delivery(self.store)
        if item is None:
            return False
        try:
            deliver(item, self.config, self.sender)
        except Exception as exc:  # network and disk failures are retried with backoff
            state = delivery_failed(
                self.store,
                item,
                str(exc),
                max_attempts=self.config.delivery_attempts,
                retry_base_s=self.config.retry_base_s,
            )
            self.audit.write(
                "delivery failed",
                job=item.job_id,
                destination=item.destination,
                sop_instance_uid=item.sop_instance_uid,
                state=state,
                error=str(exc)[:500],
            )
            return True
        delivered(self.store, item)
        self.audit.write(
            "delivered",
            job=item.job_id,
            destination=item.destination,
            sop_instance_uid=item.sop_instance_uid,
            attempt=item.attempts,
        )
        return True

    def step(self) -> bool:
        """Run one round of every loop; return whether anything happened."""
        did = self.assemble_once() > 0
        did = self.run_once() or did
        while self.deliver_once():
            did = True
        return did

    # -- threads ---------------------------------------------------------------

    def start(self) -> None:
        """Start the assembler, runner and sender threads."""
        self._stop.clear()
        loops: list[tuple[str, Callable[[], Any]]] = [("assembler", self.assemble_once)]
        loops += [(f"runner-{i}", self.run_once) for i in range(self.config.workers)]
        loops.append(("sender", self.deliver_once))
        for name, body in loops:
            thread = threading.Thread(
                target=self._loop, args=(body,), name=f"radbridge-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self, body: Callable[[], Any]) -> None:
        while not self._stop.is_set():
            try:
                busy = body()
            except Exception:  # a loop must survive anything; the database keeps the state
                log.exception("gateway loop error")
                busy = False
            if not busy:
                self._stop.wait(self.config.poll_s)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the loops after their current step (jobs in flight finish first)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def close(self) -> None:
        """Stop, disconnect from the cluster, and close the database."""
        self.stop()
        if self.executor is not None:
            self.executor.close()
        self.store.close()
