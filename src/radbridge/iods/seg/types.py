"""The SEG family's types: SOP classes and enums, shared by the writer and the reader.

Examples
--------
>>> SegmentationType("LABELMAP") is SegmentationType.LABELMAP
True
"""

from __future__ import annotations

import enum

__all__ = [
    "LABEL_MAP_SEGMENTATION_STORAGE",
    "SEGMENTATION_STORAGE",
    "FractionalType",
    "SegmentationType",
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
