r"""Tiled images in the slide coordinate system: the grid of tiles, positions, frame order.

A whole-slide image level (and a SEG or other object made on it) stores its *Total
Pixel Matrix* as tiles, one frame each (PS3.3 C.8.12.14, Microscope Slide Layer Tile
Organization). :class:`SlideGrid` is that geometry: the matrix and tile sizes, the
pixel spacing, where pixel 1\1 lies on the slide (Total Pixel Matrix Origin) and how
rows and columns run (Image Orientation (Slide)). From it come

- the tile grid (``tiles_down`` × ``tiles_across``) and the implicit frame order of
  ``TILED_FULL`` (PS3.3 C.7.6.17.3: along a row of tiles, then down the columns,
  then focal planes, then optical paths, then segments);
- the slide coordinates (mm) of any pixel, as Plane Position (Slide) records them;
- the Microscope Slide Layer Tile Organization attributes and per-frame Plane
  Position (Slide) items encoded in bulk (``TILED_SPARSE``);
- :func:`frame_positions`, which reads each frame's tile position, focal plane and
  optical path (and segment) from the per-frame functional groups of any tiled object.

Examples
--------
>>> grid = SlideGrid(total_rows=500, total_columns=300, tile_rows=256, tile_columns=256,
...                  pixel_spacing=(0.0005, 0.0005), origin=(20.0, 40.0, 0.0),
...                  orientation=(0.0, -1.0, 0.0, -1.0, 0.0, 0.0))
>>> grid.tiles_down, grid.tiles_across, grid.tile_count
(2, 2, 4)
>>> [round(v, 4) for v in grid.slide_position(256, 256)]  # row 256, column 256 (0-based)
[19.872, 39.872]
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.attributes import first_item, floats_value, int_value
from radbridge.errors import DecodingError, InvalidAttributeError
from radbridge.iods.multiframe.frame_index import damage_named, parse_raw
from radbridge.iods.multiframe.functional_groups import ItemEncoder, damaged_groups, format_ds

__all__ = [
    "FramePositions",
    "SlideGrid",
    "SlideLevelSource",
    "SlideSource",
    "TiledMatrix",
    "frame_positions",
    "plane_position_slide_items",
    "split_tiles",
]

_ENC = ItemEncoder()
_PER_FRAME = 0x52009230
_SHARED = 0x52009229
_PLANE_POSITION_SLIDE = 0x0048021A
_COLUMN_POSITION = 0x0048021E
_ROW_POSITION = 0x0048021F
_X_OFFSET = 0x0040072A
_Y_OFFSET = 0x0040073A
_Z_OFFSET = 0x0040074A
_OPTICAL_PATH_ID = 0x00480207
_OPTICAL_PATH_IDENTIFIER = 0x00480106
_SEGMENT_ID = 0x0062000A
_REF_SEGMENT = 0x0062000B
_FRAME_CONTENT = 0x00209111
_DIM_VALUES = 0x00209157


@dataclass(frozen=True)
class SlideGrid:
    r"""The geometry of one tiled Total Pixel Matrix on the slide.

    Parameters
    ----------
    total_rows, total_columns
        Total Pixel Matrix Rows and Columns.
    tile_rows, tile_columns
        Rows and Columns of each frame (tile).
    pixel_spacing
        Pixel Spacing (row spacing, column spacing) in mm.
    origin
        X, Y (and Z) Offset in Slide Coordinate System of pixel 1\1, in mm (Z in µm).
    orientation
        Image Orientation (Slide): direction cosines of a row, then of a column.
    focal_planes
        Total Pixel Matrix Focal Planes.
    """

    total_rows: int
    total_columns: int
    tile_rows: int
    tile_columns: int
    pixel_spacing: tuple[float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, ...] = (0.0, -1.0, 0.0, -1.0, 0.0, 0.0)
    focal_planes: int = 1

    @property
    def tiles_down(self) -> int:
        """Tiles along a column of the matrix (rows of tiles)."""
        return -(-self.total_rows // self.tile_rows)

    @property
    def tiles_across(self) -> int:
        """Tiles along a row of the matrix (columns of tiles)."""
        return -(-self.total_columns // self.tile_columns)

    @property
    def tile_count(self) -> int:
        """Tiles in one plane (one focal plane, one optical path, one segment)."""
        return self.tiles_down * self.tiles_across

    def tile_of(self, index: int) -> tuple[int, int]:
        """``(tile row, tile column)`` of the ``index``-th tile in TILED_FULL order."""
        return divmod(index % self.tile_count, self.tiles_across)

    def slide_position(self, row: float, column: float) -> tuple[float, float]:
        """X and Y (mm) in the slide coordinate system of matrix pixel (row, column), 0-based."""
        o = self.orientation
        dr, dc = self.pixel_spacing
        x = self.origin[0] + o[0] * column * dc + o[3] * row * dr
        y = self.origin[1] + o[1] * column * dc + o[4] * row * dr
        return x, y

    def tile_organization(self, ds: Dataset) -> None:
        """Write the Microscope Slide Layer Tile Organization module and Image Orientation."""
        ds.TotalPixelMatrixColumns = self.total_columns
        ds.TotalPixelMatrixRows = self.total_rows
        ds.TotalPixelMatrixFocalPlanes = self.focal_planes
        origin = Dataset()
        origin.XOffsetInSlideCoordinateSystem = format_ds(self.origin[0])
        origin.YOffsetInSlideCoordinateSystem = format_ds(self.origin[1])
        ds.TotalPixelMatrixOriginSequence = [origin]
        ds.ImageOrientationSlide = [format_ds(v) for v in self.orientation]

    def pixel_measures(self, thickness: float | None = None) -> Dataset:
        """Return the Pixel Measures item (Pixel Spacing, and Slice Thickness when known)."""
        item = Dataset()
        item.PixelSpacing = [format_ds(v) for v in self.pixel_spacing]
        if thickness is not None:
            item.SliceThickness = format_ds(thickness)
        return item

    @classmethod
    def from_dataset(cls, ds: Dataset, *, source: object = None) -> SlideGrid:
        """Read the grid of a tiled image (VL Whole Slide Microscopy Image, tiled SEG, ...).

        Raises
        ------
        MissingAttributeError, InvalidAttributeError
            A required attribute is absent or unusable (named).
        """
        rows = int_value(ds, "Rows", source=source)
        columns = int_value(ds, "Columns", source=source)
        total_rows = int_value(ds, "TotalPixelMatrixRows", rows, source=source)
        total_columns = int_value(ds, "TotalPixelMatrixColumns", columns, source=source)
        if min(rows, columns, total_rows, total_columns) < 1:
            raise InvalidAttributeError(
                f"a tile of {rows}x{columns} in a matrix of {total_rows}x{total_columns}",
                path=str(source) if source else None,
                attribute="TotalPixelMatrixRows",
                hint="the file is damaged",
            )
        spacing = _pixel_spacing(ds, source)
        origin_item = first_item(ds, "TotalPixelMatrixOriginSequence", source=source)
        origin = (0.0, 0.0, 0.0)
        if origin_item is not None:
            x = floats_value(origin_item, "XOffsetInSlideCoordinateSystem", 1, source=source)
            y = floats_value(origin_item, "YOffsetInSlideCoordinateSystem", 1, source=source)
            z = floats_value(origin_item, "ZOffsetInSlideCoordinateSystem", 1, source=source)
            origin = (x[0] if x else 0.0, y[0] if y else 0.0, z[0] if z else 0.0)
        orientation = floats_value(ds, "ImageOrientationSlide", 6, source=source)
        return cls(
            total_rows,
            total_columns,
            rows,
            columns,
            spacing,
            origin,
            tuple(orientation) if orientation else (0.0, -1.0, 0.0, -1.0, 0.0, 0.0),
            int_value(ds, "TotalPixelMatrixFocalPlanes", 1, source=source) or 1,
        )


class TiledMatrix:
    """What any object tiled on a :class:`SlideGrid` shows of its size (a level, a SEG)."""

    grid: SlideGrid

    @property
    def shape(self) -> tuple[int, int]:
        """Total Pixel Matrix ``(rows, columns)``."""
        return self.grid.total_rows, self.grid.total_columns

    @property
    def tile_shape(self) -> tuple[int, int]:
        """Tile ``(rows, columns)``."""
        return self.grid.tile_rows, self.grid.tile_columns


class SlideLevelSource(Protocol):
    """What an object made on a slide level needs of it (``radbridge.wsi.Level`` has it)."""

    @property
    def datasets(self) -> tuple[Dataset, ...]:
        """The level's image headers (SOP Class and Instance UIDs are referenced)."""
        ...


