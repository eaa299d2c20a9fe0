"""Read multi-frame objects without letting pydicom parse huge sequences up front.

pydicom parses every sequence of *undefined* length while reading (DCMTK, and so
dcmqi and 3D Slicer, write them that way); for a 3,000-frame SEG that is tens of
thousands of nested data sets. :func:`read_with_raw_sequences` walks the file's
top-level elements itself, cuts the named sequences out, lets pydicom read the
rest, and puts the sequences back as raw elements: pydicom parses them only when
accessed, and radbridge's readers extract what they need from the raw bytes.

Examples
--------
>>> import io
>>> from pydicom import examples
>>> buffer = io.BytesIO()
>>> examples.ct.save_as(buffer)
>>> ds = read_with_raw_sequences(buffer.getvalue(), tags=(0x52009230,))
>>> ds.SOPInstanceUID == examples.ct.SOPInstanceUID
True
"""

from __future__ import annotations

import functools
import io
import mmap
import os
import struct
import zlib
from collections.abc import Iterable
from typing import SupportsIndex

from pydicom import config, dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from radbridge.attributes import damaged, first_item, floats_value
from radbridge.errors import DecodingError, NotDicomError
from radbridge.iods.multiframe.functional_groups import (
    LONG_VRS,
    damaged_groups,
    is_sequence_tag,
)
from radbridge.readahead import read_bytes

__all__ = [
    "DicomFile",
    "ViewElement",
    "check_elements",
    "inflated_value_complete",
    "map_file",
    "meta_end",
    "open_dataset",
    "open_large",
    "open_mapped",
    "open_read",
    "plane_attributes",
    "read_with_raw_sequences",
]

#: What every reader opens: a path, the encoded bytes, or a pydicom data set.
DicomFile = str | os.PathLike[str] | bytes | bytearray | Dataset

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
_UNDEFINED = 0xFFFFFFFF
_SEQ_END = 0xFFFEE0DD
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D


def open_dataset(
    source: DicomFile,
    *,
    raw_tags: Iterable[int],
    unchecked: Iterable[int] = (),
) -> tuple[Dataset, str | None]:
    """Open a path, encoded bytes or a data set, keeping ``raw_tags`` sequences raw.

    Returns the data set and its name for messages (the path, ``"<bytes>"``, or a
    data set's ``filename``). Every element except ``raw_tags``, ``unchecked`` and
    the pixel data is decoded and checked now (:func:`check_elements`), so damage
    is reported here, naming the attribute, not as a crash later.

    Raises
    ------
    NotDicomError
        The file cannot be opened or is not DICOM.
    DecodingError
        It is damaged (truncated, inconsistent lengths, ...).
    InvalidAttributeError
        An element cannot be decoded, or holds a value of the wrong kind.
    """
    skip = {*raw_tags, *unchecked}
    if isinstance(source, Dataset):
        name = getattr(source, "filename", None) or None
        check_elements(source, name=name, skip=skip)
        return source, name
    if isinstance(source, bytes | bytearray):
        name, data = "<bytes>", bytes(source)
    else:
        name = os.fspath(source)
        data = _read_file(source)
    return _parse_checked(data, name, raw_tags, skip), name


def _read_file(path: str | os.PathLike[str]) -> bytes:
    """Read a file (or take the bytes a :class:`~radbridge.readahead.ReadAhead` read)."""
    try:
        return read_bytes(path)
    except OSError as exc:
        raise NotDicomError(f"cannot be opened ({exc})", path=os.fspath(path)) from exc


def _parse_checked(data: bytes, name: str, raw_tags: Iterable[int], skip: set[int]) -> Dataset:
    """Read ``data`` keeping ``raw_tags`` raw and check its elements; errors name ``name``."""
    try:
        ds = read_with_raw_sequences(data, tags=raw_tags)
    except InvalidDicomError as exc:
        raise NotDicomError("not a DICOM file", path=name) from exc
    except Exception as exc:  # damaged files raise many types
        raise DecodingError(
            f"cannot be read ({type(exc).__name__}: {exc})",
            path=name,
            hint="the file may be truncated or damaged",
        ) from exc
    check_elements(ds, name=name, skip=skip)
    return ds


