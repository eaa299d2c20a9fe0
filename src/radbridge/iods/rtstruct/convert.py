"""Convert between Segmentations and RT Structure Sets, keeping labels, colours and codes.

SEG → RTSTRUCT: each segment becomes an ROI with the same number, label,
colour and codes (written in RT ROI Observations), contoured on the source
series; each ROI names its segment in a Definition Source Sequence.
FRACTIONAL segments are contoured at the threshold's iso-level (0.5 unless
given) with sub-pixel interpolation, so exactly the voxels that
``Segmentation.label_volume`` puts inside a segment lie inside its contours.

RTSTRUCT → SEG: each ROI becomes a segment, numbered 1..N in ROI order. Codes
come from the ROI's RT ROI Observations item when present, else from the
curated table by ROI name, else the generic SCT 85756007 "Tissue" (with a
warning, since the meaning is then only in the label).

Examples
--------
>>> import numpy as np
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import SourceSeries
>>> from radbridge.iods.seg import encode_segmentation, read_segmentation
>>> from radbridge.iods.seg import AlgorithmIdentification, SegmentDescription
>>> from radbridge.coding import sct
>>> ph = generate_phantom(slices=6, size=32)
>>> src = SourceSeries.from_volume(ph.hu)
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
from pydicom.dataset import Dataset, FileDataset

from radbridge.coding import Code, sct
from radbridge.errors import EncodingError, InvalidAttributeError
from radbridge.iods.common import SeriesOptions, series_options
from radbridge.iods.rtstruct.reader import ROI, StructureSet, read_rtstruct
from radbridge.iods.rtstruct.types import (
    ROIDescription,
    ROIGenerationAlgorithm,
    RTROIInterpretedType,
)
from radbridge.iods.rtstruct.writer import ContourOptions, encode_rtstruct
from radbridge.iods.seg.descriptions import (
    AlgorithmIdentification,
    AlgorithmType,
    SegmentDescription,
    describe_labels,
)
from radbridge.iods.seg.reader import Segmentation, read_segmentation
from radbridge.iods.seg.writer import SegmentationType, encode_segmentation
from radbridge.iods.source import SourceSeries

__all__ = ["roi_description", "rtstruct_to_seg", "seg_to_rtstruct"]

#: Generic code for ROIs whose meaning is known only from their name.
TISSUE = sct("85756007", "Tissue")

SourceLike = SourceSeries | Sequence[Dataset]


def _source(source: SourceLike) -> SourceSeries:
    resolved = source if isinstance(source, SourceSeries) else SourceSeries.from_datasets(source)
    if "SpecificCharacterSet" in resolved.context and not resolved.context.SpecificCharacterSet:
        # An empty value means the default repertoire, but Type 1C forbids writing it empty.
        context = resolved.context.copy()
        del context.SpecificCharacterSet
        resolved = replace(resolved, context=context)
    return resolved


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
        The source series the SEG was made on (data sets or SourceSeries).
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
    segmentation = seg if isinstance(seg, Segmentation) else read_segmentation(seg)
    resolved = _source(source)
    contour_options = contours or ContourOptions()
    if threshold is not None:
        contour_options = replace(contour_options, level=threshold)
    masks = segmentation.stacked_volume(resolved, fractional_as_float=False)
    array = masks.array
    if segmentation.segmentation_type is SegmentationType.FRACTIONAL:
        # Fractions in float64, as binarize() computes them, so contours and label maps agree.
        array = array.astype(np.float64) / float(segmentation.max_fractional_value)
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


def roi_description(
    roi: ROI,
    *,
    algorithm: AlgorithmIdentification | None = None,
    source: str | None = None,
) -> ROIDescription:
    """Describe an ROI as read, leniently: unknown values get safe defaults with a warning.

    Codes come from the RT ROI Observations item, else from the curated code
    table by ROI name, else SCT 85756007 "Tissue".
    """
    where = f"{source or 'RTSTRUCT'} ROI {roi.number} ({roi.name!r})"
    try:
        interpreted = RTROIInterpretedType(roi.interpreted_type)
    except ValueError:
        if roi.interpreted_type:
            warnings.warn(
                f"{where}: RT ROI Interpreted Type {roi.interpreted_type!r} is not a Defined "
                "Term; using ORGAN",
                stacklevel=2,
            )
        interpreted = RTROIInterpretedType.ORGAN
    generation = _generation(roi)
    found = _derivation_algorithm(roi) or algorithm
    if generation is not ROIGenerationAlgorithm.MANUAL and found is None:
        warnings.warn(
            f"{where}: {generation.value} without an algorithm identification; recorded as "
            "algorithm 'unknown'",
            stacklevel=2,
        )
        found = AlgorithmIdentification("unknown", "unknown")
    segment = _segment(roi, where)
    algorithm_type = AlgorithmType(generation.value)
    segment = replace(
        segment,
        algorithm_type=algorithm_type,
        algorithm=found,
        display_rgb=roi.display_rgb,
        description=roi.description,
    )
    name = roi.name[:64] if roi.name.strip() else f"ROI {roi.number}"
    return ROIDescription(
        roi.number,
        name,
        interpreted_type=interpreted,
        generation_algorithm=generation,
        algorithm=found,
        display_rgb=roi.display_rgb,
        description=roi.description,
        segment=replace(segment, label=name),
    )


def _generation(roi: ROI) -> ROIGenerationAlgorithm:
    try:
        return ROIGenerationAlgorithm(roi.generation_algorithm)
    except ValueError:
        return ROIGenerationAlgorithm.MANUAL


def _derivation_algorithm(roi: ROI) -> AlgorithmIdentification | None:
    items = roi.structure_item.get("ROIDerivationAlgorithmIdentificationSequence") or []
    if not items:
        return None
    found = AlgorithmIdentification.from_dataset(items[0])
    if not found.name:
        return None
    return found if found.version else replace(found, version="unknown")


def _codes(item: Dataset | None, keyword: str) -> Code | None:
    sequence = item.get(keyword) if item is not None else None
    if not sequence:
        return None
    try:
        return Code.from_dataset(sequence[0])
    except InvalidAttributeError:
        return None


def _segment(roi: ROI, where: str) -> SegmentDescription:
    observation = roi.observation_item
    category = _codes(observation, "SegmentedPropertyCategoryCodeSequence")
    property_type = _codes(observation, "RTROIIdentificationCodeSequence")
    if category is not None and property_type is not None:
        assert observation is not None
        identification = observation.RTROIIdentificationCodeSequence[0]
        modifiers = tuple(
            Code.from_dataset(m)
            for m in identification.get("SegmentedPropertyTypeModifierCodeSequence", []) or []
        )
        region_item = (observation.get("AnatomicRegionSequence") or [None])[0]
        region = Code.from_dataset(region_item) if region_item is not None else None
        region_modifiers = tuple(
            Code.from_dataset(m)
            for m in (region_item.get("AnatomicRegionModifierSequence", []) if region_item else [])
        )
        return SegmentDescription(
            roi.number,
            roi.name[:64] or f"ROI {roi.number}",
            category=category,
            property_type=property_type,
            property_type_modifiers=modifiers,
            anatomic_region=region,
            anatomic_region_modifiers=region_modifiers,
            algorithm_type="MANUAL",
        )
    try:
        (looked_up,) = describe_labels({roi.number: roi.name}, algorithm_type="MANUAL")
        return looked_up
    except (InvalidAttributeError, ImportError, EncodingError):
        warnings.warn(
            f"{where}: no codes in the file and the name is not in the code table; "
            'coding it as SCT 85756007 "Tissue" (the label keeps the name)',
            stacklevel=3,
        )
        return SegmentDescription(
            roi.number,
            roi.name[:64] or f"ROI {roi.number}",
            category=TISSUE,
            property_type=TISSUE,
            algorithm_type="MANUAL",
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
        The series it was drawn on (data sets or SourceSeries).
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
    structure_set = rtstruct if isinstance(rtstruct, StructureSet) else read_rtstruct(rtstruct)
    resolved = _source(source)
    masks = structure_set.stacked_volume(resolved, tolerance_mm=tolerance_mm)
    segments = []
    for k, number in enumerate(masks.segment_numbers):
        description = roi_description(
            structure_set.rois[number], algorithm=algorithm, source=structure_set.source
        )
        assert description.segment is not None  # roi_description always codes the ROI
        segments.append(replace(description.segment, segment_number=k + 1))
    if not segments:
        raise EncodingError(
            "the structure set has no ROIs",
            path=structure_set.source,
            attribute="ROIContourSequence",
        )
    return encode_segmentation(
        masks.array,
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