class SlideSource(Protocol):
    """What an object made on a slide needs of it (``radbridge.wsi.Slide`` has it).

    Families that write objects on slides (annotations) take this, so they need not
    import the slide-microscopy family.
    """

    context: Dataset
    series_instance_uid: str

    def level(self, index: int) -> SlideLevelSource:
        """Return level ``index`` (0: finest)."""
        ...


def _pixel_spacing(ds: Dataset, source: object) -> tuple[float, float]:
    shared = first_item(ds, "SharedFunctionalGroupsSequence", source=source)
    measures = first_item(shared, "PixelMeasuresSequence", source=source)
    values = floats_value(measures, "PixelSpacing", 2, source=source) if measures else None
    if not values:
        return (0.0, 0.0)  # unknown: positions in pixels only
    return (values[0], values[1])


def split_tiles(matrix: NDArray[Any], grid: SlideGrid, fill: Any = 0) -> NDArray[Any]:
    """Cut a ``[rows, columns(, samples)]`` matrix into tiles in TILED_FULL order.

    Edge tiles are padded with ``fill``. Returns ``[tile, tile_rows, tile_columns(, samples)]``.

    Examples
    --------
    >>> grid = SlideGrid(3, 5, 2, 2, (1.0, 1.0))
    >>> tiles = split_tiles(np.arange(15).reshape(3, 5), grid)
    >>> tiles.shape, tiles[1].tolist(), tiles[5].tolist()
    ((6, 2, 2), [[2, 3], [7, 8]], [[14, 0], [0, 0]])
    """
    down, across = grid.tiles_down, grid.tiles_across
    height, width = down * grid.tile_rows, across * grid.tile_columns
    extra = matrix.shape[2:]
    if matrix.shape[:2] != (height, width):
        padded = np.full((height, width, *extra), fill, matrix.dtype)
        padded[: matrix.shape[0], : matrix.shape[1]] = matrix
        matrix = padded
    shaped = matrix.reshape(down, grid.tile_rows, across, grid.tile_columns, *extra)
    tiles = np.swapaxes(shaped, 1, 2)
    return tiles.reshape(down * across, grid.tile_rows, grid.tile_columns, *extra)


