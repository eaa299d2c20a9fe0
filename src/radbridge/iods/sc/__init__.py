"""Secondary Capture overlays: segments drawn over the source images, for any viewer.

:func:`render_overlay` composites a label map over its source images (outline
or filled, legend, "NOT FOR DIAGNOSTIC USE" banner); :func:`encode_overlay_sc`
stores the frames as a Multi-frame True Color Secondary Capture in the source's
study; :func:`render_png_montage` writes a PNG of the slices with the most
segmented area for QA.

Examples
--------
See :func:`radbridge.iods.sc.render_overlay` and
:func:`radbridge.iods.sc.encode_overlay_sc`.
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.profiles import Profile
from radbridge.iods.sc.montage import choose_slices, render_png_montage
from radbridge.iods.sc.render import (
    BANNER_TEXT,
    OverlayStyle,
    Rendering,
    render_frames,
    render_overlay,
)
from radbridge.iods.sc.writer import MULTIFRAME_TRUE_COLOR_SC_STORAGE, encode_overlay_sc

__all__ = [
    "BANNER_TEXT",
    "MULTIFRAME_TRUE_COLOR_SC_STORAGE",
    "OverlayStyle",
    "Profile",
    "Rendering",
    "SeriesOptions",
    "choose_slices",
    "encode_overlay_sc",
    "render_frames",
    "render_overlay",
    "render_png_montage",
]
