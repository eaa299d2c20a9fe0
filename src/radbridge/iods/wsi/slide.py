"""Read VL Whole Slide Microscopy Image series: pyramid levels, tiles and regions.

:func:`read_slide` opens the VOLUME images of one slide (a folder or files) with
their pixel data memory-mapped, groups them into pyramid levels (one Total Pixel
Matrix size each, finest first) and indexes where each tile of each optical path
and focal plane is stored — implicitly for ``TILED_FULL`` images, from the
per-frame Plane Position (Slide) for ``TILED_SPARSE`` ones. A :class:`Level` then
decodes only the tiles a :meth:`Level.tile` or :meth:`Level.region` call needs.

Examples
--------
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> level = slide.levels[0]
>>> level.shape, level.tile_shape, level.tile_organization
((50, 50), (10, 10), 'TILED_FULL')
>>> level.region(5, 5, 10, 20).shape
(10, 20, 3)
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels.processing import convert_color_space

from radbridge.attributes import int_value
from radbridge.errors import (
    DecodingError,
    GridMismatchError,
    MixedSeriesError,
    NotDicomError,
    UnsupportedObjectError,
)
from radbridge.iods.multiframe.fast_read import open_mapped
from radbridge.iods.multiframe.tiles import SlideGrid, TiledMatrix, frame_positions
from radbridge.iods.source import CONTEXT_KEYWORDS
from radbridge.iods.wsi.types import (
    VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE,
    OpticalPath,
    TileOrganization,
)
from radbridge.pixels import FrameReader

__all__ = ["SPECIMEN_KEYWORDS", "Level", "Slide", "read_slide"]

log = logging.getLogger(__name__)

_PER_FRAME = 0x52009230
#: Photometric Interpretations whose decoded samples are Y, Cb, Cr (not RGB).
_YBR = ("YBR_FULL", "YBR_FULL_422")

#: Specimen module attributes copied into objects made on a slide (PS3.3 C.7.6.22).
SPECIMEN_KEYWORDS = (
    "ContainerIdentifier",
    "IssuerOfTheContainerIdentifierSequence",
    "AlternateContainerIdentifierSequence",
    "ContainerTypeCodeSequence",
    "ContainerDescription",
    "ContainerComponentSequence",
    "SpecimenDescriptionSequence",
)

#: (optical path index, focal plane index, tile row, tile column) -> (instance, frame).
_Key = tuple[int, int, int, int]


@dataclass(eq=False)
class _Instance:
    """One VL WSI image of a level: its header, frame reader and where its frames lie."""

    ds: Dataset
    name: str
    grid: SlideGrid
    organization: TileOrganization
    paths: tuple[OpticalPath, ...]
    _reader: FrameReader | None = field(default=None, repr=False)

    @property
    def reader(self) -> FrameReader:
        if self._reader is None:
            self._reader = FrameReader(self.ds, path=self.name)
        return self._reader

    @property
    def frames(self) -> int:
        return int_value(self.ds, "NumberOfFrames", 1, source=self.name)

    def decode(self, indices: Sequence[int]) -> NDArray[Any]:
        """Decode frames ``indices``; colour comes back as RGB.

        JPEG tiles stored as YBR_FULL_422 (what most scanners and converters write) or
        YBR_FULL decode to their stored luminance and chrominance; they are converted
        here, as pydicom's ``pixel_array`` and wsidicom do. JPEG 2000's YBR_ICT/YBR_RCT
        are undone by the decoder itself.
        """
        frames = self.reader.frames(indices)
        if str(self.ds.get("PhotometricInterpretation", "")) in _YBR:
            converted: NDArray[Any] = convert_color_space(frames, "YBR_FULL", "RGB")
            return converted
        return frames


class Level(TiledMatrix):
    """One resolution level of a slide: a tiled Total Pixel Matrix.

    Attributes
    ----------
    index
        0 for the finest level.
    grid
        Matrix and tile sizes, pixel spacing, origin and orientation on the slide.
    optical_paths
        The optical paths (channels) the level holds.
    focal_planes
        Number of focal planes.
    samples_per_pixel
        3 for colour (RGB/YBR), 1 for monochrome.
    tile_organization
        ``TILED_FULL`` or ``TILED_SPARSE`` (of its first image).
    """

    def __init__(self, index: int, instances: Sequence[_Instance]) -> None:
        self.index = index
        self._instances = list(instances)
        first = self._instances[0]
        self.grid = first.grid
        self.tile_organization = first.organization.value
        paths: dict[str, OpticalPath] = {}
        for instance in self._instances:
            for path in instance.paths:
                paths.setdefault(path.identifier, path)
        self.optical_paths = tuple(paths.values())
        self.samples_per_pixel = int_value(first.ds, "SamplesPerPixel", 1, source=first.name)
        self.dtype = first.reader.format.dtype
        self._tiles, self.focal_planes = self._index_tiles()

    def __repr__(self) -> str:
        return (
            f"Level({self.index}, {self.shape[0]}x{self.shape[1]} px, tiles "
            f"{self.tile_shape[0]}x{self.tile_shape[1]}, {len(self.optical_paths)} optical paths)"
        )

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """Pixel Spacing (row spacing, column spacing) in mm."""
        return self.grid.pixel_spacing

    @property
    def datasets(self) -> tuple[Dataset, ...]:
        """The headers of the level's images (pixel data memory-mapped)."""
        return tuple(instance.ds for instance in self._instances)

    @property
    def tile_count(self) -> int:
        """Tiles stored (of all optical paths and focal planes)."""
        return len(self._tiles)

    @cached_property
    def background(self) -> int:
        """The value of pixels no tile covers: Pixel Padding Value, else white (colour) or 0."""
        ds = self._instances[0].ds
        padding = ds.get("PixelPaddingValue")
        if isinstance(padding, int):
            return padding
        return int(np.iinfo(self.dtype).max) if self.samples_per_pixel == 3 else 0

    def _index_tiles(self) -> tuple[dict[_Key, tuple[int, int]], int]:
        """Index every frame by (optical path, focal plane, tile row, tile column).

        Focal planes are numbered by their Z in the slide coordinate system, lowest
        first, across all of the level's images (one image may hold one plane).
        """
        frames = [
            (number, frame, key)
            for number, instance in enumerate(self._instances)
            for frame, key in enumerate(_frame_keys(instance))
        ]
        planes = {z: k for k, z in enumerate(sorted({key[1] for _, _, key in frames}))}
        path_index = {p.identifier: k for k, p in enumerate(self.optical_paths)}
        tiles: dict[_Key, tuple[int, int]] = {}
        for number, frame, (path, z, row, column) in frames:
            key = (path_index.get(path, 0), planes[z], row, column)
            tiles.setdefault(key, (number, frame))
        return tiles, max(len(planes), 1)

    def _path_index(self, optical_path: str | int | None) -> int:
        if optical_path is None:
            return 0
        if isinstance(optical_path, int):
            if not 0 <= optical_path < len(self.optical_paths or (None,)):
                raise GridMismatchError(
                    f"optical path {optical_path} does not exist "
                    f"({len(self.optical_paths)} on this level)",
                    attribute="OpticalPathIdentifier",
                )
            return optical_path
        for k, path in enumerate(self.optical_paths):
            if path.identifier == optical_path:
                return k
        raise GridMismatchError(
            f"no optical path {optical_path!r} on this level",
            attribute="OpticalPathIdentifier",
            hint="use one of " + ", ".join(p.identifier for p in self.optical_paths),
        )

    def has_tile(
        self, row: int, column: int, *, optical_path: str | int | None = None, focal_plane: int = 0
    ) -> bool:
        """Whether the tile at (tile row, tile column) is stored (TILED_SPARSE may omit some)."""
        return (self._path_index(optical_path), focal_plane, row, column) in self._tiles

    def tile(
        self, row: int, column: int, *, optical_path: str | int | None = None, focal_plane: int = 0
    ) -> NDArray[Any]:
        """Decode one tile (``[rows, columns(, samples)]``); an omitted tile is background.

        Raises
        ------
        GridMismatchError
            The tile lies outside the grid, or the optical path does not exist.
        """
        if not (0 <= row < self.grid.tiles_down and 0 <= column < self.grid.tiles_across):
            raise GridMismatchError(
                f"tile ({row}, {column}) is outside the grid of "
                f"{self.grid.tiles_down}x{self.grid.tiles_across} tiles",
                attribute="tile",
            )
        return next(self._decode([(row, column)], self._path_index(optical_path), focal_plane))[1]

    def region(
        self,
        top: int,
        left: int,
        height: int,
        width: int,
        *,
        optical_path: str | int | None = None,
        focal_plane: int = 0,
    ) -> NDArray[Any]:
        """Return pixels ``[top:top+height, left:left+width]`` of the Total Pixel Matrix.

        Only the tiles overlapping the region are decoded. Pixels outside the matrix
        or in omitted tiles take :attr:`background`.

        Raises
        ------
        GridMismatchError
            The size is not positive, or the optical path does not exist.
        """
        if height < 1 or width < 1:
            raise GridMismatchError(
                f"a region of {height}x{width} pixels is empty", attribute="region"
            )
        path = self._path_index(optical_path)
        shape = (height, width) + ((self.samples_per_pixel,) if self.samples_per_pixel > 1 else ())
        out = np.full(shape, self.background, self.dtype)
        th, tw = self.tile_shape
        rows = range(max(top, 0) // th, -(-min(top + height, self.shape[0]) // th))
        columns = range(max(left, 0) // tw, -(-min(left + width, self.shape[1]) // tw))
        wanted = [(r, c) for r in rows for c in columns]
        for (r, c), tile in self._decode(wanted, path, focal_plane):
            _paste(out, tile, r * th - top, c * tw - left, self.shape, top, left)
        return out

    def read(self, *, optical_path: str | int | None = None, focal_plane: int = 0) -> NDArray[Any]:
        """Return the whole Total Pixel Matrix (mind the size of the finest levels)."""
        return self.region(0, 0, *self.shape, optical_path=optical_path, focal_plane=focal_plane)

    def _decode(
        self, wanted: Sequence[tuple[int, int]], path: int, plane: int
    ) -> Iterator[tuple[tuple[int, int], NDArray[Any]]]:
        """Yield each wanted tile, decoding the stored ones one image at a time."""
        by_instance: dict[int, list[tuple[tuple[int, int], int]]] = {}
        for r, c in wanted:
            found = self._tiles.get((path, plane, r, c))
            if found is None:
                yield (r, c), self._blank()
                continue
            by_instance.setdefault(found[0], []).append(((r, c), found[1]))
        for number, entries in by_instance.items():
            instance = self._instances[number]
            for start in range(0, len(entries), 256):
                part = entries[start : start + 256]
                frames = instance.decode([frame for _, frame in part])
                for (position, _), frame in zip(part, frames, strict=True):
                    yield position, frame

    def _blank(self) -> NDArray[Any]:
        shape = self.tile_shape + ((self.samples_per_pixel,) if self.samples_per_pixel > 1 else ())
        return np.full(shape, self.background, self.dtype)


def _paste(
    out: NDArray[Any],
    tile: NDArray[Any],
    row: int,
    column: int,
    matrix: tuple[int, int],
    top: int,
    left: int,
) -> None:
    """Copy ``tile`` (first pixel at ``out[row, column]``) into ``out``, clipped to the matrix."""
    height = min(tile.shape[0], matrix[0] - (row + top))
    width = min(tile.shape[1], matrix[1] - (column + left))
    r0, c0 = max(row, 0), max(column, 0)
    r1, c1 = min(row + height, out.shape[0]), min(column + width, out.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = tile[r0 - row : r1 - row, c0 - column : c1 - column]


def _frame_keys(instance: _Instance) -> Iterator[tuple[str, float, int, int]]:
    """Yield (optical path id, focal plane Z in µm, tile row, tile column) of each frame.

    A TILED_FULL image's planes lie at the Z of its Total Pixel Matrix Origin plus
    Spacing Between Slices (mm) per plane, as wsidicom reads them.
    """
    grid, frames = instance.grid, instance.frames
    if instance.organization is TileOrganization.TILED_FULL:
        paths = instance.paths or (OpticalPath(""),)
        offset = int_value(instance.ds, "ConcatenationFrameOffsetNumber", 0, source=instance.name)
        step = _plane_spacing_um(instance)
        for number in range(offset, offset + frames):
            tile, rest = number % grid.tile_count, number // grid.tile_count
            plane, path = rest % grid.focal_planes, rest // grid.focal_planes
            row, column = divmod(tile, grid.tiles_across)
            z = round(grid.origin[2] + plane * step, 6)
            yield paths[min(path, len(paths) - 1)].identifier, z, row, column
        return
    positions = frame_positions(instance.ds, frames, source=instance.name)
    default_path = instance.paths[0].identifier if instance.paths else ""
    for k in range(frames):
        row, column = int(positions.rows[k]), int(positions.columns[k])
        if row % grid.tile_rows or column % grid.tile_columns:
            raise DecodingError(
                f"frame {k + 1} starts at row {row + 1}, column {column + 1}, "
                f"not on the grid of {grid.tile_rows}x{grid.tile_columns} tiles",
                path=instance.name,
                attribute="PlanePositionSlideSequence",
                hint="radbridge reads tiles that lie on a regular grid",
            )
        z = float(positions.z_offsets[k]) if not np.isnan(positions.z_offsets[k]) else 0.0
        identifier = positions.optical_paths[k] or default_path
        yield identifier, z, row // grid.tile_rows, column // grid.tile_columns


def _plane_spacing_um(instance: _Instance) -> float:
    """Spacing Between Slices of a TILED_FULL image's focal planes, in µm (1 when unknown)."""
    shared = instance.ds.get("SharedFunctionalGroupsSequence")
    measures = shared[0].get("PixelMeasuresSequence") if shared else None
    value = measures[0].get("SpacingBetweenSlices") if measures else None
    try:
        spacing = float(value) * 1000 if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        spacing = 0.0
    return spacing if spacing > 0 else 1.0  # several planes stay apart, in order


class Slide:
    """The VOLUME images of one slide, as pyramid levels (finest first).

    Attributes
    ----------
    levels
        The levels, finest (largest Total Pixel Matrix) first.
    context
        Patient, study and specimen attributes to copy into objects made on the slide.
    frame_of_reference_uid
        The slide coordinate system all levels share.
    series_instance_uid, study_instance_uid
        Of the images.
    """

    def __init__(self, instances: Sequence[_Instance]) -> None:
        by_size: dict[tuple[int, int], list[_Instance]] = {}
        for instance in instances:
            key = (instance.grid.total_rows, instance.grid.total_columns)
            by_size.setdefault(key, []).append(instance)
        ordered = sorted(by_size.items(), key=lambda item: -item[0][0] * item[0][1])
        self.levels = tuple(Level(k, group) for k, (_, group) in enumerate(ordered))
        first = instances[0].ds
        self.context = Dataset()
        for keyword in (*CONTEXT_KEYWORDS, *SPECIMEN_KEYWORDS):
            if keyword in first:
                self.context[keyword] = copy.deepcopy(first[keyword])
        self.frame_of_reference_uid = str(first.get("FrameOfReferenceUID", "") or "")
        self.series_instance_uid = str(first.get("SeriesInstanceUID", "") or "")
        self.study_instance_uid = str(first.get("StudyInstanceUID", "") or "")
        self.position_reference_indicator = str(first.get("PositionReferenceIndicator", "") or "")

    def __repr__(self) -> str:
        return f"Slide({len(self.levels)} levels, series {self.series_instance_uid})"

    def level(self, index: int) -> Level:
        """Return level ``index`` (0: finest).

        Raises
        ------
        GridMismatchError
            There is no such level.
        """
        if not 0 <= index < len(self.levels):
            raise GridMismatchError(
                f"level {index} does not exist (the slide has {len(self.levels)}, 0 the finest)",
                attribute="level",
            )
        return self.levels[index]


def _files(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file())
        return [path]
    return [Path(p) for p in source]


def _open(path: Path) -> _Instance | None:
    """Open one file if it is a VL WSI VOLUME image, else None (logged)."""
    try:
        ds = open_mapped(path, raw_tags=(_PER_FRAME,))
    except NotDicomError:
        log.debug("skipping %s: not DICOM", path)
        return None
    if str(ds.get("SOPClassUID", "")) != VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE:
        return None
    image_type = [str(v) for v in ds.get("ImageType", [])]
    if len(image_type) > 2 and image_type[2] not in ("VOLUME", "THUMBNAIL"):
        return None  # LABEL and OVERVIEW images are not levels
    name = str(path)
    organization = str(ds.get("DimensionOrganizationType", "") or "TILED_SPARSE")
    paths = tuple(OpticalPath.from_dataset(item) for item in ds.get("OpticalPathSequence", []))
    return _Instance(
        ds,
        name,
        SlideGrid.from_dataset(ds, source=name),
        TileOrganization(organization)
        if organization in TileOrganization.__members__
        else TileOrganization.TILED_SPARSE,
        paths,
    )


def read_slide(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    series_instance_uid: str | None = None,
) -> Slide:
    """Open the VL Whole Slide Microscopy images of one slide (a folder or files).

    Pixel data is memory-mapped, not read: tiles are decoded when asked for.

    Parameters
    ----------
    source
        A folder (searched recursively), a file, or several files.
    series_instance_uid
        The series to read when the folder holds several.

    Raises
    ------
    UnsupportedObjectError
        No VL Whole Slide Microscopy VOLUME image was found.
    MixedSeriesError
        Several series or frames of reference, and no ``series_instance_uid``.
    """
    instances = [i for i in (_open(p) for p in _files(source)) if i is not None]
    if series_instance_uid is not None:
        instances = [i for i in instances if i.ds.get("SeriesInstanceUID") == series_instance_uid]
    if not instances:
        raise UnsupportedObjectError(
            "no VL Whole Slide Microscopy image (VOLUME) found",
            path=os.fspath(source) if isinstance(source, str | os.PathLike) else None,
            attribute="SOPClassUID",
            hint="give the folder of a slide's pyramid (SOP class 1.2.840.10008.5.1.4.1.1.77.1.6)",
        )
    series = sorted({str(i.ds.get("SeriesInstanceUID", "")) for i in instances})
    frames = {str(i.ds.get("FrameOfReferenceUID", "")) for i in instances}
    if len(series) > 1 or len(frames) > 1:
        raise MixedSeriesError(
            f"{len(series)} series / {len(frames)} frames of reference in one slide",
            path=os.fspath(source) if isinstance(source, str | os.PathLike) else None,
            attribute="SeriesInstanceUID",
            hint="pass series_instance_uid= (CLI: --series) with one of " + ", ".join(series),
        )
    return Slide(instances)
