"""Convert between Segmentations and RT Structure Sets, and outline either as a GSPS.

This module sits above the two families it joins (no family imports another, so a
conversion between two lives here, in the layer above them).

SEG → RTSTRUCT: each segment becomes an ROI with the same number, label,
colour and codes (written in RT ROI Observations), contoured on the source
series; each ROI names its segment in a Definition Source Sequence.
FRACTIONAL segments are contoured at the threshold's iso-level (0.5 unless
given) with sub-pixel interpolation, so exactly the voxels that
``Segmentation.label_volume`` puts inside a segment lie inside its contours.

SEG or RTSTRUCT → GSPS (:func:`seg_to_gsps`, :func:`rtstruct_to_gsps`): each segment
or ROI is outlined on its source images in a Grayscale Softcopy Presentation State,
with its label, number (the graphic group) and colour (the graphic layer).

RTSTRUCT → SEG: each ROI becomes a segment, numbered 1..N in ROI order, described
by :func:`~radbridge.iods.rtstruct.describe.roi_description` (codes from the ROI's
RT ROI Observations item, else from the curated table by ROI name, else the generic
SCT 85756007 "Tissue" with a warning).

Examples
--------
>>> import numpy as np
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series
>>> from radbridge.iods.seg import encode_segmentation, read_segmentation
>>> from radbridge.iods.seg import AlgorithmIdentification, SegmentDescription
>>> from radbridge.coding import sct
>>> ph = generate_phantom(slices=6, size=32)
>>> src = Series.from_volume(ph.hu)
>>> liver = SegmentDescription(1, "Liver", category=sct("123037004", "Anatomical Structure"),
...     property_type=sct("10200004", "Liver"), algorithm_type="MANUAL")
>>> seg = encode_segmentation((ph.labels.array == 5).astype(np.uint8), src, [liver])
>>> rs = seg_to_rtstruct(seg, src)
>>> rs.StructureSetROISequence[0].ROIName, rs.RTROIObservationsSequence[0].RTROIInterpretedType
('Liver', 'ORGAN')
>>> back = read_segmentation(rtstruct_to_seg(rs, src))
>>> back.segments[1].property_type.value
'10200004'
>>> bool(np.array_equal(back.label_volume(src.geometry).array, ph.labels.array == 5))
True
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from radbridge.errors import DecodingError, EncodingError, MissingAttributeError
from radbridge.iods.common import SeriesOptions, StackedMasks, series_options
from radbridge.iods.content import AlgorithmIdentification, SegmentDescription
from radbridge.iods.pr.types import Window
from radbridge.iods.pr.writer import OutlineOptions, encode_gsps
from radbridge.iods.rtstruct.describe import roi_description
from radbridge.iods.rtstruct.reader import StructureSet, read_rtstruct
from radbridge.iods.rtstruct.types import ROIDescription, RTROIInterpretedType
from radbridge.iods.rtstruct.writer import ContourOptions, encode_rtstruct
from radbridge.iods.seg.reader import Segmentation, read_segmentation
from radbridge.iods.seg.types import SegmentationType
from radbridge.iods.seg.writer import encode_segmentation
from radbridge.iods.source import Series

__all__ = ["rtstruct_to_gsps", "rtstruct_to_seg", "seg_to_gsps", "seg_to_rtstruct"]

SourceLike = Series | Sequence[Dataset]


def _source(source: SourceLike) -> Series:
    resolved = source if isinstance(source, Series) else Series.from_datasets(source)
    if "SpecificCharacterSet" in resolved.context and not resolved.context.SpecificCharacterSet:
        # An empty value means the default repertoire, but Type 1C forbids writing it empty.
        context = resolved.context.copy()
        del context.SpecificCharacterSet
        resolved = replace(resolved, context=context)
    return resolved


def _segments_on(
    seg: Segmentation | Dataset | str | os.PathLike[str], source: SourceLike
) -> tuple[Segmentation, Series, StackedMasks, Any]:
    """Read the SEG (if needed); return it, the source, its masks there and their array.

    FRACTIONAL arrays hold fractions in float64, as binarize() computes them, so
    outlines and label maps agree.
    """
    segmentation = seg if isinstance(seg, Segmentation) else read_segmentation(seg)
    resolved = _source(source)
    masks = segmentation.stacked_volume(resolved, fractional_as_float=False)
    array = masks.array
    if segmentation.segmentation_type is SegmentationType.FRACTIONAL:
        array = array.astype(np.float64) / float(segmentation.max_fractional_value)
    return segmentation, resolved, masks, array


def _disjoint_labels(
    segmentation: Segmentation, source: Series, numbers: Sequence[int]
) -> NDArray[Any] | None:
    """Return the SEG's described segments as one label map on ``source``, or None.

    LABELMAP segments never overlap; BINARY ones are tried unless Segments
    Overlap says YES, and give None when they do overlap. FRACTIONAL segments
    give None: they are outlined from their fractions (sub-pixel), which a label
    map does not keep. Values of segments the SEG does not describe are cleared
    slice by slice, as the stacked masks leave them out.
    """
    kind = segmentation.segmentation_type
    if kind is SegmentationType.FRACTIONAL or not numbers:
        return None
    declared = str(segmentation.dataset.get("SegmentsOverlap", "") or "").upper()
    if kind is SegmentationType.BINARY and declared == "YES":
        return None
    try:
        labels = segmentation.label_volume(source).array
    except DecodingError:  # segments overlap: the stacked path reads (or refuses) it again
        return None
    described = np.asarray(numbers)
    for plane in labels:
        plane[~np.isin(plane, described)] = 0
    return labels


def _rois_on(
    rtstruct: StructureSet | Dataset | str | os.PathLike[str],
    source: SourceLike,
    tolerance_mm: float | None,
    *,
    compact: bool = False,
) -> tuple[StructureSet, Series, NDArray[Any], tuple[int, ...]]:
    """Read the structure set (if needed); return it, the source, its ROIs filled there.

    The ROIs come as stacked masks ``[roi, slice, row, column]``, or with
    ``compact`` as :meth:`StructureSet.compact_masks` gives them (a label map
    of ROI positions 1..N when no ROIs overlap), and their numbers.

    Raises
    ------
    EncodingError
        The structure set has no ROI to convert.
    """
    structure_set = rtstruct if isinstance(rtstruct, StructureSet) else read_rtstruct(rtstruct)
    resolved = _source(source)
    if compact:
        array, numbers = structure_set.compact_masks(resolved, tolerance_mm=tolerance_mm)
    else:
        masks = structure_set.stacked_volume(resolved, tolerance_mm=tolerance_mm)
        array, numbers = masks.array, masks.segment_numbers
    if not numbers:
        raise EncodingError(
            "the structure set has no ROIs",
            path=structure_set.source,
            attribute="ROIContourSequence",
        )
    return structure_set, resolved, array, numbers


def seg_to_rtstruct(
    seg: Segmentation | Dataset | str | os.PathLike[str],
    source: SourceLike,
    *,
    contours: ContourOptions | None = None,
    interpreted_type: RTROIInterpretedType | str | None = None,
    allow_empty: bool = False,
    structure_set_label: str = "RADBRIDGE",
    options: SeriesOptions | None = None,
    threshold: float | None = None,
    series: SeriesOptions | None = None,
) -> FileDataset:
    """Contour a Segmentation's segments on its source series as an RT Structure Set.

    Parameters
    ----------
    seg
        The Segmentation (read or not).
    source
        The source series the SEG was made on (data sets or Series).
    contours, allow_empty, structure_set_label, options
        See :func:`~radbridge.iods.rtstruct.encode_rtstruct`.
    interpreted_type
        RT ROI Interpreted Type for every ROI (default: GTV for morphologically
        altered structures, ORGAN for anything else).
    threshold
        FRACTIONAL: the fraction contoured (default ``contours.level``, 0.5),
        the same rule as :meth:`~radbridge.iods.seg.Segmentation.label_volume`.
    series
        Deprecated name of ``options``.
    """
    segmentation, resolved, masks, array = _segments_on(seg, source)
    if not str(segmentation.dataset.get("SOPInstanceUID", "") or "").strip():
        raise MissingAttributeError(  # each ROI refers to the SEG it was contoured from
            "the SEG has no SOP Instance UID, so the structure set cannot refer to it",
            path=segmentation.source,
            attribute="SOPInstanceUID",
            hint="the file is damaged; export the SEG again from where it was made",
        )
    contour_options = contours or ContourOptions()
    if threshold is not None:
        contour_options = replace(contour_options, level=threshold)
    rois = [
        ROIDescription.from_segment(
            _complete_algorithm(segmentation.segments[n], segmentation.source),
            interpreted_type=interpreted_type,
        )
        for n in masks.segment_numbers
    ]
    return encode_rtstruct(
        array,
        resolved,
        rois,
        contours=contour_options,
        allow_empty=allow_empty,
        structure_set_label=structure_set_label,
        options=series_options(
            options, series, default=SeriesOptions(series_description="RT Structure Set (from SEG)")
        ),
        derived_from=segmentation.dataset,
    )


def _complete_algorithm(segment: SegmentDescription, source: str | None) -> SegmentDescription:
    """Fill in an algorithm name or version the SEG left empty (both are Type 1 in RTSTRUCT)."""
    algorithm = segment.algorithm
    if algorithm is None or (algorithm.name.strip() and algorithm.version.strip()):
        return segment
    warnings.warn(
        f"{source or 'SEG'}: segment {segment.segment_number} names its algorithm without a "
        "name or version; 'unknown' is written in its place",
        stacklevel=3,
    )
    return replace(
        segment,
        algorithm=replace(
            algorithm,
            name=algorithm.name.strip() or "unknown",
            version=algorithm.version.strip() or "unknown",
        ),
    )


def rtstruct_to_seg(
    rtstruct: StructureSet | Dataset | str | os.PathLike[str],
    source: SourceLike,
    *,
    segmentation_type: SegmentationType | str = SegmentationType.BINARY,
    algorithm: AlgorithmIdentification | None = None,
    tolerance_mm: float | None = None,
    options: SeriesOptions | None = None,
    series: SeriesOptions | None = None,
    **encode_options: Any,
) -> FileDataset:
    """Rasterise an RT Structure Set's ROIs on the source series as a Segmentation.

    Parameters
    ----------
    rtstruct
        The structure set (read or not).
    source
        The series it was drawn on (data sets or Series).
    segmentation_type
        ``"binary"`` (default; ROIs may overlap) or ``"labelmap"``.
    algorithm
        Algorithm for AUTOMATIC ROIs that do not identify theirs.
    tolerance_mm
        Off-plane tolerance of the reader (see :meth:`StructureSet.mask`).
    options
        Series/instance attributes of the SEG.
    series
        Deprecated name of ``options``.
    encode_options
        Further options of :func:`~radbridge.iods.seg.encode_segmentation`.

    Returns
    -------
    pydicom.dataset.FileDataset
        Segment *k* is the *k*-th ROI of the structure set (labels keep the
        ROI names).
    """
    # ROIs that do not overlap come as one label map, not one volume each
    structure_set, resolved, array, numbers = _rois_on(rtstruct, source, tolerance_mm, compact=True)
    segments = []
    for k, number in enumerate(numbers):
        description = roi_description(
            structure_set.rois[number], algorithm=algorithm, source=structure_set.source
        )
        assert description.segment is not None  # roi_description always codes the ROI
        segments.append(replace(description.segment, segment_number=k + 1))
    return encode_segmentation(
        array,
        resolved,
        segments,
        segmentation_type=segmentation_type,
        options=series_options(
            options,
            series,
            default=SeriesOptions(
                series_description="Segmentation (from RTSTRUCT)", content_label="SEGMENTATION"
            ),
        ),
        **encode_options,
    )


def seg_to_gsps(
    seg: Segmentation | Dataset | str | os.PathLike[str],
    source: SourceLike,
    *,
    outlines: OutlineOptions | None = None,
    window: Window | tuple[float, float] | None = None,
    allow_empty: bool = False,
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Outline a Segmentation's segments on its source images as a Grayscale Softcopy PS.

    Each segment keeps its number (the Graphic Group ID), label and recommended
    colour (its graphic layer's). FRACTIONAL segments are outlined at
    ``outlines.level`` (0.5 unless given), as :func:`seg_to_rtstruct` contours them.
    Segments that do not overlap (LABELMAP; BINARY unless they do) are read as one
    label map (:meth:`Segmentation.label_volume`), so memory does not grow with
    their number; overlapping and FRACTIONAL segments need one mask (or fraction
    map) each, as the encoder takes them.

    Parameters
    ----------
    seg
        The Segmentation (read or not).
    source
        The source series the SEG was made on (data sets or Series).
    outlines, window, allow_empty, options
        See :func:`~radbridge.iods.pr.encode_gsps`.

    Examples
    --------
    >>> from pydicom import examples
    >>> from radbridge.coding import sct
    >>> from radbridge.iods.pr.reader import read_gsps
    >>> source = Series.from_datasets([examples.ct])
    >>> tissue = sct("85756007", "Tissue")
    >>> liver = SegmentDescription(1, "Liver", category=tissue, property_type=tissue,
    ...                            algorithm_type="MANUAL", display_rgb=(221, 130, 101))
    >>> mask = np.zeros(source.geometry.shape, np.uint8)
    >>> mask[0, 20:40, 30:50] = 1
    >>> state = read_gsps(seg_to_gsps(encode_segmentation(mask, source, [liver]), source))
    >>> state.segments, bool(np.array_equal(state.stacked_volume(source).array[0], mask))
    ({1: 'Liver'}, True)
    """
    segmentation = seg if isinstance(seg, Segmentation) else read_segmentation(seg)
    resolved = _source(source)
    numbers = tuple(sorted(segmentation.segment_numbers))
    array = _disjoint_labels(segmentation, resolved, numbers)
    if array is None:  # overlapping or FRACTIONAL segments: one mask (or fraction map) each
        segmentation, resolved, _, array = _segments_on(segmentation, resolved)
    return encode_gsps(
        array,
        resolved,
        [segmentation.segments[n] for n in numbers],
        outlines=outlines,
        window=window,
        allow_empty=allow_empty,
        options=series_options(
            options, None, default=SeriesOptions(series_description="Outlines (from SEG)")
        ),
    )