#: Pixel data elements: never decoded by the check (the pixel readers check them).
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_NUMERIC_VRS = frozenset({"US", "UL", "SS", "SL", "FL", "FD", "IS", "DS", "SV", "UV"})


def check_elements(
    ds: Dataset, *, name: str | os.PathLike[str] | None, skip: Iterable[int] = ()
) -> None:
    """Decode every element of ``ds`` (nested ones too) and check the kind of its value.

    Damaged files hold elements pydicom cannot convert (a wrong length, an unknown
    VR) or values of the wrong kind for the attribute (a sequence stored as a
    number, a number as a name). Readers call this once after opening, so such
    damage is an error that names the attribute instead of a crash in whichever
    code touches it first. ``skip`` tags (at any depth) and the pixel data are left
    alone (their readers check them).

    Raises
    ------
    InvalidAttributeError
        An element cannot be decoded, or its value is not of the attribute's kind.
    """
    skipped = frozenset(skip) | _PIXEL_TAGS
    known = (
        skipped,  # a sequence passes with its skipped tags unchecked
        config.settings.reading_validation_mode,
        config.convert_wrong_length_to_UN,
        config.replace_un_with_known_vr,
        config.use_DS_numpy,  # "nan" is a DSfloat but no NumPy number
        config.use_IS_numpy,
        "",  # the Specific Character Set in force: the default until a data set has one
    )
    _check_dataset(ds, name, skipped, _with_charset(ds, known))


def _with_charset(ds: Dataset, known: tuple[object, ...]) -> tuple[object, ...]:
    """``known`` for the elements of ``ds``: with its Specific Character Set, if it has one.

    A sequence item without one decodes its text as its parent does.
    """
    if _CHARSET not in ds:
        return known
    value = ds.get_item(_CHARSET, keep_deferred=True).value  # raw bytes, or decoded
    return (*known[:-1], value if isinstance(value, bytes) else str(value))


#: Specific Character Set: how the text of a data set is decoded.
_CHARSET = 0x00080005
#: Raw elements that decoded and passed the checks before (tag, VR, byte order, value,
#: the tags skipped, pydicom's reading options, the Specific Character Set in force),
#: at any depth: a series' headers repeat most of their elements byte for byte, and so
#: do the items of a SEG's 100 segment descriptions (1,917 nested values, 428 distinct);
#: the same bytes decode the same way (200 CT headers: ~0.09 -> ~0.03 s). Only
#: successes are kept: damage is found, and named, in every file that holds it.
_PASSED: dict[tuple[object, ...], None] = {}
_PASSED_LIMIT = 8192
#: Longer values are checked every time (the cache holds header-sized values only).
_PASSED_VALUE_LIMIT = 256


def _passed_key(
    ds: Dataset, tag: int, known: tuple[object, ...] | None
) -> tuple[object, ...] | None:
    """Return the cache key of a raw explicit-VR element, else ``None``."""
    if known is None:
        return None
    raw = ds.get_item(tag, keep_deferred=True)  # never converts (damage is for the check)
    if not isinstance(raw, RawDataElement) or raw.VR is None or raw.value is None:
        return None
    if len(raw.value) > _PASSED_VALUE_LIMIT:
        return None
    return (tag, raw.VR, raw.is_little_endian, bytes(raw.value), *known)


def _check_dataset(
    ds: Dataset, name: object, skip: frozenset[int], known: tuple[object, ...] | None = None
) -> None:
    for tag in list(ds.keys()):
        if tag in skip:
            continue
        key = _passed_key(ds, tag, known)
        if key is not None and key in _PASSED:
            continue
        _check_element(ds, tag, name, skip, known)
        if key is not None:
            if len(_PASSED) >= _PASSED_LIMIT:
                _PASSED.clear()
            _PASSED[key] = None


