"""Extract, for every frame of a SEG, its position, segment and source reference.

Two paths give the same :class:`FrameIndex`: a fast one over the raw bytes of
the Per-Frame Functional Groups Sequence (files with sequences of defined
length, as pydicom, highdicom and radbridge write them), and one over pydicom
items (sequences of undefined length, as DCMTK writes them, which pydicom has
already parsed).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from radbridge.attributes import first_item, int_value
from radbridge.errors import DecodingError
from radbridge.iods.multiframe.functional_groups import ParsedItem, damaged_groups, parse_items

__all__ = ["FrameIndex", "damage_named", "index_frames", "parse_raw"]

_PER_FRAME = 0x52009230
_SHARED = 0x52009229
_DERIVATION = 0x00089124
_SOURCE_IMAGE = 0x00082112
_REF_SOP_INSTANCE = 0x00081155
_REF_FRAME = 0x00081160
_PLANE_POSITION = 0x00209113
_POSITION = 0x00200032
_SEGMENT_ID = 0x0062000A
_REF_SEGMENT = 0x0062000B
#: The functional groups' sequences the index reads (the others stay unparsed bytes).
_READ = frozenset({_PLANE_POSITION, _SEGMENT_ID, _DERIVATION, _SOURCE_IMAGE})


@dataclass(frozen=True, eq=False)
class FrameIndex:
    """What each frame of a SEG shows and where.

    Attributes
    ----------
    positions
        ``ImagePositionPatient`` of each frame, shape ``(frames, 3)``; NaN rows for
        frames without one (e.g. slide microscopy or projection images).
    segments
        Referenced Segment Number of each frame (0 for LABELMAP frames).
    source_uids
        Referenced SOP Instance UID of each frame's first source image ("" if none).
    source_frames
        Referenced Frame Number in that source (0 if none / single-frame).
    """

    positions: NDArray[np.float64]
    segments: NDArray[np.int64]
    source_uids: tuple[str, ...]
    source_frames: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def has_positions(self) -> bool:
        """Whether every frame has a patient position."""
        return bool(len(self.positions)) and not bool(np.isnan(self.positions).any())


def _text(value: bytes) -> str:
    return value.decode("latin-1").strip(" \x00")


def _floats(value: bytes) -> list[float]:
    return [float(v) for v in _text(value).split("\\") if v.strip()]


def _bytes(item: ParsedItem | None, tag: int) -> bytes | None:
    value = item.get(tag) if item is not None else None
    return value if isinstance(value, bytes) else None


def _first(item: ParsedItem, tag: int) -> ParsedItem | None:
    seq = item.get(tag)
    if isinstance(seq, list) and seq:
        return seq[0]
    return None


_T = TypeVar("_T")


def _list_of_floats(values: Any) -> list[float]:
    return [float(v) for v in values]


def _number(convert: Callable[[Any], _T], value: Any, attribute: str, source: str | None) -> _T:
    """Convert a frame's value, or say which attribute of the file is damaged."""
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise DecodingError(
            f"a frame's {attribute} is not a number ({str(value)[:40]!r})",
            path=source,
            attribute=attribute,
            hint="the file is damaged",
        ) from None


class _Extractor:
    """Reads the values a SEG reader needs from parsed or pydicom items."""

    def __init__(self, little_endian: bool, source: str | None) -> None:
        self.unsigned16 = struct.Struct("<H" if little_endian else ">H")
        self.source = source

    def from_parsed(
        self, item: ParsedItem, shared: ParsedItem | None
    ) -> tuple[list[float] | None, int | None, str, int]:
        plane = _first(item, _PLANE_POSITION) or (
            _first(shared, _PLANE_POSITION) if shared else None
        )
        value = _bytes(plane, _POSITION)
        position = (
            _number(_floats, value, "ImagePositionPatient", self.source)
            if value is not None
            else None
        )
        ident = _first(item, _SEGMENT_ID) or (_first(shared, _SEGMENT_ID) if shared else None)
        raw = _bytes(ident, _REF_SEGMENT)
        segment = self.unsigned16.unpack_from(raw)[0] if raw is not None and len(raw) >= 2 else None
        derivation = _first(item, _DERIVATION)
        image = _first(derivation, _SOURCE_IMAGE) if derivation else None
        uid_bytes = _bytes(image, _REF_SOP_INSTANCE)
        uid = _text(uid_bytes) if uid_bytes is not None else ""
        frame_bytes = _bytes(image, _REF_FRAME)
        numbers = _text(frame_bytes).split("\\") if frame_bytes is not None else []
        frame = (
            _number(int, numbers[0], "ReferencedFrameNumber", self.source)
            if numbers and numbers[0].strip()
            else 0
        )
        return position, segment, uid, frame

    def from_dataset(
        self, item: Dataset, shared: Dataset | None
    ) -> tuple[list[float] | None, int | None, str, int]:
        plane = first_item(item, "PlanePositionSequence") or first_item(
            shared, "PlanePositionSequence"
        )
        position = None
        if plane is not None and plane.get("ImagePositionPatient"):
            value = plane.ImagePositionPatient
            position = _number(_list_of_floats, value, "ImagePositionPatient", self.source)
        ident = first_item(item, "SegmentIdentificationSequence") or first_item(
            shared, "SegmentIdentificationSequence"
        )
        segment = None
        if ident is not None and ident.get("ReferencedSegmentNumber") is not None:
            value = ident.ReferencedSegmentNumber
            first_value = value[0] if isinstance(value, Sequence) and value else value
            segment = _number(int, first_value, "ReferencedSegmentNumber", self.source)
        uid, frame = "", 0
        image = first_item(first_item(item, "DerivationImageSequence"), "SourceImageSequence")
        if image is not None:
            uid = str(image.get("ReferencedSOPInstanceUID", "") or "")
            numbers = image.get("ReferencedFrameNumber")
            if numbers not in (None, ""):
                first_number = numbers[0] if isinstance(numbers, Sequence) and numbers else numbers
                frame = _number(int, first_number, "ReferencedFrameNumber", self.source)
        return position, segment, uid, frame


