"""Group commit: records that arrive together share one SQLite transaction and its fsync.

Each receiver thread (a DIMSE association, a STOW-RS request) hands its unit of
work to :meth:`GroupCommit.run` and waits. If no commit is running, the caller
becomes the *leader*: it takes every unit queued so far (its own included), runs
them in one transaction, each inside a savepoint, takes and runs the units that
were queued meanwhile until none is left, commits (synchronous=FULL: the WAL is
fdatasynced before COMMIT returns) and wakes the others. Units queued while a
commit runs wait for it to end; the first of them to wake leads the next commit
with all of them. Nobody sleeps to collect a batch: on one association
the leader's batch is its own unit and it commits at once, as before.

A unit whose own statements fail is rolled back to its savepoint and gets its
error; the others still commit. If the transaction itself fails (BEGIN, COMMIT:
a full disk, an I/O error), it is rolled back and *every* unit of the batch gets
the error: nothing of it is recorded, and no caller returns as if it were.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from radbridge.errors import StorageError

__all__ = ["CommitCounts", "GroupCommit"]

T = TypeVar("T")


@dataclass(frozen=True)
class CommitCounts:
    """How the grouped records were committed, since the store was opened.

    Attributes
    ----------
    commits
        Transactions the group commit ran (committed or failed).
    units
        Records those transactions held (a commit with ``units`` > 1 was shared, or
        held a batch: the parts of a STOW-RS request).
    failed
        Transactions whose BEGIN or COMMIT failed (every record in them failed).
    """

    commits: int = 0
    units: int = 0
    failed: int = 0


class _Unit:
    __slots__ = ("done", "error", "records", "result", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any], records: int) -> None:
        self.work = work
        self.records = records
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Run units of work from many threads in shared transactions on one connection.

    Parameters
    ----------
    connection
        The SQLite connection (autocommit mode: ``isolation_level=None``).
    lock
        The lock every other user of ``connection`` holds while using it.
    path
        The database file (named in errors).
    """

    def __init__(self, connection: sqlite3.Connection, lock: threading.RLock, path: Path) -> None:
        self._db = connection
        self._path = path
        self._lock = lock
        self._changed = threading.Condition()
        self._queue: list[_Unit] = []
        self._leading = False
        self._counts = CommitCounts()

    @property
    def counts(self) -> CommitCounts:
        """The commits run so far and the records they held."""
        with self._changed:
            return self._counts

    def run(self, work: Callable[[sqlite3.Connection], T], *, records: int = 1) -> T:
        """Run ``work(connection)`` in a transaction; return its result once committed.

        ``records`` is how many arrival records ``work`` makes (for
        :attr:`counts`); they succeed or fail together.

        Raises whatever ``work`` raised (its statements are rolled back), or
        :class:`~radbridge.errors.StorageError` when the shared transaction could
        not be committed (nothing of it is recorded).
        """
        unit = _Unit(work, records)
        with self._changed:
            self._queue.append(unit)
            while self._leading and not unit.done:
                self._changed.wait()
            batch: list[_Unit] = []
            if not unit.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if batch:
            self._lead(batch)
        if unit.error is not None:
            raise unit.error
        result: T = unit.result
        return result

    def _lead(self, batch: list[_Unit]) -> None:
        failed = False
        try:
            failed = not self._commit(batch)
        finally:
            with self._changed:
                for unit in batch:
                    unit.done = True
                old = self._counts
                self._counts = CommitCounts(
                    old.commits + 1,
                    old.units + sum(unit.records for unit in batch),
                    old.failed + failed,
                )
                self._leading = False
                self._changed.notify_all()

    def _take(self) -> list[_Unit]:
        with self._changed:
            taken, self._queue = self._queue, []
            return taken

    def _commit(self, batch: list[_Unit]) -> bool:
        """Run the batch (and what joins it) in one transaction; return whether it committed."""
        db = self._db
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
                done = 0
                while done < len(batch):
                    self._run_unit(db, batch[done])
                    done += 1
                    if done == len(batch):  # those that came meanwhile join this commit
                        batch += self._take()
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                for unit in batch:
                    unit.result = None
                    unit.error = self._failure(exc, len(batch))
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt and the like: the waiters are failed and woken
                return False
        return True

    @staticmethod
    def _run_unit(db: sqlite3.Connection, unit: _Unit) -> None:
        db.execute("SAVEPOINT unit")
        try:
            unit.result = unit.work(db)
        except Exception as exc:
            if not db.in_transaction:  # SQLite rolled back the whole transaction
                raise
            db.execute("ROLLBACK TO unit")
            unit.error = exc
        db.execute("RELEASE unit")

    def _failure(self, exc: BaseException, size: int) -> StorageError:
        """One error per waiter (an exception object is raised in one thread only)."""
        error = StorageError(
            f"the commit of {size} arrival record(s) failed ({type(exc).__name__}: {exc}); "
            "none of them was recorded",
            path=self._path,
            hint="free disk space or fix the disk; the sender may send them again",
        )
        error.__cause__ = exc
        return error
