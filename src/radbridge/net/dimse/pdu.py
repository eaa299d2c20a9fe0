"""DICOM Upper Layer PDUs (PS3.8 9.3): encoded and parsed strictly, for the storage path.

Only what C-ECHO and C-STORE need: A-ASSOCIATE-RQ/AC/RJ, P-DATA-TF, A-RELEASE-RQ/RP
and A-ABORT. Parsing checks every length against the bytes that carry it; anything
malformed raises :class:`~radbridge.errors.ProtocolError` (the caller aborts the
association), never an ``IndexError`` or ``struct.error``.

Examples
--------
>>> echo = (1, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])
>>> rq = AssociateRequest("STORESCP", "RADBRIDGE", [echo])
>>> body = rq.encode()[6:]
>>> parsed = AssociateRequest.decode(body)
>>> parsed.called_ae, parsed.contexts, parsed.max_length
('STORESCP', [(1, '1.2.840.10008.1.1', ['1.2.840.10008.1.2'])], 262144)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from radbridge.errors import ProtocolError

__all__ = [
    "APPLICATION_CONTEXT",
    "A_ABORT",
    "A_ASSOCIATE_AC",
    "A_ASSOCIATE_RJ",
    "A_ASSOCIATE_RQ",
    "A_RELEASE_RP",
    "A_RELEASE_RQ",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION",
    "P_DATA_TF",
    "AssociateAccept",
    "AssociateReject",
    "AssociateRequest",
    "abort_pdu",
    "pdu_header",
    "pdvs",
    "reject_pdu",
    "release_pdu",
]

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07

#: The DICOM Application Context Name (PS3.7 A.2.1).
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
#: radbridge's Implementation Class UID (PS3.7 D.3.3.2):
#: ``radbridge.uids.derived_uid("radbridge", "implementation class")``.
IMPLEMENTATION_CLASS_UID = "2.25.104168868448252626519185750749687290784"
#: Implementation Version Name (SH, at most 16 characters).
IMPLEMENTATION_VERSION = "RADBRIDGE_01"
#: Maximum P-DATA-TF body length radbridge asks peers to send (PS3.8 D.1).
DEFAULT_MAX_LENGTH = 262_144

_HEADER = struct.Struct(">BxI")
_ITEM = struct.Struct(">BxH")

#: (context id, abstract syntax, [transfer syntaxes]) as proposed.
ProposedContext = tuple[int, str, list[str]]


def pdu_header(kind: int, length: int) -> bytes:
    """Return the 6-byte PDU header: type, reserved, big-endian length of what follows."""
    return _HEADER.pack(kind, length)


def _ae(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def _item(kind: int, value: bytes) -> bytes:
    return _ITEM.pack(kind, len(value)) + value


def _uid(value: bytes, what: str) -> str:
    text = value.rstrip(b"\0 ").decode("ascii", "replace")
    if not text or len(text) > 64 or any(c not in "0123456789." for c in text):
        raise ProtocolError(f"the {what} {text[:70]!r} is not a UID")
    return text


def _items(body: bytes, start: int, what: str) -> list[tuple[int, bytes]]:
    """Split ``body[start:]`` into (type, value) items with 2-byte lengths."""
    found = []
    offset = start
    while offset < len(body):
        if offset + 4 > len(body):
            raise ProtocolError(f"a truncated item header in the {what}")
        kind, length = _ITEM.unpack_from(body, offset)
        end = offset + 4 + length
        if end > len(body):
            raise ProtocolError(f"an item of the {what} is longer than the PDU")
        found.append((kind, body[offset + 4 : end]))
        offset = end
    return found


@dataclass
class UserInformation:
    """The User Information item: maximum length and implementation identity."""

    max_length: int = DEFAULT_MAX_LENGTH
    implementation_class_uid: str = IMPLEMENTATION_CLASS_UID
    implementation_version: str = IMPLEMENTATION_VERSION

    def encode(self) -> bytes:
        """Encode as item 0x50 with sub-items 0x51, 0x52, 0x55."""
        return _item(
            0x50,
            _item(0x51, struct.pack(">I", self.max_length))
            + _item(0x52, self.implementation_class_uid.encode())
            + _item(0x55, self.implementation_version.encode()[:16]),
        )

    @classmethod
    def decode(cls, value: bytes) -> UserInformation:
        """Parse item 0x50's value; unknown sub-items (roles, identity, ...) are skipped."""
        info = cls(max_length=0, implementation_class_uid="", implementation_version="")
        for kind, sub in _items(value, 0, "user information"):
            if kind == 0x51:
                if len(sub) != 4:
                    raise ProtocolError("the Maximum Length item is not 4 bytes")
                info.max_length = struct.unpack(">I", sub)[0]
            elif kind == 0x52:
                info.implementation_class_uid = sub.decode("ascii", "replace").rstrip("\0 ")
            elif kind == 0x55:
                info.implementation_version = sub.decode("ascii", "replace").rstrip("\0 ")
        return info