def rtstruct_to_gsps(
    rtstruct: StructureSet | Dataset | str | os.PathLike[str],
    source: SourceLike,
    *,
    outlines: OutlineOptions | None = None,
    window: Window | tuple[float, float] | None = None,
    tolerance_mm: float | None = None,
    allow_empty: bool = False,
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Outline an RT Structure Set's ROIs on its source images as a Grayscale Softcopy PS.

    The ROIs are filled on the source grid (as :meth:`StructureSet.stacked_volume`
    does) and outlined again, so the outlines follow pixel edges on every image;
    each ROI keeps its number, name and ROI Display Color. ROIs that do not
    overlap are filled slice by slice into one label map
    (:meth:`StructureSet.compact_masks`), so memory does not grow with their
    number; overlapping ROIs need one mask each, as the encoder takes them.

    Parameters
    ----------
    rtstruct
        The structure set (read or not).
    source
        The series it was drawn on (data sets or Series).
    tolerance_mm
        Off-plane tolerance of the reader (see :meth:`StructureSet.mask`).
    outlines, window, allow_empty, options
        See :func:`~radbridge.iods.pr.encode_gsps`.

    Examples
    --------
    >>> from pydicom import examples
    >>> from radbridge.iods.pr.reader import read_gsps
    >>> source = Series.from_datasets([examples.ct])
    >>> mask = np.zeros(source.geometry.shape, np.uint8)
    >>> mask[0, 20:40, 30:50] = 2
    >>> rs = encode_rtstruct(mask, source, {2: "GTV_1"})
    >>> state = read_gsps(rtstruct_to_gsps(rs, source, window=(40, 400)))
    >>> state.segments, bool(np.array_equal(state.label_volume(source).array, mask))
    ({2: 'GTV_1'}, True)
    """
    # ROIs that do not overlap come as one label map, not one volume each
    structure_set, resolved, array, numbers = _rois_on(rtstruct, source, tolerance_mm, compact=True)
    rois = {
        n: {
            "label": structure_set.rois[n].name or f"ROI {n}",
            "rgb": structure_set.rois[n].display_rgb,
        }
        for n in numbers
    }
    if array.ndim == 3:
        array = _numbered(array, numbers)
    else:
        _in_number_order(array, numbers)  # encode_gsps pairs stacked masks with sorted numbers
    return encode_gsps(
        array,
        resolved,
        rois,
        outlines=outlines,
        window=window,
        allow_empty=allow_empty,
        options=series_options(
            options, None, default=SeriesOptions(series_description="Outlines (from RTSTRUCT)")
        ),
    )


def _in_number_order(array: NDArray[Any], numbers: Sequence[int]) -> None:
    """Put stacked masks ``[roi, ...]`` in ascending ROI number, in place.

    A structure set may list its ROIs in any order (PS3.3 C.8.8.5 asks only for
    unique numbers); :func:`~radbridge.iods.pr.encode_gsps` pairs stacked masks
    with the segments sorted by number. Each cycle of the permutation moves its
    masks through one mask of scratch, not a copy of the stack.
    """
    order = sorted(range(len(numbers)), key=lambda i: numbers[i])
    moved = [False] * len(order)
    for start in range(len(order)):
        if moved[start] or order[start] == start:
            continue
        scratch = array[start].copy()
        i = start
        while order[i] != start:  # position i takes the mask at order[i], not yet moved
            array[i] = array[order[i]]
            moved[i] = True
            i = order[i]
        array[i] = scratch
        moved[i] = True


def _numbered(labels: NDArray[Any], numbers: Sequence[int]) -> NDArray[Any]:
    """Turn a label map of ROI positions 1..N into one of ROI numbers, slice by slice.

    In place when the numbers fit its type (one slice of scratch), else into a new
    label map of the smallest type that holds them.
    """
    if min(numbers) < 1:
        return labels  # encode_gsps refuses such numbers before it reads the mask
    lut = np.array([0, *numbers], np.min_scalar_type(max(numbers)))
    out = labels if np.can_cast(lut.dtype, labels.dtype) else np.empty(labels.shape, lut.dtype)
    for k, plane in enumerate(labels):
        out[k] = lut[plane]
    return out
