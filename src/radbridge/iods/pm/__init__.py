"""DICOM Parametric Map: write and read maps of real-world values.

Examples
--------
See :func:`radbridge.iods.pm.encode_parametric_map` and
:func:`radbridge.iods.pm.read_parametric_map`.
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.pm.reader import (
    ParametricMap,
    RealWorldValueMapping,
    open_parametric_map,
    read_parametric_map,
)
from radbridge.iods.pm.types import PARAMETRIC_MAP_STORAGE, NanPolicy
from radbridge.iods.pm.writer import MapDescription, encode_parametric_map
from radbridge.iods.profiles import Profile
from radbridge.ucum import is_ucum, parse_units

__all__ = [
    "PARAMETRIC_MAP_STORAGE",
    "MapDescription",
    "NanPolicy",
    "ParametricMap",
    "Profile",
    "RealWorldValueMapping",
    "SeriesOptions",
    "encode_parametric_map",
    "is_ucum",
    "open_parametric_map",
    "parse_units",
    "read_parametric_map",
]
