"""RT Structure Sets (masks <-> closed planar contours): the public face.

Write masks as an RT Structure Set with :func:`encode_rtstruct`, read one with
:func:`read_rtstruct`, and convert to and from Segmentations with
:func:`seg_to_rtstruct` and :func:`rtstruct_to_seg`. The modules behind this
face (``radbridge.iods``) are private.

Examples
--------
>>> from radbridge import SourceSeries
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=6, size=32)
>>> source = SourceSeries.from_volume(ph.hu)
>>> rs = encode_rtstruct(ph.labels.array == 5, source, {1: "liver"})
>>> read_rtstruct(rs).rois[1].name
'liver'
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.content import AlgorithmIdentification, SegmentDescription
from radbridge.iods.convert import rtstruct_to_seg, seg_to_rtstruct
from radbridge.iods.rtstruct import (
    ROI,
    Contour,
    ContourGeometricType,
    ContourOptions,
    HoleStyle,
    ROIDescription,
    ROIGenerationAlgorithm,
    RTROIInterpretedType,
    StructureSet,
    describe_rois,
    encode_rtstruct,
    read_rtstruct,
    roi_description,
)
from radbridge.iods.rtstruct.types import RT_STRUCTURE_SET_STORAGE

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
    "rtstruct_to_seg",
    "seg_to_rtstruct",
]