def plane_position_slide_items(
    grid: SlideGrid,
    tiles: NDArray[np.int64],
    *,
    z_offset: float = 0.0,
    segments: NDArray[np.int64] | None = None,
    optical_path: str | None = None,
) -> bytes:
    """Encode the Per-Frame Functional Groups items of a TILED_SPARSE object.

    Each frame gets its Plane Position (Slide) (column and row of its first pixel in
    the Total Pixel Matrix, 1-based, and its X, Y, Z offsets), a Frame Content item
    whose dimension index values are (segment,) row position, column position, and
    (for a SEG) its Segment Identification.

    Parameters
    ----------
    grid
        The matrix the tiles belong to.
    tiles
        Each frame's tile index in TILED_FULL order (``row * tiles_across + column``).
    z_offset
        Z Offset in Slide Coordinate System (µm) of every frame.
    segments
        Each frame's Referenced Segment Number (a SEG), or ``None``.
    optical_path
        An Optical Path Identifier to put in every frame, or ``None``.
    """
    down_positions = np.arange(grid.tiles_down) * grid.tile_rows + 1
    across_positions = np.arange(grid.tiles_across) * grid.tile_columns + 1
    z = _ENC.element(_Z_OFFSET, "DS", _ENC.ds((z_offset,)))
    path = b""
    if optical_path is not None:
        ident = _ENC.element(_OPTICAL_PATH_IDENTIFIER, "SH", _ENC.text(optical_path))
        path = _ENC.sequence(_OPTICAL_PATH_ID, [_ENC.item(ident)])
    chunks = []
    for frame, tile in enumerate(tiles.tolist()):
        tile_row, tile_column = divmod(int(tile), grid.tiles_across)
        row, column = int(down_positions[tile_row]), int(across_positions[tile_column])
        x, y = grid.slide_position(row - 1, column - 1)
        plane = _ENC.element(_X_OFFSET, "DS", _ENC.ds((x,)))
        plane += _ENC.element(_Y_OFFSET, "DS", _ENC.ds((y,)))
        plane += z
        plane += _ENC.element(_COLUMN_POSITION, "SL", struct.pack("<i", column))
        plane += _ENC.element(_ROW_POSITION, "SL", struct.pack("<i", row))
        indices = [tile_row + 1, tile_column + 1]
        content = b""
        if segments is not None:
            segment = int(segments[frame])
            indices.insert(0, segment)
            ident = _ENC.element(_REF_SEGMENT, "US", _ENC.us(segment))
            content += _ENC.sequence(_SEGMENT_ID, [_ENC.item(ident)])
        values = _ENC.element(_DIM_VALUES, "UL", _ENC.ul(*indices))
        content = (
            _ENC.sequence(_FRAME_CONTENT, [_ENC.item(values)])
            + _ENC.sequence(_PLANE_POSITION_SLIDE, [_ENC.item(plane)])
            + path
            + content
        )
        chunks.append(_ENC.item(content))
    return b"".join(chunks)


