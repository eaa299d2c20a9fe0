"""RT Structure Sets: masks ↔ closed planar contours, readable by radiotherapy systems.

Examples
--------
See :func:`radbridge.iods.rtstruct.encode_rtstruct` and
:func:`radbridge.iods.rtstruct.read_rtstruct`; conversions to and from SEG are in
:mod:`radbridge.iods.convert` (public face: :mod:`radbridge.rtstruct`).
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.content import AlgorithmIdentification, SegmentDescription
from radbridge.iods.rtstruct.describe import roi_description
from radbridge.iods.rtstruct.placement import Contour
from radbridge.iods.rtstruct.reader import ROI, StructureSet, read_rtstruct
from radbridge.iods.rtstruct.types import (
    RT_STRUCTURE_SET_STORAGE,
    ContourGeometricType,
    HoleStyle,
    ROIDescription,
    ROIGenerationAlgorithm,
    RTROIInterpretedType,
    describe_rois,
)
from radbridge.iods.rtstruct.writer import ContourOptions, encode_rtstruct

__all__ = [
    "ROI",
    "RT_STRUCTURE_SET_STORAGE",
    "AlgorithmIdentification",
    "Contour",
    "ContourGeometricType",
    "ContourOptions",
    "HoleStyle",
    "ROIDescription",
    "ROIGenerationAlgorithm",
    "RTROIInterpretedType",
    "SegmentDescription",
    "SeriesOptions",
    "StructureSet",
    "describe_rois",
    "encode_rtstruct",
    "read_rtstruct",
    "roi_description",
]
