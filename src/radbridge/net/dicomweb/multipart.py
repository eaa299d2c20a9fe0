r"""A streaming ``multipart/related`` parser (RFC 2046 5.1), without I/O.

Feed the body in pieces of any size; get events back as soon as the bytes that
decide them have arrived: :class:`PartStart` (with the part's headers),
:class:`PartData` (its content, in pieces), :class:`PartEnd`, and
:class:`BodyEnd` at the close delimiter. Memory stays bounded by the largest
piece fed plus the boundary length; a part's content is never held whole. The
STOW-RS server streams parts to disk with it; the WADO-RS client collects them.

Examples
--------
>>> parser = MultipartParser(boundary_of('multipart/related; boundary=b1'))
>>> events = parser.feed(b"--b1\r\nContent-Type: application/dicom\r\n\r\nDA")
>>> events += parser.feed(b"TA\r\n--b1--\r\n")
>>> [type(e).__name__ for e in events]
['PartStart', 'PartData', 'PartEnd', 'BodyEnd']
>>> events[0].headers, b"".join(e.data for e in events if isinstance(e, PartData))
({'content-type': 'application/dicom'}, b'DATA')
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass

__all__ = [
    "BodyEnd",
    "MultipartError",
    "MultipartParser",
    "PartData",
    "PartEnd",
    "PartStart",
    "boundary_of",
    "part_bodies",
]

#: Longest header block of a part.
MAX_HEADER_BYTES = 16 * 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


@dataclass(frozen=True)
class PartStart:
    """A part begins; ``headers`` maps lower-case names to values."""

    headers: dict[str, str]


@dataclass(frozen=True)
class PartData:
    """A piece of the current part's content."""

    data: bytes


@dataclass(frozen=True)
class PartEnd:
    """The current part is complete."""


@dataclass(frozen=True)
class BodyEnd:
    """The close delimiter arrived: the body is complete."""


Event = PartStart | PartData | PartEnd | BodyEnd


def boundary_of(content_type: str) -> str:
    """Return the ``boundary`` parameter of a ``multipart/*`` content type ('' if none)."""
    if not content_type.strip().lower().startswith("multipart/"):
        return ""
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"')
    return ""


class MultipartParser:
    """Turn a multipart body, fed in pieces, into events (see the module docstring).

    Parameters
    ----------
    boundary
        The boundary from the content type (see :func:`boundary_of`).

    Raises
    ------
    MultipartError
        From :meth:`feed`: a part's header block is too long or malformed.
    """

    def __init__(self, boundary: str) -> None:
        if not boundary or len(boundary) > 200:
            raise MultipartError("the multipart body has no usable boundary")
        # every delimiter is CRLF "--" boundary; the first may come without its CRLF,
        # so one is put in front of the body
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"  # preamble, after-delimiter, headers, content, done
        self.complete = False

    def feed(self, data: bytes) -> list[Event]:
        """Add the next piece of the body; return the events it completes."""
        if self._state == "done":
            return []
        self._buffer += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def _step(self, events: list[Event]) -> bool:
        """Consume what the buffer allows in the current state; False: need more bytes."""
        buffer, delimiter = self._buffer, self._delimiter
        if self._state in ("preamble", "content"):
            found = buffer.find(delimiter)
            if found < 0:
                keep = len(delimiter) - 1  # a delimiter may start in the last bytes
                if self._state == "content" and len(buffer) > keep:
                    events.append(PartData(bytes(buffer[: len(buffer) - keep])))
                del buffer[: max(0, len(buffer) - keep)]
                return False
            if self._state == "content":
                if found:
                    events.append(PartData(bytes(buffer[:found])))
                events.append(PartEnd())
            del buffer[: found + len(delimiter)]
            self._state = "after-delimiter"
            return True
        if self._state == "after-delimiter":
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"--":
                events.append(BodyEnd())
                self.complete = True
                self._state = "done"
                buffer.clear()
                return False
            line_end = buffer.find(b"\r\n")  # transport padding may precede the CRLF
            if line_end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise MultipartError("a multipart delimiter line does not end")
                return False
            if buffer[:line_end].strip(b" \t"):
                raise MultipartError("text after a multipart delimiter")
            del buffer[: line_end + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            end = 0 if buffer[:2] == b"\r\n" else buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise MultipartError("a part's header block is too long")
                return False
            block = bytes(buffer[:end])
            del buffer[: end + (2 if end == 0 else 4)]
            events.append(PartStart(_headers(block)))
            self._state = "content"
            return True
        return False


def part_bodies(content_type: str, chunks: Iterable[bytes]) -> Generator[bytes, None, bool]:
    r"""Yield the bodies of a ``multipart/related`` message (RFC 2046 5.1) as they arrive.

    ``chunks`` is the message body in pieces of any size; each part is yielded as
    soon as the delimiter after it has arrived. A body sent without multipart
    encapsulation (some servers do so for a single instance) is yielded whole.
    Returns False when a multipart body ended before its close delimiter.

    >>> body = [b"--b1\r\nContent-Type: application/dicom\r\n\r\nDA", b"TA\r\n--b1--\r\n"]
    >>> list(part_bodies('multipart/related; type="application/dicom"; boundary=b1', body))
    [b'DATA']
    """
    boundary = boundary_of(content_type)
    if not boundary:
        body = b"".join(chunks)
        if body:
            yield body
        return True
    parser = MultipartParser(boundary)
    content = bytearray()
    for chunk in chunks:
        for event in parser.feed(chunk):
            if isinstance(event, PartData):
                content += event.data
            elif isinstance(event, PartEnd):
                yield bytes(content)
                content.clear()
    return parser.complete


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        if not line:
            continue
        name, separator, value = line.partition(":")
        if not separator or not name.strip():
            raise MultipartError("a part has a malformed header line")
        headers[name.strip().lower()] = value.strip()
    return headers
