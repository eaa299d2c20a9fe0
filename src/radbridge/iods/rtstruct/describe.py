"""Describe an ROI as read: its codes, algorithm and type, with safe defaults.

:func:`roi_description` turns an ROI of a read structure set into a
:class:`~radbridge.iods.rtstruct.types.ROIDescription` whose segment description
carries its codes: from the RT ROI Observations item when present, else from the
curated table by ROI name, else the generic SCT 85756007 "Tissue" (with a warning,
since the meaning is then only in the label). Unknown values get safe defaults with
a warning (readers tolerate).

Examples
--------
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series
>>> from radbridge.iods.rtstruct import encode_rtstruct, read_rtstruct
>>> ph = generate_phantom(slices=6, size=32)
>>> rs = read_rtstruct(encode_rtstruct(ph.labels.array == 5, Series.from_volume(ph.hu),
...                                    {1: "liver"}))
>>> roi_description(rs.rois[1]).segment.property_type.meaning
'Liver'
"""

from __future__ import annotations

import warnings
from dataclasses import replace

from pydicom.dataset import Dataset

from radbridge.codes import TISSUE
from radbridge.coding import Code
from radbridge.errors import EncodingError, InvalidAttributeError
from radbridge.iods.content import (
    AlgorithmIdentification,
    AlgorithmType,
    SegmentDescription,
    describe_labels,
)
from radbridge.iods.rtstruct.reader import ROI
from radbridge.iods.rtstruct.types import (
    ROIDescription,
    ROIGenerationAlgorithm,
    RTROIInterpretedType,
)

__all__ = ["roi_description"]


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
