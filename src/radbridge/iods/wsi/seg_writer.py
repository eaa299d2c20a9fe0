"""Write a Segmentation on one level of a whole slide image (tiled, in slide coordinates).

:func:`encode_slide_segmentation` turns a mask on a level's Total Pixel Matrix into a
BINARY or FRACTIONAL Segmentation whose frames are the level's tiles:

- ``TILED_FULL`` (default): every tile of every segment, in the implicit order
  (along a row of tiles, down the rows, then segment by segment); positions follow
  from the Total Pixel Matrix Origin, Image Orientation (Slide) and Pixel Spacing, so
  there are no per-frame functional groups;
- ``omit_empty_tiles=True``: tiles with no segmented pixel are left out. The standard's
  ``TILED_FULL`` needs every tile, so such a SEG is ``TILED_SPARSE``: each frame
  carries its Plane Position (Slide) (row and column in the Total Pixel Matrix and X,
  Y, Z in the slide coordinate system) and its segment number.

The SEG copies the slide's patient, study and specimen context, its frame of
reference and the level's geometry, and references the level's images (of one
optical path when ``optical_path`` is given). The Segmentation IOD has no Optical
Path module: the optical path is recorded through those references.

The mask is read one row of tiles at a time (and once per segment), so a
memory-mapped ``.npy`` of a 50,000 × 50,000 level needs no copy in memory; only the
encoded frames are held.

Examples
--------
>>> import numpy as np
>>> from radbridge.coding import sct
>>> from radbridge.iods.wsi import read_slide
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> mask = np.zeros(slide.level(0).shape, np.uint8)
>>> mask[5:15, 5:25] = 1
>>> from radbridge.iods.content import SegmentDescription
>>> tumour = SegmentDescription(
...     1, "Tumour", category=sct("49755003", "Morphologically Altered Structure"),
...     property_type=sct("108369006", "Neoplasm"), algorithm_type="MANUAL")
>>> seg = encode_slide_segmentation(mask, slide, [tumour])
>>> seg.DimensionOrganizationType, int(seg.NumberOfFrames), int(seg.TotalPixelMatrixRows)
('TILED_FULL', 25, 50)
>>> sparse = encode_slide_segmentation(mask, slide, [tumour], omit_empty_tiles=True)
>>> sparse.DimensionOrganizationType, int(sparse.NumberOfFrames)
('TILED_SPARSE', 6)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import ExplicitVRLittleEndian

from radbridge.errors import EncodingError, GridMismatchError
from radbridge.iods.common import SeriesOptions, choice, finish_file, new_instance, series_options
from radbridge.iods.content import AlgorithmIdentification, LabelMapping, SegmentDescription
from radbridge.iods.multiframe.dimensions import add_tiled_dimensions
from radbridge.iods.multiframe.functional_groups import raw_sequence
from radbridge.iods.multiframe.segmentation import (
    SEGMENTATION_STORAGE,
    FractionalType,
    SegmentationType,
    check_labels,
    check_stacked,
    describe_segments,
    pixel_module,
    segmentation_attributes,
)
from radbridge.iods.multiframe.tiles import SlideGrid, plane_position_slide_items
from radbridge.iods.source import write_context
from radbridge.iods.wsi.slide import Level, Slide

__all__ = ["encode_slide_segmentation"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Input:
    """The mask as given, and how to read one segment of one row of tiles from it."""

    array: Any  # an ndarray or anything sliced like one (np.memmap, zarr, ...)
    stacked: bool
    seg_type: SegmentationType
    max_fractional: int
    segments: int

    def strip(self, segment: int, top: int, bottom: int) -> NDArray[Any]:
        """Rows ``top:bottom`` of ``segment`` as bool (BINARY) or uint8 (FRACTIONAL)."""
        if self.stacked:
            part = np.asarray(self.array[segment - 1, top:bottom])
            return check_stacked(part, self.seg_type, self.max_fractional)
        part = np.asarray(self.array[top:bottom])
        if self.seg_type is SegmentationType.FRACTIONAL:  # one segment's values
            return check_stacked(part, self.seg_type, self.max_fractional)
        labels = check_labels(part)
        if segment == 1 and labels.size and int(labels.max()) > self.segments:
            raise EncodingError(
                f"the mask holds label {int(labels.max())} (rows {top}..{bottom - 1}) but "
                f"only segments 1..{self.segments} are described",
                attribute="segments",
                hint="describe every label of the mask (labels.json), or set the others to 0",
            )
        selected: NDArray[np.bool_] = labels == segment
        return selected


def _check_input(
    mask: Any, level: Level, seg_type: SegmentationType, segments: int, max_fractional: int
) -> _Input:
    shape = tuple(int(n) for n in getattr(mask, "shape", ()))
    if not shape:
        raise EncodingError(
            f"the mask must be an array, got {type(mask).__name__}", attribute="mask"
        )
    stacked = len(shape) == 3
    if len(shape) not in (2, 3) or shape[-2:] != level.shape:
        raise GridMismatchError(
            f"a mask of shape {shape} does not cover level {level.index} "
            f"({level.shape[0]} rows x {level.shape[1]} columns)",
            attribute="mask",
            hint="give [row, column] labels or [segment, row, column] masks of the "
            "level's Total Pixel Matrix size",
        )
    if stacked and shape[0] != segments:
        raise EncodingError(
            f"the stacked mask has {shape[0]} segments but {segments} are described",
            attribute="segments",
        )
    if not stacked and seg_type is SegmentationType.FRACTIONAL and segments != 1:
        raise EncodingError(
            f"{segments} segments are described, but a [row, column] mask holds the "
            "FRACTIONAL values of one",
            attribute="mask",
            hint="give [segment, row, column] values, one plane per segment",
        )
    return _Input(mask, stacked, seg_type, max_fractional, segments)


def _tiles_of_strip(strip: NDArray[Any], grid: SlideGrid) -> NDArray[Any]:
    """Cut one row of tiles (``strip``: up to tile_rows x total_columns) into padded tiles."""
    th, tw, across = grid.tile_rows, grid.tile_columns, grid.tiles_across
    if strip.shape != (th, across * tw):
        padded = np.zeros((th, across * tw), strip.dtype)
        padded[: strip.shape[0], : strip.shape[1]] = strip
        strip = padded
    return strip.reshape(th, across, tw).swapaxes(0, 1)


def _segment_tiles(
    source: _Input, grid: SlideGrid, segment: int, omit_empty: bool, kept: list[int]
) -> Iterator[NDArray[Any]]:
    """Yield the tiles of one segment, a row of tiles at a time; record kept tile indices."""
    for tile_row in range(grid.tiles_down):
        top = tile_row * grid.tile_rows
        strip = source.strip(segment, top, min(top + grid.tile_rows, grid.total_rows))
        tiles = _tiles_of_strip(strip, grid)
        first = tile_row * grid.tiles_across
        if omit_empty:
            full = tiles.reshape(len(tiles), -1).any(axis=1)
            tiles = tiles[full]
            kept.extend((first + np.flatnonzero(full)).tolist())
        else:
            kept.extend(range(first, first + grid.tiles_across))
        yield tiles


def _pixel_data(
    source: _Input, grid: SlideGrid, segments: int, omit_empty: bool
) -> tuple[bytearray, list[tuple[int, int]]]:
    """Encode every segment's tiles; return the Pixel Data and each frame's (segment, tile).

    The value grows in one buffer (no second copy at the end: the largest SEGs hold
    hundreds of MB of frames).
    """
    binary = source.seg_type is SegmentationType.BINARY
    data = _Buffer(None if omit_empty else segments * grid.tile_count * _frame_bytes(grid, binary))
    frames: list[tuple[int, int]] = []
    pending = np.zeros(0, bool)  # 1-bit frames run on across segment boundaries
    for segment in range(1, segments + 1):
        kept: list[int] = []
        for tiles in _segment_tiles(source, grid, segment, omit_empty, kept):
            if binary:
                flat = tiles.reshape(-1)
                if pending.size:
                    flat = np.concatenate([pending, flat])
                whole = flat.size - flat.size % 8
                data.add(np.packbits(flat[:whole], bitorder="little"))
                pending = flat[whole:]
            else:
                data.add(np.ascontiguousarray(tiles, np.uint8))
        frames.extend((segment, tile) for tile in kept)
    if pending.size:
        data.add(np.packbits(pending, bitorder="little"))
    return data.value(), frames


def _frame_bytes(grid: SlideGrid, binary: bool) -> float:
    pixels = grid.tile_rows * grid.tile_columns
    return pixels / 8 if binary else pixels


class _Buffer:
    """The Pixel Data value: one exact allocation when its size is known, else grown."""

    def __init__(self, size: float | None) -> None:
        self.data = bytearray((int(-(-size // 1)) + 1) // 2 * 2 if size is not None else 0)
        self.fixed = size is not None
        self.used = 0

    def add(self, array: NDArray[Any]) -> None:
        if self.fixed:
            self.data[self.used : self.used + array.nbytes] = array.data
        else:
            self.data += array.data
        self.used += array.nbytes

    def value(self) -> bytearray:
        if not self.fixed and len(self.data) % 2:
            self.data.append(0)
        return self.data


def encode_slide_segmentation(
    mask: Any,
    slide: Slide,
    segments: Sequence[SegmentDescription] | LabelMapping,
    *,
    level: int = 0,
    segmentation_type: SegmentationType | str = SegmentationType.BINARY,
    fractional_type: FractionalType | str = FractionalType.PROBABILITY,
    max_fractional_value: int = 255,
    omit_empty_tiles: bool = False,
    optical_path: str | None = None,
    algorithm: AlgorithmIdentification | None = None,
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Encode a mask on one level of a slide as a tiled DICOM Segmentation.

    Parameters
    ----------
    mask
        On the level's Total Pixel Matrix: labels ``[row, column]`` (0 background,
        1..N segments; for FRACTIONAL, one segment's values) or one plane per
        segment ``[segment, row, column]`` (0/1 for BINARY; probabilities in [0, 1]
        or integers 0..``max_fractional_value`` for FRACTIONAL). A NumPy array or
        anything sliced like one (a memory-mapped ``.npy``).
    slide
        The slide (:func:`~radbridge.iods.wsi.read_slide`).
    segments
        Descriptions of segments 1..N, or ``{label: name}`` resolved through the
        curated code table.
    level
        The pyramid level (0: finest) whose tiles and geometry the SEG takes.
    segmentation_type
        ``"binary"`` (default) or ``"fractional"``.
    fractional_type, max_fractional_value
        For FRACTIONAL: PROBABILITY or OCCUPANCY, and the stored value meaning 1.0.
    omit_empty_tiles
        Leave out tiles without segmented pixels (the SEG is then TILED_SPARSE).
    optical_path
        Reference only the level's images of this optical path (default: all).
    algorithm
        Algorithm of every segment when ``segments`` is a mapping.
    options
        Series/instance/equipment attributes, fixed UIDs and time.

    Returns
    -------
    pydicom.dataset.FileDataset
        Explicit VR Little Endian, ready to ``save_as`` or send.

    Raises
    ------
    EncodingError
        Values the segmentation type cannot hold, LABELMAP, or descriptions that do
        not match the mask.
    GridMismatchError
        The mask does not cover the level, or the level or optical path does not exist.
    """
    started = time.perf_counter()
    seg_type = choice(SegmentationType, segmentation_type, "SegmentationType")
    if seg_type is SegmentationType.LABELMAP:
        raise EncodingError(
            "radbridge writes BINARY and FRACTIONAL SEGs on slides",
            attribute="SegmentationType",
            hint="use segmentation_type='binary' (CLI: --type binary)",
        )
    frac_type = choice(FractionalType, fractional_type, "SegmentationFractionalType")
    if not 1 <= max_fractional_value <= 255:
        raise EncodingError(
            "max_fractional_value must be 1..255 (8-bit frames)", attribute="MaximumFractionalValue"
        )
    chosen = slide.level(level)
    descriptions = describe_segments(segments, algorithm)
    source = _check_input(mask, chosen, seg_type, len(descriptions), max_fractional_value)
    settings = series_options(
        options,
        None,
        default=SeriesOptions(series_description="Segmentation", content_label="SEGMENTATION"),
    )
    data, frames = _pixel_data(source, chosen.grid, len(descriptions), omit_empty_tiles)
    ds = _header(slide, chosen, descriptions, settings, optical_path)
    segmentation_attributes(
        ds,
        seg_type,
        frac_type,
        max_fractional_value,
        overlap=source.stacked,
        descriptions=descriptions,
    )
    _frames(ds, chosen, frames, omit_empty_tiles, len(descriptions))
    bits = 8 if seg_type is SegmentationType.FRACTIONAL else 1
    pixel_module(ds, chosen.grid.tile_rows, chosen.grid.tile_columns, bits)
    ds.NumberOfFrames = len(frames)
    # the buffer itself, not a copy (pydicom writes any bytes-like value)
    ds.add(DataElement(0x7FE00010, "OB", memoryview(data), validation_mode=config.IGNORE))
    copied = [element.keyword for element in slide.context]  # as the slide has them
    out = finish_file(ds, ExplicitVRLittleEndian, raw_explicit_le=True, as_given=copied)
    log.info(
        "encoded %s slide SEG %s: %d segments, %d frames (%s) in %.2f s",
        seg_type.value,
        ds.SOPInstanceUID,
        len(descriptions),
        len(frames),
        ds.DimensionOrganizationType,
        time.perf_counter() - started,
    )
    return out


