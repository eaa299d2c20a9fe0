"""Read a tiled Segmentation of a whole slide image back to masks on its level.

:func:`read_slide_segmentation` opens a SEG whose frames are tiles of a Total Pixel
Matrix (``TILED_FULL`` by the implicit frame order, ``TILED_SPARSE`` from each
frame's Plane Position (Slide) and segment number), with its pixel data
memory-mapped. :class:`SlideSegmentation` then decodes only the tiles a
:meth:`~SlideSegmentation.tile` or :meth:`~SlideSegmentation.region` call needs;
omitted tiles are empty. :meth:`~SlideSegmentation.mask` returns the whole level,
as labels or one plane per segment, optionally into an array you give (a
memory-mapped ``.npy`` for the largest levels).

Examples
--------
>>> import numpy as np
>>> from radbridge.iods.wsi import read_slide, encode_slide_segmentation
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> labels = np.zeros(slide.level(0).shape, np.uint8)
>>> labels[5:15, 5:25] = 1
>>> seg = read_slide_segmentation(
...     encode_slide_segmentation(labels, slide, {1: "tumor"}, omit_empty_tiles=True))
>>> seg.shape, seg.tile_shape, seg.organization, len(seg.segments)
((50, 50), (10, 10), 'TILED_SPARSE', 1)
>>> bool((seg.mask() == labels).all())
True
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.attributes import int_value
from radbridge.errors import DecodingError, GridMismatchError, UnsupportedObjectError
from radbridge.iods.common import ReadObject
from radbridge.iods.content import SegmentDescription
from radbridge.iods.multiframe.fast_read import DicomFile, open_dataset, open_mapped
from radbridge.iods.multiframe.segmentation import (
    SEGMENTATION_STORAGE,
    SegmentationType,
)
from radbridge.iods.multiframe.tiles import SlideGrid, TiledMatrix, frame_positions
from radbridge.pixels import FrameReader

__all__ = ["SlideSegmentation", "read_slide_segmentation"]

_PER_FRAME = 0x52009230
#: (segment number, tile row, tile column) -> frame index.
_Key = tuple[int, int, int]


class SlideSegmentation(ReadObject, TiledMatrix):
    """A tiled Segmentation on one level of a slide (a :class:`ReadObject`).

    Attributes
    ----------
    dataset
        The header (pixel data memory-mapped when read from a file).
    source
        Name for messages (the file's path when read from one).
    grid
        The level's geometry: matrix and tile sizes, spacing, origin, orientation.
    segments
        The segment descriptions, numbers 1..N.
    segmentation_type
        BINARY or FRACTIONAL.
    max_fractional_value
        The stored value meaning 1.0 (FRACTIONAL), else 1.
    organization
        ``TILED_FULL`` or ``TILED_SPARSE``.
    """

    SOP_CLASSES = (SEGMENTATION_STORAGE,)
    WHAT = "a Segmentation"
    HINT = "give a SEG made on a slide (radbridge wsi seg encode)"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        super().__init__(ds, source=source)
        # Dimension Organization Type is optional (Type 3): without it, each frame
        # gives its Plane Position (Slide), as in TILED_SPARSE (highdicom's older SEGs)
        organization = str(ds.get("DimensionOrganizationType", "") or "TILED_SPARSE")
        if "TotalPixelMatrixRows" not in ds or organization not in ("TILED_FULL", "TILED_SPARSE"):
            raise UnsupportedObjectError(
                "this SEG is not tiled on a slide (no Total Pixel Matrix, or Dimension "
                f"Organization Type {organization[:20]!r})",
                path=source,
                attribute="DimensionOrganizationType",
                hint="read patient-space SEGs with radbridge.seg.read_segmentation",
            )
        self.grid = SlideGrid.from_dataset(ds, source=source)
        self.segments = tuple(
            SegmentDescription.from_dataset(item, source=source)
            for item in ds.get("SegmentSequence", [])
        )
        self.segmentation_type = _segmentation_type(ds, source)
        self.max_fractional_value = (
            int_value(ds, "MaximumFractionalValue", 255, source=source) or 255
            if self.segmentation_type is SegmentationType.FRACTIONAL
            else 1
        )
        self.organization = organization
        self._reader = FrameReader(ds, path=source)
        self._frames = self._index()

    def __repr__(self) -> str:
        return (
            f"SlideSegmentation({self.segmentation_type.value}, {len(self.segments)} segments, "
            f"{self.shape[0]}x{self.shape[1]} px, {len(self._frames)} tiles stored)"
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """``bool`` (BINARY) or ``uint8`` (FRACTIONAL stored values)."""
        binary = self.segmentation_type is SegmentationType.BINARY
        return np.dtype(bool) if binary else np.dtype(np.uint8)

    def _index(self) -> dict[_Key, int]:
        frames = len(self._reader)
        numbers = [d.segment_number for d in self.segments]
        if not numbers:
            raise DecodingError(
                "the SEG describes no segment",
                path=self.source,
                attribute="SegmentSequence",
                hint="the file is damaged",
            )
        if self.organization == "TILED_FULL":
            return self._full_index(frames, numbers)
        positions = frame_positions(self.dataset, frames, source=self.source)
        index: dict[_Key, int] = {}
        th, tw = self.tile_shape
        for frame in range(frames):
            row, column = int(positions.rows[frame]), int(positions.columns[frame])
            segment = int(positions.segments[frame]) or (numbers[0] if len(numbers) == 1 else 0)
            if (
                segment not in numbers
                or row % th
                or column % tw
                or not (0 <= row < self.shape[0] and 0 <= column < self.shape[1])
            ):
                raise DecodingError(
                    f"frame {frame + 1} (segment {segment}, row {row + 1}, column "
                    f"{column + 1}) is not a tile of a described segment in the "
                    f"{self.shape[0]}x{self.shape[1]} matrix",
                    path=self.source,
                    attribute="PlanePositionSlideSequence",
                    hint="the file is damaged",
                )
            index.setdefault((segment, row // th, column // tw), frame)
        return index

    def _full_index(self, frames: int, numbers: Sequence[int]) -> dict[_Key, int]:
        tiles = self.grid.tile_count
        if frames != tiles * len(numbers):
            raise DecodingError(
                f"a TILED_FULL SEG of {len(numbers)} segments on {tiles} tiles needs "
                f"{tiles * len(numbers)} frames, it has {frames}",
                path=self.source,
                attribute="NumberOfFrames",
                hint="the file is damaged (TILED_FULL omits no tile)",
            )
        index: dict[_Key, int] = {}
        for k, number in enumerate(numbers):
            for tile in range(tiles):
                row, column = self.grid.tile_of(tile)
                index[(number, row, column)] = k * tiles + tile
        return index

    def _segment(self, segment: int) -> int:
        if segment not in {d.segment_number for d in self.segments}:
            raise GridMismatchError(
                f"no segment {segment} in this SEG",
                path=self.source,
                attribute="ReferencedSegmentNumber",
                hint="use one of " + ", ".join(str(d.segment_number) for d in self.segments),
            )
        return segment

    def has_tile(self, row: int, column: int, *, segment: int = 1) -> bool:
        """Whether the tile at (tile row, tile column) of ``segment`` is stored."""
        return (self._segment(segment), row, column) in self._frames

    def tile(self, row: int, column: int, *, segment: int = 1) -> NDArray[Any]:
        """Decode one tile of ``segment`` (an omitted tile is all 0).

        Raises
        ------
        GridMismatchError
            No such segment, or the tile lies outside the grid.
        """
        if not (0 <= row < self.grid.tiles_down and 0 <= column < self.grid.tiles_across):
            raise GridMismatchError(
                f"tile ({row}, {column}) is outside the grid of "
                f"{self.grid.tiles_down}x{self.grid.tiles_across} tiles",
                attribute="tile",
            )
        return next(self._decode([(row, column)], self._segment(segment)))[1]

    def region(
        self, top: int, left: int, height: int, width: int, *, segment: int = 1
    ) -> NDArray[Any]:
        """Return ``segment``'s values in ``[top:top+height, left:left+width]``.

        Raises
        ------
        GridMismatchError
            The size is not positive, or no such segment.
        """
        if height < 1 or width < 1:
            raise GridMismatchError(
                f"a region of {height}x{width} pixels is empty", attribute="region"
            )
        out = np.zeros((height, width), self.dtype)
        self._fill(out, top, left, self._segment(segment))
        return out

    def _fill(self, out: NDArray[Any], top: int, left: int, segment: int) -> None:
        th, tw = self.tile_shape
        bottom = min(top + out.shape[0], self.shape[0])
        right = min(left + out.shape[1], self.shape[1])
        rows = range(max(top, 0) // th, -(-bottom // th))
        columns = range(max(left, 0) // tw, -(-right // tw))
        wanted = [(r, c) for r in rows for c in columns if (segment, r, c) in self._frames]
        for (r, c), tile in self._decode(wanted, segment):
            r0, c0 = r * th - top, c * tw - left
            a0, b0 = max(r0, 0), max(c0, 0)
            a1 = min(r0 + th, out.shape[0], bottom - top)
            b1 = min(c0 + tw, out.shape[1], right - left)
            if a1 > a0 and b1 > b0:
                out[a0:a1, b0:b1] = tile[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0]

    def _decode(
        self, wanted: Sequence[tuple[int, int]], segment: int
    ) -> Iterator[tuple[tuple[int, int], NDArray[Any]]]:
        blank = np.zeros(self.tile_shape, self.dtype)
        stored: list[tuple[tuple[int, int], int]] = []
        for r, c in wanted:
            frame = self._frames.get((segment, r, c))
            if frame is None:
                yield (r, c), blank.copy()
            else:
                stored.append(((r, c), frame))
        for start in range(0, len(stored), 256):
            part = stored[start : start + 256]
            frames = self._reader.frames([frame for _, frame in part])
            for (position, _), frame in zip(part, frames, strict=True):
                yield position, frame.astype(self.dtype, copy=False)

    def mask(self, segment: int | None = None, *, out: NDArray[Any] | None = None) -> NDArray[Any]:
        """Return the whole level's mask.

        Parameters
        ----------
        segment
            One segment's values ``[row, column]`` (bool, or uint8 stored fractions).
            ``None``: a BINARY SEG as labels ``[row, column]`` (0 background; raises
            when segments overlap), a FRACTIONAL one as ``[segment, row, column]``.
        out
            An array of that shape to fill (e.g. ``numpy.lib.format.open_memmap``);
            default: a new one.

        Raises
        ------
        DecodingError
            Overlapping BINARY segments asked for as labels (ask per segment).
        GridMismatchError
            No such segment, or ``out`` has another shape.
        """
        if segment is not None:
            target = self._target(out, self.shape, self.dtype)
            self._strips(target, self._segment(segment))
            return target
        numbers = [d.segment_number for d in self.segments]
        if self.segmentation_type is SegmentationType.FRACTIONAL:
            target = self._target(out, (len(numbers), *self.shape), np.dtype(np.uint8))
            for k, number in enumerate(numbers):
                self._strips(target[k], number)
            return target
        dtype = np.dtype(np.uint8 if max(numbers) < 256 else np.uint16)
        target = self._target(out, self.shape, dtype)
        self._labels(target, numbers)
        return target

    def _target(
        self, out: NDArray[Any] | None, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> NDArray[Any]:
        if out is None:
            return np.zeros(shape, dtype)
        if tuple(out.shape) != shape:
            raise GridMismatchError(
                f"out has shape {tuple(out.shape)}, the mask needs {shape}", attribute="out"
            )
        return out  # every row is written, a row of tiles at a time

    def _strips(self, target: NDArray[Any], segment: int) -> None:
        """Fill ``target`` one row of tiles at a time (bounded memory for large levels)."""
        th = self.grid.tile_rows
        for tile_row, top in enumerate(range(0, self.shape[0], th)):
            strip = self._row(tile_row, segment)
            target[top : top + strip.shape[0]] = strip

    def _row(self, tile_row: int, segment: int) -> NDArray[Any]:
        """Decode one row of tiles of ``segment`` at once: ``[tile rows, columns]``."""
        th, tw = self.tile_shape
        across = self.grid.tiles_across
        found = [
            (column, self._frames[(segment, tile_row, column)])
            for column in range(across)
            if (segment, tile_row, column) in self._frames
        ]
        frames = self._reader.frames([frame for _, frame in found]) if found else None
        if frames is not None and len(found) == across:
            tiles = frames.astype(self.dtype, copy=False)
        else:
            tiles = np.zeros((across, th, tw), self.dtype)
            if frames is not None:
                tiles[[column for column, _ in found]] = frames
        height = min(th, self.shape[0] - tile_row * th)
        row = tiles.swapaxes(0, 1).reshape(th, across * tw)
        return row[:height, : self.shape[1]]

    def _labels(self, target: NDArray[Any], numbers: Sequence[int]) -> None:
        th = self.grid.tile_rows
        for tile_row, top in enumerate(range(0, self.shape[0], th)):
            height = min(th, self.shape[0] - top)
            labels = np.zeros((height, self.shape[1]), target.dtype)
            for number in numbers:
                strip = self._row(tile_row, number)
                if np.logical_and(strip, labels).any():
                    raise DecodingError(
                        f"segment {number} overlaps another segment",
                        path=self.source,
                        attribute="SegmentsOverlap",
                        hint="read one segment at a time: mask(segment=N) "
                        "(CLI: radbridge wsi seg decode --segment N)",
                    )
                np.copyto(labels, number, where=strip)
            target[top : top + height] = labels


def _segmentation_type(ds: Dataset, source: str | None) -> SegmentationType:
    value = str(ds.get("SegmentationType", "") or "")
    if value not in ("BINARY", "FRACTIONAL"):
        raise UnsupportedObjectError(
            f"Segmentation Type {value[:20]!r} on a slide",
            path=source,
            attribute="SegmentationType",
            hint="radbridge reads BINARY and FRACTIONAL slide SEGs",
        )
    return SegmentationType(value)


def read_slide_segmentation(file: DicomFile) -> SlideSegmentation:
    """Open a tiled Segmentation of a slide level (pixel data memory-mapped).

    Parameters
    ----------
    file
        A path, the file's bytes, or a data set.

    Raises
    ------
    UnsupportedObjectError
        Not a Segmentation, or not a tiled one (no Total Pixel Matrix).
    DecodingError
        Frames that do not match the tiles or segments (named attribute).
    """
    if isinstance(file, str | os.PathLike):
        source: str | None = os.fspath(file)
        ds = open_mapped(file, raw_tags=(_PER_FRAME,))
    else:
        ds, source = open_dataset(file, raw_tags=(_PER_FRAME,))
    return SlideSegmentation(ds, source=source)
