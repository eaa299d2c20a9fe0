"""Sending instances to a peer with C-STORE: one association per batch, per-instance status.

:func:`send` proposes exactly the SOP classes and transfer syntaxes present in
the files, plus Explicit and Implicit VR Little Endian in a context each; files
are sent as they are stored (no decode), and re-encoded in Explicit (else
Implicit) VR Little Endian, decompressed if need be, only when the peer accepts
the SOP class but not the file's transfer syntax.
Transient failures (no association, dropped connection, timeouts, ``0xA7xx``
out-of-resources statuses) are retried with exponential backoff; permanent ones
(a refused SOP class, other failure statuses, unreadable files) are reported
once and not retried.

Examples
--------
>>> import tempfile
>>> from radbridge.io.phantom import write_phantom
>>> from radbridge.net import StorageSCP, parse_peer
>>> study = write_phantom(tempfile.mkdtemp(), slices=3, size=32, nifti=False)
>>> with StorageSCP(tempfile.mkdtemp(), port=0) as scp:
...     report = send([study.dicom_dir], parse_peer(f"RADBRIDGE@127.0.0.1:{scp.port}"))
>>> report.ok, len(report.sent), report.associations
(True, 3, 1)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from radbridge.errors import (
    ConfigError,
    DimseStatusError,
    NetworkError,
    NotDicomError,
    PresentationContextError,
    RadbridgeError,
)
from radbridge.io.part10 import dataset_offset, header_uids
from radbridge.net.dimse.client import DEFAULT_AE_TITLE, ClientAssociation, open_association
from radbridge.net.dimse.status import check_status_code, permanent_status
from radbridge.net.peers import Peer
from radbridge.net.senders import failed

__all__ = [
    "DimseSender",
    "InstanceResult",
    "OutgoingInstance",
    "SendReport",
    "collect_instances",
    "send",
    "store_file",
]

log = logging.getLogger(__name__)

#: A presentation context list holds at most 128 contexts (PS3.8 9.3.2.2: odd IDs 1-255).
_MAX_CONTEXTS = 128
_EXPLICIT_LE, _IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
_UNCOMPRESSED = (_EXPLICIT_LE, _IMPLICIT_LE)
#: A presentation context to propose: (SOP class, transfer syntaxes).
Context = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class OutgoingInstance:
    """A file to send and what its header says."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str


@dataclass(frozen=True)
class InstanceResult:
    """The outcome for one file: the peer's status, or the error that stopped it."""

    path: Path
    sop_instance_uid: str
    status: int | None
    error: str | None = None
    transcoded: bool = False

    @property
    def ok(self) -> bool:
        """Whether the peer stored it (Success or a warning status)."""
        return self.error is None and self.status is not None


@dataclass
class SendReport:
    """What happened to every file of a :func:`send` call."""

    peer: str
    results: list[InstanceResult] = field(default_factory=list)
    associations: int = 0
    seconds: float = 0.0

    @property
    def sent(self) -> list[InstanceResult]:
        """Results the peer acknowledged."""
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[InstanceResult]:
        """Results that were not stored."""
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        """True when every file was stored."""
        return not self.failed


def _walk(paths: Iterable[str | os.PathLike[str]]) -> Iterable[Path]:
    for item in paths:
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        else:
            yield p


def collect_instances(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[OutgoingInstance], list[InstanceResult]]:
    """Read the headers of every file under ``paths``.

    Only the first 16 KB of a Part 10 file are read (the SOP Class and Instance
    UIDs at the start of its data set, the transfer syntax in its meta); other
    files are parsed with pydicom. Returns the sendable instances and a failure result
    for each file that is not a DICOM instance (so the caller reports it
    instead of stopping).
    """
    instances: list[OutgoingInstance] = []
    rejected: list[InstanceResult] = []
    for path in _walk(paths):
        try:
            uids = header_uids(path)
            if uids is None:
                from pydicom import dcmread

                ds = dcmread(
                    path,
                    stop_before_pixels=True,
                    specific_tags=["SOPClassUID", "SOPInstanceUID"],
                )
                meta = ds.file_meta
                uids = (
                    str(ds.get("SOPClassUID", "") or meta.MediaStorageSOPClassUID),
                    str(ds.get("SOPInstanceUID", "") or meta.MediaStorageSOPInstanceUID),
                    str(meta.TransferSyntaxUID),
                )
        except Exception as exc:  # not DICOM, or no file meta: report, never stop
            rejected.append(
                InstanceResult(path, "", None, f"not a DICOM file ({type(exc).__name__})")
            )
            continue
        instances.append(OutgoingInstance(path, *uids))
    return instances, rejected


