"""The storage SCU side of the lean DIMSE path: associate, C-ECHO, C-STORE, release.

One blocking socket per association, no threads: a C-STORE writes its command and
data set PDUs and reads the response; the data set bytes are sent as given (a file's
bytes after its File Meta Information). Errors are radbridge's: a rejected or
aborted association is an :class:`~radbridge.errors.AssociationError`, silence a
:class:`~radbridge.errors.PeerTimeoutError`, a malformed answer a
:class:`~radbridge.errors.ProtocolError` (after which we abort).
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from radbridge.errors import AssociationError, NetworkError, PeerTimeoutError, ProtocolError
from radbridge.net.dimse.commands import Command, echo_request, store_request
from radbridge.net.dimse.link import Aborted, Link, Message, Released
from radbridge.net.dimse.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_RELEASE_RQ,
    DEFAULT_MAX_LENGTH,
    AssociateAccept,
    AssociateReject,
    AssociateRequest,
    release_pdu,
)
from radbridge.net.dimse.status import check_status_code
from radbridge.net.peers import Peer

__all__ = [
    "DEFAULT_AE_TITLE",
    "ClientAssociation",
    "echo",
    "open_association",
    "unreachable_error",
]

#: The calling AE title radbridge uses unless told otherwise.
DEFAULT_AE_TITLE = "RADBRIDGE"
VERIFICATION_UID = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"


@dataclass(frozen=True)
class AcceptedContext:
    """A presentation context the peer accepted."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str


class ClientAssociation:
    """An established association to a peer (use :func:`open_association`)."""

    def __init__(self, link: Link, peer: Peer, accepted: list[AcceptedContext]) -> None:
        self.link = link
        self.peer = peer
        self.accepted = accepted
        self.is_established = True
        self._ids = itertools.cycle(range(1, 65536))

    def context_for(self, sop_class: str, transfer_syntax: str) -> AcceptedContext | None:
        """Return the accepted context for this SOP class in exactly this transfer syntax."""
        return next(
            (
                c
                for c in self.accepted
                if c.abstract_syntax == sop_class and c.transfer_syntax == transfer_syntax
            ),
            None,
        )

    def syntaxes_for(self, sop_class: str) -> set[str]:
        """Transfer syntaxes accepted for a SOP class."""
        return {c.transfer_syntax for c in self.accepted if c.abstract_syntax == sop_class}

    def _request(self, context_id: int, command: bytes, dataset: bytes | memoryview | None) -> int:
        """Send one request and return the status of its response."""
        if not self.is_established:
            raise AssociationError(f"the association with {self.peer} is closed")
        message_id = Command.decode(command).message_id
        try:
            self.link.send_message(context_id, command, dataset)
            answer = self.link.read_message([context_id])
        except ProtocolError:
            self.abort()
            raise
        except NetworkError:
            self.is_established = False
            self.link.close()
            raise
        if not isinstance(answer, Message):
            self.is_established = False
            self.link.close()
            what = "released" if isinstance(answer, Released) else "aborted"
            raise AssociationError(f"{self.peer} {what} the association during a request")
        status = answer.command.status
        if answer.command.responded_to != message_id or status is None:
            self.abort()
            raise ProtocolError(f"{self.peer} answered another request or without a status")
        return status

    def echo(self) -> int:
        """C-ECHO; return the status (0 = Success)."""
        context = next((c for c in self.accepted if c.abstract_syntax == VERIFICATION_UID), None)
        if context is None:
            raise AssociationError(f"{self.peer} did not accept the Verification SOP Class")
        return self._request(context.context_id, echo_request(next(self._ids)), None)

    def store(
        self, context: AcceptedContext, sop_instance: str, dataset: bytes | memoryview
    ) -> int:
        """C-STORE the encoded data set on ``context``; return the peer's status."""
        command = store_request(next(self._ids), context.abstract_syntax, sop_instance)
        return self._request(context.context_id, command, dataset)

    def release(self) -> None:
        """A-RELEASE: ask, wait for the answer (or the timeout), close."""
        if not self.is_established:
            return
        self.is_established = False
        try:
            self.link.send(release_pdu(A_RELEASE_RQ))
            while True:
                answer = self.link.read_message()
                if isinstance(answer, Released | Aborted):
                    break
        except NetworkError:
            pass  # released or not, nothing is pending: the connection goes
        finally:
            self.link.close()

    def abort(self) -> None:
        """A-ABORT and close."""
        self.is_established = False
        self.link.abort()

    def __enter__(self) -> ClientAssociation:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.abort()


