"""The SEG family's types: SOP classes and enums, shared by the writer and the reader.

They live in the shared layer (:mod:`radbridge.iods.multiframe.segmentation`), as the
slide-microscopy family writes Segmentations too.

Examples
--------
>>> SegmentationType("LABELMAP") is SegmentationType.LABELMAP
True
"""

from __future__ import annotations

from radbridge.iods.multiframe.segmentation import (
    LABEL_MAP_SEGMENTATION_STORAGE,
    SEGMENTATION_STORAGE,
    FractionalType,
    SegmentationType,
)

__all__ = [
    "LABEL_MAP_SEGMENTATION_STORAGE",
    "SEGMENTATION_STORAGE",
    "FractionalType",
    "SegmentationType",
]