def _contexts(instances: Sequence[OutgoingInstance]) -> list[list[Context]]:
    """Presentation contexts per association (each list fits in one association).

    Each file's own transfer syntax, and Explicit and Implicit VR Little Endian in
    a context each: an acceptor may take only one of them (Implicit VR Little
    Endian is the DICOM default, PS3.5 10.1), and a context with both lets it
    choose one we would then have to convert to. The contexts of one SOP class
    stay on one association.
    """
    by_class: dict[str, dict[Context, None]] = {}
    for item in instances:
        wanted = by_class.setdefault(item.sop_class_uid, {})
        for syntax in (item.transfer_syntax_uid, *_UNCOMPRESSED):
            wanted[(item.sop_class_uid, (syntax,))] = None
    batches: list[list[Context]] = []
    for wanted in by_class.values():
        if not batches or len(batches[-1]) + len(wanted) > _MAX_CONTEXTS:
            batches.append([])
        batches[-1].extend(wanted)
    return batches


_buffers = threading.local()


def _read_file(path: Path) -> memoryview:
    """Return the file's bytes in this thread's reused buffer (valid until the next call).

    A fresh 0.5 MB object per file costs page faults on every file; one buffer per
    sending thread, grown when a bigger file comes, does not. The C-STORE that uses
    the bytes is sent before the next file is read.
    """
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        buffer: bytearray = getattr(_buffers, "data", bytearray())
        if len(buffer) < size:
            buffer = _buffers.data = bytearray(size)
        view = memoryview(buffer)[:size]
        got = handle.readinto(view)
    return view[:got]


def _store_one(assoc: ClientAssociation, peer: Peer, item: OutgoingInstance) -> InstanceResult:
    """C-STORE one file: as stored if the peer takes its syntax, else re-encoded."""
    context = assoc.context_for(item.sop_class_uid, item.transfer_syntax_uid)
    if context is not None:
        data = _read_file(item.path)
        dataset: bytes | memoryview = data[dataset_offset(data) :]
    else:
        uncompressed = [u for u in _UNCOMPRESSED if u in assoc.syntaxes_for(item.sop_class_uid)]
        if not uncompressed:
            raise PresentationContextError(
                f"{peer} accepted no presentation context for SOP class {item.sop_class_uid} "
                f"(proposed in {item.transfer_syntax_uid} and both uncompressed syntaxes)",
                path=peer.name,
                attribute="SOPClassUID",
                hint="configure the peer to accept this SOP class",
            )
        context = assoc.context_for(item.sop_class_uid, uncompressed[0])
        assert context is not None
        dataset = _reencoded(item.path, uncompressed[0], peer)
    status = check_status_code(
        peer,
        assoc.store(context, item.sop_instance_uid, dataset),
        operation="C-STORE",
        subject=item.sop_instance_uid,
    )
    transcoded = context.transfer_syntax != item.transfer_syntax_uid
    return InstanceResult(item.path, item.sop_instance_uid, status, transcoded=transcoded)


def _reencoded(path: Path, syntax: str, peer: Peer) -> bytes:
    """Return the file's data set encoded in ``syntax`` (Explicit or Implicit VR Little Endian).

    A compressed file is decompressed first (lossless: the same instance); an
    uncompressed or deflated one only changes its encoding (pydicom looks up the
    VRs an implicit data set lacks and resolves the ambiguous ones).

    Raises
    ------
    PresentationContextError
        The file is in Explicit VR Big Endian (retired): radbridge does not swap
        its bytes, and the peer accepts neither it nor the file's own syntax.
    """
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.uid import UID

    ds = dcmread(path)
    source = UID(ds.file_meta.TransferSyntaxUID)
    if not source.is_little_endian:
        raise PresentationContextError(
            f"{peer} does not accept {source.name} for SOP class {ds.SOPClassUID}, "
            "and radbridge does not convert big endian data sets",
            path=peer.name,
            attribute="TransferSyntaxUID",
            hint="convert the file to little endian (e.g. DCMTK dcmconv +te)",
        )
    if source.is_compressed:
        ds.decompress(generate_instance_uid=False)  # lossless: the same instance, uncompressed
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = syntax == _IMPLICIT_LE
    write_dataset(buffer, ds)
    return buffer.getvalue()


