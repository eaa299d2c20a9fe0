"""Slide microscopy: VL Whole Slide Microscopy Image series, and SEGs on their levels.

Examples
--------
See :func:`radbridge.iods.wsi.read_slide`.
"""

from radbridge.iods.wsi.seg_reader import SlideSegmentation, read_slide_segmentation
from radbridge.iods.wsi.seg_writer import encode_slide_segmentation
from radbridge.iods.wsi.slide import Level, Slide, read_slide
from radbridge.iods.wsi.types import (
    VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE,
    OpticalPath,
    TileOrganization,
)

__all__ = [
    "VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE",
    "Level",
    "OpticalPath",
    "Slide",
    "SlideSegmentation",
    "TileOrganization",
    "encode_slide_segmentation",
    "read_slide",
    "read_slide_segmentation",
]
