"""RT Structure Sets: masks ↔ closed planar contours, readable by radiotherapy systems.

Examples
--------
See :func:`radbridge.iods.rtstruct.encode_rtstruct` and
:func:`radbridge.iods.rtstruct.read_rtstruct`.
"""

from radbridge.iods.rtstruct.types import (
    ContourGeometricType,
    HoleStyle,
    ROIDescription,
    ROIGenerationAlgorithm,
    RTROIInterpretedType,
    describe_rois,
)
from radbridge.iods.rtstruct.writer import ContourOptions, encode_rtstruct

__all__ = [
    "ContourGeometricType",
    "ContourOptions",
    "HoleStyle",
    "ROIDescription",
    "ROIGenerationAlgorithm",
    "RTROIInterpretedType",
    "describe_rois",
    "encode_rtstruct",
]
