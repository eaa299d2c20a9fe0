"""What every Segmentation writer shares: SOP classes, enums, value checks, modules.

The SEG family (patient-space segmentations) and the slide-microscopy family (SEGs on
a whole-slide image level) write the same Segmentation Image module from the same
checked values; both import these, never each other.

Examples
--------
>>> import numpy as np
>>> check_stacked(np.array([[[0.0, 0.5, 1.0]]]), SegmentationType.FRACTIONAL, 255).tolist()
[[[0, 128, 255]]]
>>> check_labels(np.array([[0, 2], [1, 0]])).dtype
dtype('uint8')
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.errors import EncodingError
from radbridge.iods.content import (
    AlgorithmIdentification,
    AlgorithmType,
    LabelMapping,
    SegmentDescription,
    check_numbering,
    describe_labels,
)

__all__ = [
    "LABEL_MAP_SEGMENTATION_STORAGE",
    "SEGMENTATION_STORAGE",
    "FractionalType",
    "SegmentationType",
    "check_labels",
    "check_stacked",
    "describe_segments",
    "pixel_module",
    "segmentation_attributes",
]

#: Segmentation Storage.
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
#: Label Map Segmentation Storage.
LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"


class SegmentationType(enum.StrEnum):
    """Segmentation Type (0062,0001)."""

    BINARY = "BINARY"
    FRACTIONAL = "FRACTIONAL"
    LABELMAP = "LABELMAP"


class FractionalType(enum.StrEnum):
    """Segmentation Fractional Type (0062,0010)."""

    PROBABILITY = "PROBABILITY"
    OCCUPANCY = "OCCUPANCY"


def describe_segments(
    segments: Sequence[SegmentDescription] | LabelMapping,
    algorithm: AlgorithmIdentification | None,
) -> list[SegmentDescription]:
    """Return checked segment descriptions, numbered 1..N in order.

    ``segments`` is a list of descriptions, or ``{label: name}`` resolved through the
    curated code table (MANUAL segments without ``algorithm``, AUTOMATIC with it).

    Raises
    ------
    EncodingError
        No segment, an invalid description, or numbers that are not 1..N.
    """
    if isinstance(segments, Mapping):
        algo_type = AlgorithmType.MANUAL if algorithm is None else AlgorithmType.AUTOMATIC
        descriptions = describe_labels(segments, algorithm=algorithm, algorithm_type=algo_type)
    else:
        descriptions = sorted(segments, key=lambda d: d.segment_number)
    if not descriptions:
        raise EncodingError("no segments described", attribute="segments")
    for description in descriptions:
        description.validate()
    check_numbering(descriptions)
    return descriptions


def segmentation_attributes(
    ds: Dataset,
    seg_type: SegmentationType,
    frac_type: FractionalType,
    max_fractional: int,
    *,
    overlap: bool,
    descriptions: Sequence[SegmentDescription],
) -> None:
    """Write the Segmentation Image module's type, overlap and Segment Sequence.

    ``overlap``: whether segments may overlap (``UNDEFINED``) or cannot (``NO``).
    """
    ds.SegmentationType = seg_type.value
    if seg_type is SegmentationType.FRACTIONAL:
        ds.SegmentationFractionalType = frac_type.value
        ds.MaximumFractionalValue = max_fractional
    ds.SegmentsOverlap = "UNDEFINED" if overlap else "NO"
    ds.SegmentSequence = [d.to_dataset() for d in descriptions]


def pixel_module(ds: Dataset, rows: int, columns: int, bits: int) -> None:
    """Write the Image Pixel attributes of a SEG (one unsigned sample of ``bits`` bits)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0


def check_labels(labels: NDArray[Any]) -> NDArray[Any]:
    """Check a label map (whole numbers 0..65535) and return it as uint8/uint16.

    Raises
    ------
    EncodingError
        Fractions, negative values, or labels above 65535.
    """
    if labels.dtype == np.bool_:
        return labels.view(np.uint8)
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise EncodingError(
                "a label map must hold whole numbers; found fractions, NaN or infinity",
                attribute="mask",
                hint="for probabilities use segmentation_type='fractional' (CLI: --type "
                "fractional): one [slice, row, column] volume for one segment, else "
                "[segment, slice, row, column]",
            )
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        raise EncodingError(
            f"a label map needs an integer array, got {labels.dtype}", attribute="mask"
        )
    if labels.dtype.kind != "u" and labels.size and int(labels.min()) < 0:
        raise EncodingError(
            "a label map cannot hold negative values",
            attribute="mask",
            hint="use 0 for background and 1..N for segments",
        )
    if labels.dtype.itemsize > 2 or labels.dtype.kind == "i":
        if labels.size and int(labels.max()) > 65535:
            raise EncodingError("label values above 65535 cannot be stored", attribute="mask")
        labels = labels.astype(np.uint16 if labels.size and labels.max() > 255 else np.uint8)
    return labels


def check_stacked(
    stacked: NDArray[Any], seg_type: SegmentationType, max_fractional: int
) -> NDArray[Any]:
    """Check one mask per segment and return it as bool (BINARY) or uint8 (FRACTIONAL).

    FRACTIONAL takes probabilities in [0, 1] (scaled to ``max_fractional``),
    integers 0..``max_fractional``, or booleans (``True`` is a fraction of 1, stored
    as ``max_fractional``); BINARY takes 0 and 1 only. The segment axis
    comes first; the others are the caller's (slices or a slide's matrix).

    Raises
    ------
    EncodingError
        Values outside those ranges, NaN or infinity.
    """
    if seg_type is SegmentationType.FRACTIONAL:
        if stacked.dtype == np.bool_:  # a mask is all in or all out: not the integer 1
            whole: NDArray[Any] = np.where(stacked, np.uint8(max_fractional), np.uint8(0))
            return whole
        if np.issubdtype(stacked.dtype, np.floating):
            if not np.all(np.isfinite(stacked)):
                raise EncodingError("probabilities contain NaN or infinity", attribute="mask")
            if stacked.size and (stacked.min() < 0 or stacked.max() > 1):
                raise EncodingError(
                    "fractional values must lie in [0, 1]",
                    attribute="mask",
                    hint="scale the map, or pass integers 0..max_fractional_value",
                )
            scaled: NDArray[Any] = np.rint(stacked * max_fractional).astype(np.uint8)
            return scaled
        if stacked.size and (int(stacked.min()) < 0 or int(stacked.max()) > max_fractional):
            raise EncodingError(
                f"integer fractional values must lie in 0..{max_fractional}", attribute="mask"
            )
        fractions: NDArray[Any] = stacked.astype(np.uint8, copy=False)
        return fractions
    if stacked.dtype != np.bool_:
        if (stacked.size and (stacked.min() < 0 or stacked.max() > 1)) or (
            np.issubdtype(stacked.dtype, np.floating)
            and not np.array_equal(stacked, np.round(stacked))
        ):
            raise EncodingError(
                "a binary stacked mask must hold only 0 and 1",
                attribute="mask",
                hint="threshold probabilities first, or use segmentation_type='fractional'",
            )
        stacked = stacked.astype(bool)
    return stacked
