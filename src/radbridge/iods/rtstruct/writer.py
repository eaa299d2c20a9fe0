r"""Write RT Structure Sets: masks on a source series → closed planar contours.

The writer is strict: once :func:`encode_rtstruct` returns, the data set is a
conformant RT Structure Set whose contours reproduce the mask; bad input (a
mask off the source grid, an ROI without voxels, an unknown interpreted type,
labels nobody described) is refused with an :class:`~radbridge.errors.EncodingError`
or :class:`~radbridge.errors.GridMismatchError` before anything is built.

How contours are made (see :mod:`radbridge.iods.contours`): marching
squares per slice, vertices half-way between inside and outside pixel centres
(or at the interpolated iso-level for probability maps), collinear vertices
removed (lossless), optionally Douglas-Peucker within ``tolerance_mm``. Each
contour is CLOSED_PLANAR on its image, in patient coordinates (LPS, mm), and
references that image in its Contour Image Sequence.

Examples
--------
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series
>>> from radbridge.iods.seg import AlgorithmIdentification
>>> ph = generate_phantom(slices=6, size=32)
>>> rs = encode_rtstruct(
...     ph.labels.array, Series.from_volume(ph.hu),
...     {1: "Body", 2: "Lung_L", 3: "Lung_R", 4: "Bone", 5: "Liver"},
...     algorithm=AlgorithmIdentification("phantom-truth", "1"), allow_empty=True,
... )
>>> rs.Modality, [r.ROIName for r in rs.StructureSetROISequence][:3]
('RTSTRUCT', ['Body', 'Lung_L', 'Lung_R'])
>>> rs.ROIContourSequence[0].ContourSequence[0].ContourGeometricType
'CLOSED_PLANAR'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.tag import Tag

from radbridge.errors import EncodingError
from radbridge.geometry import Volume
from radbridge.iods.common import (
    SeriesOptions,
    choice,
    finish_file,
    little_endian_for,
    series_options,
)
from radbridge.iods.content import AlgorithmIdentification, SegmentDescription
from radbridge.iods.contours import check_outline_settings, slice_polygons
from radbridge.iods.regions import mask_on_source, region_masks
from radbridge.iods.rtstruct.modules import build_structure_set
from radbridge.iods.rtstruct.types import (
    ContourGeometricType,
    HoleStyle,
    ROIDescription,
    ROISpec,
    RTROIInterpretedType,
    describe_rois,
)
from radbridge.iods.source import Series, SeriesLike, image_reference, resolve_source
from radbridge.iods.threshold import DEFAULT_THRESHOLD

__all__ = ["ContourOptions", "encode_rtstruct", "format_points"]

log = logging.getLogger(__name__)

_CONTOUR_DATA = Tag(0x30060050)


@dataclass(frozen=True)
class ContourOptions:
    """How masks become contours.

    Parameters
    ----------
    hole_style
        SEPARATE (default: one contour per boundary, even-odd), KEYHOLE (one
        contour per island, holes joined by zero-width channels) or XOR
        (separate CLOSEDPLANAR_XOR contours).
    tolerance_mm
        Douglas-Peucker tolerance: every dropped vertex lies within this
        distance (mm, in the image plane) of the written contour. 0 (default)
        drops only collinear vertices, which loses nothing.
    level
        Iso-level for probability maps (stacked float input): pixels whose
        value is at least this are inside (the rule of
        :func:`radbridge.iods.threshold.binarize`, 0.5 by default); binary
        masks are contoured half-way between inside and outside pixels.
    """

    hole_style: HoleStyle | str = HoleStyle.SEPARATE
    tolerance_mm: float = 0.0
    level: float = DEFAULT_THRESHOLD

    def __post_init__(self) -> None:
        hole_style = choice(HoleStyle, self.hole_style, "hole_style", what="hole style")
        object.__setattr__(self, "hole_style", hole_style)
        check_outline_settings(self.tolerance_mm, self.level)


def _resolve_source(source: SeriesLike) -> Series:
    resolved = resolve_source(
        source,
        consequence="contour coordinates would be meaningless",
        hint="contour images that have a FrameOfReferenceUID (CT, MR, PET do)",
    )
    if not resolved.slice_refs:
        log.warning(
            "the source has no instance references: contours will not name their images, "
            "which many planning systems need"
        )
    return resolved


def _ds(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_points(points: NDArray[np.float64]) -> bytes:
    r"""Encode points as Contour Data (DS): 0.1 µm resolution, trailing zeros trimmed.

    Examples
    --------
    >>> format_points(np.array([[1.5, -0.00001, 120.0]]))
    b'1.5\\0\\120 '
    """
    data = "\\".join(_ds(v) for v in points.ravel().tolist()).encode("ascii")
    return data + b" " if len(data) % 2 else data


def _contour_sequence(
    volume: NDArray[Any], source: Series, options: ContourOptions
) -> tuple[list[Dataset], int]:
    """Contour Sequence items of one ROI and the longest Contour Data (bytes)."""
    geometry = source.geometry
    positions = source.slice_positions()
    steps = geometry.affine[:3, 1:3]  # row step, column step (mm)
    geometric_type = (
        ContourGeometricType.CLOSEDPLANAR_XOR
        if options.hole_style is HoleStyle.XOR
        else ContourGeometricType.CLOSED_PLANAR
    )
    items: list[Dataset] = []
    longest = 0
    polygons_by_slice = slice_polygons(
        volume,
        level=options.level,
        tolerance=options.tolerance_mm,
        spacing=geometry.pixel_spacing,
        join_holes=options.hole_style is HoleStyle.KEYHOLE,
    )
    for k, polygons in polygons_by_slice:
        for polygon in polygons:
            lps = positions[k] + polygon @ steps.T
            item = Dataset()
            if source.slice_refs:
                item.ContourImageSequence = [image_reference(source.slice_refs[k])]
            item.ContourGeometricType = geometric_type.value
            item.NumberOfContourPoints = len(lps)
            item.ContourNumber = len(items) + 1
            data = format_points(lps)
            longest = max(longest, len(data))
            item[_CONTOUR_DATA] = RawDataElement(
                _CONTOUR_DATA, "DS", len(data), data, 0, False, True
            )
            items.append(item)
    return items, longest


def encode_rtstruct(
    mask: NDArray[Any] | Volume,
    source: SeriesLike,
    rois: Sequence[ROIDescription | SegmentDescription]
    | Mapping[int, ROISpec]
    | Mapping[str, ROISpec],
    *,
    contours: ContourOptions | None = None,
    algorithm: AlgorithmIdentification | None = None,
    interpreted_type: RTROIInterpretedType | str | None = None,
    allow_empty: bool = False,
    structure_set_label: str = "RADBRIDGE",
    options: SeriesOptions | None = None,
    derived_from: Dataset | None = None,
    series: SeriesOptions | None = None,
) -> FileDataset:
    """Encode masks as an RT Structure Set on their source series.

    Parameters
    ----------
    mask
        A label map ``[slice, row, column]`` (0 background, label value = ROI
        number), or stacked masks ``[roi, slice, row, column]`` (booleans, or
        probabilities in [0, 1] contoured at ``contours.level`` with sub-pixel
        interpolation) in the order of ``rois`` sorted by number. On the
        source grid, in its slice order; a :class:`~radbridge.geometry.Volume`
        must lie on that grid.
    source
        The source images (headers suffice), a :class:`Series`, or a
        ``Volume`` (then contours cannot name their images).
    rois
        :class:`ROIDescription` items, SEG segment descriptions, or
        ``{label: name or spec}`` (see :func:`describe_rois`).
    contours
        Hole style, simplification tolerance (mm) and iso-level.
    algorithm
        The algorithm of ROIs given by name (without it they are MANUAL).
    interpreted_type
        RT ROI Interpreted Type of ROIs that do not carry one.
    allow_empty
        Write described ROIs without voxels as ROIs without contours instead
        of refusing them.
    structure_set_label
        Structure Set Label (at most 16 characters).
    options
        Series/instance/equipment attributes and fixed UIDs/time.
    derived_from
        The Segmentation the masks were read from: each ROI then names its
        segment in a Definition Source Sequence.
    series
        Deprecated name of ``options``.

    Returns
    -------
    pydicom.dataset.FileDataset
        Ready to ``save_as``. Explicit VR Little Endian, or Implicit VR Little
        Endian when a contour's data would exceed the 64 KiB an explicit-VR DS
        element can hold.
    """
    started = time.perf_counter()
    contour_options = contours or ContourOptions()
    settings = series_options(
        options,
        series,
        default=SeriesOptions(series_description="RT Structure Set", series_number=301),
    )
    if not structure_set_label.strip() or len(structure_set_label) > 16:
        raise EncodingError(
            "a structure set label needs 1 to 16 characters", attribute="StructureSetLabel"
        )
    resolved = _resolve_source(source)
    descriptions = describe_rois(rois, algorithm=algorithm, interpreted_type=interpreted_type)
    array = mask_on_source(
        mask,
        resolved,
        what="ROI",
        register_hint="contour the source series itself, or register the mask to it first",
    )
    by_number = {roi.roi_number: roi for roi in descriptions}
    sequences: list[tuple[ROIDescription, list[Dataset]]] = []
    longest = 0
    for number, volume in region_masks(array, list(by_number), what="ROI"):
        roi = by_number[number]
        items, size = _contour_sequence(volume, resolved, contour_options)
        if not items and not allow_empty:
            raise EncodingError(
                f"ROI {roi.roi_number} ({roi.name!r}) has no voxels in the mask",
                attribute="mask",
                hint="remove it from the ROI descriptions, or pass allow_empty=True "
                "(CLI: --allow-empty) to write it without contours",
            )
        sequences.append((roi, items))
        longest = max(longest, size)
    ds = build_structure_set(resolved, sequences, settings, structure_set_label, derived_from)
    out = finish_file(ds, little_endian_for(longest, "a contour's Contour Data"))
    log.info(
        "encoded RTSTRUCT %s: %d ROIs, %d contours in %.2f s",
        ds.SOPInstanceUID,
        len(sequences),
        sum(len(items) for _, items in sequences),
        time.perf_counter() - started,
    )
    return out
