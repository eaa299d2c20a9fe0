"""Microscopy Bulk Simple Annotations: points, polygons, ellipses on a slide level.

Examples
--------
See :func:`radbridge.iods.ann.write_annotations`.
"""

from radbridge.iods.ann.reader import AnnotationGroup, MicroscopyAnnotations, read_annotations
from radbridge.iods.ann.types import (
    MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE,
    Annotation,
    AnnotationGraphicType,
    AnnotationGroupDescription,
    MeasurementDescription,
)
from radbridge.iods.ann.writer import write_annotations

__all__ = [
    "MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE",
    "Annotation",
    "AnnotationGraphicType",
    "AnnotationGroup",
    "AnnotationGroupDescription",
    "MeasurementDescription",
    "MicroscopyAnnotations",
    "read_annotations",
    "write_annotations",
]
