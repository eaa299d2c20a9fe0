"""The parts of one STOW-RS request made durable and recorded together, before the response.

A STOW-RS response is sent once the whole request was read, so no part needs
to be durable on its own before that: :class:`PartBatch` collects the parts a
request has streamed to temporary files (:class:`~radbridge.net.dicomweb.parts.PendingPart`)
and, at a :meth:`~PartBatch.flush` (every :data:`BATCH_PARTS` parts or
:data:`BATCH_BYTES` bytes, and at the end of the body), makes them durable in
the order a crash requires, with the costly steps shared:

1. each part's file is fsynced; the fsync starts in a background thread as soon
   as the part ends (:meth:`~PartBatch.add`), while the next part streams in,
   and several run at once, sharing the file system's journal commits;
2. each file is renamed to its final name;
3. each folder renamed into is fsynced once;
4. the instances are reported to the sink together: one
   :meth:`~radbridge.net.receiver.BatchSink.instances_stored` call (the gateway
   records them in one SQLite transaction) where the sink has it, else one
   ``instance_stored`` call each.

Only then are they acknowledged. A part whose fsync or rename fails, or whose
folder cannot be fsynced, is refused alone (``0xA700``); if the sink refuses a
batch, every part of it is refused (and none is recorded: the sink's promise).
Memory does not grow with the request: a batch holds open files, not content.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from radbridge.errors import StorageError
from radbridge.io.storage import sync_folder
from radbridge.net.dicomweb.parts import OUT_OF_RESOURCES, PartOutcome, PendingPart
from radbridge.net.receiver import BatchSink, ReceiverSink

__all__ = ["BATCH_BYTES", "BATCH_PARTS", "PartBatch"]

log = logging.getLogger(__name__)

#: A batch is flushed once it holds this many parts ...
BATCH_PARTS = 64
#: ... or this many bytes.
BATCH_BYTES = 64 * 2**20

_SYNC_THREADS = 4
_syncing: list[ThreadPoolExecutor] = []  # made on first use, shared by every request
_syncing_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    with _syncing_lock:
        if not _syncing:
            _syncing.append(ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="radbridge-fsync"))
        return _syncing[0]


class PartBatch:
    """The pending parts of one request (see the module docstring); one thread at a time.

    Parameters
    ----------
    sink
        Where the stored instances are reported.
    transfer_id
        The request's transfer.
    """

    def __init__(self, sink: ReceiverSink, transfer_id: str) -> None:
        self.sink = sink
        self.transfer_id = transfer_id
        self._pending: list[tuple[PendingPart, Future[None]]] = []
        self._bytes = 0

    @property
    def due(self) -> bool:
        """Whether the batch is large enough to be flushed now."""
        return len(self._pending) >= BATCH_PARTS or self._bytes >= BATCH_BYTES

    def add(self, pending: PendingPart) -> None:
        """Take a finished part; its file's fsync starts in the background."""
        self._pending.append((pending, _executor().submit(pending.file.sync)))
        self._bytes += pending.file.size

    def flush(self) -> list[PartOutcome]:
        """Make the batch durable and record it (blocking); return each part's outcome."""
        taken, self._pending, self._bytes = self._pending, [], 0
        if not taken:
            return []
        wait([synced for _, synced in taken])
        outcomes: list[PartOutcome] = []
        placed: list[PendingPart] = []
        for pending, synced in taken:
            try:
                synced.result()
                pending.file.place(pending.instance.path)
            except StorageError as exc:
                outcomes.append(_refuse(pending, exc.message))
            else:
                placed.append(pending)
        durable = _sync_folders(placed, outcomes)
        return outcomes + self._record(durable)

    def discard(self, reason: str) -> list[PartOutcome]:
        """Refuse every pending part and remove its file (the request ended without a response)."""
        taken, self._pending, self._bytes = self._pending, [], 0
        wait([synced for _, synced in taken])
        outcomes = []
        for pending, _ in taken:
            pending.file.discard()
            outcomes.append(_refuse(pending, reason))
        return outcomes

    def _record(self, durable: list[PendingPart]) -> list[PartOutcome]:
        """Report the durable parts to the sink; acknowledge them only if it recorded them."""
        if not durable:
            return []
        instances = [pending.instance for pending in durable]
        if isinstance(self.sink, BatchSink):
            try:
                self.sink.instances_stored(instances, self.transfer_id)
            except Exception as exc:  # never acknowledge what the sink did not record
                log.error("the sink refused %d instances: %s", len(durable), type(exc).__name__)
                reason = f"not recorded ({type(exc).__name__})"
                return [_refuse(pending, reason) for pending in durable]
            return [_stored(pending) for pending in durable]
        outcomes = []
        for pending in durable:
            try:
                self.sink.instance_stored(pending.instance, self.transfer_id)
            except Exception as exc:
                log.error("the sink refused %s: %s", pending.instance.sop_instance_uid, exc)
                outcomes.append(_refuse(pending, f"not recorded ({type(exc).__name__})"))
            else:
                outcomes.append(_stored(pending))
        return outcomes


def _sync_folders(placed: list[PendingPart], outcomes: list[PartOutcome]) -> list[PendingPart]:
    """Fsync each folder renamed into once; return the parts now durable (refuse the others)."""
    failed: dict[Path, str] = {}
    for folder in dict.fromkeys(pending.instance.path.parent for pending in placed):
        try:
            sync_folder(folder)
        except StorageError as exc:
            failed[folder] = exc.message
    durable = []
    for pending in placed:
        problem = failed.get(pending.instance.path.parent)
        if problem is None:
            durable.append(pending)
        else:
            outcomes.append(_refuse(pending, problem))
    return durable


def _stored(pending: PendingPart) -> PartOutcome:
    i = pending.instance
    return PartOutcome(i, sop_class_uid=i.sop_class_uid, sop_instance_uid=i.sop_instance_uid)


def _refuse(pending: PendingPart, reason: str) -> PartOutcome:
    return pending.part.refused_after(pending.instance, OUT_OF_RESOURCES, reason)
