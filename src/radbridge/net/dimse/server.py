"""The storage SCP side of the lean DIMSE path: accept, negotiate, serve C-ECHO and C-STORE.

:class:`DimseServer` accepts connections on one thread and serves each association
on a thread of its own (TLS handshake included, so a silent client delays nobody).
It checks AE titles, the association limit and the proposed presentation contexts,
then reads DIMSE messages with blocking reads (no polling) and hands each C-STORE's
data set bytes, as received, to its :class:`StorageService`. Malformed or unexpected
PDUs abort the association; the server goes on serving the others.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import ssl
import threading
import uuid
from collections.abc import Collection, Container
from dataclasses import dataclass, field
from typing import Literal, Protocol

from radbridge.errors import NetworkError, PeerTimeoutError, ProtocolError
from radbridge.net.dimse.commands import (
    AFFECTED_SOP_CLASS,
    C_ECHO_RQ,
    C_STORE_RQ,
    Command,
    response,
)
from radbridge.net.dimse.link import Aborted, Link, Message, Released
from radbridge.net.dimse.pdu import (
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    APPLICATION_CONTEXT,
    DEFAULT_MAX_LENGTH,
    AssociateAccept,
    AssociateRequest,
    reject_pdu,
    release_pdu,
)

__all__ = [
    "Association",
    "DimseServer",
    "ServerPolicy",
    "StorageService",
    "storage_sop_classes",
    "transfer_syntaxes",
]

log = logging.getLogger(__name__)

Outcome = Literal["released", "aborted", "failed"]
_UNRECOGNIZED = 0x0211
_CANNOT_UNDERSTAND = 0xC000
_SOP_CLASS_NOT_SUPPORTED = 0x0122
VERIFICATION = "1.2.840.10008.1.1"
#: Standard storage SOP classes live under this root (PS3.4 B.5).
_STORAGE_ROOT = "1.2.840.10008.5.1.4.1.1."
#: Transfer syntaxes that do not encode a data set for the network.
_NOT_NETWORK = {"1.2.840.10008.1.2.6.1", "1.2.840.10008.1.2.6.2", "1.2.840.10008.1.20"}


class _StorageClasses(Container[str]):
    """Storage SOP classes: named so in pydicom's dictionary, or new under the storage root."""

    def __init__(self) -> None:
        from radbridge.dicom_tables import uid_entries

        self._names = {uid: name for uid, (name, _) in uid_entries().items()}
        self._storage = {
            uid
            for uid, (name, kind) in uid_entries().items()
            if kind == "SOP Class"
            and "Storage" in name
            and not any(word in name for word in ("Commitment", "Directory", "Management"))
        }

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, str):
            return False
        if uid in self._storage:
            return True
        # newer than pydicom's dictionary (e.g. Label Map Segmentation Storage ...1.1.66.7)
        return uid.startswith(_STORAGE_ROOT) and uid not in self._names


@functools.cache
def storage_sop_classes() -> Container[str]:
    """Every storage SOP class (``uid in storage_sop_classes()``).

    Those pydicom's dictionary names "... Storage", and any UID under the storage
    root it does not know (classes newer than the dictionary, e.g. Label Map
    Segmentation Storage); known non-storage classes under the root (e.g.
    Inventory FIND) are not.

    >>> "1.2.840.10008.5.1.4.1.1.66.7" in storage_sop_classes()
    True
    >>> "1.2.840.10008.5.1.4.1.2.1.1" in storage_sop_classes()  # Patient Root Q/R FIND
    False
    """
    return _StorageClasses()


@functools.cache
def transfer_syntaxes() -> frozenset[str]:
    """Every transfer syntax pydicom knows that encodes a data set on the network."""
    from radbridge.dicom_tables import transfer_syntax_uids

    return transfer_syntax_uids() - _NOT_NETWORK


@dataclass
class Association:
    """One served association: who, from where, and what was agreed."""

    id: str
    calling_ae: str
    called_ae: str
    address: str
    #: context id -> (abstract syntax, transfer syntax)
    contexts: dict[int, tuple[str, str]] = field(default_factory=dict)


class StorageService(Protocol):
    """What a :class:`DimseServer` calls for each association (from its thread)."""

    def established(self, association: Association) -> None:
        """Handle an accepted association."""

    def store(
        self,
        association: Association,
        sop_class: str,
        transfer_syntax: str,
        command: Command,
        dataset: bytes,
    ) -> int:
        """Store one C-STORE's data set; return the status to answer."""

    def ended(self, association: Association, outcome: Outcome) -> None:
        """Handle its end; ``released`` comes before the A-RELEASE-RP is sent."""


@dataclass
class ServerPolicy:
    """Who may associate and what is accepted (Verification always is)."""

    ae_title: str
    abstract_syntaxes: Container[str]
    transfer_syntaxes: Collection[str]
    require_called_ae: bool = True
    allowed_calling_aets: Collection[str] = ()
    max_associations: int = 20
    timeout_s: float = 60.0
    tls: ssl.SSLContext | None = None
    tls_handshake_timeout_s: float = 10.0
    max_receive: int = DEFAULT_MAX_LENGTH


