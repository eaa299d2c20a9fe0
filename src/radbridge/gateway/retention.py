"""The retention sweep: remove the spool files and outbox folders of finished series.

``spool_retention_h`` hours after a series is *finished* its received instances
(``spool/<study>/<series>/``) and its jobs' results (``outbox/<job>/``) are
removed; ``0`` keeps everything. Finished is strict (an acknowledged instance
is never lost before it is processed): every job of every version of the series
is done or dead, no delivery or critical-finding alert is pending, no transfer of
it is open, all it received was made into versions (a hold is then released: it
has nothing new to wait for), and nothing happened to it — an arrival, a
transfer ending, a version, a job or alert ending — for ``spool_retention_h``.
The local ``archive`` destination is a destination, like a PACS: it is never
swept.

The sweep runs in the assembler's loop, a bounded amount per round
(:data:`FILES_PER_ROUND` files, one series claimed at a time):

1. :meth:`~radbridge.gateway.store.Store.claim_purge` checks one series is
   finished and, in the same transaction, drops its instance rows, marks its
   versions purged and lists its files in ``purge_files``;
2. the files are removed; a spool file a receiver is recording at that moment
   (an identical instance of the series sent again: same content, same name),
   or that a record names again, stays;
3. each ``purge_files`` row goes once its file is gone, with the bytes freed.

A ``kill -9`` between any two steps leaves a store the next start resumes from:
the rows that named the files went before the files did, and the files still
listed are removed by the next round. An instance of the series received after
its purge starts it afresh: a new version of what arrives since.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from radbridge.errors import StorageError
from radbridge.gateway.audit import AuditLog
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.store import Purge, PurgeFile, Store
from radbridge.io.storage import remove_empty_folders

__all__ = ["FILES_PER_ROUND", "SpoolSweep", "Sweeper"]

log = logging.getLogger(__name__)

#: The most files (or outbox folders) one round of the sweep removes.
FILES_PER_ROUND = 256

#: The longest wait between two looks for finished series.
MAX_INTERVAL_S = 60.0


def _size(path: Path) -> int:
    """Return the bytes of a file, or of every file under a folder (0 if it is gone)."""
    if path.is_dir():
        return sum(
            os.path.getsize(os.path.join(folder, name))
            for folder, _, names in os.walk(path)
            for name in names
        )
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _cannot_remove(failed: list[tuple[PurgeFile, OSError]]) -> StorageError:
    first, error = failed[0]
    return StorageError(
        f"cannot remove {len(failed)} purged file(s) ({error.strerror or error})",
        path=first.path,
        hint="fix the permissions of the data directory (or what keeps the file); "
        "the sweep tries again at its next look, and purges other series meanwhile",
    )


class SpoolSweep:
    """What the gateway's sweeps of its data folders share, run in the assembler's loop.

    Parameters
    ----------
    store, config, audit
        The gateway's state, settings and audit log.
    recording
        The lock under which the gateway registers the spool files a receiver is
        recording; ``in_use(path)`` (called under it) tells whether one is.
    """

    def __init__(
        self,
        store: Store,
        config: GatewayConfig,
        audit: AuditLog,
        *,
        recording: threading.Lock,
        in_use: Callable[[str], bool],
    ) -> None:
        self.store = store
        self.config = config
        self.audit = audit
        self._recording = recording
        self._in_use = in_use
        self.started_at = time.time()  # files renamed before are no receiver's of this process
        self._next = 0.0  # time.monotonic() of the next round
        self._failing: set[str] = set()  # files that failed: skipped until the next look
        self._failed: list[tuple[PurgeFile, OSError]] = []  # the latest of those failures

    def due(self) -> bool:
        """Whether the next round is due."""
        return time.monotonic() >= self._next


class Sweeper(SpoolSweep):
    """Remove what retention lets go, never a file in use (see the module docstring)."""

    @property
    def interval_s(self) -> float:
        """How often :meth:`due` lets the sweep look for finished series."""
        retention_s = self.config.spool_retention_h * 3600.0
        return min(MAX_INTERVAL_S, retention_s / 10) if retention_s > 0 else MAX_INTERVAL_S

    def sweep(self, *, now: float | None = None) -> bool:
        """Remove what is left of earlier purges, then purge one finished series.

        Returns whether anything was claimed or removed (more may be left: call
        again). ``now`` is the wall-clock time the retention is measured to. A
        file that cannot be removed stays listed and is skipped until the next
        look for finished series, so it never stops the other purges; the round
        then raises a :class:`~radbridge.errors.StorageError` naming it.
        """
        removed, failed = self._remove_listed()
        retention_s = self.config.spool_retention_h * 3600.0
        purge = None
        if retention_s > 0 and removed < FILES_PER_ROUND:
            stamp = time.time() if now is None else now
            purge = self.store.claim_purge(stamp - retention_s, self.config.outbox_dir, now=stamp)
            if purge is not None:
                self._claimed(purge)
                more, failed_more = self._remove_listed()
                removed, failed = removed + more, failed + failed_more
        left = removed + len(failed) >= FILES_PER_ROUND or purge is not None
        self._failed = failed or self._failed  # said at every round until a look clears it
        failures = self._failed
        if not left:  # the next look tries the files that failed again
            self._failing.clear()
            self._failed = []
        self._next = 0.0 if left else time.monotonic() + self.interval_s
        if failures:
            raise _cannot_remove(failures)
        return bool(removed) or purge is not None

    def _claimed(self, purge: Purge) -> None:
        if purge.released_hold is not None:
            log.info(
                "series %s held (%s) with nothing new for %g h: hold released",
                purge.series_instance_uid,
                purge.released_hold,
                self.config.spool_retention_h,
            )
        log.info(
            "series %s finished more than %g h ago: removing its %d instances and the "
            "results of %d jobs (versions %s)",
            purge.series_instance_uid,
            self.config.spool_retention_h,
            purge.instances,
            len(purge.jobs),
            ", ".join(map(str, purge.versions)),
        )
        self.audit.write(
            "series purged",
            series_instance_uid=purge.series_instance_uid,
            versions=list(purge.versions),
            jobs=list(purge.jobs),
            instances=purge.instances,
            results=purge.results,
            files=purge.files,
            **({"released_hold": purge.released_hold} if purge.released_hold else {}),
        )

    def remove_files(self) -> int:
        """Remove up to :data:`FILES_PER_ROUND` files claimed purges listed; return how many.

        Raises :class:`~radbridge.errors.StorageError` naming a file that could not
        be removed (it stays listed; the others were removed).
        """
        removed, failed = self._remove_listed()
        if failed:
            raise _cannot_remove(failed)
        return removed

    def _remove_listed(self) -> tuple[int, list[tuple[PurgeFile, OSError]]]:
        """Remove up to a round of listed files; return how many went, and the failures."""
        done: list[tuple[PurgeFile, int]] = []
        failed: list[tuple[PurgeFile, OSError]] = []
        for item in self.store.purge_files(FILES_PER_ROUND, skip=self._failing):
            try:
                size = self._remove(item)
            except OSError as exc:  # kept listed: the next look tries again
                failed.append((item, exc))
                self._failing.add(item.path)
                continue
            if size is not None:  # None: a receiver is recording it, the next round decides
                done.append((item, size))
        for folder in {Path(item.path).parent for item, _ in done if item.kind == "spool"}:
            remove_empty_folders(folder, self.config.spool_dir)
        if done:
            for series_uid in self.store.purge_files_removed(done):
                log.info("series %s: its purged files are removed", series_uid)
        return len(done), failed

    def _remove(self, item: PurgeFile) -> int | None:
        if item.kind == "spool":
            return self._remove_spool_file(item)
        path = Path(item.path)
        size = _size(path)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)
        return size

    def _remove_spool_file(self, item: PurgeFile) -> int | None:
        """Remove one spool file unless it is in use; return the bytes freed (None: in use).

        Under the receivers' lock: a receiver registers a file before it checks
        that the file is there and records it, so either the file is removed
        before (the receiver finds it gone and refuses the instance: nothing is
        acknowledged) or it is seen registered here and stays. A file recorded
        again since the purge (a new row names it) stays too.
        """
        with self._recording:
            if self._in_use(item.path):
                return None
            if item.sop_instance_uid is not None:
                recorded = self.store.contents(item.series_instance_uid, item.sop_instance_uid)
                if item.path in {content.path for content in recorded}:
                    return 0
            path = Path(item.path)
            size = _size(path)
            path.unlink(missing_ok=True)
            return size
