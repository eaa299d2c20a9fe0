"""The receiver contract: what a network receiver tells the component that owns the data.

Every receiver in :mod:`radbridge.net` — the C-STORE SCP, the STOW-RS server —
reports the same four events to a :class:`ReceiverSink` (the gateway is one), so
that whoever consumes the data can tell a complete transfer from a cut one
without knowing which protocol brought it. A *transfer* is one DIMSE
association or one STOW-RS request; its id is unique for the receiver's life.

The order and the promises:

1. :meth:`~ReceiverSink.transfer_opened` before any instance of the transfer is
   reported.
2. :meth:`~ReceiverSink.instance_stored` once per instance, *after* its file is
   durable (written, fsynced, renamed, folder fsynced). The receiver
   acknowledges the instance (C-STORE Success, an entry of the STOW-RS
   Referenced SOP Sequence) only after this call has returned; if it raises,
   the instance is refused instead (C-STORE ``0xA700``, a STOW-RS failed SOP)
   and reported with :meth:`~ReceiverSink.instance_refused`. A sink that also
   has :meth:`~BatchSink.instances_stored` may be given several instances in
   one call instead (the STOW-RS server does, for the parts of one request):
   it records all of them or, raising, none, and all are then refused.
3. :meth:`~ReceiverSink.instance_refused` for every instance the receiver did
   not acknowledge, whatever the reason (low disk, write error, unparseable
   data, SOP class mismatch, the sink raised), with the DICOM status it was
   refused with (C-STORE status, STOW-RS Failure Reason). The series is given
   when the receiver could read it. This call must not raise.
4. :meth:`~ReceiverSink.transfer_ended` exactly once per opened transfer, after
   every instance of it was reported, with how it ended:

   ``"released"``
       Normal end: a DIMSE A-RELEASE request was received (reported *before*
       the A-RELEASE response is sent), or a STOW-RS request body was read
       whole and every part was answered. Refused instances are reported
       separately; a released transfer may still have refusals.
   ``"aborted"``
       A-ABORT from either side; a STOW-RS client that went away mid-body.
   ``"failed"``
       The connection dropped, a timeout expired, the request was malformed,
       or the receiver stopped while the transfer was open.

Only a released transfer without refusals says that the sender sent what it
meant to send; everything else says that data may be missing.

Examples
--------
>>> import hashlib, tempfile
>>> from pathlib import Path
>>> from radbridge.io.part10 import file_meta_bytes
>>> class Printer(NullSink):
...     def instance_stored(self, instance, transfer_id):
...         print(transfer_id, instance.sop_instance_uid, instance.path.name)
>>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", "1.2.840.10008.1.2.1")
>>> dataset = bytes.fromhex("080018005549") + bytes.fromhex("0a00") + b"1.2.3.4.5" + bytes(1)
>>> stored = store_instance(
...     Path(tempfile.mkdtemp()), meta, dataset,
...     study="1.2.3", series="1.2.3.4", sop="1.2.3.4.5",
...     sop_class="1.2.840.10008.5.1.4.1.1.2", unique_contents=True,
... )
>>> Printer().instance_stored(stored, "t1")  # doctest: +ELLIPSIS
t1 1.2.3.4.5 1.2.3.4.5....dcm
>>> stored.path.name == f"1.2.3.4.5.{hashlib.sha256(dataset).hexdigest()[:16]}.dcm"
True
>>> stored.path.read_bytes() == meta + dataset, stored.size
(True, 18)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from radbridge.io.storage import instance_path, write_durably

__all__ = [
    "BatchSink",
    "NullSink",
    "ReceiverSink",
    "StoredInstance",
    "TransferOutcome",
    "store_instance",
]

#: How a transfer ended (see the module docstring).
TransferOutcome = Literal["released", "aborted", "failed"]

#: Hex digits of the content digest kept in a file name (64 bits).
DIGEST_IN_NAME = 16


@dataclass(frozen=True)
class StoredInstance:
    """One instance a receiver has made durable.

    Attributes
    ----------
    study_instance_uid, series_instance_uid, sop_instance_uid, sop_class_uid
        The instance's UIDs, as read from its data set.
    path
        The durable file (a DICOM Part 10 file).
    sha256
        Hex SHA-256 of the data set as encoded (File Meta Information excluded,
        so the same data set sent by another AE or through another receiver has
        the same digest); ``""`` where :func:`store_instance` was told not to
        compute it (a receiver without a sink).
    size
        Bytes of the data set as encoded.
    """

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    path: Path
    sha256: str
    size: int


@runtime_checkable
class ReceiverSink(Protocol):
    """Where a receiver reports transfers and instances (see the module docstring).

    Any object with these four methods is a sink. The methods here ignore their
    event, so a class that subclasses this one, as :class:`NullSink` does, handles
    only the events it overrides.
    """

    def transfer_opened(self, transfer_id: str) -> None:
        """Handle the start of a transfer (an association, a STOW-RS request)."""
        return None

    def instance_stored(self, instance: StoredInstance, transfer_id: str) -> None:
        """Record a durable instance, or raise to have it refused."""
        return None

    def instance_refused(
        self, transfer_id: str, series_uid: str | None, reason: str, status: int | None = None
    ) -> None:
        """Note an instance that was not acknowledged, and its DICOM status (must not raise)."""
        return None

    def transfer_ended(self, transfer_id: str, outcome: TransferOutcome) -> None:
        """Handle the end of a transfer: ``released``, ``aborted`` or ``failed``."""
        return None


@runtime_checkable
class BatchSink(Protocol):
    """A sink that can record several instances at once (see the module docstring)."""

    def instances_stored(self, instances: Sequence[StoredInstance], transfer_id: str) -> None:
        """Record durable instances all together, or raise to have every one refused."""


class NullSink(ReceiverSink):
    """A sink that ignores every event; subclass it to handle only some."""


def store_instance(
    root: Path,
    meta: bytes | memoryview,
    dataset: bytes | memoryview,
    *,
    study: str,
    series: str,
    sop: str,
    sop_class: str,
    unique_contents: bool = False,
    mode: int | None = None,
    digest: bool = True,
) -> StoredInstance:
    """Write ``meta + dataset`` durably under ``root`` and describe what was written.

    The file is ``root/<study>/<series>/<sop>.dcm``; with ``unique_contents`` it
    is ``<sop>.<digest>.dcm`` (the first 16 hex digits of the data set's
    SHA-256), so a different content sent under a known SOP Instance UID never
    replaces the first one, and an identical re-send rewrites the same bytes.
    ``mode`` is the file's mode (see :func:`~radbridge.io.storage.write_durably`).
    ``digest=False`` skips the SHA-256 (``sha256`` is then ``""``) for receivers
    that report to nobody.

    Raises
    ------
    InvalidAttributeError
        A UID is not a valid UID (it would be unsafe in a path).
    StorageError
        The file could not be written (nothing is left behind).
    """
    if unique_contents and not digest:
        raise ValueError("unique_contents names files by their digest")
    sha256 = hashlib.sha256(dataset).hexdigest() if digest else ""
    path = instance_path(
        root, study, series, sop, digest=sha256[:DIGEST_IN_NAME] if unique_contents else None
    )
    write_durably((meta, dataset), path, mode=mode)
    return StoredInstance(study, series, sop, sop_class, path, sha256, len(dataset))
