"""DICOM Parametric Map (float or integer maps with real-world units): the public face.

Write a map with :func:`encode_parametric_map`; read one as a volume of
real-world values with :func:`read_parametric_map`, or open it with
:func:`open_parametric_map` for its mapping, window and frames. The modules
behind this face (``radbridge.iods``) are private.

Examples
--------
>>> import numpy as np
>>> from radbridge import SourceSeries
>>> from radbridge.coding import dcm
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=4, size=16)
>>> values = (ph.labels.array > 0).astype(np.float32) * 0.75
>>> pm = encode_parametric_map(values, SourceSeries.from_volume(ph.hu),
...                            quantity=dcm("130402", "Class activation"),
...                            units="{probability}", anatomic_region="body")
>>> float(read_parametric_map(pm).array.max())
0.75
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.pm import (
    PARAMETRIC_MAP_STORAGE,
    MapDescription,
    NanPolicy,
    ParametricMap,
    RealWorldValueMapping,
    encode_parametric_map,
    is_ucum,
    open_parametric_map,
    parse_units,
    read_parametric_map,
)
from radbridge.iods.profiles import Profile

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
