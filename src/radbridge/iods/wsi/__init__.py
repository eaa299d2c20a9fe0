"""Slide microscopy: VL Whole Slide Microscopy Image series, and SEGs on their levels.

Examples
--------
See :func:`radbridge.iods.wsi.read_slide`.
"""

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
    "TileOrganization",
    "read_slide",
]
