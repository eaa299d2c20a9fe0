"""Read DICOM Segmentations (any type, any transfer syntax) into NumPy.

The reader is tolerant: it reads what real files contain (missing codes,
missing dimension indices, in-stack position 0, big-endian or deflated files,
frames packed across byte boundaries), warns where it recovers, and raises
only where the meaning would be lost.

Examples
--------
>>> import numpy as np
>>> from radbridge.coding import sct
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series
>>> from radbridge.iods.seg import AlgorithmIdentification, SegmentDescription
>>> from radbridge.iods.seg import encode_segmentation
>>> ph = generate_phantom(slices=8, size=32)
>>> src = Series.from_volume(ph.hu)
>>> segments = [
...     SegmentDescription(k, name, category=sct("123037004", "Anatomical Structure"),
...                        property_type=sct("91772007", "Organ"),
...                        algorithm=AlgorithmIdentification("truth", "1"))
...     for k, name in ph.label_names.items()]
>>> seg = read_segmentation(encode_segmentation(ph.labels.array, src, segments))
>>> labels = seg.label_volume(src.geometry)
>>> bool(np.array_equal(labels.array, ph.labels.array))
True
>>> [s.label for s in seg.segments.values()][:2]
['body', 'lung_left']
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.attributes import int_value
from radbridge.errors import (
    DecodingError,
    GridMismatchError,
    InvalidAttributeError,
    MissingAttributeError,
    UnsupportedObjectError,
)
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.common import ReadObject, StackedMasks
from radbridge.iods.content import SegmentDescription
from radbridge.iods.multiframe.fast_read import DicomFile
from radbridge.iods.multiframe.frame_index import FrameIndex, index_frames
from radbridge.iods.multiframe.planes import FramePlanes
from radbridge.iods.seg.label_fill import SegmentsOverlapError, fill_by_segment
from radbridge.iods.seg.types import (
    LABEL_MAP_SEGMENTATION_STORAGE,
    SEGMENTATION_STORAGE,
    FractionalType,
    SegmentationType,
)
from radbridge.iods.source import Series
from radbridge.iods.threshold import DEFAULT_THRESHOLD, binarize, check_threshold

__all__ = ["Segmentation", "StackedMasks", "read_segmentation"]

log = logging.getLogger(__name__)

_CHUNK = 256
#: Label map frames per chunk when this thread decodes them: a temporary of a few MB
#: that the allocator reuses, not a fresh 50 MB stack whose pages each cost a fault
#: (200 RLE label frames into a volume: 0.05-0.29 s -> 0.046-0.05 s).
_SERIAL_CHUNK = 16
_PER_FRAME_FUNCTIONAL_GROUPS = 0x52009230


def read_segmentation(file: DicomFile) -> Segmentation:
    """Open a Segmentation from a path, encoded bytes, or a pydicom data set.

    Raises
    ------
    NotDicomError
        The input is not DICOM.
    UnsupportedObjectError
        It is DICOM but not a Segmentation.
    """
    from radbridge.iods.multiframe.fast_read import open_large

    ds, name = open_large(file, raw_tags=(_PER_FRAME_FUNCTIONAL_GROUPS,))  # pixels not copied
    return Segmentation(ds, source=name)


class Segmentation(ReadObject):
    """A Segmentation read for analysis (``dataset`` and ``source`` as :class:`ReadObject`).

    Attributes
    ----------
    segmentation_type
        BINARY, FRACTIONAL or LABELMAP.
    segments
        Segment descriptions by segment number.
    frames
        Position, segment and source reference of each frame.
    """

    SOP_CLASSES = (SEGMENTATION_STORAGE, LABEL_MAP_SEGMENTATION_STORAGE)
    WHAT = "a Segmentation"
    HINT = "radbridge reads Segmentation and Label Map Segmentation Storage here"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        super().__init__(ds, source=source)
        sop_class = str(ds.SOPClassUID)
        seg_type = str(ds.get("SegmentationType", "") or "")
        if seg_type not in SegmentationType.__members__:
            seg_type = "LABELMAP" if sop_class == LABEL_MAP_SEGMENTATION_STORAGE else "BINARY"
            warnings.warn(
                f"{source or 'SEG'}: no valid SegmentationType; assuming {seg_type}", stacklevel=2
            )
        self.segmentation_type = SegmentationType(seg_type)
        self.fractional_type = (
            FractionalType(str(ds.SegmentationFractionalType))
            if self.segmentation_type is SegmentationType.FRACTIONAL
            and str(ds.get("SegmentationFractionalType", "")) in FractionalType.__members__
            else None
        )
        self.max_fractional_value = int_value(ds, "MaximumFractionalValue", 255, source=source)
        fractional = self.segmentation_type is SegmentationType.FRACTIONAL
        if fractional and not 1 <= self.max_fractional_value <= 255:
            raise InvalidAttributeError(
                f"Maximum Fractional Value {self.max_fractional_value} is outside 1..255",
                path=source,
                attribute="MaximumFractionalValue",
                hint="the file is damaged",
            )
        self.segment_numbers: tuple[int, ...] = tuple(
            number
            for number in (
                int_value(item, "SegmentNumber", 0, source=source)
                for item in self.dataset.get("SegmentSequence", []) or []
            )
            if number > 0 or not self.is_labelmap  # some writers describe background as 0
        )
        self.frames: FrameIndex = index_frames(ds, labelmap=self.is_labelmap, source=source)
        self._pixels: _FrameSource = _FrameSource(ds, source)
        self._planes = FramePlanes(
            ds,
            self.frames,
            self._pixels.rows,
            self._pixels.columns,
            source,
            "SEG",
            "read frames with iter_frames() or masks_for_source()",
        )
        self._check_frame_segments()

    @property
    def is_labelmap(self) -> bool:
        """Whether pixel values are segment numbers (LABELMAP)."""
        return self.segmentation_type is SegmentationType.LABELMAP

    @property
    def frame_of_reference_uid(self) -> str | None:
        """The Frame of Reference UID, if the SEG has one."""
        return self._planes.frame_of_reference_uid

    @property
    def source_series_uids(self) -> tuple[str, ...]:
        """Series Instance UIDs in Referenced Series Sequence."""
        return tuple(
            str(item.SeriesInstanceUID)
            for item in self.dataset.get("ReferencedSeriesSequence", [])
            if item.get("SeriesInstanceUID")
        )

    @functools.cached_property
    def segments(self) -> dict[int, SegmentDescription]:
        """Segment descriptions by segment number (parsed on first access)."""
        out: dict[int, SegmentDescription] = {}
        for item in self.dataset.get("SegmentSequence", []) or []:
            description = SegmentDescription.from_dataset(item, source=self.source)
            if self.is_labelmap and description.segment_number == 0:
                continue  # some writers describe the background as segment 0
            out[description.segment_number] = description
        return out

    def _check_frame_segments(self) -> None:
        if self.is_labelmap:
            return
        unknown = sorted(set(self.frames.segments.tolist()) - set(self.segment_numbers))
        if unknown:
            warnings.warn(
                f"{self.source or 'SEG'}: frames refer to undescribed segments {unknown}",
                stacklevel=3,
            )

    # -- pixels ---------------------------------------------------------------

    def frame(self, index: int) -> NDArray[Any]:
        """Decode one frame (0-based): bool for BINARY, stored values otherwise."""
        frame: NDArray[Any] = self._pixels.decode([index])[0]
        return frame

    def iter_frames(
        self, indices: Sequence[int] | None = None, *, chunk: int = _CHUNK
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[Any]]]:
        """Yield ``(frame indices, frames)`` in chunks, decoding lazily."""
        all_indices = np.arange(len(self.frames)) if indices is None else np.asarray(indices)
        for start in range(0, len(all_indices), chunk):
            part = all_indices[start : start + chunk]
            yield part, self._pixels.decode(part.tolist())

    # -- geometry -------------------------------------------------------------

    def geometry(self) -> VolumeGeometry:
        """Return the SEG's own grid: spanning its frames, at its slice spacing."""
        return self._planes.geometry(merge_coincident=True)

    def _slice_indices(self, target: VolumeGeometry | Series) -> NDArray[np.int64]:
        return self._planes.slice_indices(target, by_reference=True)

    def label_volume(
        self,
        target: VolumeGeometry | Series | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> Volume:
        """Return a label map (0 background, segment numbers elsewhere).

        Parameters
        ----------
        target
            The grid to place frames on: the source series (or its geometry), or
            ``None`` for the SEG's own grid.
        threshold
            FRACTIONAL only: a voxel belongs to a segment when its fraction is at
            least this (:func:`radbridge.iods.threshold.binarize`, 0.5 by default).

        Raises
        ------
        DecodingError
            BINARY/FRACTIONAL segments overlap, so one label per voxel would lose
            information (use :meth:`stacked_volume`).
        """
        threshold = check_threshold(threshold)
        geometry = self._target_geometry(target)
        slices = self._slice_indices(target if target is not None else geometry)
        top = max(self.segment_numbers, default=0)
        if self.is_labelmap:
            top = max(top, 2 ** min(self._pixels.bits, 16) - 1)
        elif len(self.frames.segments):  # frames may name a segment the file does not describe
            top = max(top, int(self.frames.segments.max()))
        if top > 65535:
            raise DecodingError(
                f"segment number {top} does not fit a label map",
                path=self.source,
                attribute="ReferencedSegmentNumber",
                hint="read one mask per segment with stacked_volume()",
            )
        dtype = np.uint8 if top <= 255 else np.uint16
        out = np.zeros(geometry.shape, dtype)
        if self.is_labelmap:
            here = self._pixels.reader.decodes_in_this_thread(len(self.frames))
            for part, frames in self.iter_frames(chunk=_SERIAL_CHUNK if here else _CHUNK):
                out[slices[part]] = frames
            return Volume.from_geometry(out, geometry)
        segments = self.frames.segments
        packed = self._pixels.packed()
        try:
            if packed is not None and fill_by_segment(out, packed, slices, segments):
                return Volume.from_geometry(out, geometry)
        except SegmentsOverlapError:
            raise self._overlap() from None
        for index, rows, columns, block in self._pixels.blocks(range(len(self.frames))):
            mask = self._inside(block, threshold)
            region = out[slices[index], rows, columns]
            if region[mask].any():
                raise self._overlap()
            region[mask] = segments[index]
        return Volume.from_geometry(out, geometry)

    def _overlap(self) -> DecodingError:
        return DecodingError(
            "segments overlap, so they cannot be combined into one label map",
            path=self.source,
            attribute="SegmentsOverlap",
            hint="read one mask per segment with stacked_volume() (CLI: seg decode "
            "--stacked writes a 4-D NIfTI or one file per segment)",
        )

    def _inside(self, values: NDArray[Any], threshold: float) -> NDArray[np.bool_]:
        """Voxels inside a segment: the one threshold rule for FRACTIONAL, non-zero otherwise."""
        if self.segmentation_type is SegmentationType.FRACTIONAL:
            return binarize(values, maximum=self.max_fractional_value, threshold=threshold)
        inside: NDArray[np.bool_] = values if values.dtype == np.bool_ else values > 0
        return inside

    def stacked_volume(
        self,
        target: VolumeGeometry | Series | None = None,
        *,
        segments: Sequence[int] | None = None,
        fractional_as_float: bool = True,
        threshold: float | None = None,
    ) -> StackedMasks:
        """Return one mask per segment, ``[segment, slice, row, column]``.

        BINARY and LABELMAP give booleans; FRACTIONAL gives float32 in [0, 1]
        (or the stored integers when ``fractional_as_float`` is false), or
        booleans when a ``threshold`` is given (the rule of :meth:`label_volume`).
        """
        if threshold is not None:
            threshold = check_threshold(threshold)
        geometry = self._target_geometry(target)
        slices = self._slice_indices(target if target is not None else geometry)
        numbers = tuple(segments) if segments is not None else tuple(sorted(self.segment_numbers))
        position = {n: i for i, n in enumerate(numbers)}
        fractional = self.segmentation_type is SegmentationType.FRACTIONAL
        dtype: Any = np.uint8 if fractional else np.bool_
        out = np.zeros((len(numbers), *geometry.shape), dtype)
        if self.is_labelmap:
            here = self._pixels.reader.decodes_in_this_thread(len(self.frames))
            for part, frames in self.iter_frames(chunk=_SERIAL_CHUNK if here else _CHUNK):
                for i, frame_index in enumerate(part):
                    for number in np.unique(frames[i]):
                        if int(number) in position:
                            out[position[int(number)], slices[frame_index]] = frames[i] == number
        else:
            wanted = [i for i, n in enumerate(self.frames.segments.tolist()) if n in position]
            for index, rows, columns, block in self._pixels.blocks(wanted):
                segment = int(self.frames.segments[index])
                out[position[segment], slices[index], rows, columns] = block
        if fractional and threshold is not None:
            return StackedMasks(self._inside(out, threshold), geometry, numbers)
        if fractional and fractional_as_float:
            scaled = out.astype(np.float32) / float(self.max_fractional_value)
            return StackedMasks(scaled, geometry, numbers)
        return StackedMasks(out, geometry, numbers)

    def masks_for_source(
        self,
        sop_instance_uid: str,
        frame_number: int | None = None,
        *,
        source: Series | None = None,
        threshold: float | None = None,
    ) -> dict[int, NDArray[Any]]:
        """Return ``{segment number: 2-D mask}`` for one source image (or frame).

        Frames are matched through their Derivation Image references. SEGs whose
        frames carry no such references (PixelMed, some vendors) are placed by
        position, as :meth:`stacked_volume` does, which needs the ``source`` series.

        Parameters
        ----------
        sop_instance_uid, frame_number
            The source image (and frame, for multi-frame sources).
        source
            The source series; needed when frames do not reference their images.
        threshold
            FRACTIONAL only: return booleans by the rule of :meth:`label_volume`
            instead of the stored values.

        Raises
        ------
        UnsupportedObjectError
            Frames carry no source references and no ``source`` was given.
        GridMismatchError
            ``source`` does not hold that image, or the frames do not lie on it.
        """
        if threshold is not None:
            threshold = check_threshold(threshold)
        wanted = self._frames_for_source(sop_instance_uid, frame_number, source)
        out: dict[int, NDArray[Any]] = {}
        if not wanted:
            return out
        frames = self._pixels.decode(wanted)
        for i, frame_index in enumerate(wanted):
            if self.is_labelmap:
                for number in np.unique(frames[i]):
                    if int(number):
                        out[int(number)] = frames[i] == number
            else:
                frame = frames[i] if threshold is None else self._inside(frames[i], threshold)
                out[int(self.frames.segments[frame_index])] = frame
        return out

    def _frames_for_source(
        self, sop_instance_uid: str, frame_number: int | None, source: Series | None
    ) -> list[int]:
        """Return the frames on one source image: by reference, else by position."""
        if all(self.frames.source_uids):
            return [
                i
                for i, uid in enumerate(self.frames.source_uids)
                if uid == sop_instance_uid
                and (frame_number is None or int(self.frames.source_frames[i]) in (0, frame_number))
            ]
        if source is None:
            raise UnsupportedObjectError(
                "frames do not reference their source images, so they can only be matched "
                "to an image by position",
                path=self.source,
                attribute="DerivationImageSequence",
                hint="pass the source series: masks_for_source(uid, source=...)",
            )
        target = [
            k
            for k, ref in enumerate(source.slice_refs)
            if ref.sop_instance_uid == sop_instance_uid
            and (frame_number is None or ref.frame_number in (None, frame_number))
        ]
        if not target:
            raise GridMismatchError(
                "the image is not in the source series given",
                path=self.source,
                attribute="ReferencedSOPInstanceUID",
                hint="pass the series that holds the image",
            )
        slices = self._slice_indices(source)
        return [int(i) for i in np.flatnonzero(np.isin(slices, target))]

    def _target_geometry(self, target: VolumeGeometry | Series | None) -> VolumeGeometry:
        if target is None:
            return self.geometry()
        return target.geometry if isinstance(target, Series) else target


class _FrameSource:
    """Frames of the pixel data on demand, through :class:`radbridge.pixels.FrameReader`.

    Native 1-bit frames whose rows are whole bytes get a faster path for
    :meth:`blocks`: each frame is cropped on its packed bytes, so empty areas are
    never unpacked.
    """

    def __init__(self, ds: Dataset, source: str | None) -> None:
        from radbridge.pixels import FrameReader

        self.ds = ds
        self.source = source
        try:
            self.reader = FrameReader(ds, path=source)
        except MissingAttributeError as exc:
            raise DecodingError(
                "no pixel data",
                path=source,
                attribute="PixelData",
                hint="the file holds only a header",
            ) from exc
        self.rows = int_value(ds, "Rows", source=source)
        self.columns = int_value(ds, "Columns", source=source)
        self.count = self.reader.number_of_frames
        self.bits = int_value(ds, "BitsAllocated", source=source)

    def decode(self, indices: Sequence[int]) -> NDArray[Any]:
        """Decode frames (0-based): bool for 1-bit data, stored values otherwise."""
        frames: NDArray[Any] = self.reader.frames(list(indices))
        return frames

    def blocks(
        self, indices: Sequence[int], *, chunk: int = _CHUNK
    ) -> Iterator[tuple[int, slice, slice, NDArray[Any]]]:
        """Yield ``(frame, rows, columns, values)`` for the non-zero region of each frame.

        Empty frames yield nothing.
        """
        ordered = list(indices)
        packed = self._packed_view()
        if packed is not None:
            yield from self._packed_blocks(packed, ordered)
            return
        for start in range(0, len(ordered), chunk):
            part = ordered[start : start + chunk]
            frames = self.decode(part)
            for index, frame in zip(part, frames, strict=True):
                rows = np.flatnonzero(frame.any(axis=1))
                if not rows.size:
                    continue
                cols = np.flatnonzero(frame.any(axis=0))
                r = slice(int(rows[0]), int(rows[-1]) + 1)
                c = slice(int(cols[0]), int(cols[-1]) + 1)
                yield index, r, c, frame[r, c]

    def packed(self) -> NDArray[np.uint8] | None:
        """Return BINARY frames as ``[frame, row, byte]`` (a view), or ``None``."""
        return self._packed_view()

    def _packed_view(self) -> NDArray[np.uint8] | None:
        """Return native 1-bit pixel data as ``[frame, row, byte]`` when that layout holds."""
        if (
            self.reader.encapsulated
            or self.bits != 1
            or self.columns % 8
            or (not self.ds.is_little_endian and self.ds["PixelData"].VR == "OW")
        ):
            return None
        value = self.ds.PixelData
        data = np.frombuffer(value, np.uint8)  # bytes, or a view of the file (no copy)
        row_bytes = self.columns // 8
        needed = self.count * self.rows * row_bytes
        if data.size < needed:
            raise DecodingError(
                f"pixel data holds {data.size} bytes, {needed} expected",
                path=self.source,
                attribute="PixelData",
                hint="the file is truncated",
            )
        return data[:needed].reshape(self.count, self.rows, row_bytes)

    def _packed_blocks(
        self, packed: NDArray[np.uint8], indices: list[int]
    ) -> Iterator[tuple[int, slice, slice, NDArray[Any]]]:
        for index in indices:
            if not 0 <= index < self.count:
                raise DecodingError(
                    f"frame {index + 1} does not exist ({self.count} frames)",
                    path=self.source,
                    attribute="NumberOfFrames",
                )
            frame = packed[index]
            rows = np.flatnonzero(frame.any(axis=1))
            if not rows.size:
                continue
            cols = np.flatnonzero(frame[rows[0] : rows[-1] + 1].any(axis=0))
            r = slice(int(rows[0]), int(rows[-1]) + 1)
            byte_cols = slice(int(cols[0]), int(cols[-1]) + 1)
            block = np.unpackbits(frame[r, byte_cols], axis=1, bitorder="little").view(bool)
            yield index, r, slice(byte_cols.start * 8, byte_cols.stop * 8), block
