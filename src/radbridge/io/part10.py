r"""A DICOM Part 10 file as bytes: its File Meta Information and the UIDs at its head.

Receivers and senders move data sets as bytes, without decoding them: a
receiver writes :func:`file_meta_bytes` in front of the data set it was sent,
a sender finds where the data set starts (:func:`dataset_offset`) and what it
is (:func:`header_uids`). Every instance's SOP Class, SOP Instance, Study and
Series Instance UIDs sit in the first few hundred bytes of a little-endian data
set: :func:`scan_uids` walks the elements up to the last UID wanted, skipping
undefined-length sequences item by item, and gives up (``None``) on anything it
does not handle -- big endian, deflate, damage -- so that the caller falls back
to pydicom (:func:`read_dataset_uids`), which reports what is wrong.

Examples
--------
>>> ds = b"\x08\x00\x16\x00UI\x04\x001.2\x00" + b"\x08\x00\x18\x00UI\x04\x005.6\x00"
>>> scan_uids(ds, "1.2.840.10008.1.2.1")
('', '', '5.6', '1.2')
>>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "5.6", "1.2.840.10008.1.2.1")
>>> dataset_offset(meta + ds) == len(meta)
True
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from radbridge.errors import NotDicomError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "dataset_offset",
    "file_meta_bytes",
    "header_uids",
    "meta_transfer_syntax",
    "read_dataset_uids",
    "read_uids",
    "same_dataset",
    "save_part10",
    "scan_uids",
]

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


def dataset_offset(data: bytes | memoryview) -> int:
    """Return where the data set starts in a Part 10 file (after its File Meta Information).

    ``0`` for bytes without the ``DICM`` preamble (a bare data set).

    Raises
    ------
    NotDicomError
        The File Meta Information group length is missing or points past the end.

    Examples
    --------
    >>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1")
    >>> dataset_offset(meta + b"rest") == len(meta), dataset_offset(b"rest")
    (True, 0)
    """
    view = memoryview(data)
    if len(view) < 144 or bytes(view[128:132]) != b"DICM":
        return 0
    tag, vr = struct.unpack("<I2s", view[132:138])
    if tag != 0x00000002 or vr != b"UL":  # group 2, element 0 read as one little-endian word
        raise NotDicomError(
            "the File Meta Information has no group length",
            hint="the sender must send a DICOM Part 10 file",
        )
    length: int = struct.unpack("<I", view[140:144])[0]
    end = 144 + length
    if end > len(view):
        raise NotDicomError(
            "the File Meta Information is longer than the file",
            hint="the sender sent a truncated file",
        )
    return end


def _unparsable(exc: Exception) -> NotDicomError:
    return NotDicomError(
        f"the received data set cannot be parsed ({type(exc).__name__})",
        hint="the sender sent a malformed data set",
    )


def read_uids(data: bytes | BinaryIO) -> tuple[str, str, str, str]:
    """Return (study, series, SOP instance, SOP class) UIDs of an encoded instance.

    ``data`` is a DICOM file (with file meta) or a dataset in Explicit VR Little
    Endian, as bytes or an open binary file; only the header elements are parsed.

    Raises
    ------
    NotDicomError
        The bytes cannot be parsed as a data set.
    """
    try:
        from pydicom import dcmread

        ds = dcmread(
            io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data,
            force=True,
            stop_before_pixels=True,
            specific_tags=[
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "SOPClassUID",
            ],
        )
    except Exception as exc:  # pydicom raises many kinds for hostile bytes
        raise _unparsable(exc) from exc
    return tuple(  # type: ignore[return-value]
        str(ds.get(k, "") or "").strip()
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
    )


_UID_TAGS = (0x00080016, 0x00080018, 0x0020000D, 0x0020000E)  # class, instance, study, series
_IMPLEMENTATION_VERSION = b"RADBRIDGE"  # SH, even length


def _element(tag: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    if vr == b"OB":
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def file_meta_bytes(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae: str = ""
) -> bytes:
    r"""Return the preamble, ``DICM`` prefix and File Meta Information (PS3.10 7.1).

    Prepended to a data set exactly as it was received, this makes a DICOM
    file without decoding or re-encoding the data set.

    Examples
    --------
    >>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1")
    >>> from pydicom import dcmread
    >>> ds = dcmread(io.BytesIO(meta + b"\x08\x00\x18\x00UI\x06\x001.2.3\x00"))
    >>> str(ds.file_meta.TransferSyntaxUID), str(ds.SOPInstanceUID)
    ('1.2.840.10008.1.2.1', '1.2.3')
    """
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID  # pydicom is imported lazily

    body = b"".join(
        (
            _element(0x00020001, b"OB", b"\x00\x01", b"\x00"),
            _element(0x00020002, b"UI", sop_class_uid.encode(), b"\x00"),
            _element(0x00020003, b"UI", sop_instance_uid.encode(), b"\x00"),
            _element(0x00020010, b"UI", transfer_syntax_uid.encode(), b"\x00"),
            _element(0x00020012, b"UI", PYDICOM_IMPLEMENTATION_UID.encode(), b"\x00"),
            _element(0x00020013, b"SH", _IMPLEMENTATION_VERSION, b" "),
            _element(0x00020016, b"AE", source_ae.strip().encode(), b" ") if source_ae else b"",
        )
    )
    group_length = _element(0x00020000, b"UL", struct.pack("<I", len(body)), b"")
    return b"\x00" * 128 + b"DICM" + group_length + body


def read_dataset_uids(
    data: bytes, transfer_syntax_uid: str, *, last_tag: int = 0x0020000E
) -> tuple[str, str, str, str]:
    """Return (study, series, SOP instance, SOP class) UIDs of an encoded data set.

    ``data`` is the data set alone (no file meta), encoded in
    ``transfer_syntax_uid``. Parsing stops after Series Instance UID (or after
    ``last_tag``: ``0x00080018`` reads only the SOP Class and Instance UIDs).

    Raises
    ------
    NotDicomError
        The bytes cannot be parsed as a data set.
    """
    scanned = scan_uids(bytes(data), transfer_syntax_uid, last_tag=last_tag)
    if scanned is not None:
        return scanned
    from pydicom.filereader import read_dataset  # big endian, deflated or damaged
    from pydicom.uid import UID

    syntax = UID(transfer_syntax_uid)
    try:
        if syntax == "1.2.840.10008.1.2.1.99":  # deflated: inflate the start only
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, 1 << 20)
        ds = read_dataset(
            io.BytesIO(data),
            syntax.is_implicit_VR,
            syntax.is_little_endian,
            stop_when=lambda tag, vr, length: tag > last_tag,
            specific_tags=list(_UID_TAGS),
        )
        values = [str(ds.get(tag).value if tag in ds else "").strip("\x00 ") for tag in _UID_TAGS]
    except Exception as exc:  # pydicom raises many kinds for hostile bytes
        raise _unparsable(exc) from exc
    sop_class, sop, study, series = values
    return study, series, sop, sop_class


#: File Meta Information elements read by :func:`header_uids` (group 0002).
_META_TAGS = {0x00020002: 0, 0x00020003: 1, 0x00020010: 2}
#: Bytes read from each file to find its UIDs (the meta and the start of the data set).
_HEAD = 16_384


def _meta(head: bytes) -> tuple[list[str | None], int] | None:
    """Return the meta's (SOP class, SOP instance, transfer syntax) and the data set's offset."""
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
        return None
    end = 144 + int.from_bytes(head[140:144], "little")
    if end > len(head):
        return None
    found: list[str | None] = [None, None, None]
    offset = 144
    while offset + 8 <= end:
        group, element = struct.unpack_from("<HH", head, offset)
        vr = head[offset + 4 : offset + 6]
        if vr in _LONG_VRS:
            length, offset = int.from_bytes(head[offset + 8 : offset + 12], "little"), offset + 12
        else:
            length, offset = int.from_bytes(head[offset + 6 : offset + 8], "little"), offset + 8
        index = _META_TAGS.get(group << 16 | element)
        if index is not None:
            found[index] = head[offset : offset + length].decode("ascii", "replace").strip("\0 ")
        offset += length
    return found, end


def header_uids(path: Path) -> tuple[str, str, str] | None:
    """(SOP class, SOP instance, transfer syntax) from the first 16 KB of a Part 10 file.

    The SOP Class and Instance UIDs come from the data set (as a C-STORE sends them;
    the meta may disagree), the transfer syntax from the meta; no pydicom. ``None``
    when that is not found in the head (the caller then parses the file).
    """
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    meta = _meta(head)
    if meta is None or not meta[0][2]:
        return None
    (meta_class, meta_instance, syntax), start = meta
    uids = scan_uids(head[start:], str(syntax), last_tag=0x00080018)
    if uids is None:
        return None
    sop_class, sop_instance = uids[3] or meta_class, uids[2] or meta_instance
    if not sop_class or not sop_instance:
        return None
    return sop_class, sop_instance, str(syntax)


def meta_transfer_syntax(head: bytes) -> str:
    """Return the Transfer Syntax UID in the File Meta Information at the head of a file.

    ``head`` is the file's first bytes (at least its whole meta); ``""`` when
    they hold no readable meta or no Transfer Syntax UID.

    Examples
    --------
    >>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "5.6", "1.2.840.10008.1.2.4.70")
    >>> meta_transfer_syntax(meta)
    '1.2.840.10008.1.2.4.70'
    """
    meta = _meta(head)
    return (meta[0][2] or "") if meta is not None else ""


def same_dataset(first: Path, second: Path) -> bool:
    """Tell whether two Part 10 files hold equal data sets (File Meta Information ignored).

    Used when a SOP Instance UID comes back with other bytes: the same data set
    sent in another transfer syntax is the same content, not a new one.
    False when either file cannot be read.
    """
    from pydicom import dcmread

    try:
        return bool(dcmread(first) == dcmread(second))
    except Exception:  # unreadable: not known to be the same
        return False


_PIXEL_DATA = 0x7FE00010
_PLAIN_LE = (IMPLICIT_LE, "1.2.840.10008.1.2.1")


def save_part10(ds: Dataset, path: str | os.PathLike[str]) -> None:
    """Save ``ds`` as a Part 10 file, as ``ds.save_as(path, enforce_file_format=True)`` does.

    The same bytes, written faster for large native Pixel Data (a 90 MB BINARY
    SEG: ~0.07 s instead of ~0.13 s): pydicom writes every element into a buffer
    before the file, so the pixel data would be copied twice on its way; here
    the elements before it are written by pydicom and its value goes to the file
    as it is. Anything else (compressed pixel data, elements after it, big
    endian, deflate) is saved by pydicom.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from pydicom import examples
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ct.dcm"
    >>> save_part10(examples.ct, path)
    >>> from pydicom import dcmread
    >>> dcmread(path).pixel_array.shape
    (128, 128)
    """
    from pydicom.dataset import Dataset as PydicomDataset

    element = ds.get(_PIXEL_DATA)  # the DataElement (by tag), or None
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    last = max(ds.keys(), default=0)
    if (
        element is None
        or last != _PIXEL_DATA
        or syntax not in _PLAIN_LE
        or element.VR not in ("OB", "OW")
        or element.is_undefined_length
        or not isinstance(element.value, bytes | bytearray | memoryview)
    ):
        ds.save_as(path, enforce_file_format=True)
        return
    head = PydicomDataset()
    for tag in ds.keys():  # noqa: SIM118 (a Dataset iterates its elements, not tags)
        if tag != _PIXEL_DATA:
            head[tag] = ds.get_item(tag)
    head.file_meta, head.preamble = ds.file_meta, ds.preamble
    implicit, little = ds.original_encoding  # raw sequences are written as they are only
    head.set_original_encoding(implicit, little, ds.original_character_set)  # when declared
    value = element.value
    length = len(value) + len(value) % 2
    if syntax == IMPLICIT_LE:
        header = struct.pack("<HHI", 0x7FE0, 0x0010, length)
    else:
        header = struct.pack("<HH2s2xI", 0x7FE0, 0x0010, element.VR.encode(), length)
    with open(path, "wb") as handle:
        head.save_as(handle, enforce_file_format=True)
        handle.write(header)
        handle.write(value)
        handle.write(b"\x00" * (length - len(value)))