def index_frames(ds: Dataset, *, labelmap: bool, source: str | None = None) -> FrameIndex:
    """Build the :class:`FrameIndex` of a SEG data set.

    Raises
    ------
    DecodingError
        The functional groups are damaged, or a frame of a multi-segment SEG names
        no segment (its meaning would be lost).
    """
    frames = int_value(ds, "NumberOfFrames", 1, source=source)
    little = bool(ds.is_little_endian if ds.is_little_endian is not None else True)
    extractor = _Extractor(little, source)
    shared_ds = ds.get("SharedFunctionalGroupsSequence")
    shared_item: Dataset | None = shared_ds[0] if shared_ds else None
    element = damage_named(lambda: ds.get_item(_PER_FRAME) if _PER_FRAME in ds else None, source)
    rows: list[tuple[list[float] | None, int | None, str, int]]
    items = parse_raw(element, source, descend=_READ)
    if items is not None:
        shared_element = damage_named(
            lambda: ds.get_item(_SHARED) if _SHARED in ds else None, source
        )
        shared = parse_raw(shared_element, source, descend=_READ)
        shared_parsed = shared[0] if shared else None
        rows = [extractor.from_parsed(item, shared_parsed) for item in items]
    elif element is not None:
        per_frame = damage_named(lambda: list(ds.PerFrameFunctionalGroupsSequence), source)
        rows = [extractor.from_dataset(item, shared_item) for item in per_frame]
    elif str(ds.get("DimensionOrganizationType", "")) == "TILED_FULL" and not labelmap:
        return _tiled_full(ds, frames, source)
    else:
        rows = [extractor.from_dataset(Dataset(), shared_item) for _ in range(frames)]
    if len(rows) != frames:
        raise damaged_groups(f"{len(rows)} per-frame items for {frames} frames", source)
    return _assemble(rows, labelmap, _segment_count(ds), source)


def damage_named(read: Callable[[], _T], source: str | None) -> _T:
    """Run ``read`` (pydicom parsing a functional groups sequence); name the damage if it fails."""
    try:
        return read()
    except DecodingError:
        raise
    except Exception as exc:  # pydicom raises many kinds on damaged sequences
        message = f"the functional groups cannot be read ({type(exc).__name__}: {str(exc)[:80]})"
        raise damaged_groups(message, source) from exc


def _tiled_full(ds: Dataset, frames: int, source: str | None) -> FrameIndex:
    """Frames of a TILED_FULL SEG run through all tiles of segment 1, then segment 2, ..."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    tiles = (
        -(-int(ds.get("TotalPixelMatrixRows", rows)) // rows)
        * -(-int(ds.get("TotalPixelMatrixColumns", columns)) // columns)
        * int(ds.get("TotalPixelMatrixFocalPlanes", 1) or 1)
    )
    if tiles < 1 or frames % tiles:
        raise DecodingError(
            f"{frames} frames do not fill whole segments of {tiles} tiles",
            path=source,
            attribute="DimensionOrganizationType",
            hint="the file is damaged",
        )
    segments = np.arange(frames, dtype=np.int64) // tiles + 1
    return FrameIndex(
        np.full((frames, 3), np.nan), segments, ("",) * frames, np.zeros(frames, np.int64)
    )


def parse_raw(
    element: object, source: str | None, *, descend: Collection[int] | None = None
) -> list[ParsedItem] | None:
    """Parse a still-raw sequence element; ``None`` when pydicom already parsed it.

    ``descend``: the nested sequences to parse, as :func:`parse_items` has it.

    Raises
    ------
    DecodingError
        The bytes are not a well-formed sequence.
    """
    if isinstance(element, RawDataElement) and element.value is not None:
        return parse_items(
            element.value,
            little_endian=element.is_little_endian,
            implicit_vr=element.is_implicit_VR,
            source=source,
            descend=descend,
        )
    return None


def _segment_count(ds: Dataset) -> int:
    return len(ds.get("SegmentSequence", []) or [])


def _assemble(
    rows: list[tuple[list[float] | None, int | None, str, int]],
    labelmap: bool,
    n_segments: int,
    source: str | None,
) -> FrameIndex:
    positions = np.full((len(rows), 3), np.nan)
    segments = np.zeros(len(rows), np.int64)
    missing_segment = 0
    for i, (position, segment, _, _) in enumerate(rows):
        if position is not None and len(position) == 3:
            positions[i] = position
        if labelmap:
            continue
        if segment is None:
            missing_segment += 1
            segment = 1
        segments[i] = segment
    if missing_segment:
        if n_segments > 1:
            raise DecodingError(
                f"{missing_segment} frames name no segment in a SEG of {n_segments} segments",
                path=source,
                attribute="ReferencedSegmentNumber",
                hint="the file is damaged; its frames cannot be assigned to segments",
            )
        _warn(f"{missing_segment} frames name no segment; assuming segment 1", source)
    return FrameIndex(
        positions,
        segments,
        tuple(uid for _, _, uid, _ in rows),
        np.array([frame for _, _, _, frame in rows], np.int64),
    )


def _warn(message: str, source: str | None, warn: Callable[..., Any] = warnings.warn) -> None:
    warn(f"{source or 'SEG'}: {message}", stacklevel=4)
