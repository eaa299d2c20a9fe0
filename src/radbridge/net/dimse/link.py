"""One DICOM upper-layer connection: PDUs in and out of a blocking socket, DIMSE messages.

:class:`Link` reads whole PDUs (checking each length against the limit agreed for
it), splits P-DATA-TF into presentation data values, and assembles them into DIMSE
messages (a command set and, when it says so, a data set); it writes a message as
one command PDU and data set PDUs no longer than the peer accepts. Both the
storage SCU and SCP (:mod:`radbridge.net.dimse.client`, ``server``) use it; there
are no threads here and no polling: a read blocks until bytes arrive or the
socket's timeout expires.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from radbridge.errors import NetworkError, PeerTimeoutError, ProtocolError
from radbridge.net.dimse.commands import Command
from radbridge.net.dimse.pdu import (
    A_ABORT,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    DEFAULT_MAX_LENGTH,
    P_DATA_TF,
    abort_pdu,
    pdu_header,
    pdvs,
)

__all__ = ["Aborted", "Link", "Message", "Released"]

#: Largest A-ASSOCIATE PDU accepted (128 contexts of long UIDs fit many times over).
MAX_ASSOCIATE_LENGTH = 1 << 20
#: Data set PDUs sent to a peer that accepts any length (Maximum Length 0).
UNLIMITED_CHUNK = 1 << 20
_PDV = struct.Struct(">IBB")
#: Buffers handed to one sendmsg call (well under IOV_MAX, 1024 on Linux).
_GATHER = 256
_COMMAND, _LAST = 0x01, 0x02


@dataclass
class Message:
    """A DIMSE message: its presentation context, command set and data set (or None)."""

    context_id: int
    command: Command
    dataset: bytes | None


@dataclass(frozen=True)
class Released:
    """The peer asked to release (A-RELEASE-RQ) or answered our request (A-RELEASE-RP)."""

    response: bool


@dataclass(frozen=True)
class Aborted:
    """The peer aborted (A-ABORT), or closed the connection between PDUs (``closed``)."""

    source: int = 0
    reason: int = 0
    closed: bool = False


class Link:
    """A connected socket speaking PDUs.

    Parameters
    ----------
    sock
        A connected (and, for TLS, wrapped) socket; reads and writes use its timeout.
    max_receive
        The Maximum Length we announced: a longer P-DATA-TF is a protocol error.
    peer
        Who is at the other end, for messages.
    """

    def __init__(
        self, sock: socket.socket, *, max_receive: int = DEFAULT_MAX_LENGTH, peer: str = "peer"
    ) -> None:
        self.sock = sock
        self.max_receive = max_receive
        self.max_send = 0  # the peer's Maximum Length (0: any), set after negotiation
        self.peer = peer
        self._pending: list[tuple[int, int, memoryview]] = []
        self._header = bytearray(6)

    # -- bytes --------------------------------------------------------------------------

    def _read_exactly(self, view: memoryview, *, at_boundary: bool = False) -> bool:
        """Fill ``view``; False if the peer closed before the first byte at a PDU boundary."""
        got = 0
        while got < len(view):
            try:
                count = self.sock.recv_into(view[got:])
            except TimeoutError as exc:
                raise PeerTimeoutError(
                    f"{self.peer} sent nothing within {self.sock.gettimeout() or 0:g} s",
                    hint="check that the peer is not stalled, or raise timeout_s",
                ) from exc
            except OSError as exc:
                raise NetworkError(f"the connection to {self.peer} failed ({exc})") from exc
            if count == 0:
                if at_boundary and got == 0:
                    return False
                raise NetworkError(f"{self.peer} closed the connection inside a PDU")
            got += count
        return True

    def send(self, *parts: bytes | memoryview) -> None:
        """Write ``parts`` back to back (gathered into one system call where possible)."""
        try:
            if isinstance(self.sock, ssl.SSLSocket) or len(parts) == 1:
                self.sock.sendall(b"".join(parts) if len(parts) > 1 else parts[0])
                return
            pending = [memoryview(p) for p in parts]
            while pending:
                sent = self.sock.sendmsg(pending)
                while pending and sent >= len(pending[0]):
                    sent -= len(pending[0])
                    pending.pop(0)
                if pending and sent:
                    pending[0] = pending[0][sent:]
        except TimeoutError as exc:
            raise PeerTimeoutError(
                f"{self.peer} stopped reading for {self.sock.gettimeout() or 0:g} s",
                hint="check that the peer is not stalled, or raise timeout_s",
            ) from exc
        except OSError as exc:
            raise NetworkError(f"the connection to {self.peer} failed ({exc})") from exc

    def read_pdu(self, *, limit: int | None = None) -> tuple[int, bytearray] | None:
        """Read one PDU: (type, body); None if the peer closed the connection between PDUs."""
        if not self._read_exactly(memoryview(self._header), at_boundary=True):
            return None
        kind, length = struct.unpack(">BxI", self._header)
        if kind == P_DATA_TF:
            allowed = self.max_receive if self.max_receive else (1 << 31)
        elif kind in (A_RELEASE_RQ, A_RELEASE_RP, A_ABORT):
            allowed = 4
        else:
            allowed = limit or MAX_ASSOCIATE_LENGTH
        if kind not in range(1, 8):
            raise ProtocolError(f"{self.peer} sent an unknown PDU type 0x{kind:02X}")
        if length > allowed or (kind in (A_RELEASE_RQ, A_RELEASE_RP, A_ABORT) and length != 4):
            raise ProtocolError(
                f"{self.peer} sent a 0x{kind:02X} PDU of {length} bytes (limit {allowed})"
            )
        body = bytearray(length)
        self._read_exactly(memoryview(body))
        return kind, body

    # -- messages -----------------------------------------------------------------------

    def send_message(
        self, context_id: int, command: bytes, dataset: bytes | memoryview | None = None
    ) -> None:
        """Send a command set and its data set in P-DATA-TF PDUs the peer can take."""
        self._send_fragments(context_id, memoryview(command), _COMMAND)
        if dataset is not None:
            self._send_fragments(context_id, memoryview(dataset), 0)

    def _send_fragments(self, context_id: int, data: memoryview, control: int) -> None:
        """Send ``data`` as P-DATA-TF PDUs, gathered into few system calls."""
        chunk = max((self.max_send - 6) if self.max_send else UNLIMITED_CHUNK, 1)
        parts: list[bytes | memoryview] = []
        offset = 0
        while True:
            piece = data[offset : offset + chunk]
            offset += len(piece)
            last = offset >= len(data)
            flags = control | (_LAST if last else 0)
            parts.append(
                pdu_header(P_DATA_TF, len(piece) + 6) + _PDV.pack(len(piece) + 2, context_id, flags)
            )
            parts.append(piece)
            if last or len(parts) >= _GATHER:
                self.send(*parts)
                parts = []
            if last:
                return

    def _next_pdv(self) -> tuple[int, int, memoryview] | Released | Aborted:
        while not self._pending:
            pdu = self.read_pdu()
            if pdu is None:
                return Aborted(closed=True)
            kind, body = pdu
            if kind == P_DATA_TF:
                self._pending = pdvs(body)
            elif kind in (A_RELEASE_RQ, A_RELEASE_RP):
                return Released(response=kind == A_RELEASE_RP)
            elif kind == A_ABORT:
                return Aborted(body[2], body[3])
            else:
                raise ProtocolError(f"{self.peer} sent PDU type 0x{kind:02X} mid-association")
        return self._pending.pop(0)

    def read_message(self, accepted: Sequence[int] = ()) -> Message | Released | Aborted:
        """Read the next DIMSE message (or the release/abort that ends the association).

        ``accepted`` lists the presentation context IDs the message may use (empty:
        any); a fragment on another context, a data set fragment where a command
        belongs, or a command set that cannot be parsed is a :class:`ProtocolError`.
        """
        parts: list[memoryview] = []
        command: Command | None = None
        context: int | None = None
        while True:
            item = self._next_pdv()
            if isinstance(item, Released | Aborted):
                if parts or command is not None:
                    if isinstance(item, Aborted):
                        return item
                    raise ProtocolError(f"{self.peer} released in the middle of a message")
                return item
            pdv_context, control, data = item
            if context is None:
                context = pdv_context
                if accepted and context not in accepted:
                    raise ProtocolError(f"{self.peer} used presentation context {context}")
            elif pdv_context != context:
                raise ProtocolError(f"{self.peer} switched presentation context mid-message")
            is_command = bool(control & _COMMAND)
            if is_command != (command is None):
                raise ProtocolError(f"{self.peer} interleaved command and data set fragments")
            parts.append(data)
            if not control & _LAST:
                continue
            if command is None:
                command = Command.decode(b"".join(parts))
                parts = []
                if command.has_dataset:
                    continue
                return Message(context, command, None)
            return Message(context, command, b"".join(parts))

    def abort(self, source: int = 0, reason: int = 0) -> None:
        """Send an A-ABORT (best effort) and close the socket."""
        with contextlib.suppress(NetworkError):
            self.send(abort_pdu(source, reason))
        self.close()

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.close()