def _header(
    slide: Slide,
    level: Level,
    descriptions: list[SegmentDescription],
    options: SeriesOptions,
    optical_path: str | None,
) -> Dataset:
    """Start the SEG: patient/study/specimen context, references, tile organisation."""
    ds = new_instance(SEGMENTATION_STORAGE, options, modality="SEG")
    write_context(ds, slide.context)
    ds.FrameOfReferenceUID = slide.frame_of_reference_uid
    ds.PositionReferenceIndicator = slide.position_reference_indicator or "SLIDE_CORNER"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    images = _source_images(level, optical_path)
    lossy = any(str(image.get("LossyImageCompression", "00")) == "01" for image in images)
    ds.LossyImageCompression = "01" if lossy else "00"
    ds.SourceImageSequence = [_reference(image) for image in images]
    series = Dataset()
    series.ReferencedInstanceSequence = [_reference(image) for image in images]
    series.SeriesInstanceUID = slide.series_instance_uid
    ds.ReferencedSeriesSequence = [series]
    # one plane of tiles per segment, whatever focal planes the level's images hold:
    # TILED_FULL readers take Total Pixel Matrix Focal Planes into the frame order
    replace(level.grid, focal_planes=1).tile_organization(ds)
    return ds


def _reference(image: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = image.SOPClassUID
    item.ReferencedSOPInstanceUID = image.SOPInstanceUID
    return item


def _source_images(level: Level, optical_path: str | None) -> list[Dataset]:
    images = list(level.datasets)
    if optical_path is None:
        return images
    if optical_path not in {p.identifier for p in level.optical_paths}:
        raise GridMismatchError(
            f"no optical path {optical_path!r} on level {level.index}",
            attribute="OpticalPathIdentifier",
            hint="use one of " + ", ".join(p.identifier for p in level.optical_paths),
        )
    return [image for image in images if optical_path in _path_ids(image)]


def _path_ids(image: Dataset) -> set[str]:
    return {
        str(item.get("OpticalPathIdentifier", "")) for item in image.get("OpticalPathSequence", [])
    }


def _frames(
    ds: Dataset,
    level: Level,
    frames: list[tuple[int, int]],
    sparse: bool,
    segments: int,
) -> None:
    """Dimension organisation, shared groups and (TILED_SPARSE) the per-frame positions."""
    add_tiled_dimensions(ds, sparse=sparse)
    shared = Dataset()
    shared.PixelMeasuresSequence = [level.grid.pixel_measures(_thickness(level))]
    if segments == 1 and not sparse:  # TILED_SPARSE frames name their segment (per frame)
        ident = Dataset()
        ident.ReferencedSegmentNumber = 1
        shared.SegmentIdentificationSequence = [ident]
    ds.SharedFunctionalGroupsSequence = [shared]
    if sparse:
        tiles = np.array([tile for _, tile in frames], np.int64)
        numbers = np.array([segment for segment, _ in frames], np.int64)
        items = plane_position_slide_items(level.grid, tiles, segments=numbers)
        ds[0x52009230] = raw_sequence(0x52009230, items)


def _thickness(level: Level) -> float | None:
    """Slice Thickness (mm) of the level's images, when they give one."""
    shared = level.datasets[0].get("SharedFunctionalGroupsSequence")
    measures = shared[0].get("PixelMeasuresSequence") if shared else None
    value = measures[0].get("SliceThickness") if measures else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