def _check_element(
    ds: Dataset,
    tag: int,
    name: object,
    skip: frozenset[int],
    known: tuple[object, ...] | None = None,
) -> None:
    """Decode one element and check its kind; sequences item by item."""
    try:
        element = ds[tag]
    except Exception as exc:  # pydicom raises many kinds on damaged values
        detail = f"cannot be decoded ({type(exc).__name__}: {exc})"
        raise damaged(name, _label(tag), detail) from exc
    vr, expected = element.VR, _standard_vr(tag)
    if (expected == "SQ") != (vr == "SQ") and expected and vr != "UN":
        raise damaged(name, _label(tag), f"has VR {vr} where the standard has {expected}")
    if vr == "SQ":
        try:
            items = list(element.value)
        except Exception as exc:  # an item that cannot be parsed
            detail = f"items cannot be read ({type(exc).__name__})"
            raise damaged(name, _label(tag), detail) from exc
        for item in items:
            _check_dataset(item, name, skip, None if known is None else _with_charset(item, known))
    elif expected in _NUMERIC_VRS and _wrong_vr(vr, expected, element.value):
        detail = f"should hold numbers (VR {expected}), not {vr}"
        raise damaged(name, _label(tag), detail)


def _label(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@functools.lru_cache(maxsize=4096)  # bounded: damaged files can hold any tags
def _standard_vr(tag: int) -> str:
    """Return the VR the data dictionary gives ``tag`` ("" for private or unknown tags)."""
    from pydicom.datadict import dictionary_VR

    if (tag >> 16) % 2:  # a private group
        return ""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


def _wrong_vr(vr: str, expected: str, value: object) -> bool:
    """Whether a wrong VR (damage, a faulty writer) made text of a number.

    A bad value under the attribute's own VR is left to the reader that needs it
    (``int_value``, ...), so an unused attribute never makes a file unreadable.
    """
    return vr != expected and not _numbers(value)


def _numbers(value: object) -> bool:
    from pydicom.multival import MultiValue

    values: Iterable[object] = value if isinstance(value, list | tuple | MultiValue) else [value]
    return all(v is None or v == "" or isinstance(v, int | float) for v in values)


def plane_attributes(
    ds: Dataset, source: object = None
) -> tuple[list[float] | None, list[float] | None, float | None]:
    """Return Image Orientation, Pixel Spacing and the declared slice step of a multi-frame.

    Each comes from the shared functional groups, else from the first frame's;
    the step is Spacing Between Slices, else Slice Thickness (``None`` when neither
    is positive). Absent values are ``None``.

    Raises
    ------
    InvalidAttributeError
        A value is damaged (wrong count, not numbers).
    DecodingError
        The per-frame functional groups cannot be parsed.
    """
    shared = first_item(ds, "SharedFunctionalGroupsSequence") or Dataset()
    groups = [shared]
    if "PlaneOrientationSequence" not in shared or "PixelMeasuresSequence" not in shared:
        try:  # pydicom parses a raw per-frame sequence here
            frame = first_item(ds, "PerFrameFunctionalGroupsSequence")
        except Exception as exc:  # damaged items raise many kinds
            message = f"the per-frame functional groups cannot be read ({type(exc).__name__})"
            raise damaged_groups(message, str(source) if source else None) from exc
        groups += [frame] if frame is not None else []
    orientation = spacing = None
    declared: float | None = None
    for group in groups:
        plane = first_item(group, "PlaneOrientationSequence")
        if orientation is None and plane is not None:
            orientation = floats_value(plane, "ImageOrientationPatient", 6, source=source)
        measures = first_item(group, "PixelMeasuresSequence")
        if spacing is None and measures is not None:
            spacing = floats_value(measures, "PixelSpacing", 2, source=source)
            keyword = (
                "SpacingBetweenSlices" if measures.get("SpacingBetweenSlices") else "SliceThickness"
            )
            step = floats_value(measures, keyword, 1, source=source)
            declared = step[0] if step and step[0] > 0 else None
    return orientation, spacing, declared


def read_with_raw_sequences(data: bytes, *, tags: Iterable[int]) -> Dataset:
    """Read a DICOM file's bytes, keeping the top-level sequences ``tags`` raw.

    Only sequences of undefined length are cut out (pydicom keeps defined-length
    ones raw by itself). Falls back to a plain :func:`pydicom.dcmread` when the file's layout is not
    one this walker understands (it never loses data: the fallback reads all).
    """
    wanted = set(tags)
    try:
        split = _split(data, wanted)
    except (ValueError, struct.error, IndexError, zlib.error):
        split = None
    if split is None:
        return dcmread(io.BytesIO(data))
    head, body, cut, little, implicit = split
    ds = dcmread(io.BytesIO(head + body))
    for tag, value in cut.items():
        ds[tag] = RawDataElement(Tag(tag), "SQ", len(value), value, 0, implicit, little)
    return ds


def _split(
    data: bytes, wanted: set[int]
) -> tuple[bytes, bytes, dict[int, bytes], bool, bool] | None:
    """Return (preamble + meta, dataset without the cut sequences, cut values, LE, implicit)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    offset, syntax = meta_end(data)
    if syntax in _DEFLATED[:1]:
        return None  # whole-file deflate: pydicom inflates; the gain is not worth a second inflate
    little = syntax != _EXPLICIT_BE
    implicit = syntax == _IMPLICIT_LE
    walker = _Walker(data, little, implicit)
    kept: list[bytes] = []
    cut: dict[int, bytes] = {}
    position = offset
    while position < len(data):
        tag, value_start, value_end, element_end, undefined = walker.element(position)
        if tag in wanted and undefined:
            cut[tag] = data[value_start:value_end]
        else:
            kept.append(data[position:element_end])
        position = element_end
    if not cut:
        return None  # nothing pydicom would parse eagerly: let it read the file as is
    return data[:offset], b"".join(kept), cut, little, implicit


def meta_end(data: bytes) -> tuple[int, str]:
    """Offset of the first element after the file meta group, and the transfer syntax."""
    position = 132
    syntax = ""
    while position + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, position)
        if group != 2:
            break
        vr = data[position + 4 : position + 6].decode("latin-1")
        if vr in LONG_VRS:
            length = struct.unpack_from("<I", data, position + 8)[0]
            start = position + 12
        else:
            length = struct.unpack_from("<H", data, position + 6)[0]
            start = position + 8
        if element == 0x0010:
            syntax = data[start : start + length].decode("latin-1").strip(" \x00")
        position = start + length
    return position, syntax


def inflated_value_complete(ds: Dataset, raw: RawDataElement) -> bool | None:
    """Whether a whole-file deflated data set holds all of ``raw``'s value.

    pydicom inflates a Deflated Explicit VR Little Endian data set (PS3.5 A.5) in
    memory before parsing it, and zlib refuses a cut stream there; ``value_tell``
    then counts bytes of the inflated stream, so comparing it with the size of the
    compressed file refuses every complete file. This compares the bytes pydicom
    read for the value with its declared length instead.

    Parameters
    ----------
    ds
        The data set as pydicom read it, with its file meta information.
    raw
        Its last element, not yet converted.

    Returns
    -------
    bool or None
        None when the data set is not deflated so (its offsets count the file's
        bytes); True when the value is whole, or has an undefined length (pydicom
        keeps such an element only when it found its delimiter).
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None or meta.get("TransferSyntaxUID") not in _DEFLATED[:1]:
        return None
    if raw.length == _UNDEFINED or raw.value is None:
        return True
    return len(raw.value) >= raw.length


class _Walker:
    def __init__(self, data: bytes, little: bool, implicit: bool) -> None:
        self.data = data
        self.implicit = implicit
        prefix = "<" if little else ">"
        self.tag = struct.Struct(prefix + "HH")
        self.u32 = struct.Struct(prefix + "I")
        self.u16 = struct.Struct(prefix + "H")

    def element(self, position: int) -> tuple[int, int, int, int, bool]:
        """Return (tag, value start, value end, element end, undefined length)."""
        data = self.data
        group, elem = self.tag.unpack_from(data, position)
        tag = (group << 16) | elem
        if self.implicit:
            vr = ""
            length = self.u32.unpack_from(data, position + 4)[0]
            start = position + 8
        else:
            vr = data[position + 4 : position + 6].decode("latin-1")
            if vr in LONG_VRS:
                length = self.u32.unpack_from(data, position + 8)[0]
                start = position + 12
            else:
                length = self.u16.unpack_from(data, position + 6)[0]
                start = position + 8
        if length != _UNDEFINED:
            end = start + length
            if end > len(data):
                raise ValueError("element runs past the end of the file")
            return tag, start, end, end, False
        if vr in ("SQ", "UN") or (self.implicit and is_sequence_tag(tag)) or tag == 0x7FE00010:
            end = self._skip_items(start)
            return tag, start, end - 8, end, True
        raise ValueError(f"undefined length on element {tag:08X}")

    def _skip_items(self, position: int) -> int:
        """Skip items up to and including the sequence delimiter; return the end offset."""
        data = self.data
        while True:
            group, elem = self.tag.unpack_from(data, position)
            tag = (group << 16) | elem
            length = self.u32.unpack_from(data, position + 4)[0]
            position += 8
            if tag == _SEQ_END:
                return position
            if tag != _ITEM:
                raise ValueError(f"expected an item, found {tag:08X}")
            if length != _UNDEFINED:
                position += length
                continue
            while True:  # an item of undefined length: walk its elements
                group, elem = self.tag.unpack_from(data, position)
                if ((group << 16) | elem) == _ITEM_END:
                    position += 8
                    break
                position = self.element(position)[3]


#: Pixel data elements by tag, with the VR they take when the file's VR is implicit.
_PIXEL_VRS = {0x7FE00010: "OB", 0x7FE00008: "OF", 0x7FE00009: "OD"}


def map_file(path: str | os.PathLike[str]) -> tuple[str, mmap.mmap]:
    """Map a DICOM file read-only; return its name (for messages) and the mapping.

    Raises
    ------
    NotDicomError
        The file cannot be opened or mapped (e.g. it is empty), or has no DICM prefix.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise NotDicomError(f"cannot be opened ({exc})", path=name) from exc
    if len(mapped) < 132 or mapped[128:132] != b"DICM":
        raise NotDicomError("not a DICOM file (no DICM prefix)", path=name)
    return name, mapped


def open_mapped(path: str | os.PathLike[str], *, raw_tags: Iterable[int] = ()) -> Dataset:
    """Open a (large) file with its pixel data memory-mapped, not read.

    The header is read and checked as :func:`open_dataset` does (``raw_tags``
    sequences kept raw); the pixel data element's value is a :class:`memoryview`
    of the mapped file, so a frame reader touches only the frames it decodes and
    memory stays bounded however large the file. Whole-file deflated files
    (which cannot be mapped) are read into memory.

    Raises
    ------
    NotDicomError
        The file cannot be opened or is not DICOM.
    DecodingError
        It is damaged.
    """
    name, mapped = map_file(path)
    return _pixels_apart(name, mapped, raw_tags, whole=False)


def open_read(path: str | os.PathLike[str], *, raw_tags: Iterable[int] = ()) -> Dataset:
    """Open a file read into memory once, its pixel data a view of those bytes.

    As :func:`open_dataset` for a path (header read and checked, ``raw_tags``
    sequences kept raw), but the pixel data is not copied out of the file's bytes
    (a :class:`memoryview` of them; :func:`open_dataset` copies a 90 MB SEG three
    times). Unlike :func:`open_mapped`, the file may be overwritten while the data
    set is in use. Files with elements after the pixel data, big-endian and
    whole-file deflated ones are read by :func:`open_dataset`, and it raises what
    :func:`open_dataset` raises (each error names the file).
    """
    name = os.fspath(path)
    data = _read_file(path)  # a ReadAhead's bytes are taken, not read again
    if len(data) < 132 or data[128:132] != b"DICM":
        return _parse_checked(data, name, raw_tags, set(raw_tags))  # as open_dataset does
    return _pixels_apart(name, data, raw_tags, whole=True)


def open_large(file: DicomFile, *, raw_tags: Iterable[int] = ()) -> tuple[Dataset, str | None]:
    """Open an image object: a path by :func:`open_read`, anything else by :func:`open_dataset`.

    For readers of objects whose pixel data can be large (SEG, Parametric Map, legacy
    enhanced images): a file's pixel data is a view of the bytes read, not copied
    out. Returns the data set and its file name (``None`` when there is none).
    """
    if isinstance(file, str | os.PathLike):
        return open_read(file, raw_tags=raw_tags), os.fspath(file)
    return open_dataset(file, raw_tags=raw_tags)


def _pixels_apart(
    name: str, data: bytes | mmap.mmap, raw_tags: Iterable[int], *, whole: bool
) -> Dataset:
    """Parse the header of ``data``; its pixel data element a view of ``data``.

    ``whole``: fall back to :func:`open_dataset` when anything follows the pixel
    data (nothing is left out).
    """
    try:
        located = _locate_pixels(data)
    except (ValueError, struct.error, IndexError) as exc:
        raise DecodingError(
            f"cannot be read ({exc})", path=name, hint="the file may be truncated or damaged"
        ) from exc
    if located is None or (whole and located[4] != len(data)):  # deflated, no pixels, ...
        ds, _ = open_dataset(name, raw_tags=raw_tags)
        ds.filename = name
        return ds
    header_end, start, end, implicit, _, undefined = located
    ds = _parse_checked(bytes(data[:header_end]), name, raw_tags, set(raw_tags))
    tag = struct.unpack_from("<HH", data, header_end)
    number = (tag[0] << 16) | tag[1]
    vr = _PIXEL_VRS[number] if implicit else data[header_end + 4 : header_end + 6].decode()
    element = ViewElement(number, vr, memoryview(data)[start:end], validation_mode=config.IGNORE)
    element.is_undefined_length = undefined
    ds.add(element)
    ds.filename = name
    return ds


class ViewElement(DataElement):
    """A data element whose value is a :class:`memoryview` of a file's bytes or mapping.

    :func:`open_read` and :func:`open_mapped` give the pixel data so, without a
    copy. A memoryview cannot be pickled or deep-copied, so the data set it is in
    could not be either (a worker process, ``copy.deepcopy`` before editing): a
    copy or a pickle of this element is a plain :class:`~pydicom.dataelem.DataElement`
    holding the value as ``bytes``.

    Examples
    --------
    >>> import pickle
    >>> from pydicom import config
    >>> element = ViewElement(0x7FE00010, "OB", memoryview(b"ab"), validation_mode=config.IGNORE)
    >>> copied = pickle.loads(pickle.dumps(element))
    >>> type(copied).__name__, copied.value
    ('DataElement', b'ab')
    """

    def plain(self) -> DataElement:
        """Return an equal :class:`~pydicom.dataelem.DataElement` holding ``bytes``."""
        element = DataElement(self.tag, self.VR, bytes(self.value), validation_mode=config.IGNORE)
        element.is_undefined_length = self.is_undefined_length
        return element

    def __deepcopy__(self, memo: dict[int, object]) -> DataElement:
        copied = self.plain()
        memo[id(self)] = copied
        return copied

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[object, ...]:
        # unpickled as pydicom's own class: the plain element's attributes on an empty one
        plain = self.plain()
        return DataElement, (plain.tag, plain.VR, b""), dict(plain.__dict__)


def _locate_pixels(
    data: bytes | mmap.mmap,
) -> tuple[int, int, int, bool, int, bool] | None:
    """Locate the pixel data element of a file's bytes.

    Returns its offset, value start and end, whether the VR is implicit, the
    element's end and whether its length is undefined; None when the file has
    none or cannot be walked so (deflated, big endian).
    """
    offset, syntax = meta_end(data)  # type: ignore[arg-type]
    if syntax in _DEFLATED[:1] or syntax == _EXPLICIT_BE:
        return None
    implicit = syntax == _IMPLICIT_LE
    walker = _Walker(data, True, implicit)  # type: ignore[arg-type]
    position = offset
    while position < len(data):
        tag, value_start, value_end, element_end, undefined = walker.element(position)
        if tag in _PIXEL_VRS:
            return position, value_start, value_end, implicit, element_end, undefined
        position = element_end
    return None
