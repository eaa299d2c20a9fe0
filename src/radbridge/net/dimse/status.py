"""DIMSE status codes: their meaning, and which ones are failures (PS3.7 C).

Examples
--------
>>> status_text(0xA700)
'Failure: out of resources'
>>> from radbridge.net import parse_peer
>>> check_status_code(parse_peer("PACS@127.0.0.1:104"), 0xB000, operation="C-STORE") == 0xB000
True
"""

from __future__ import annotations

from radbridge.errors import DimseStatusError, PeerTimeoutError
from radbridge.net.peers import Peer

__all__ = ["check_status_code", "permanent_status", "status_text"]

_STATUS_TEXT = {
    0x0000: "Success",
    0x0001: "Warning: requested optional attributes are not supported",
    0x0107: "Warning: attribute list error",
    0x0116: "Warning: attribute value out of range",
    0x0122: "Failure: SOP class not supported",
    0x0124: "Failure: refused, not authorised",
    0x0210: "Failure: duplicate invocation",
    0x0211: "Failure: unrecognised operation",
    0x0212: "Failure: mistyped argument",
    0xA700: "Failure: out of resources",
    0xA701: "Failure: out of resources (cannot calculate number of matches)",
    0xA702: "Failure: out of resources (unable to perform sub-operations)",
    0xA801: "Failure: move destination unknown",
    0xA900: "Failure: data set does not match SOP class",
    0xB000: "Warning: coercion of data elements / sub-operations completed with failures",
    0xB006: "Warning: elements discarded",
    0xB007: "Warning: data set does not match SOP class",
    0xC000: "Failure: cannot understand",
    0xFE00: "Cancel",
    0xFF00: "Pending",
    0xFF01: "Pending (optional keys not supported)",
}


def status_text(status: int) -> str:
    """Return a short description of a DIMSE status code.

    >>> status_text(0xA700)
    'Failure: out of resources'
    """
    if status in _STATUS_TEXT:
        return _STATUS_TEXT[status]
    if 0xA000 <= status <= 0xAFFF:
        return "Failure: out of resources / refused"
    if 0xC000 <= status <= 0xCFFF:
        return "Failure: cannot understand"
    return "Unknown status"


def permanent_status(status: int) -> bool:
    """Tell whether a failure status is final: sending the same data set again cannot help.

    ``0xA9xx`` (data set does not match the SOP class), ``0xCxxx`` (cannot
    understand) and ``0x0122`` (SOP class not supported) are; ``0xA7xx`` (out of
    resources) and every other failure status may pass on a later try.

    >>> permanent_status(0xA900), permanent_status(0xC123), permanent_status(0xA702)
    (True, True, False)
    """
    return 0xA900 <= status <= 0xA9FF or 0xC000 <= status <= 0xCFFF or status == 0x0122


def check_status_code(peer: Peer, status: int | None, *, operation: str, subject: str = "") -> int:
    """Return a DIMSE response's status; raise for a failure or no response (``None``).

    Warnings (``0x0001``, ``0xB...``) are returned, not raised.

    Raises
    ------
    PeerTimeoutError
        No response (timeout or an aborted association).
    DimseStatusError
        A failure status (``status`` holds it), with a hint of what to do.
    """
    about = f" for {subject}" if subject else ""
    if status is None:
        raise PeerTimeoutError(
            f"{peer} sent no {operation} response{about} (timeout or aborted association)",
            path=peer.name,
            hint="check the peer's log; raise timeout_s for large objects",
        )
    if status in (0x0000, 0x0001, 0xFF00, 0xFF01) or 0xB000 <= status <= 0xBFFF:
        return status
    if status == 0x0107 or status == 0x0116:
        return status
    err = DimseStatusError(
        f"{peer} answered {operation}{about} with 0x{status:04X} ({status_text(status)})",
        path=peer.name,
        attribute="Status",
        hint=_status_hint(status),
    )
    err.status = status
    raise err


def _status_hint(status: int) -> str:
    if status == 0x0122:
        return "the peer does not accept this SOP class; configure it to, or send another"
    if 0xA700 <= status <= 0xA7FF:
        return "the peer is out of resources (disk full?); retry later"
    if status == 0xA801:
        return "register our AE title as a move destination on the peer"
    if status == 0x0124:
        return "the peer refused the operation; check its access rules"
    return "see the peer's log for the reason"