def unreachable_error(peer: Peer, why: object) -> AssociationError:
    """Return the error for a peer that took no connection (``why``: what the socket said)."""
    return AssociationError(
        f"cannot open an association to {peer} ({why})",
        path=peer.name,
        hint="check that the peer is running and its host and port are right",
    )


def _connect(peer: Peer) -> tuple[socket.socket, str]:
    label = str(peer)
    try:
        sock = socket.create_connection((peer.host, peer.port), timeout=peer.timeout_s)
    except TimeoutError as exc:
        raise PeerTimeoutError(
            f"{label} did not accept a connection within {peer.timeout_s:g} s",
            path=peer.name,
            hint="check the host and port, or raise timeout_s",
        ) from exc
    except OSError as exc:
        raise unreachable_error(peer, exc.strerror or exc) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if peer.tls is not None:
        try:
            sock = peer.tls.client_context().wrap_socket(sock, server_hostname=peer.host)
        except OSError as exc:
            sock.close()
            raise AssociationError(
                f"TLS with {label} failed ({exc})",
                path=peer.name,
                hint="check the peer's certificate, our CA file and client certificate",
            ) from exc
    return sock, label


def open_association(
    peer: Peer,
    contexts: Sequence[tuple[str, Sequence[str]]],
    *,
    ae_title: str,
    max_receive: int = DEFAULT_MAX_LENGTH,
) -> ClientAssociation:
    """Associate with ``peer`` proposing ``(abstract syntax, [transfer syntaxes])`` contexts.

    The association may accept none of them (:attr:`ClientAssociation.accepted`
    is then empty: each C-STORE fails with its SOP class).

    Raises
    ------
    AssociationError
        The peer is unreachable, or rejected or aborted the association (the
        reason is named).
    PeerTimeoutError
        The peer did not answer within ``peer.timeout_s``.
    ProtocolError
        The peer's answer is not a well-formed A-ASSOCIATE-AC/RJ (we abort).
    """
    if not 1 <= len(contexts) <= 128:
        raise ValueError("an association proposes 1 to 128 presentation contexts")
    proposed = [(2 * i + 1, sop, list(ts)) for i, (sop, ts) in enumerate(contexts)]
    sock, label = _connect(peer)
    link = Link(sock, max_receive=max_receive, peer=label)
    try:
        link.send(AssociateRequest(peer.ae_title, ae_title, proposed, max_receive).encode())
        accept = _accepted(link, peer, label)
    except NetworkError:
        link.close()
        raise
    link.max_send = accept.max_length
    by_id = {cid: sop for cid, sop, _ in proposed}
    accepted = [
        AcceptedContext(cid, by_id[cid], syntax)
        for cid, (result, syntax) in sorted(accept.results.items())
        if result == 0 and cid in by_id
    ]
    return ClientAssociation(link, peer, accepted)


def _accepted(link: Link, peer: Peer, label: str) -> AssociateAccept:
    """Read the answer to our A-ASSOCIATE-RQ: the accept, or the error it stands for."""
    pdu = link.read_pdu()
    if pdu is None or pdu[0] == A_ABORT:
        raise AssociationError(
            f"{label} aborted the association",
            path=peer.name,
            hint="the peer may not accept our AE title, TLS settings or any proposed SOP class; "
            "see its log",
        )
    kind, body = pdu
    if kind == A_ASSOCIATE_RJ:
        raise AssociationError(
            f"{label} rejected the association ({AssociateReject.decode(bytes(body)).describe()})",
            path=peer.name,
            hint="check that the peer knows our AE title "
            "and that its AE title is spelled as configured",
        )
    try:
        if kind != A_ASSOCIATE_AC:
            raise ProtocolError(f"{label} answered the association request with PDU type {kind}")
        return AssociateAccept.decode(bytes(body))
    except ProtocolError:
        link.abort(2, 2)
        raise


def echo(peer: Peer, *, ae_title: str = DEFAULT_AE_TITLE) -> float:
    """C-ECHO ``peer`` on a new association and return the round trip in seconds.

    Raises
    ------
    AssociationError, PeerTimeoutError
        As :func:`open_association`.
    DimseStatusError
        The peer answered a failure status.
    """
    started = time.monotonic()
    with open_association(peer, [(VERIFICATION_UID, [IMPLICIT_VR_LE])], ae_title=ae_title) as assoc:
        check_status_code(peer, assoc.echo(), operation="C-ECHO")
    return time.monotonic() - started