def _associate_pdu(
    kind: int, called: str, calling: str, items: list[bytes], max_length: int
) -> bytes:
    """Encode an A-ASSOCIATE-RQ/AC: version 1, AE titles, items, our User Information."""
    body = (
        struct.pack(">H2x", 1)
        + _ae(called)
        + _ae(calling)
        + bytes(32)
        + b"".join(items)
        + UserInformation(max_length).encode()
    )
    return pdu_header(kind, len(body)) + body


def _fixed_fields(body: bytes, what: str) -> tuple[str, str]:
    if len(body) < 68:
        raise ProtocolError(f"the {what} is shorter than its fixed fields")
    (version,) = struct.unpack_from(">H", body, 0)
    if not version & 1:
        raise ProtocolError(f"the {what} does not support protocol version 1")
    called = body[4:20].decode("ascii", "replace").strip()
    calling = body[20:36].decode("ascii", "replace").strip()
    return called, calling


@dataclass
class AssociateRequest:
    """A-ASSOCIATE-RQ: who calls whom, the proposed contexts, the caller's limits."""

    called_ae: str
    calling_ae: str
    contexts: list[ProposedContext]
    max_length: int = DEFAULT_MAX_LENGTH
    application_context: str = APPLICATION_CONTEXT
    user: UserInformation = field(default_factory=UserInformation)

    def encode(self) -> bytes:
        """Encode the whole PDU, header included."""
        items = [_item(0x10, self.application_context.encode())]
        for context_id, abstract, syntaxes in self.contexts:
            sub = _item(0x30, abstract.encode()) + b"".join(
                _item(0x40, s.encode()) for s in syntaxes
            )
            items.append(_item(0x20, bytes((context_id, 0, 0, 0)) + sub))
        return _associate_pdu(
            A_ASSOCIATE_RQ, self.called_ae, self.calling_ae, items, self.max_length
        )

    @classmethod
    def decode(cls, body: bytes) -> AssociateRequest:
        """Parse the PDU body (after the 6-byte header)."""
        called, calling = _fixed_fields(body, "A-ASSOCIATE-RQ")
        request = cls(called, calling, [], max_length=0, application_context="")
        for kind, value in _items(body, 68, "A-ASSOCIATE-RQ"):
            if kind == 0x10:
                request.application_context = _uid(value, "application context name")
            elif kind == 0x20:
                request.contexts.append(_proposed_context(value))
            elif kind == 0x50:
                request.user = UserInformation.decode(value)
                request.max_length = request.user.max_length
        if not request.application_context:
            raise ProtocolError("the A-ASSOCIATE-RQ has no application context")
        return request


def _proposed_context(value: bytes) -> ProposedContext:
    if len(value) < 4:
        raise ProtocolError("a presentation context item is shorter than 4 bytes")
    context_id = value[0]
    if context_id % 2 == 0:
        raise ProtocolError(f"presentation context ID {context_id} is not odd")
    abstract, syntaxes = "", []
    for kind, sub in _items(value, 4, "presentation context"):
        if kind == 0x30:
            abstract = _uid(sub, "abstract syntax")
        elif kind == 0x40:
            syntaxes.append(_uid(sub, "transfer syntax"))
    if not abstract or not syntaxes:
        raise ProtocolError(
            f"presentation context {context_id} lacks its abstract or transfer syntax"
        )
    return context_id, abstract, syntaxes