class _Progress:
    """Counts files done across the associations of one :func:`send` for its callback."""

    def __init__(self, total: int, callback: Callable[[int, int], None] | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback
        self.lock = threading.Lock()

    def step(self) -> None:
        if self.callback is None:
            return
        with self.lock:
            self.done += 1
            self.callback(min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self.total, self.total)


def _transient(exc: RadbridgeError) -> bool:
    if isinstance(exc, DimseStatusError):
        return exc.status is not None and 0xA700 <= exc.status <= 0xA7FF
    return isinstance(exc, NetworkError) and not isinstance(exc, PresentationContextError)


def _send_batch(
    pending: list[OutgoingInstance],
    peer: Peer,
    contexts: list[Context],
    ae_title: str,
    report: SendReport,
    counter: _Progress,
) -> tuple[list[OutgoingInstance], RadbridgeError | None]:
    """Send what we can on one association; return (to retry, the transient error)."""
    retry: list[OutgoingInstance] = []
    remaining = list(pending)
    try:
        with open_association(peer, contexts, ae_title=ae_title) as assoc:
            report.associations += 1
            while remaining:
                item = remaining[0]
                try:
                    report.results.append(_store_one(assoc, peer, item))
                except (DimseStatusError, PresentationContextError) as exc:
                    if _transient(exc):
                        retry.append(item)
                    else:
                        report.results.append(
                            InstanceResult(
                                item.path, item.sop_instance_uid, _status_of(exc), str(exc)
                            )
                        )
                except NetworkError:
                    raise  # no answer: the association is gone; this and the rest are retried
                except Exception as exc:  # this file cannot be sent (unreadable, cannot decode)
                    report.results.append(
                        InstanceResult(item.path, item.sop_instance_uid, None, str(exc))
                    )
                remaining.pop(0)
                counter.step()
                if not assoc.is_established:
                    raise NetworkError(f"{peer} dropped the association", path=peer.name)
    except NetworkError as exc:
        return retry + remaining, exc
    except Exception as exc:  # pynetdicom failures mid-association
        wrapped = NetworkError(f"association with {peer} failed ({type(exc).__name__}: {exc})")
        return retry + remaining, wrapped
    return retry, None


def _status_of(exc: RadbridgeError | None) -> int | None:
    """Return the DIMSE status an error carries, if any."""
    return getattr(exc, "status", None)


def _send_with_retries(
    pending: list[OutgoingInstance],
    peer: Peer,
    contexts: list[Context],
    ae_title: str,
    retries: int,
    backoff_s: float,
    counter: _Progress,
) -> SendReport:
    """Send ``pending`` on successive associations until done, permanent failure or retries out."""
    report = SendReport(peer=str(peer))
    attempt = 0
    while pending:
        pending, error = _send_batch(pending, peer, contexts, ae_title, report, counter)
        if not pending:
            break
        if error is not None and not _transient(error):
            report.results.extend(
                InstanceResult(i.path, i.sop_instance_uid, _status_of(error), str(error))
                for i in pending
            )
            break
        if attempt >= retries:
            reason = str(error) if error else "out of resources"
            report.results.extend(
                InstanceResult(
                    i.path,
                    i.sop_instance_uid,
                    _status_of(error),
                    f"gave up after {retries} retries: {reason}",
                )
                for i in pending
            )
            break
        wait = backoff_s * 2**attempt
        log.warning("%d instances not stored on %s; retrying in %.1f s", len(pending), peer, wait)
        time.sleep(wait)
        attempt += 1
    return report


def store_file(
    path: str | os.PathLike[str], peer: Peer, *, ae_title: str = DEFAULT_AE_TITLE
) -> int:
    """C-STORE one file on its own association, once; return the peer's status.

    For callers that keep their own retry state (the gateway's delivery queue):
    nothing is retried here, and every failure is raised with its kind.

    Returns
    -------
    int
        ``0x0000``, or a warning status (``0x0001``, ``0xBxxx``, ``0x0107``, ``0x0116``).

    Raises
    ------
    DimseStatusError
        The peer answered a failure status (``status`` holds it).
    PresentationContextError
        The peer accepts neither the file's SOP class nor it uncompressed.
    NetworkError
        No association, or no answer (``PeerTimeoutError``).
    NotDicomError
        The file is not a DICOM instance.
    """
    instances, rejected = collect_instances([path])
    if rejected:
        raise NotDicomError(rejected[0].error or "not a DICOM file", path=path)
    (item,) = instances
    (contexts,) = _contexts(instances)
    with open_association(peer, contexts, ae_title=ae_title) as assoc:
        return _store_one(assoc, peer, item).status or 0


def send(
    paths: Iterable[str | os.PathLike[str]],
    peer: Peer,
    *,
    ae_title: str = DEFAULT_AE_TITLE,
    retries: int = 3,
    backoff_s: float = 1.0,
    associations: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """Send files and folders to ``peer`` with C-STORE.

    Parameters
    ----------
    paths
        Files and folders (searched recursively; hidden files skipped).
    peer
        Where to send.
    ae_title
        Our calling AE title.
    retries, backoff_s
        Transient failures are retried ``retries`` times, waiting
        ``backoff_s * 2**n`` seconds before retry ``n``.
    associations
        Send on this many associations at once (files are dealt out in turn).
        One association per batch is the default; several hide the per-message
        latency of the DIMSE round trip when sending many files.
    progress
        Called with (files done, files) as files are stored or fail.

    Returns
    -------
    SendReport
        A result per file; :attr:`SendReport.ok` is false if any failed. Nothing
        is raised for individual failures.

    Raises
    ------
    NotDicomError
        A path does not exist (nothing was sent).
    """
    if associations < 1:
        raise ConfigError("associations must be at least 1", attribute="associations")
    paths = list(paths)
    for given in paths:
        if not Path(given).exists():
            raise NotDicomError("no such file or folder", path=given, hint="check the path")
    started = time.monotonic()
    instances, rejected = collect_instances(paths)
    report = SendReport(peer=str(peer), results=list(rejected))
    counter = _Progress(len(instances) + len(rejected), progress)
    for contexts in _contexts(instances):
        classes = {sop for sop, _ in contexts}
        pending = [i for i in instances if i.sop_class_uid in classes]
        instances = [i for i in instances if i.sop_class_uid not in classes]
        parts = [pending[k::associations] for k in range(associations) if pending[k::associations]]

        def run(part: list[OutgoingInstance], contexts: list[Context] = contexts) -> SendReport:
            return _send_with_retries(part, peer, contexts, ae_title, retries, backoff_s, counter)

        if len(parts) == 1:
            partial = [run(parts[0])]
        else:
            with ThreadPoolExecutor(len(parts), thread_name_prefix="radbridge-send") as pool:
                partial = list(pool.map(run, parts))
        for item in partial:
            report.results.extend(item.results)
            report.associations += item.associations
    counter.finish()
    report.seconds = time.monotonic() - started
    log.info(
        "sent %d/%d instances to %s on %d associations in %.2f s",
        len(report.sent),
        len(report.results),
        peer,
        report.associations,
        report.seconds,
    )
    return report


class DimseSender:
    """The ``dimse`` transport: C-STORE one file on its own association, once.

    A :class:`~radbridge.net.senders.Sender`: returns the peer's status (0 or a
    warning), and raises :class:`~radbridge.errors.SendError` for every failure,
    permanent for ``0xA9xx``, ``0xCxxx``, ``0x0122``, a SOP class the peer does not
    accept and a file that is not DICOM (:func:`store_file` says more).
    """

    def send(self, path: Path, peer: Peer, *, ae_title: str = DEFAULT_AE_TITLE) -> int:
        """C-STORE ``path`` to ``peer``; return its status (0 or a warning)."""
        try:
            return store_file(path, peer, ae_title=ae_title)
        except (RadbridgeError, OSError) as exc:
            raise failed(exc, permanent=_permanent(exc)) from exc


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, DimseStatusError):
        return exc.status is not None and permanent_status(exc.status)
    return isinstance(exc, PresentationContextError)  # 0x0122 by negotiation
