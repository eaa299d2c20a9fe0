"""Open a file whose large binary values stay in the mapped file (bulk data, any depth).

Objects such as Microscopy Bulk Simple Annotations keep millions of coordinates and
measurement values in OD/OF/OL elements inside sequences, where pydicom reads every
value into memory. :func:`open_bulk_mapped` maps the file, copies it without those
large values (every sequence and item rewritten with undefined length, so no
enclosing length changes), lets pydicom parse the small remainder, and puts each
large value back as a :class:`memoryview` of the mapped file: ``numpy.frombuffer``
then reads coordinates without copying, and memory stays bounded whatever the file's
size. Files it cannot walk this way (not Explicit VR Little Endian, unsorted
elements) are read by pydicom as they are.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from pydicom import Dataset, FileMetaDataset
>>> from pydicom.uid import ExplicitVRLittleEndian
>>> ds = Dataset()
>>> ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.91.1", "2.25.7"
>>> ds.file_meta = FileMetaDataset()
>>> ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
>>> item = Dataset()
>>> item.DoublePointCoordinatesData = np.arange(10_000, dtype="<f8").tobytes()
>>> ds.AnnotationGroupSequence = [item]
>>> path = tempfile.mktemp(suffix=".dcm")
>>> ds.save_as(path, enforce_file_format=True)
>>> read = open_bulk_mapped(path, threshold=1024)
>>> value = read.AnnotationGroupSequence[0].DoublePointCoordinatesData
>>> isinstance(value, memoryview), float(np.frombuffer(value, "<f8")[-1])
(True, 9999.0)
"""

from __future__ import annotations

import io
import mmap
import os
import struct
from collections.abc import Iterator

from pydicom import config, dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from radbridge.errors import DecodingError, RadbridgeError
from radbridge.iods.multiframe.fast_read import check_elements, map_file, meta_end

__all__ = ["BULK_VRS", "open_bulk_mapped"]

#: Value representations whose large values stay in the mapped file.
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW"})
_LONG = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_HEAD = struct.Struct("<HH2sH")
_U32 = struct.Struct("<I")


class _Stripper:
    """Copy an Explicit VR Little Endian data set without its large binary values."""

    def __init__(self, data: mmap.mmap, threshold: int) -> None:
        self.data = data
        self.threshold = threshold
        self.out: list[bytes] = []
        #: Every bulk-VR element in file order: (value start, length) if cut, else None.
        self.bulk: list[tuple[int, int] | None] = []

    def dataset(self, position: int, end: int | None) -> int:
        """Copy elements from ``position`` to ``end`` (or an item delimiter); return the end."""
        data = self.data
        while end is None or position < end:
            group, element, vr_bytes, short = _HEAD.unpack_from(data, position)
            tag = (group << 16) | element
            if tag == _ITEM_END:
                return position + 8
            vr = vr_bytes.decode("latin-1")
            if vr in _LONG:
                length = _U32.unpack_from(data, position + 8)[0]
                start = position + 12
            else:
                length, start = short, position + 8
            if vr == "SQ":
                self.out.append(data[position : position + 8] + _U32.pack(_UNDEFINED))
                position = self.sequence(start, length)
                self.out.append(_delimiter(_SEQ_END))
                continue
            if length == _UNDEFINED:
                raise ValueError(f"undefined length on element {tag:08X}")
            if start + length > len(data):
                raise ValueError("an element runs past the end of the file")
            if vr in BULK_VRS:
                cut = length > self.threshold
                self.bulk.append((start, length) if cut else None)
                if cut:
                    self.out.append(data[position : position + 8] + _U32.pack(0))
                    position = start + length
                    continue
            self.out.append(data[position : start + length])
            position = start + length
        return position

    def sequence(self, position: int, length: int) -> int:
        """Copy a sequence's items (each as undefined length); return the sequence's end."""
        data = self.data
        end = None if length == _UNDEFINED else position + length
        while end is None or position < end:
            group, element = struct.unpack_from("<HH", data, position)
            tag = (group << 16) | element
            item_length = _U32.unpack_from(data, position + 4)[0]
            position += 8
            if tag == _SEQ_END:
                return position
            if tag != _ITEM:
                raise ValueError(f"expected an item, found {tag:08X}")
            self.out.append(_delimiter(_ITEM, _UNDEFINED))
            item_end = None if item_length == _UNDEFINED else position + item_length
            position = self.dataset(position, item_end)
            self.out.append(_delimiter(_ITEM_END))
        return position


def _delimiter(tag: int, length: int = 0) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)


def _bulk_elements(ds: Dataset) -> Iterator[tuple[Dataset, DataElement]]:
    """Yield (data set, element) for every bulk-VR element, depth first in tag order."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _bulk_elements(item)
        elif element.VR in BULK_VRS:
            yield ds, element


def open_bulk_mapped(path: str | os.PathLike[str], *, threshold: int = 65536) -> Dataset:
    """Open ``path`` with binary values over ``threshold`` bytes left in the mapped file.

    Raises
    ------
    NotDicomError
        The file cannot be opened or is not DICOM.
    DecodingError
        It is damaged (an element runs past the end, a malformed sequence).
    InvalidAttributeError
        An element cannot be decoded (an unknown VR, a wrong length) or holds a value of
        the wrong kind; the error names the attribute.
    """
    name, data = map_file(path)
    try:
        offset, syntax = meta_end(data)  # type: ignore[arg-type]
        if syntax != _EXPLICIT_LE:
            return _read_all(name)
        stripper = _Stripper(data, threshold)
        stripper.dataset(offset, len(data))
        ds = dcmread(io.BytesIO(bytes(data[:offset]) + b"".join(stripper.out)))
    except RadbridgeError:
        raise
    except Exception as exc:  # damaged files make pydicom raise many types (OSError, ...)
        raise DecodingError(
            f"cannot be read ({type(exc).__name__}: {exc})",
            path=name,
            hint="the file may be truncated or damaged",
        ) from exc
    check_elements(ds, name=name)  # damage names its attribute (an unknown VR, ...)
    found = list(_bulk_elements(ds))
    if len(found) != len(stripper.bulk):
        return _read_all(name)  # elements out of order: let pydicom read it all
    view = memoryview(data)
    for (parent, element), cut in zip(found, stripper.bulk, strict=True):
        if cut is not None:
            start, length = cut
            value = view[start : start + length]
            parent.add(DataElement(element.tag, element.VR, value, validation_mode=config.IGNORE))
    ds.filename = name
    return ds


def _read_all(name: str) -> Dataset:
    try:
        ds = dcmread(name)
    except Exception as exc:
        raise DecodingError(
            f"cannot be read ({exc})", path=name, hint="the file is damaged"
        ) from exc
    check_elements(ds, name=name)
    return ds
