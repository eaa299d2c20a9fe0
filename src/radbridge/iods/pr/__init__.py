"""Presentation states: segment outlines and text over the source images (GSPS).

The public face is :mod:`radbridge.pr`; see :func:`~radbridge.iods.pr.encode_gsps`
and :func:`~radbridge.iods.pr.read_gsps`.
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.pr.reader import PresentationState, read_gsps
from radbridge.iods.pr.types import *  # noqa: F403 - the data types are all public
from radbridge.iods.pr.types import __all__ as _types
from radbridge.iods.pr.writer import (
    OutlineOptions,
    SegmentStyle,
    encode_gsps,
    encode_presentation_state,
)

__all__ = [
    *_types,
    "OutlineOptions",
    "PresentationState",
    "SegmentStyle",
    "SeriesOptions",
    "encode_gsps",
    "encode_presentation_state",
    "read_gsps",
]
