"""One STOW-RS part on its way to the spool: streamed to a temporary file, checked, stored.

A :class:`SpooledPart` receives a multipart part's content in pieces (in a
worker thread: the writes block), hashes the data set behind the File Meta
Information as it goes, and at the end either refuses it with a reason or hands
it on as a :class:`PendingPart`, to be stored durably under
``<study>/<series>/<sop>[.<digest>].dcm`` and reported to the receiver sink
together with the request's other parts
(:class:`~radbridge.net.dicomweb.batch.PartBatch`). Memory stays bounded by the
first 64 KiB of the part, whatever its size, and none of it is kept once it ends.

Failure Reason values (PS3.18 Table I.2-2; the C-STORE SCP uses the same
``0xA700``/``0xC000`` for the same causes, the others are radbridge's own codes
within the standard's ranges):

==========  ================================================================
``0xA700``  out of resources: low disk, the write failed, the sink refused it
``0xA701``  the part is larger than ``max_part_mb``
``0xC000``  cannot understand: empty, unparseable, or a UID that is not a UID
``0xC001``  not a DICOM Part 10 file (no File Meta Information)
``0xC002``  the part's Content-Type is not ``application/dicom``
``0xC003``  its Study Instance UID differs from the one in the request's URL
``0xC122``  Referenced Transfer Syntax not supported (PS3.18): the receiver
            takes only some transfer syntaxes (the gateway: those radbridge
            can decode here)
==========  ================================================================
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

from radbridge.errors import DicomReadError, NotDicomError, StorageError
from radbridge.io.part10 import dataset_offset, meta_transfer_syntax, read_uids
from radbridge.io.storage import StreamedFile, instance_path
from radbridge.net.receiver import DIGEST_IN_NAME, ReceiverSink, StoredInstance

__all__ = ["OUT_OF_RESOURCES", "PartOutcome", "PendingPart", "SpooledPart"]

log = logging.getLogger(__name__)

OUT_OF_RESOURCES = 0xA700
TOO_LARGE = 0xA701
CANNOT_UNDERSTAND = 0xC000
NOT_PART10 = 0xC001
NOT_DICOM_TYPE = 0xC002
OTHER_STUDY = 0xC003
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122

_HEAD = 64 * 1024  # enough for the File Meta Information of any real file


@dataclass(frozen=True)
class PartOutcome:
    """What became of a part: stored (``instance``) or refused (``failure`` and ``reason``)."""

    instance: StoredInstance | None = None
    failure: int | None = None
    reason: str = ""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    series_instance_uid: str | None = None


@dataclass(frozen=True)
class PendingPart:
    """A checked part whose file is written but not yet durable nor reported to the sink.

    Attributes
    ----------
    instance
        What it will be once stored (``instance.path`` is its final name).
    file
        Its temporary file.
    part
        The part (to refuse it if it cannot be stored or recorded).
    """

    instance: StoredInstance
    file: StreamedFile
    part: SpooledPart


@dataclass(frozen=True)
class PartRules:
    """What every part of a request is checked against and where it goes."""

    spool: Path
    sink: ReceiverSink
    transfer_id: str
    max_part_bytes: int
    study_uid: str | None = None
    unique_contents: bool = False
    file_mode: int | None = None
    #: Transfer syntaxes a part may be in (``None``: any).
    transfer_syntaxes: Container[str] | None = None


class SpooledPart:
    """A part being received (see the module docstring); not thread-safe, one thread at a time.

    Parameters
    ----------
    rules
        The request's checks, spool and sink.
    headers
        The part's headers (lower-case names).
    """

    def __init__(self, rules: PartRules, headers: dict[str, str]) -> None:
        self.rules = rules
        self.headers = headers
        self.size = 0
        self._head = bytearray()
        self._offset: int | None = None
        self._hash = hashlib.sha256()
        self._problem: tuple[int, str] | None = None
        self._file: StreamedFile | None = None
        self.finished = False
        content_type = headers.get("content-type", "application/dicom")
        if content_type.split(";")[0].strip().lower() != "application/dicom":
            self._problem = (NOT_DICOM_TYPE, f"the part is {content_type[:60]!r}")
            return
        try:
            self._file = StreamedFile(rules.spool, mode=rules.file_mode)
        except StorageError as exc:
            self._problem = (OUT_OF_RESOURCES, exc.message)

    def refuse_now(self, failure: int, reason: str) -> None:
        """Give up on the part (e.g. low disk); its further content is dropped."""
        if self._problem is None:
            self._problem = (failure, reason)
        if self._file is not None:
            self._file.discard()
            self._file = None

    def write(self, data: bytes) -> None:
        """Append a piece of the part's content."""
        self.size += len(data)
        if self._problem is not None:
            return
        if self.size > self.rules.max_part_bytes:
            limit = self.rules.max_part_bytes / 2**20
            self.refuse_now(TOO_LARGE, f"the part is larger than max_part_mb ({limit:g})")
            return
        assert self._file is not None
        try:
            self._file.write(data)
        except StorageError as exc:
            self._file = None  # write() discarded it
            self.refuse_now(OUT_OF_RESOURCES, exc.message)
            return
        if self._offset is None:
            self._head += data
            if len(self._head) >= _HEAD:
                self._start_hash()
        else:
            self._hash.update(data)

    def _start_hash(self) -> None:
        head = bytes(self._head)
        if head[128:132] != b"DICM":
            self.refuse_now(NOT_PART10, "no File Meta Information (not a DICOM Part 10 file)")
            return
        try:
            self._offset = dataset_offset(head)
        except NotDicomError as exc:
            self.refuse_now(NOT_PART10, exc.message)
            return
        allowed = self.rules.transfer_syntaxes
        syntax = meta_transfer_syntax(head)
        if allowed is not None and syntax not in allowed:
            self.refuse_now(
                TRANSFER_SYNTAX_NOT_SUPPORTED,
                f"transfer syntax {syntax or '(none)'} cannot be decoded here",
            )
            return
        self._hash.update(head[self._offset :])

    def finish(self) -> PartOutcome | PendingPart:
        """Check the whole part: refuse it, or return it to be made durable and recorded.

        A :class:`PendingPart` is written but neither fsynced nor renamed nor
        reported yet: :class:`~radbridge.net.dicomweb.batch.PartBatch` does that
        for several parts at once.
        """
        self.finished = True
        uids = self._uids()
        if self._problem is None and self.size == 0:
            self.refuse_now(CANNOT_UNDERSTAND, "an empty part")
        if self._problem is None and self._offset is None:
            self._start_hash()
        if self._problem is None and uids is None:
            self.refuse_now(CANNOT_UNDERSTAND, "the data set cannot be parsed")
        if self._problem is not None or uids is None:
            return self._refused(uids)
        study, series, sop, sop_class = uids
        if self.rules.study_uid is not None and study != self.rules.study_uid:
            self.refuse_now(OTHER_STUDY, "its Study Instance UID is not the one in the URL")
            return self._refused(uids)
        assert self._file is not None and self._offset is not None
        digest = self._hash.hexdigest()
        try:
            path = instance_path(
                self.rules.spool,
                study,
                series,
                sop,
                digest=digest[:DIGEST_IN_NAME] if self.rules.unique_contents else None,
            )
        except DicomReadError as exc:
            self.refuse_now(CANNOT_UNDERSTAND, exc.message)
            return self._refused(uids)
        file, self._file = self._file, None
        self._head = bytearray()  # a batch holds many parts: keep none of their content
        instance = StoredInstance(
            study, series, sop, sop_class, path, digest, self.size - self._offset
        )
        return PendingPart(instance, file, self)

    def _uids(self) -> tuple[str, str, str, str] | None:
        """Read the part's UIDs from what was written (None: unreadable or nothing kept)."""
        source: bytes | None = None
        if self._file is None:
            source = bytes(self._head) if self._head else None
            if source is None:
                return None
        try:
            if source is not None:
                return read_uids(source)
            assert self._file is not None
            self._file.flush()
            with self._file.temporary.open("rb") as handle:
                return read_uids(handle)
        except NotDicomError:
            return None

    def refused_after(self, instance: StoredInstance, failure: int, reason: str) -> PartOutcome:
        """Refuse the part after :meth:`finish` handed it on as ``instance`` (not acknowledged)."""
        self._problem = (failure, reason)
        i = instance
        return self._refused(
            (i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid, i.sop_class_uid)
        )

    def _refused(self, uids: tuple[str, str, str, str] | None) -> PartOutcome:
        if self._file is not None:
            self._file.discard()
            self._file = None
        failure, reason = self._problem or (CANNOT_UNDERSTAND, "refused")
        _, series, sop, sop_class = uids or ("", "", "", "")
        series_uid = series or None
        self.rules.sink.instance_refused(self.rules.transfer_id, series_uid, reason, failure)
        log.warning("STOW-RS part refused (%#06x): %s", failure, reason[:200])
        return PartOutcome(None, failure, reason, sop_class, sop, series_uid)

    def abandon(self, reason: str) -> None:
        """Drop a part the request ended inside, and report it refused (unless finished)."""
        if self.finished:
            return
        self.finished = True
        self.refuse_now(CANNOT_UNDERSTAND, reason)
        self._refused(None)
