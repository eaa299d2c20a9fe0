"""Locate the compressed frames inside encapsulated Pixel Data without decoding them.

Encapsulated Pixel Data is a Basic Offset Table item followed by fragment
items (PS3.5 A.4). :class:`FragmentIndex` finds every frame's bytes once, from
the Extended Offset Table, the Basic Offset Table, or one scan over the
fragment headers, and then hands out single frames in constant time.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from radbridge.errors import DecodingError

__all__ = ["FragmentIndex"]

log = logging.getLogger(__name__)

_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_END = b"\xfe\xff\xdd\xe0"


@dataclass(frozen=True)
class _Fragment:
    start: int  # first byte of the value, after the 8-byte item header
    length: int  # bytes present in the buffer
    truncated: bool = False


def _scan(buffer: bytes | memoryview, first: int) -> list[_Fragment]:
    """Read the fragment item headers from offset ``first`` on."""
    fragments: list[_Fragment] = []
    position, size = first, len(buffer)
    while position + 8 <= size:
        tag = bytes(buffer[position : position + 4])
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM:
            raise DecodingError(
                f"unexpected tag {tag.hex()} at byte {position} of the encapsulated "
                f"pixel data (fragment {len(fragments) + 1})",
                attribute="PixelData",
                hint="the pixel data is damaged",
            )
        (length,) = struct.unpack_from("<I", buffer, position + 4)
        start = position + 8
        if start + length > size:
            fragments.append(_Fragment(start, size - start, truncated=True))
            break
        fragments.append(_Fragment(start, length))
        position = start + length
    return fragments


class FragmentIndex:
    """Where each frame's compressed bytes lie in encapsulated Pixel Data.

    Parameters
    ----------
    buffer
        The value of Pixel Data, starting with the Basic Offset Table item.
    number_of_frames
        Number of Frames from the data set.
    extended_offsets
        Extended Offset Table and Extended Offset Table Lengths values, if present.

    Raises
    ------
    DecodingError
        If the value is not encapsulated pixel data.

    Examples
    --------
    >>> from pydicom.encaps import encapsulate
    >>> index = FragmentIndex(encapsulate([b"ab", b"cdef"], has_bot=False), 2)
    >>> index.frame(1)
    b'cdef'
    """

    def __init__(
        self,
        buffer: bytes,
        number_of_frames: int,
        *,
        extended_offsets: tuple[bytes, bytes] | None = None,
    ) -> None:
        if len(buffer) < 8 or bytes(buffer[:4]) != _ITEM:
            raise DecodingError(
                "encapsulated pixel data does not start with a Basic Offset Table item",
                attribute="PixelData",
                hint="the pixel data is damaged, or the transfer syntax is wrong",
            )
        self._buffer = buffer
        self.count = number_of_frames
        (bot_length,) = struct.unpack_from("<I", buffer, 4)
        self._first = 8 + bot_length
        if self._first > len(buffer) or bot_length % 4:
            raise DecodingError(
                f"the Basic Offset Table claims {bot_length} bytes",
                attribute="PixelData",
                hint="the pixel data is damaged",
            )
        offsets = struct.unpack_from(f"<{bot_length // 4}I", buffer, 8)
        self._frames = self._locate(list(offsets), extended_offsets)

    def _locate(
        self, bot: list[int], extended: tuple[bytes, bytes] | None
    ) -> list[list[_Fragment]] | list[bytes]:
        if extended is not None:
            frames = self._from_extended(*extended)
            if frames is not None:
                return frames
            log.warning("ignoring an Extended Offset Table that does not fit the fragments")
        fragments = _scan(self._buffer, self._first)
        if bot:
            frames = self._from_offsets(bot, fragments)
            if frames is not None:
                return frames
            log.warning("ignoring a Basic Offset Table that does not fit the fragments")
        if len(fragments) == self.count:
            return [[f] for f in fragments]
        if self.count == 1:
            return [fragments]
        if len(fragments) > self.count:
            return self._by_markers()
        if fragments:
            log.warning(
                "%d fragments for %d frames: frames past %d are missing",
                len(fragments),
                self.count,
                len(fragments),
            )
        return [[f] for f in fragments]

    def _from_extended(self, offsets: bytes, lengths: bytes) -> list[list[_Fragment]] | None:
        n = len(offsets) // 8
        if n != self.count or len(lengths) // 8 != n:
            return None
        starts = struct.unpack(f"<{n}Q", offsets[: n * 8])
        sizes = struct.unpack(f"<{n}Q", lengths[: n * 8])
        frames = []
        for offset, size in zip(starts, sizes, strict=True):
            header = self._first + offset
            if bytes(self._buffer[header : header + 4]) != _ITEM:
                return None
            frames.append([_Fragment(header + 8, size, header + 8 + size > len(self._buffer))])
        return frames

    def _from_offsets(
        self, bot: Sequence[int], fragments: list[_Fragment]
    ) -> list[list[_Fragment]] | None:
        if len(bot) != self.count or bot[0] != 0 or list(bot) != sorted(set(bot)):
            return None
        by_header = {f.start - 8 - self._first: i for i, f in enumerate(fragments)}
        firsts = [by_header.get(offset) for offset in bot]
        if any(i is None for i in firsts):
            return None
        bounds = [int(i) for i in firsts if i is not None] + [len(fragments)]
        return [fragments[a:b] for a, b in itertools.pairwise(bounds)]

    def _by_markers(self) -> list[bytes]:
        """Group fragments into frames by codestream markers (pydicom's rules)."""
        from pydicom.encaps import generate_frames

        try:
            return list(generate_frames(self._buffer, number_of_frames=self.count))
        except (ValueError, IndexError) as exc:
            raise DecodingError(
                f"cannot tell which fragments belong to which of the {self.count} frames ({exc})",
                attribute="PixelData",
                hint="the pixel data has no offset table and more fragments than frames",
            ) from exc

    def frame(self, index: int) -> bytes:
        """Return the compressed bytes of frame ``index`` (0-based).

        Raises
        ------
        DecodingError
            If the frame's fragments are missing or truncated.
        """
        if not 0 <= index < self.count:
            raise DecodingError(
                f"frame {index + 1} does not exist ({self.count} frames)",
                attribute="NumberOfFrames",
            )
        if index >= len(self._frames):
            raise DecodingError(
                f"frame {index + 1} is missing: the pixel data holds only "
                f"{len(self._frames)} of {self.count} frames",
                attribute="PixelData",
                hint="the file is truncated, or Number of Frames is wrong",
            )
        item = self._frames[index]
        if isinstance(item, bytes):
            return item
        if any(f.truncated for f in item):
            raise DecodingError(
                f"frame {index + 1} is truncated",
                attribute="PixelData",
                hint="the file is truncated",
            )
        return b"".join(self._buffer[f.start : f.start + f.length] for f in item)
