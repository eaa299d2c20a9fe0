"""DICOM Segmentation (BINARY, FRACTIONAL, LABELMAP): the public face.

Write a mask as a Segmentation with :func:`encode_segmentation`, read one with
:func:`read_segmentation`. Segments are described by :class:`SegmentDescription`
(or ``{label: name}`` through the curated code table, :func:`describe_labels`).
The modules behind this face (``radbridge.iods``) are private.

Examples
--------
>>> import numpy as np
>>> from radbridge import SourceSeries
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=6, size=32)
>>> source = SourceSeries.from_volume(ph.hu)
>>> seg = encode_segmentation(ph.labels.array, source, ph.label_names,
...                           algorithm=AlgorithmIdentification("truth", "1"))
>>> back = read_segmentation(seg).label_volume(source)
>>> bool(np.array_equal(back.array, ph.labels.array))
True
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.profiles import Profile
from radbridge.iods.seg import (
    AlgorithmIdentification,
    AlgorithmType,
    FractionalType,
    Segmentation,
    SegmentationType,
    SegmentDescription,
    StackedMasks,
    describe_labels,
    encode_segmentation,
    load_labels,
    read_segmentation,
)
from radbridge.iods.seg.types import LABEL_MAP_SEGMENTATION_STORAGE, SEGMENTATION_STORAGE

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
