"""A Storage SCP that acknowledges only what it has stored durably.

:class:`StorageSCP` accepts C-ECHO and C-STORE for every storage SOP class and
every transfer syntax pydicom knows (or only those it is given: the gateway's
receiver takes only what radbridge can decode), writes the received bytes as they came
(no decode, no re-encode) to ``DIR/<study>/<series>/<sop>.dcm`` with
:func:`~radbridge.io.storage.write_durably`, and answers Success only after
that — and after its :class:`~radbridge.net.receiver.ReceiverSink` (the
gateway is one) has recorded the instance — has returned. Whatever fails
answers a failure status and is reported to the sink as refused:

============  ==========================================================
``0xA700``    out of resources: low disk, write failed, the sink raised
``0xC000``    cannot understand: unparseable data set, UIDs unusable as paths
``0xA900``    the data set's SOP Class or SOP Instance UID differs from the
              request's (Affected SOP Class / Instance UID, PS3.7 9.1.1)
============  ==========================================================

Each association is one transfer of the receiver contract
(:mod:`radbridge.net.receiver`): it ends ``released`` when the peer's A-RELEASE
request arrives (before our A-RELEASE response), ``aborted`` on an A-ABORT, and
``failed`` when the connection drops or a timeout expires.

The DICOM upper layer is radbridge's own lean one (:mod:`radbridge.net.dimse`):
blocking reads on one thread per association, no polling, the TLS handshake and
the ARTIM timer on that thread, TCP_NODELAY, and the folder fsync shared by
instances stored at the same time (:func:`~radbridge.io.storage.write_durably`).

Examples
--------
>>> import tempfile
>>> from radbridge.net import echo, parse_peer
>>> with StorageSCP(tempfile.mkdtemp(), port=0) as scp:
...     seconds = echo(parse_peer(f"{scp.ae_title}@127.0.0.1:{scp.port}"))
>>> seconds < 5
True
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from radbridge.errors import ConfigError, DicomReadError, RadbridgeError, StorageError
from radbridge.io.part10 import file_meta_bytes, read_dataset_uids
from radbridge.io.storage import instance_path, remove_stale_temporaries
from radbridge.net.dimse.commands import AFFECTED_SOP_INSTANCE, Command
from radbridge.net.dimse.server import (
    Association,
    DimseServer,
    Outcome,
    ServerPolicy,
    storage_sop_classes,
    transfer_syntaxes,
)
from radbridge.net.peers import TLSConfig, check_ae_title
from radbridge.net.receiver import ReceiverSink, store_instance

__all__ = ["ReceiverStats", "StorageSCP"]

log = logging.getLogger(__name__)

_SUCCESS = 0x0000
_OUT_OF_RESOURCES = 0xA700
_CANNOT_UNDERSTAND = 0xC000
#: Data Set does not match SOP Class (PS3.4 C.4.2.1.4); DCMTK also answers it for
#: an Affected SOP Instance UID that is not the data set's.
_DOES_NOT_MATCH = 0xA900


@dataclass
class ReceiverStats:
    """Counters of a running :class:`StorageSCP` (thread-safe via its lock)."""

    stored: int = 0
    failed: int = 0
    bytes: int = 0
    associations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, stored: int = 0, failed: int = 0, size: int = 0) -> None:
        """Add to the counters."""
        with self.lock:
            self.stored += stored
            self.failed += failed
            self.bytes += size


class StorageSCP:
    """A C-ECHO / C-STORE server writing each instance durably before answering.

    Parameters
    ----------
    out_dir
        Root of the ``<study>/<series>/<sop>.dcm`` tree.
    ae_title
        Our AE title; associations calling another AE title are rejected when
        ``require_called_ae`` is true.
    host, port
        Where to listen (``port=0``: any free port, see :attr:`port`).
    allowed_calling_aets
        If not empty, only these calling AE titles may associate.
    max_associations
        Concurrent associations accepted.
    timeout_s
        ACSE, DIMSE and network timeout; also the ARTIM timeout, so a connection
        that sends no association request is dropped after it.
    tls
        Accept TLS associations (server certificate; with ``ca_file``, clients
        must present a certificate too).
    sink
        Told about every association and instance (the receiver contract,
        :mod:`radbridge.net.receiver`).
    tls_handshake_timeout_s
        A TLS client must finish its handshake within this; the handshake runs in
        the connection's own thread, so an idle or slow client delays no other.
    file_mode
        Mode of the stored files (folders get search bits where readable), e.g.
        ``0o600``; ``None``: the process umask decides.
    accepting
        Returns ``False`` when no more data may be accepted (e.g. low disk):
        C-STORE then answers ``0xA700`` without writing.
    unique_contents
        Name files ``<sop>.<digest>.dcm`` so that a different content under a
        known SOP Instance UID never replaces the first (the gateway's spool).
    transfer_syntaxes
        The transfer syntaxes accepted in presentation contexts; ``None``: every
        one pydicom knows that encodes a data set on the network. A sender
        whose proposals are all outside them has the context rejected and may
        fall back to another syntax (PS3.8 9.3.3.2); nothing is stored.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        ae_title: str = "RADBRIDGE",
        host: str = "127.0.0.1",
        port: int = 11112,
        allowed_calling_aets: Sequence[str] = (),
        require_called_ae: bool = True,
        max_associations: int = 20,
        timeout_s: float = 60.0,
        tls: TLSConfig | None = None,
        sink: ReceiverSink | None = None,
        tls_handshake_timeout_s: float = 10.0,
        file_mode: int | None = None,
        accepting: Callable[[], bool] | None = None,
        unique_contents: bool = False,
        transfer_syntaxes: Collection[str] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.ae_title = check_ae_title(ae_title)
        self.host = host
        self._port = port
        self.allowed_calling_aets = tuple(check_ae_title(a) for a in allowed_calling_aets)
        self.require_called_ae = require_called_ae
        if max_associations < 1:
            raise ConfigError("max_associations must be at least 1", attribute="max_associations")
        self.max_associations = max_associations
        self.timeout_s = timeout_s
        self.tls = tls
        self.sink = sink
        self.tls_handshake_timeout_s = tls_handshake_timeout_s
        self.file_mode = file_mode
        self.accepting = accepting
        self.unique_contents = unique_contents
        self.transfer_syntaxes = transfer_syntaxes
        self.stats = ReceiverStats()
        self._server: DimseServer | None = None
        self._failing: str | None = None
        self._failing_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the real one once started with ``port=0``)."""
        if self._server is not None:
            return self._server.address[1]
        return self._port

    def _policy(self) -> ServerPolicy:
        return ServerPolicy(
            ae_title=self.ae_title,
            abstract_syntaxes=storage_sop_classes(),
            transfer_syntaxes=(
                transfer_syntaxes() if self.transfer_syntaxes is None else self.transfer_syntaxes
            ),
            require_called_ae=self.require_called_ae,
            allowed_calling_aets=self.allowed_calling_aets,
            max_associations=self.max_associations,
            timeout_s=self.timeout_s,
            tls=self.tls.server_context() if self.tls else None,
            tls_handshake_timeout_s=self.tls_handshake_timeout_s,
        )

    def start(self) -> StorageSCP:
        """Start listening in background threads; return ``self``."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temporaries(self.out_dir, grace_s=0.0)  # live writers kept
        if stale:
            log.warning("removed %d partial files left by an earlier run", stale)
        try:
            server = DimseServer(self.host, self._port, self._policy(), self)
        except OSError as exc:
            raise StorageError(
                f"cannot listen on {self.host}:{self._port} ({exc.strerror or exc})",
                attribute="port",
                hint="choose a free port (or stop the program using it)",
            ) from exc
        self._server = server.start()
        log.info("listening as %s on %s:%d", self.ae_title, self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop listening and close open associations (they end ``failed``)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def serve_forever(self) -> None:
        """Start (if needed) and block until interrupted."""
        if self._server is None:
            self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the storage service (called from each association's thread) -------------

    def established(self, association: Association) -> None:
        """Count the association and open its transfer."""
        with self.stats.lock:
            self.stats.associations += 1
        if self.sink is not None:
            self.sink.transfer_opened(association.id)

    def ended(self, association: Association, outcome: Outcome) -> None:
        """Close the association's transfer (``released`` before the A-RELEASE-RP)."""
        if self.sink is not None:
            self.sink.transfer_ended(association.id, outcome)

    def _refuse(self, association: str, series: str | None, status: int, reason: str) -> int:
        self.stats.add(failed=1)
        if self.sink is not None:
            try:
                self.sink.instance_refused(association, series, reason, status)
            except Exception:  # the contract says it must not raise; never let it escape
                log.exception("the receiver sink failed to record a refusal")
        return status

    def _storage_failing(self, sop: str, exc: Exception | None) -> None:
        """Log a storage failure once when it starts or changes, and once when it ends.

        A full or read-only disk fails every instance the same way; one line per
        change of state, not one per instance (each refusal is still counted).
        """
        kind = None
        if exc is not None:  # the message without the file name: the same for every instance
            text = exc.message if isinstance(exc, RadbridgeError) else str(exc)
            kind = f"{type(exc).__name__}: {text}"
        with self._failing_lock:
            previous, self._failing = self._failing, kind
        if kind is not None and kind != previous:
            log.error("cannot store instances (first: %s): %s", sop, kind)
        elif kind is not None:
            log.debug("failed to store %s: %s", sop, kind)
        elif previous is not None:
            log.warning("storing instances again")

    def store(
        self,
        association: Association,
        requested: str,
        syntax: str,
        command: Command,
        dataset: bytes,
    ) -> int:
        """Store one C-STORE's data set (the bytes as received); return its status."""
        started = time.perf_counter()
        series: str | None = None
        transfer = association.id
        try:
            study, series, sop, sop_class = read_dataset_uids(dataset, syntax)
            if self.accepting is not None and not self.accepting():
                # whoever says "not accepting" logs the state change; this is per instance
                log.debug("refused %s: low on disk space", sop)
                return self._refuse(transfer, series, _OUT_OF_RESOURCES, "low on disk space")
            mismatch = _mismatch(command, requested, sop, sop_class)
            if mismatch:
                log.warning("refused %s: %s", sop, mismatch)
                return self._refuse(transfer, series, _DOES_NOT_MATCH, mismatch)
            instance_path(self.out_dir, study, series, sop)  # refuses UIDs unusable as paths
        except DicomReadError as exc:
            log.warning("refused an instance: %s", exc.message)
            return self._refuse(transfer, series or None, _CANNOT_UNDERSTAND, exc.message)
        meta = file_meta_bytes(sop_class or requested, sop, syntax, association.calling_ae)
        try:
            stored = store_instance(
                self.out_dir,
                meta,
                dataset,
                study=study,
                series=series,
                sop=sop,
                sop_class=sop_class or requested,
                unique_contents=self.unique_contents,
                mode=self.file_mode,
                digest=self.sink is not None or self.unique_contents,  # ~0.3 ms per 512 KB
            )
            if self.sink is not None:
                self.sink.instance_stored(stored, transfer)
        except Exception as exc:  # never acknowledge what is not stored
            self._storage_failing(sop, exc)
            return self._refuse(transfer, series, _OUT_OF_RESOURCES, str(exc))
        self._storage_failing(sop, None)
        size = len(meta) + len(dataset)
        self.stats.add(stored=1, size=size)
        log.debug(
            "stored %s/%s/%s in %.1f ms", study, series, sop, 1e3 * (time.perf_counter() - started)
        )
        return _SUCCESS


def _mismatch(command: Command, requested: str, sop: str, sop_class: str) -> str:
    """Say how the data set differs from what its C-STORE request claims (``""``: it does not).

    The Affected SOP Instance UID names the instance the sender will be told is
    stored (PS3.7 9.1.1); answering Success for another one would acknowledge an
    instance that does not exist. Only UIDs go into the text (no patient data).
    """
    if sop_class and sop_class != requested:
        return f"SOP class {sop_class} differs from the request's {requested}"
    claimed = command.uid(AFFECTED_SOP_INSTANCE)
    if sop and sop != claimed:
        return f"SOP Instance UID differs from the request's Affected SOP Instance UID {claimed}"
    return ""
