"""The sweep of files no record names: unrecorded spool files and partial writes.

A receiver makes an instance durable in this order: temporary file, fsync,
rename to ``spool/<study>/<series>/<sop>.<digest>.dcm``, folder fsync, commit of
its row — and only then answers Success. A ``kill -9`` or power loss between the
rename and the commit (or a commit that fails: the instance is refused) leaves a
spool file that no row names; the sender was never told it was stored, so it
sends it again (an identical content gets the same name and is recorded then).
A crash mid-write leaves a temporary file (``.rb-tmp-*``) in the spool, the
outbox or the archive. Nothing ever reads either kind; this sweep removes them,
in the assembler's loop, at most :data:`ENTRIES_PER_ROUND` files looked at per
round: a whole pass at the gateway's start, then one every
:data:`PASS_INTERVAL_S`.

Never a file in use:

- a temporary file only when its writer is gone (see
  :func:`~radbridge.io.storage.remove_stale_temporary`: listed as live in this
  process until renamed, ``flock``-ed while open in any process);
- a spool file only under the lock the receivers register their files under,
  when no receiver has registered it, no committed row (nor a purge still
  removing it) names it, and it was renamed either before this gateway started
  (no receiver of this process can be recording it) or more than
  :data:`UNRECORDED_AGE_S` ago (a receiver refused it: its record failed);
- never a file older than the database's first arrival (a database deleted or
  replaced does not make the whole spool unrecorded), and never a file whose name
  is not the spool's (``<uid>/<uid>/<uid>.<16 hex>.dcm``).

A receiver checks that its files are still there after registering them and
before committing (:meth:`Gateway.instances_stored
<radbridge.gateway.service.Gateway.instances_stored>`), so even a file renamed
onto an unrecorded one at the moment it is removed is refused, never
acknowledged without its file. Only UIDs (from the file names; no file is read)
and counts are logged and audited.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from radbridge.errors import StorageError
from radbridge.gateway.retention import SpoolSweep
from radbridge.io.storage import is_temporary, remove_stale_temporary
from radbridge.uids import is_valid_uid

__all__ = ["ENTRIES_PER_ROUND", "PASS_INTERVAL_S", "UNRECORDED_AGE_S", "OrphanSweep"]

log = logging.getLogger(__name__)

#: The most files one round looks at.
ENTRIES_PER_ROUND = 256
#: How long after a whole pass the next one starts.
PASS_INTERVAL_S = 3600.0
#: An unrecorded spool file renamed since the gateway started goes only this long after.
UNRECORDED_AGE_S = 3600.0

_STORED = re.compile(r"(?P<sop>[0-9.]+)\.[0-9a-f]{16}\.dcm")


class OrphanSweep(SpoolSweep):
    """Remove unrecorded spool files and stale temporary files (see the module docstring).

    Made like :class:`~radbridge.gateway.retention.SpoolSweep`; files renamed
    before it was made (``started_at``) are no receiver's of this process.
    """

    _walk: Iterator[Path] | None = None  # the pass under way

    def sweep(self, *, now: float | None = None) -> bool:
        """Look at the next :data:`ENTRIES_PER_ROUND` files; return whether more are left.

        ``now``: the clock the ages are measured to. Raises
        :class:`~radbridge.errors.StorageError` naming a file that could not be
        removed (the others were; the next pass tries it again).
        """
        stamp = time.time() if now is None else now
        if self._walk is None:
            self._walk = self._files()
        batch = list(islice(self._walk, ENTRIES_PER_ROUND))
        more = len(batch) == ENTRIES_PER_ROUND
        if not more:
            self._walk = None
        self._next = 0.0 if more else time.monotonic() + PASS_INTERVAL_S
        epoch = self.store.first_arrival_at()
        unrecorded: list[tuple[str, int]] = []
        partial: list[int] = []
        failed: list[tuple[Path, OSError]] = []
        for path in batch:
            try:
                if is_temporary(path):
                    size = remove_stale_temporary(path, now=stamp)
                    if size is not None:
                        partial.append(size)
                    continue
                sop, size = self._remove_unrecorded(path, epoch, stamp)
            except OSError as exc:
                failed.append((path, exc))
                continue
            if size is not None:
                unrecorded.append((sop, size))
        self._removed(unrecorded, partial)
        if failed:
            path, error = failed[0]
            raise StorageError(
                f"cannot remove {len(failed)} unrecorded or partial file(s) "
                f"({error.strerror or error})",
                path=path,
                hint="fix the permissions of the data directory; the next pass tries again",
            )
        return more

    def _files(self) -> Iterator[Path]:
        """Every temporary file under the data folders, and every spool file named as stored."""
        spool = self.config.spool_dir
        for root in (spool, self.config.outbox_dir, self.config.archive_dir):
            for folder, _, names in os.walk(root):
                for name in names:
                    path = Path(folder, name)
                    if is_temporary(path) or (root == spool and _stored_sop(path, spool)):
                        yield path

    def _remove_unrecorded(
        self, path: Path, epoch: float | None, now: float
    ) -> tuple[str, int | None]:
        """Remove a spool file if no receiver or record has it (see the module docstring).

        Returns its SOP Instance UID and bytes freed (None: kept).
        """
        sop = _stored_sop(path, self.config.spool_dir)
        series = path.parent.name
        with self._recording:
            if self._in_use(str(path)) or self.store.spool_file_named(series, sop, path.name):
                return sop, None
            try:
                info = path.stat()
            except FileNotFoundError:
                return sop, None
            changed = max(info.st_mtime, info.st_ctime)  # ctime: when it was renamed here
            if epoch is None or changed < epoch:
                return sop, None  # older than this database: not its to judge
            if changed >= self.started_at and changed > now - UNRECORDED_AGE_S:
                return sop, None  # a receiver of this process may still be recording it
            path.unlink(missing_ok=True)
            return sop, info.st_size

    def _removed(self, unrecorded: list[tuple[str, int]], partial: list[int]) -> None:
        """Count, log and audit what a round removed (UIDs and counts only)."""
        if unrecorded:
            size = sum(size for _, size in unrecorded)
            self.store.count_swept("unrecorded", len(unrecorded), size)
            sops = sorted({sop for sop, _ in unrecorded})
            log.info(
                "removed %d unrecorded spool files (stored, never recorded nor "
                "acknowledged: a crash or a refused record): %s",
                len(unrecorded),
                ", ".join(sops[:10]) + (", ..." if len(sops) > 10 else ""),
            )
            self.audit.write(
                "unrecorded files removed",
                sop_instance_uids=sops,
                files=len(unrecorded),
                bytes=size,
            )
        if partial:
            self.store.count_swept("partial", len(partial), sum(partial))
            log.info("removed %d partial files of writes a crash cut", len(partial))
            self.audit.write("partial files removed", files=len(partial), bytes=sum(partial))


def _stored_sop(path: Path, spool: Path) -> str:
    """Return the SOP Instance UID of a file named as the spool names them ("": not one)."""
    if path.parent.parent.parent != spool:
        return ""
    named = _STORED.fullmatch(path.name)
    if named is None or not all(
        is_valid_uid(uid) for uid in (named["sop"], path.parent.name, path.parent.parent.name)
    ):
        return ""
    return named["sop"]