@dataclass(frozen=True, eq=False)
class FramePositions:
    """Where each frame of a tiled object lies, from its functional groups.

    Attributes
    ----------
    rows, columns
        Row and column (0-based) of the frame's first pixel in the Total Pixel Matrix.
    z_offsets
        Z Offset in Slide Coordinate System (µm) of each frame (NaN when absent).
    optical_paths
        Optical Path Identifier of each frame ("" when absent).
    segments
        Referenced Segment Number of each frame (0 when absent).
    """

    rows: NDArray[np.int64]
    columns: NDArray[np.int64]
    z_offsets: NDArray[np.float64]
    optical_paths: tuple[str, ...]
    segments: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.rows)


def frame_positions(ds: Dataset, frames: int, *, source: str | None = None) -> FramePositions:
    """Read each frame's tile position, Z offset, optical path and segment (TILED_SPARSE).

    The per-frame items are read from the raw bytes when the sequence is still raw
    (:func:`~radbridge.iods.multiframe.fast_read.open_dataset`), else from pydicom's
    items; values missing per frame are taken from the shared functional groups.

    Raises
    ------
    DecodingError
        A frame has no Plane Position (Slide), the items are damaged, or their count
        differs from ``frames``.
    """
    items = _per_frame_items(ds, source)
    shared = _shared_item(ds, source)
    if len(items) != frames:
        raise damaged_groups(f"{len(items)} per-frame items for {frames} frames", source)
    rows = np.zeros(frames, np.int64)
    columns = np.zeros(frames, np.int64)
    z_offsets = np.full(frames, np.nan)
    segments = np.zeros(frames, np.int64)
    paths: list[str] = []
    little = _little(ds)
    for i, item in enumerate(items):
        plane = _first(item, _PLANE_POSITION_SLIDE) or _first(shared, _PLANE_POSITION_SLIDE)
        if plane is None:
            raise DecodingError(
                f"frame {i + 1} has no Plane Position (Slide)",
                path=source,
                attribute="PlanePositionSlideSequence",
                hint="a TILED_SPARSE image must give each frame's position; the file is damaged",
            )
        rows[i] = _integer(plane, _ROW_POSITION, "RowPositionInTotalImagePixelMatrix", little) - 1
        columns[i] = (
            _integer(plane, _COLUMN_POSITION, "ColumnPositionInTotalImagePixelMatrix", little) - 1
        )
        z = _value(plane, _Z_OFFSET)
        if z is not None and isinstance(z, bytes) and z.strip(b" \x00"):
            z_offsets[i] = _decimal(z, "ZOffsetInSlideCoordinateSystem", source)
        path_item = _first(item, _OPTICAL_PATH_ID) or _first(shared, _OPTICAL_PATH_ID)
        raw_path = _value(path_item, _OPTICAL_PATH_IDENTIFIER) if path_item is not None else None
        paths.append(_text(raw_path) if isinstance(raw_path, bytes) else "")
        segment_item = _first(item, _SEGMENT_ID) or _first(shared, _SEGMENT_ID)
        raw_segment = _value(segment_item, _REF_SEGMENT) if segment_item is not None else None
        if isinstance(raw_segment, bytes) and len(raw_segment) >= 2:
            segments[i] = struct.unpack_from("<H" if little else ">H", raw_segment)[0]
    return FramePositions(rows, columns, z_offsets, tuple(paths), segments)