class DimseServer:
    """Listen on ``(host, port)`` and serve associations with ``service``."""

    def __init__(self, host: str, port: int, policy: ServerPolicy, service: StorageService):
        self.policy = policy
        self.service = service
        self._listener = socket.create_server((host, port), reuse_port=False, backlog=64)
        self._active: dict[str, Link] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> DimseServer:
        """Accept in a background thread; return ``self``."""
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"radbridge-dimse-{self.address[1]}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every open association (each ends ``failed``)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            links = list(self._active.values())
        for link in links:
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, address = self._listener.accept()
            except OSError:
                return  # the listener was closed: stop() was called
            threading.Thread(
                target=self._serve_connection,
                args=(sock, f"{address[0]}:{address[1]}"),
                name="radbridge-dimse-association",
                daemon=True,
            ).start()

    # -- one connection -------------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, address: str) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = uuid.uuid4().hex
        link = Link(sock, max_receive=self.policy.max_receive, peer=address)
        with self._lock:
            self._active[key] = link
        try:
            if self.policy.tls is not None:
                sock.settimeout(self.policy.tls_handshake_timeout_s)
                try:
                    link.sock = self.policy.tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as exc:  # timeout, bad certificate, not TLS
                    log.warning("TLS handshake with %s failed: %s", address, exc)
                    return
            link.sock.settimeout(self.policy.timeout_s)  # ARTIM, then the network timeout
            association = self._negotiate(link, address)
            if association is not None:
                self._serve_association(link, association)
        except NetworkError as exc:
            log.info("association with %s ended: %s", address, exc)
        except Exception:  # a bug must cost this connection only, never the server
            log.exception("unexpected error serving %s; aborting its association", address)
            link.abort(2, 0)
        finally:
            with self._lock:
                self._active.pop(key, None)
            link.close()

    def _negotiate(self, link: Link, address: str) -> Association | None:
        pdu = link.read_pdu()
        if pdu is None:
            return None
        kind, body = pdu
        if kind != A_ASSOCIATE_RQ:
            link.abort(2, 2)  # unexpected PDU
            return None
        try:
            request = AssociateRequest.decode(bytes(body))
        except ProtocolError as exc:
            log.warning("malformed A-ASSOCIATE-RQ from %s: %s", address, exc)
            link.abort(2, 6)  # invalid PDU parameter value
            return None
        refusal = self._refusal(request)
        if refusal is not None:
            log.warning("rejected %s from %s: %s", request.calling_ae, address, refusal[3])
            link.send(reject_pdu(*refusal[:3]))
            return None
        association = Association(
            f"dimse-{uuid.uuid4().hex}", request.calling_ae, request.called_ae, address
        )
        results = {}
        for context_id, abstract, syntaxes in request.contexts:
            results[context_id] = self._context_result(abstract, syntaxes)
            if results[context_id][0] == 0:
                association.contexts[context_id] = (abstract, results[context_id][1])
            elif results[context_id][0] == 4:
                log.info(
                    "rejected a context for %s from %s: no transfer syntax we accept in %s",
                    abstract,
                    request.calling_ae,
                    ", ".join(syntaxes),
                )
        link.max_send = request.max_length
        accept = AssociateAccept(
            request.called_ae, request.calling_ae, results, self.policy.max_receive
        )
        link.send(accept.encode())
        return association

    def _refusal(self, request: AssociateRequest) -> tuple[int, int, int, str] | None:
        policy = self.policy
        if request.application_context != APPLICATION_CONTEXT:
            return 1, 1, 2, "application context name not supported"
        if policy.require_called_ae and request.called_ae != policy.ae_title:
            return 1, 1, 7, f"called AE title {request.called_ae!r} is not ours"
        if policy.allowed_calling_aets and request.calling_ae not in policy.allowed_calling_aets:
            return 1, 1, 3, "calling AE title not allowed"
        with self._lock:
            busy = len(self._active)  # this connection included
        if busy > policy.max_associations:
            return 2, 3, 2, "local limit of associations exceeded"
        return None

    def _context_result(self, abstract: str, syntaxes: list[str]) -> tuple[int, str]:
        if abstract != VERIFICATION and abstract not in self.policy.abstract_syntaxes:
            return 3, ""
        chosen = next((s for s in syntaxes if s in self.policy.transfer_syntaxes), None)
        return (0, chosen) if chosen else (4, "")

    def _serve_association(self, link: Link, association: Association) -> None:
        self.service.established(association)
        outcome: Outcome = "failed"
        try:
            outcome = self._dimse_loop(link, association)
        except ProtocolError as exc:
            log.warning("aborting the association with %s: %s", association.address, exc)
            link.abort(2, 0)
            outcome = "aborted"
        except PeerTimeoutError:
            log.warning("network timeout: aborting the association with %s", association.address)
            link.abort(2, 0)
        except NetworkError as exc:
            log.info("the connection with %s failed: %s", association.address, exc)
        except Exception:
            log.exception("unexpected error in the association with %s", association.address)
            link.abort(2, 0)
        finally:
            if outcome != "released":
                self.service.ended(association, outcome)

    def _dimse_loop(self, link: Link, association: Association) -> Outcome:
        while True:
            message = link.read_message(list(association.contexts))
            if isinstance(message, Aborted):
                return "failed" if message.closed else "aborted"
            if isinstance(message, Released):
                if message.response:
                    raise ProtocolError("an A-RELEASE-RP without our request")
                self.service.ended(association, "released")  # before the peer hears it
                link.send(release_pdu(A_RELEASE_RP))
                return "released"
            link.send_message(message.context_id, self._answer(association, message))

    def _answer(self, association: Association, message: Message) -> bytes:
        command = message.command
        if not command.is_request:
            raise ProtocolError("a DIMSE response where a request belongs")
        sop_class, syntax = association.contexts[message.context_id]
        if command.field == C_ECHO_RQ:
            return response(command, 0x0000)
        if command.field != C_STORE_RQ:
            return response(command, _UNRECOGNIZED)
        if command.uid(AFFECTED_SOP_CLASS) != sop_class:
            return response(command, _SOP_CLASS_NOT_SUPPORTED)
        if message.dataset is None:
            return response(command, _CANNOT_UNDERSTAND)
        status = self.service.store(association, sop_class, syntax, command, message.dataset)
        return response(command, status)
