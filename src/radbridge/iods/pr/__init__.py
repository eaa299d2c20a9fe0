"""Presentation states: segment outlines and text over the source images (GSPS).

The public face is :mod:`radbridge.pr`; see :func:`~radbridge.iods.pr.encode_gsps`
and :func:`~radbridge.iods.pr.read_gsps`.
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.pr.reader import PresentationState, read_gsps
from radbridge.iods.pr.types import (
    COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    AnnotationUnits,
    GraphicAnnotation,
    GraphicGroup,
    GraphicLayer,
    GraphicObject,
    GraphicType,
    TextObject,
    Window,
)
from radbridge.iods.pr.writer import (
    OutlineOptions,
    SegmentStyle,
    encode_gsps,
    encode_presentation_state,
)

__all__ = [
    "COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE",
    "GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE",
    "AnnotationUnits",
    "GraphicAnnotation",
    "GraphicGroup",
    "GraphicLayer",
    "GraphicObject",
    "GraphicType",
    "OutlineOptions",
    "PresentationState",
    "SegmentStyle",
    "SeriesOptions",
    "TextObject",
    "Window",
    "encode_gsps",
    "encode_presentation_state",
    "read_gsps",
]