@dataclass
class AssociateAccept:
    """A-ASSOCIATE-AC: the result per context (0 accepted) and the acceptor's limits."""

    called_ae: str
    calling_ae: str
    #: context id -> (result, transfer syntax accepted or "")
    results: dict[int, tuple[int, str]]
    max_length: int = DEFAULT_MAX_LENGTH

    def encode(self) -> bytes:
        """Encode the whole PDU, header included."""
        items = [_item(0x10, APPLICATION_CONTEXT.encode())]
        for context_id, (result, syntax) in self.results.items():
            sub = _item(0x40, syntax.encode()) if syntax else b""
            items.append(_item(0x21, bytes((context_id, 0, result, 0)) + sub))
        return _associate_pdu(
            A_ASSOCIATE_AC, self.called_ae, self.calling_ae, items, self.max_length
        )

    @classmethod
    def decode(cls, body: bytes) -> AssociateAccept:
        """Parse the PDU body (after the 6-byte header)."""
        called, calling = _fixed_fields(body, "A-ASSOCIATE-AC")
        accept = cls(called, calling, {}, max_length=0)
        for kind, value in _items(body, 68, "A-ASSOCIATE-AC"):
            if kind == 0x21:
                if len(value) < 4:
                    raise ProtocolError("an accepted context item is shorter than 4 bytes")
                syntax = ""
                for sub_kind, sub in _items(value, 4, "presentation context"):
                    if sub_kind == 0x40:
                        syntax = _uid(sub, "transfer syntax")
                if value[2] == 0 and not syntax:
                    raise ProtocolError(f"accepted context {value[0]} has no transfer syntax")
                accept.results[value[0]] = (value[2], syntax)
            elif kind == 0x50:
                accept.max_length = UserInformation.decode(value).max_length
        return accept


@dataclass(frozen=True)
class AssociateReject:
    """A-ASSOCIATE-RJ: result (1 permanent, 2 transient), source and reason (PS3.8 9.3.4)."""

    result: int
    source: int
    reason: int

    def describe(self) -> str:
        """Why, in words."""
        reasons = {
            (1, 1): "no reason given",
            (1, 2): "application context name not supported",
            (1, 3): "calling AE title not recognized",
            (1, 7): "called AE title not recognized",
            (2, 1): "no reason given (ACSE)",
            (2, 2): "protocol version not supported",
            (3, 1): "temporary congestion",
            (3, 2): "local limit exceeded",
        }
        kind = "permanent" if self.result == 1 else "transient"
        return f"{kind}: {reasons.get((self.source, self.reason), f'reason {self.reason}')}"

    @classmethod
    def decode(cls, body: bytes) -> AssociateReject:
        """Parse the 4-byte PDU body."""
        if len(body) != 4:
            raise ProtocolError("an A-ASSOCIATE-RJ body is not 4 bytes")
        return cls(body[1], body[2], body[3])


def reject_pdu(result: int, source: int, reason: int) -> bytes:
    """Encode an A-ASSOCIATE-RJ PDU."""
    return pdu_header(A_ASSOCIATE_RJ, 4) + bytes((0, result, source, reason))


def release_pdu(kind: int) -> bytes:
    """Encode an A-RELEASE-RQ or A-RELEASE-RP PDU."""
    return pdu_header(kind, 4) + bytes(4)


def abort_pdu(source: int = 0, reason: int = 0) -> bytes:
    """Encode an A-ABORT PDU (source 0: service user, 2: service provider)."""
    return pdu_header(A_ABORT, 4) + bytes((0, 0, source, reason))


def pdvs(body: bytes | bytearray | memoryview) -> list[tuple[int, int, memoryview]]:
    """Split a P-DATA-TF body into (context id, message control header, data) values."""
    view = memoryview(body)
    found = []
    offset = 0
    while offset < len(view):
        if offset + 6 > len(view):
            raise ProtocolError("a truncated presentation data value header")
        (length,) = struct.unpack_from(">I", view, offset)
        end = offset + 4 + length
        if length < 2 or end > len(view):
            raise ProtocolError("a presentation data value's length does not fit its PDU")
        found.append((view[offset + 4], view[offset + 5], view[offset + 6 : end]))
        offset = end
    if not found:
        raise ProtocolError("a P-DATA-TF without presentation data values")
    return found
