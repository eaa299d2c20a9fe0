"""DICOM Segmentation (BINARY, FRACTIONAL, LABELMAP): write and read.

Examples
--------
See :func:`radbridge.iods.seg.encode_segmentation` and
:func:`radbridge.iods.seg.read_segmentation`.
"""

from radbridge.iods.common import SeriesOptions, StackedMasks
from radbridge.iods.content import (
    AlgorithmIdentification,
    AlgorithmType,
    SegmentDescription,
    describe_labels,
    load_labels,
)
from radbridge.iods.profiles import Profile
from radbridge.iods.seg.reader import Segmentation, read_segmentation
from radbridge.iods.seg.types import (
    LABEL_MAP_SEGMENTATION_STORAGE,
    SEGMENTATION_STORAGE,
    FractionalType,
    SegmentationType,
)
from radbridge.iods.seg.writer import encode_segmentation

__all__ = [
    "LABEL_MAP_SEGMENTATION_STORAGE",
    "SEGMENTATION_STORAGE",
    "AlgorithmIdentification",
    "AlgorithmType",
    "FractionalType",
    "Profile",
    "SegmentDescription",
    "Segmentation",
    "SegmentationType",
    "SeriesOptions",
    "StackedMasks",
    "describe_labels",
    "encode_segmentation",
    "load_labels",
    "read_segmentation",
]
