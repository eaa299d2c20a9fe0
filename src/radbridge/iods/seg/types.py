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
from radbridge.pixels import TransferSyntax

__all__ = [
    "LABEL_MAP_SEGMENTATION_STORAGE",
    "SEGMENTATION_STORAGE",
    "SEG_TRANSFER_SYNTAXES",
    "FractionalType",
    "SegmentationType",
]

#: Transfer syntaxes radbridge writes a SEG in (``transfer_syntax=``, CLI ``--compression``).
SEG_TRANSFER_SYNTAXES = (
    TransferSyntax.EXPLICIT,
    TransferSyntax.DEFLATED_EXPLICIT,
    TransferSyntax.RLE,
    TransferSyntax.JPEGLS,
    TransferSyntax.JPEG2000,
)
