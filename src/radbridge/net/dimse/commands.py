"""DIMSE command sets (PS3.7 E): group 0000 in Implicit VR Little Endian, built and read as bytes.

Examples
--------
>>> rq = store_request(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4")
>>> cmd = Command.decode(rq)
>>> hex(cmd.field), cmd.message_id, cmd.uid(AFFECTED_SOP_INSTANCE), cmd.has_dataset
('0x1', 7, '1.2.3.4', True)
>>> Command.decode(response(cmd, 0xA700)).status == 0xA700
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from radbridge.errors import ProtocolError

__all__ = [
    "AFFECTED_SOP_CLASS",
    "AFFECTED_SOP_INSTANCE",
    "C_ECHO_RQ",
    "C_STORE_RQ",
    "Command",
    "echo_request",
    "response",
    "store_request",
]

C_STORE_RQ, C_ECHO_RQ = 0x0001, 0x0030
_RESPONSE_BIT = 0x8000
_NO_DATASET, _DATASET = 0x0101, 0x0000

AFFECTED_SOP_CLASS = 0x0002
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_RESPONDED = 0x0120
PRIORITY = 0x0700
DATASET_TYPE = 0x0800
STATUS = 0x0900
ERROR_COMMENT = 0x0902
AFFECTED_SOP_INSTANCE = 0x1000
MOVE_ORIGINATOR_AE = 0x1030

_ELEMENT = struct.Struct("<HHI")
_US = struct.Struct("<H")


def _ui(value: str) -> bytes:
    data = value.encode("ascii", "replace")
    return data + b"\0" if len(data) % 2 else data


def _text(value: str) -> bytes:
    data = value.encode("ascii", "replace")
    return data + b" " if len(data) % 2 else data


def _encode(elements: dict[int, bytes]) -> bytes:
    body = b"".join(_ELEMENT.pack(0, tag, len(v)) + v for tag, v in sorted(elements.items()))
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<I", len(body)) + body


@dataclass(frozen=True)
class Command:
    """A received command set: its elements as raw values, with typed accessors."""

    elements: dict[int, bytes]

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Command:
        """Parse a command set; raises :class:`ProtocolError` for anything malformed."""
        view = memoryview(data)
        elements: dict[int, bytes] = {}
        offset = 0
        while offset < len(view):
            if offset + 8 > len(view):
                raise ProtocolError("a truncated element in a DIMSE command set")
            group, element, length = _ELEMENT.unpack_from(view, offset)
            end = offset + 8 + length
            if group != 0 or end > len(view):
                raise ProtocolError("a DIMSE command set element is outside group 0000 or its end")
            elements[element] = bytes(view[offset + 8 : end])
            offset = end
        command = cls(elements)
        if COMMAND_FIELD not in elements:
            raise ProtocolError("a DIMSE command set without a Command Field")
        return command

    def us(self, element: int) -> int | None:
        """Return an US value, or None when absent."""
        value = self.elements.get(element)
        if value is None:
            return None
        if len(value) != 2:
            raise ProtocolError(f"command element (0000,{element:04X}) is not 2 bytes")
        return int(_US.unpack(value)[0])

    def uid(self, element: int) -> str:
        """Return a UI value (stripped), or ''."""
        return self.elements.get(element, b"").decode("ascii", "replace").strip("\0 ")

    @property
    def field(self) -> int:
        """The Command Field (e.g. ``0x0001`` C-STORE-RQ)."""
        return self.us(COMMAND_FIELD) or 0

    @property
    def message_id(self) -> int:
        """Message ID of a request (0 when absent)."""
        return self.us(MESSAGE_ID) or 0

    @property
    def responded_to(self) -> int | None:
        """Message ID Being Responded To of a response."""
        return self.us(MESSAGE_ID_RESPONDED)

    @property
    def status(self) -> int | None:
        """Status of a response."""
        return self.us(STATUS)

    @property
    def has_dataset(self) -> bool:
        """Whether a data set follows (Command Data Set Type other than 0x0101)."""
        return self.us(DATASET_TYPE) != _NO_DATASET

    @property
    def is_request(self) -> bool:
        """Whether this is a request (the response bit is clear)."""
        return not self.field & _RESPONSE_BIT


def store_request(message_id: int, sop_class: str, sop_instance: str, priority: int = 0) -> bytes:
    """Encode a C-STORE-RQ command set (a data set follows)."""
    return _encode(
        {
            AFFECTED_SOP_CLASS: _ui(sop_class),
            COMMAND_FIELD: _US.pack(C_STORE_RQ),
            MESSAGE_ID: _US.pack(message_id),
            PRIORITY: _US.pack(priority),
            DATASET_TYPE: _US.pack(_DATASET),
            AFFECTED_SOP_INSTANCE: _ui(sop_instance),
        }
    )


def echo_request(message_id: int) -> bytes:
    """Encode a C-ECHO-RQ command set (Verification SOP Class)."""
    return _encode(
        {
            AFFECTED_SOP_CLASS: _ui("1.2.840.10008.1.1"),
            COMMAND_FIELD: _US.pack(C_ECHO_RQ),
            MESSAGE_ID: _US.pack(message_id),
            DATASET_TYPE: _US.pack(_NO_DATASET),
        }
    )


def response(request: Command, status: int, comment: str = "") -> bytes:
    """Encode the response to ``request`` with ``status`` (no data set)."""
    elements = {
        COMMAND_FIELD: _US.pack(request.field | _RESPONSE_BIT),
        MESSAGE_ID_RESPONDED: _US.pack(request.message_id),
        DATASET_TYPE: _US.pack(_NO_DATASET),
        STATUS: _US.pack(status),
    }
    for element in (AFFECTED_SOP_CLASS, AFFECTED_SOP_INSTANCE):
        if request.uid(element):
            elements[element] = _ui(request.uid(element))
    if comment:
        elements[ERROR_COMMENT] = _text(comment[:64])
    return _encode(elements)
