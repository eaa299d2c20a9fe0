"""Slide microscopy: read whole-slide images, write and read SEGs on their levels.

Open a VL Whole Slide Microscopy Image series with :func:`read_slide` and read tiles
or regions of any pyramid level. The modules behind this face (``radbridge.iods``)
are private.

Examples
--------
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> level = slide.level(0)
>>> level.shape, len(level.optical_paths)
((50, 50), 1)
>>> level.tile(0, 0).shape
(10, 10, 3)
"""

from radbridge.iods.wsi import *  # noqa: F403 - the family's public names
from radbridge.iods.wsi import __all__ as __all__
