r"""Per-frame functional groups as bulk data, not thousands of pydicom objects.

A SEG of 3,000 frames holds ~24,000 nested items in its Per-Frame Functional
Groups Sequence. Building and serialising them as :class:`pydicom.Dataset`
objects dominates the time of other toolkits, so radbridge:

- **writes** them by splicing pre-encoded Explicit VR Little Endian bytes per
  frame (:class:`ItemEncoder`) and stores the result as a raw element, which
  pydicom writes unchanged (the data set's original encoding is set to match);
- **reads** them with a small parser over the raw bytes (:func:`parse_items`),
  extracting only the values a reader needs, in any of the three uncompressed
  encodings (implicit/explicit VR, little/big endian).

Accessing ``ds.PerFrameFunctionalGroupsSequence`` still works everywhere:
pydicom parses the raw element on first access.

Examples
--------
>>> enc = ItemEncoder()
>>> item = enc.item(enc.element(0x00200032, "DS", enc.ds((1.5, -2.0, 3.25))))
>>> items = parse_items(item, little_endian=True, implicit_vr=False)
>>> items[0][0x00200032]
b'1.5\\-2\\3.25 '
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag

from radbridge.errors import DecodingError

__all__ = [
    "LONG_VRS",
    "ItemEncoder",
    "ParsedItem",
    "damaged_groups",
    "encode_dataset",
    "format_ds",
    "is_sequence_tag",
    "parse_items",
    "raw_sequence",
]


def damaged_groups(message: str, source: str | None) -> DecodingError:
    """Return the error for damaged functional groups (one wording for every reader).

    Examples
    --------
    >>> str(damaged_groups("3 per-frame items for 4 frames", "seg.dcm"))[:52]
    'seg.dcm: 3 per-frame items for 4 frames [PerFrameFun'
    """
    return DecodingError(
        message,
        path=source,
        attribute="PerFrameFunctionalGroupsSequence",
        hint="the file is damaged or truncated",
    )


#: A parsed item: tag → raw value bytes, or a list of nested items for sequences.
ParsedItem = dict[int, "bytes | list[ParsedItem]"]

#: VRs whose explicit-VR header has a 4-byte length (after two reserved bytes).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF


class ItemEncoder:
    """Encode elements and items as Explicit VR Little Endian bytes.

    All lengths are explicit (no undefined-length items), so items can be
    concatenated freely.
    """

    @staticmethod
    def element(tag: int, vr: str, value: bytes) -> bytes:
        """Encode one element whose value is already encoded (and of even length)."""
        group, elem = tag >> 16, tag & 0xFFFF
        if vr in LONG_VRS:
            return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
        return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value

    @staticmethod
    def item(content: bytes) -> bytes:
        """Wrap encoded elements into a sequence item of explicit length."""
        return struct.pack("<HHI", 0xFFFE, 0xE000, len(content)) + content

    @classmethod
    def sequence(cls, tag: int, items: Iterable[bytes]) -> bytes:
        """Encode a sequence element of explicit length from encoded items."""
        return cls.element(tag, "SQ", b"".join(items))

    @staticmethod
    def text(value: str, *, pad: bytes = b" ") -> bytes:
        """Encode a string value, padded to even length (UIDs pad with NUL)."""
        data = value.encode("ascii")
        return data + pad if len(data) % 2 else data

    @classmethod
    def uid(cls, value: str) -> bytes:
        """Encode a UI value."""
        return cls.text(value, pad=b"\x00")

    @classmethod
    def ds(cls, values: Iterable[float]) -> bytes:
        """Encode a multi-valued DS, each value in at most 16 characters."""
        return cls.text("\\".join(format_ds(v) for v in values))

    @staticmethod
    def us(*values: int) -> bytes:
        """Encode unsigned shorts."""
        return struct.pack(f"<{len(values)}H", *values)

    @staticmethod
    def ul(*values: int) -> bytes:
        """Encode unsigned longs."""
        return struct.pack(f"<{len(values)}I", *values)


def format_ds(value: float) -> str:
    """Format a decimal string of at most 16 characters with the most precision.

    Examples
    --------
    >>> format_ds(2.0), format_ds(1 / 3), format_ds(-1.0e-20)
    ('2', '0.33333333333333', '-1e-20')
    """
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    for digits in range(16, 0, -1):
        text = f"{value:.{digits}g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot format {value} as DS")  # pragma: no cover - unreachable


def encode_dataset(ds: Dataset) -> bytes:
    """Encode a (small) data set's elements as Explicit VR Little Endian bytes."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def raw_sequence(tag: int, encoded_items: bytes) -> RawDataElement:
    """Return a raw Explicit VR Little Endian SQ element for pydicom to write as-is.

    The data set it goes into must have its original encoding set to explicit VR
    little endian (``ds.set_original_encoding(False, True, ...)``), or pydicom will
    re-encode it (correctly, but slowly).
    """
    return RawDataElement(Tag(tag), "SQ", len(encoded_items), encoded_items, 0, False, True)


