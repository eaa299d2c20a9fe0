r"""The UIDs at the start of an encoded data set, read without pydicom (the fast path).

A receiver needs the SOP Class, SOP Instance, Study and Series Instance UIDs of every
instance (to name its file); a sender needs the first two. They sit in the first few
hundred bytes of a little-endian data set. :func:`scan_uids` walks the elements up to
the last UID wanted, skipping undefined-length sequences item by item, and gives up
(``None``) on anything it does not handle -- big endian, deflate, damage -- so that
the caller falls back to pydicom, which reports what is wrong.

Examples
--------
>>> ds = b"\x08\x00\x16\x00UI\x04\x001.2\x00" + b"\x08\x00\x18\x00UI\x04\x005.6\x00"
>>> scan_uids(ds, "1.2.840.10008.1.2.1")
('', '', '5.6', '1.2')
"""

from __future__ import annotations

import struct

__all__ = ["scan_uids"]

IMPLICIT_LE = "1.2.840.10008.1.2"
#: Syntaxes whose data set is not plain little endian.
_NOT_PLAIN = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_CLASS, _INSTANCE, _STUDY, _SERIES = 0x00080016, 0x00080018, 0x0020000D, 0x0020000E
_TAG = struct.Struct("<HH")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")


class _UnreadableError(Exception):
    """The bytes are not what this scanner handles (the caller uses pydicom)."""


def _header(data: bytes, offset: int, implicit: bool) -> tuple[int, int, int]:
    """(tag, value offset, value length) of the element at ``offset``."""
    if offset + 8 > len(data):
        raise _UnreadableError
    group, element = _TAG.unpack_from(data, offset)
    tag = group << 16 | element
    if implicit or group == 0xFFFE:  # item and delimiter tags never carry a VR
        return tag, offset + 8, _U32.unpack_from(data, offset + 4)[0]
    vr = data[offset + 4 : offset + 6]
    if not (b"AA" <= vr <= b"ZZ" and vr.isalpha()):  # e.g. implicit VR under an explicit syntax
        raise _UnreadableError
    if vr in _LONG_VRS:
        if offset + 12 > len(data):
            raise _UnreadableError
        return tag, offset + 12, _U32.unpack_from(data, offset + 8)[0]
    return tag, offset + 8, _U16.unpack_from(data, offset + 6)[0]


def _skip_sequence(data: bytes, offset: int, implicit: bool, depth: int) -> int:
    """Skip the items of an undefined-length sequence; return the offset after its end."""
    if depth > 16:
        raise _UnreadableError
    while True:
        tag, start, length = _header(data, offset, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise _UnreadableError
        if length != _UNDEFINED:
            offset = start + length
            continue
        offset = start
        while True:  # an undefined-length item: its elements, then the item delimiter
            tag, start, length = _header(data, offset, implicit)
            if tag == _ITEM_END:
                offset = start
                break
            offset = (
                _skip_sequence(data, start, implicit, depth + 1)
                if length == _UNDEFINED
                else start + length
            )


def scan_uids(
    data: bytes, transfer_syntax_uid: str, *, last_tag: int = _SERIES
) -> tuple[str, str, str, str] | None:
    """(study, series, SOP instance, SOP class) UIDs ('' when absent), or None.

    ``data`` is a data set (no file meta); elements after ``last_tag`` are not
    read. ``None`` when the syntax is not little endian without deflate, or an
    element breaks (its length runs past the end, a sequence is malformed).
    """
    if transfer_syntax_uid in _NOT_PLAIN:
        return None
    view = data
    implicit = transfer_syntax_uid == IMPLICIT_LE
    found = {_CLASS: "", _INSTANCE: "", _STUDY: "", _SERIES: ""}
    offset = 0
    try:
        while offset < len(view):
            tag, start, length = _header(view, offset, implicit)
            if tag > last_tag:
                break
            if length == _UNDEFINED:
                offset = _skip_sequence(view, start, implicit, 0)
                continue
            if start + length > len(view):
                return None
            if tag in found:
                found[tag] = view[start : start + length].decode("ascii", "replace").strip("\0 ")
            offset = start + length
    except (_UnreadableError, struct.error):
        return None
    return found[_STUDY], found[_SERIES], found[_INSTANCE], found[_CLASS]
