"""pynetdicom associations for query/retrieve (C-FIND, C-GET, C-MOVE), with typed errors.

Storage (C-ECHO, C-STORE) runs on radbridge's own upper layer
(:mod:`radbridge.net.dimse.client`); query/retrieve runs on pynetdicom, through
:func:`associate`, which turns pynetdicom's "the association is not established"
into an :class:`~radbridge.errors.AssociationError` (or
:class:`~radbridge.errors.PeerTimeoutError`) that names the peer and what to try,
and :func:`check_status`, which turns a DIMSE failure status into a
:class:`~radbridge.errors.DimseStatusError`. Nothing here changes pynetdicom's
process-wide settings (its logging is the application's to configure:
:func:`radbridge.net.quiet_pynetdicom`).

Examples
--------
>>> from radbridge.net import parse_peer
>>> from radbridge.errors import AssociationError
>>> peer = parse_peer("NOBODY@127.0.0.1:1")
>>> try:
...     with associate(peer, [VERIFICATION]) as assoc:
...         pass
... except AssociationError as err:
...     print(type(err).__name__)
AssociationError
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydicom import Dataset
from pynetdicom import AE, build_context, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from radbridge.errors import (
    AssociationError,
    NetworkError,
    PeerTimeoutError,
    PresentationContextError,
)
from radbridge.net.dimse.client import DEFAULT_AE_TITLE, unreachable_error
from radbridge.net.dimse.status import check_status_code, status_text
from radbridge.net.peers import Peer

__all__ = [
    "DEFAULT_AE_TITLE",
    "MAX_PDU",
    "VERIFICATION",
    "associate",
    "check_status",
    "guard_responses",
    "nodelay_handler",
    "set_nodelay",
    "status_text",
]

log = logging.getLogger(__name__)

#: Maximum PDU size radbridge offers (bigger PDUs, fewer round trips on loopback).
MAX_PDU = 262_144
#: The Verification SOP Class context (C-ECHO).
VERIFICATION = build_context(Verification)


def set_nodelay(sock: socket.socket | None) -> None:
    """Send small segments at once (no Nagle): the last PDU of a message must not wait.

    Without it each DIMSE message's short tail waits for the peer's delayed ACK,
    about 40 ms per C-STORE on Linux. Sockets that are not TCP are left alone.
    """
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # a socket closed under us: nothing to tune
        log.debug("cannot set TCP_NODELAY (%s)", exc)


def _on_connection_open(event: Any) -> None:
    set_nodelay(getattr(event.assoc.dul.socket, "socket", None))


#: Bind to ``evt.EVT_CONN_OPEN`` (SCU and SCP) to set TCP_NODELAY on every association.
nodelay_handler: tuple[Any, Any] = (evt.EVT_CONN_OPEN, _on_connection_open)


def guard_responses(assoc: Association) -> None:
    """Hand a DIMSE response taken by the association's reactor back to its sender.

    pynetdicom's reactor thread pauses itself while ``send_c_store`` (and the
    other ``send_*`` calls) wait for their response, but the pause can be seen
    as done a moment before the reactor really stops: with a fast peer the
    reactor then takes the response off the queue, logs "Received unexpected
    C-STORE service message" and drops it, and the send waits until the DIMSE
    timeout and aborts. A requestor's reactor never has a use for a response,
    so it is put back on the queue for the waiting send.
    """
    serve = assoc._serve_request

    def serve_requests_only(msg: Any, context_id: int) -> None:
        if msg.is_valid_response and not msg.is_valid_request:
            assoc.dimse.msg_queue.put((context_id, msg))
            return
        serve(msg, context_id)

    assoc._serve_request = serve_requests_only  # type: ignore[method-assign]


def _reachable(peer: Peer) -> str | None:
    """Return why a TCP connection to ``peer`` fails, or None if it opens."""
    try:
        with socket.create_connection((peer.host, peer.port), timeout=min(peer.timeout_s, 5.0)):
            return None
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        return exc.strerror or str(exc)


@contextmanager
def associate(
    peer: Peer,
    contexts: Sequence[PresentationContext],
    *,
    ae_title: str = DEFAULT_AE_TITLE,
    ext_neg: list[Any] | None = None,
    evt_handlers: list[Any] | None = None,
    ae: AE | None = None,
) -> Iterator[Association]:
    """Open an association to ``peer``; release it on exit (abort on error).

    The socket sends without delay (TCP_NODELAY), and DIMSE responses are
    guarded against pynetdicom's reactor (:func:`guard_responses`).

    Raises
    ------
    AssociationError
        The peer refused, aborted or could not be reached (the reason is named).
    PeerTimeoutError
        The peer did not answer within ``peer.timeout_s``.
    """
    local = ae or AE(ae_title=ae_title)
    for timeout in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(local, timeout, peer.timeout_s)
    local.maximum_pdu_size = MAX_PDU
    tls = (peer.tls.client_context(), peer.host) if peer.tls else None
    started = time.monotonic()
    assoc = local.associate(
        peer.host,
        peer.port,
        contexts=list(contexts),
        ae_title=peer.ae_title,
        max_pdu=MAX_PDU,
        ext_neg=ext_neg,
        tls_args=tls,
        evt_handlers=[nodelay_handler, *(evt_handlers or [])],
    )
    if not assoc.is_established:
        raise _failure(peer, assoc, time.monotonic() - started)
    guard_responses(assoc)
    try:
        yield assoc
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()


def _failure(peer: Peer, assoc: Association, elapsed: float) -> NetworkError:
    rejected = getattr(assoc, "rejected_contexts", None) or []
    if assoc.is_aborted and rejected and not assoc.accepted_contexts:
        classes = sorted({str(c.abstract_syntax) for c in rejected})
        return PresentationContextError(
            f"{peer} accepted none of the proposed presentation contexts "
            f"(SOP class {', '.join(classes)})",
            path=peer.name,
            attribute="SOPClassUID",
            hint="configure the peer to accept this SOP class (and transfer syntax)",
        )
    if assoc.is_rejected:
        reason = _rejection(assoc)
        return AssociationError(
            f"{peer} rejected the association ({reason})",
            path=peer.name,
            hint="check that the peer knows our AE title "
            "and that its AE title is spelled as configured",
        )
    why = _reachable(peer)
    if why == "timed out" or (why is None and elapsed >= peer.timeout_s * 0.9):
        return PeerTimeoutError(
            f"{peer} did not answer within {peer.timeout_s:g} s",
            path=peer.name,
            hint="check the host and port, or raise timeout_s",
        )
    if why is not None:
        return unreachable_error(peer, why)
    return AssociationError(
        f"{peer} aborted the association",
        path=peer.name,
        hint="the peer may not accept our AE title, TLS settings or any proposed SOP class; "
        "see its log",
    )


def _rejection(assoc: Association) -> str:
    acceptor = getattr(assoc, "acceptor", None)
    primitive = getattr(getattr(assoc, "_assoc_rsp", None), "result_str", None) or ""
    reason = getattr(getattr(assoc, "_assoc_rsp", None), "reason_str", None)
    text = " ".join(x for x in (str(primitive), str(reason or "")) if x).strip()
    return text or f"called AE {getattr(acceptor, 'ae_title', '?')}"


def check_status(peer: Peer, response: Dataset | None, *, operation: str, subject: str = "") -> int:
    """Return the status of a pynetdicom DIMSE response; raise for a failure or no response.

    Warnings (``0x0001``, ``0xB...``) are returned, not raised; see
    :func:`radbridge.net.dimse.status.check_status_code`.
    """
    status = None if response is None or "Status" not in response else int(response.Status)
    return check_status_code(peer, status, operation=operation, subject=subject)
