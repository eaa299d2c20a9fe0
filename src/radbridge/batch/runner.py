"""Run a manifest: skip finished rows, run the rest locally or on Dask, report.

Local runs use a process pool; with a scheduler address the rows are submitted to
a Dask distributed cluster (``dask scheduler`` + ``dask worker`` on each host, or
dask-jobqueue on SLURM). Dask re-runs the task of a worker that died, and a
row's output only appears once it is complete (written, fsynced, renamed), so a
lost worker loses no row. Failed rows never stop the batch: they are collected
in ``failures.csv`` with their reason.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radbridge.batch.manifest import ManifestRow
from radbridge.batch.tasks import RowResult, is_done, run_row
from radbridge.errors import ConfigError

__all__ = ["BatchSummary", "run_batch"]

log = logging.getLogger(__name__)

#: Called after each row with (result, rows finished, rows in total).
ProgressCallback = Callable[[RowResult, int, int], None]


@dataclass
class BatchSummary:
    """Totals of a batch run."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: list[RowResult] = field(default_factory=list)
    failures_csv: Path | None = None

    @property
    def rate(self) -> float:
        """Rows encoded per second (skipped rows excluded)."""
        return self.done / self.seconds if self.seconds else 0.0


def _local(rows: Sequence[ManifestRow], out: Path, workers: int) -> Iterator[RowResult]:
    if workers <= 1:
        for row in rows:
            yield run_row(row, out)
        return
    waiting = deque(rows)
    while waiting:
        lost = yield from _pool(waiting, out, workers)
        # A worker process died (the OOM killer, a crash in a native library): each row
        # it may have held runs again in a process of its own, to find the one that did it.
        for row in lost:
            started = time.perf_counter()
            if (yield from _pool(deque([row]), out, 1)):
                yield RowResult(row.id, False, None, time.perf_counter() - started, _DIED)


_DIED = (
    "the worker process encoding this row died (killed, e.g. by the out-of-memory killer, "
    "or crashed); give it more memory, or run the batch with fewer --workers"
)


def _pool(
    waiting: deque[ManifestRow], out: Path, workers: int
) -> Generator[RowResult, None, list[ManifestRow]]:
    """Run rows from ``waiting`` in a process pool until it is empty or a worker dies.

    At most two rows per worker are handed out at a time, so a pool that breaks
    leaves few rows in doubt; returns them (the rows whose results were lost).
    """
    lost: list[ManifestRow] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running: dict[Future[RowResult], ManifestRow] = {}
        while (waiting and not lost) or running:
            while waiting and not lost and len(running) < 2 * workers:
                row = waiting.popleft()
                running[pool.submit(run_row, row, out)] = row
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                row = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost.append(row)
                    continue
                yield result
    return lost


def _dask(rows: Sequence[ManifestRow], out: Path, address: str) -> Iterator[RowResult]:
    from radbridge._optional import require

    distributed = require("distributed", "dask", purpose="run a batch on a Dask cluster")
    try:
        client = distributed.Client(address, timeout="20s")
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler ({exc})",
            attribute="scheduler",
            hint="start it with `dask scheduler` and pass its tcp://HOST:PORT address",
        ) from exc
    with client:
        futures = {_submit(client, row, out, ""): row for row in rows}
        suspects = []
        for future in distributed.as_completed(futures):
            try:
                yield future.result()
            except distributed.KilledWorker:
                suspects.append(futures[future])
            except Exception as exc:
                yield _dask_failure(futures[future], exc)
        # A worker that died took the rows queued on it along (each counted as a suspect
        # of its death): each runs again alone, so only a row that kills its workers fails.
        for row in suspects:
            try:
                yield _submit(client, row, out, "-alone").result()
            except Exception as exc:
                yield _dask_failure(row, exc)


def _submit(client: Any, row: ManifestRow, out: Path, suffix: str) -> Any:
    key = f"radbridge-row-{row.id}-{os.getpid()}{suffix}"
    return client.submit(run_row, row, str(out), key=key, pure=False, retries=2)


def _dask_failure(row: ManifestRow, exc: BaseException) -> RowResult:
    """Return the failed row of a Dask task that raised ``exc`` (KilledWorker: workers died)."""
    reason = f"the Dask task failed ({type(exc).__name__}: {str(exc)[:200]}); {_DIED}"
    return RowResult(row.id, False, None, 0.0, reason)


def run_batch(
    rows: Sequence[ManifestRow],
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: ProgressCallback | None = None,
) -> BatchSummary:
    """Run every row not already done; write ``failures.csv`` if any row failed.

    Parameters
    ----------
    rows
        The manifest rows.
    out
        Output folder (created); results name it as an absolute path.
    workers
        Local worker processes (ignored with ``scheduler``).
    scheduler
        A Dask scheduler address such as ``tcp://10.0.0.5:8786``.
    progress
        Called after each finished row.
    """
    folder = Path(os.path.abspath(out))  # workers may run in other folders (Dask)
    folder.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(total=len(rows))
    pending = []
    for row in rows:
        if is_done(row, folder):
            summary.skipped += 1
            summary.results.append(
                RowResult(row.id, True, str(folder / row.output_name), 0.0, skipped=True)
            )
        else:
            pending.append(row)
    log.info("batch: %d rows, %d already done", len(rows), summary.skipped)
    started = time.perf_counter()
    finished = summary.skipped
    stream = _dask(pending, folder, scheduler) if scheduler else _local(pending, folder, workers)
    for result in stream:
        finished += 1
        summary.results.append(result)
        if result.ok:
            summary.done += 1
        else:
            summary.failed += 1
            log.warning("row %s failed: %s", result.id, result.error)
        if progress:
            progress(result, finished, len(rows))
    summary.seconds = time.perf_counter() - started
    failures = [r for r in summary.results if not r.ok]
    target = folder / "failures.csv"
    if failures:
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "reason"])
            for result in sorted(failures, key=lambda r: r.id):
                writer.writerow([result.id, result.error])
        summary.failures_csv = target
    elif target.exists():
        target.unlink()
    return summary