def parse_items(
    data: bytes | memoryview,
    *,
    little_endian: bool,
    implicit_vr: bool,
    source: str | None = None,
    descend: Collection[int] | None = None,
) -> list[ParsedItem]:
    """Parse the value of a sequence element into nested dictionaries.

    Parameters
    ----------
    data
        The sequence's value bytes (items, possibly of undefined length).
    little_endian, implicit_vr
        The encoding of the data set it comes from.
    source
        File name for error messages.
    descend
        The nested sequences to parse (by tag); ``None`` parses all. Any other
        sequence of defined length is kept as its raw value bytes, unread (a SEG
        reader needs 4 of the 7 sequences of each frame's groups); one of
        undefined length is parsed all the same (its end is found only so).

    Returns
    -------
    list of ParsedItem
        One dictionary per item; sequence values are lists of items (raw bytes
        when not descended into), other values raw bytes in the file's byte order.

    Raises
    ------
    DecodingError
        The bytes are not a well-formed sequence.
    """
    parser = _Parser(bytes(data), little_endian, implicit_vr, source, descend)
    items, end = parser.items(0, len(parser.data))
    if end != len(parser.data):
        parser.fail(end, "trailing bytes after the last item")
    return items


class _Parser:
    def __init__(
        self,
        data: bytes,
        little: bool,
        implicit: bool,
        source: str | None,
        descend: Collection[int] | None = None,
    ) -> None:
        self.data = data
        self.implicit = implicit
        self.prefix = "<" if little else ">"
        self.source = source
        self._tag = struct.Struct(self.prefix + "HH")
        self._u32 = struct.Struct(self.prefix + "I")
        self._u16 = struct.Struct(self.prefix + "H")
        self.descend = None if descend is None else frozenset(descend)

    def fail(self, offset: int, what: str) -> None:
        raise damaged_groups(
            f"malformed functional groups sequence at byte {offset}: {what}", self.source
        )

    def header(self, offset: int) -> tuple[int, int]:
        if offset + 8 > len(self.data):
            self.fail(offset, "unexpected end of data")
        group, elem = self._tag.unpack_from(self.data, offset)
        return (group << 16) | elem, self._u32.unpack_from(self.data, offset + 4)[0]

    def items(self, offset: int, end: int) -> tuple[list[ParsedItem], int]:
        items: list[ParsedItem] = []
        while offset < end:
            tag, length = self.header(offset)
            offset += 8
            if tag == _SEQ_END:
                return items, offset
            if tag != _ITEM:
                self.fail(offset - 8, f"expected an item tag, found {tag:08X}")
            if length == _UNDEFINED:
                item, offset = self.elements(offset, len(self.data), until_delimiter=True)
            else:
                if offset + length > end:
                    self.fail(offset, "item runs past the end of its sequence")
                item, _ = self.elements(offset, offset + length, until_delimiter=False)
                offset += length
            items.append(item)
        return items, offset

    def elements(self, offset: int, end: int, *, until_delimiter: bool) -> tuple[ParsedItem, int]:
        out: ParsedItem = {}
        data = self.data
        while offset < end:
            if offset + 8 > len(data):
                self.fail(offset, "unexpected end of data")
            group, elem = self._tag.unpack_from(data, offset)
            tag = (group << 16) | elem
            if tag == _ITEM_END:
                return out, offset + 8
            if self.implicit:
                vr = ""
                length = self._u32.unpack_from(data, offset + 4)[0]
                offset += 8
            else:
                vr = data[offset + 4 : offset + 6].decode("latin-1")
                if vr in LONG_VRS:
                    if offset + 12 > len(data):
                        self.fail(offset, "unexpected end of data")
                    length = self._u32.unpack_from(data, offset + 8)[0]
                    offset += 12
                else:
                    length = self._u16.unpack_from(data, offset + 6)[0]
                    offset += 8
            is_sequence = vr == "SQ" or (
                vr in ("", "UN") and (length == _UNDEFINED or is_sequence_tag(tag))
            )
            if is_sequence and length != _UNDEFINED and not self._descends(tag):
                if offset + length > len(data):
                    self.fail(offset, f"element {tag:08X} has an impossible length")
                out[tag] = data[offset : offset + length]  # kept raw, unread
                offset += length
            elif is_sequence:
                if length == _UNDEFINED:
                    value, offset = self.items(offset, len(data))
                else:
                    value, stop = self.items(offset, offset + length)
                    offset = offset + length
                    if stop > offset:
                        self.fail(offset, "sequence runs past its length")
                out[tag] = value
            else:
                if length == _UNDEFINED or offset + length > len(data):
                    self.fail(offset, f"element {tag:08X} has an impossible length")
                out[tag] = data[offset : offset + length]
                offset += length
        if until_delimiter:
            self.fail(offset, "item without an item delimiter")
        return out, offset

    def _descends(self, tag: int) -> bool:
        return self.descend is None or tag in self.descend


def is_sequence_tag(tag: int) -> bool:
    """Whether the data dictionary knows ``tag`` as a sequence (SQ)."""
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False