# -- reading per-frame items from raw bytes or pydicom items ----------------------------

_Item = dict[int, Any]


def _little(ds: Dataset) -> bool:
    return bool(ds.is_little_endian if ds.is_little_endian is not None else True)


def _per_frame_items(ds: Dataset, source: str | None) -> list[_Item]:
    return _items(ds, _PER_FRAME, source)


def _shared_item(ds: Dataset, source: str | None) -> _Item | None:
    items = _items(ds, _SHARED, source)
    return items[0] if items else None


def _items(ds: Dataset, tag: int, source: str | None) -> list[_Item]:
    """Return the items of a top-level sequence as ``{tag: bytes | [items]}`` dictionaries."""
    if tag not in ds:
        return []
    element = damage_named(lambda: ds.get_item(tag), source)
    parsed = parse_raw(element, source)
    if parsed is not None:
        return list(parsed)
    items = damage_named(lambda: list(ds[tag].value), source)
    return [_from_dataset(item, _little(ds)) for item in items]


def _from_dataset(item: Dataset, little: bool) -> _Item:
    """Return the values :func:`frame_positions` needs from a pydicom item, as bytes."""
    out: _Item = {}
    for tag, keywords in _WANTED.items():
        inner = item.get(tag)
        if inner is None or not inner.value:
            continue
        first = inner.value[0]
        values: dict[int, bytes] = {}
        for inner_tag in keywords:
            element = first.get(inner_tag)
            if element is None or element.value in (None, ""):
                continue
            values[inner_tag] = _as_bytes(element.value, element.VR, little)
        out[tag] = [values]
    return out


_WANTED: dict[int, tuple[int, ...]] = {
    _PLANE_POSITION_SLIDE: (_ROW_POSITION, _COLUMN_POSITION, _Z_OFFSET),
    _OPTICAL_PATH_ID: (_OPTICAL_PATH_IDENTIFIER,),
    _SEGMENT_ID: (_REF_SEGMENT,),
}


def _as_bytes(value: Any, vr: str, little: bool) -> bytes:
    if vr in ("SL", "UL", "US", "SS"):
        first = value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value
        fmt = {"SL": "i", "UL": "I", "US": "H", "SS": "h"}[vr]
        return struct.pack(("<" if little else ">") + fmt, int(first))
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = "\\".join(str(v) for v in value)
    return str(value).encode("latin-1")


def _first(item: _Item | None, tag: int) -> _Item | None:
    if item is None:
        return None
    seq = item.get(tag)
    if isinstance(seq, list) and seq and isinstance(seq[0], dict):
        return seq[0]
    return None


def _value(item: _Item | None, tag: int) -> Any:
    return item.get(tag) if item is not None else None


def _text(value: bytes) -> str:
    return value.decode("latin-1").strip(" \x00")


def _decimal(value: bytes, attribute: str, source: str | None) -> float:
    try:
        return float(_text(value).split("\\")[0])
    except ValueError:
        raise DecodingError(
            f"a frame's {attribute} is not a number ({_text(value)[:40]!r})",
            path=source,
            attribute=attribute,
            hint="the file is damaged",
        ) from None


def _integer(item: _Item, tag: int, attribute: str, little: bool) -> int:
    """Return a signed long (SL) position; a damaged length raises naming the attribute."""
    raw = item.get(tag)
    if not isinstance(raw, bytes) or len(raw) != 4:
        raise DecodingError(
            f"a frame's {attribute} is missing or not one 4-byte value",
            attribute=attribute,
            hint="the file is damaged",
        )
    return int(struct.unpack_from("<i" if little else ">i", raw)[0])
