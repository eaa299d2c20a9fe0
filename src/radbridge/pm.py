"""DICOM Parametric Map (float or integer maps with real-world units): the public face.

Write a map with :func:`encode_parametric_map`; read one as a volume of
real-world values with :func:`read_parametric_map`, or open it with
:func:`open_parametric_map` for its mapping, window and frames. The modules
behind this face (``radbridge.iods``) are private.

Examples
--------
>>> import numpy as np
>>> from radbridge import Series
>>> from radbridge.coding import dcm
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=4, size=16)
>>> values = (ph.labels.array > 0).astype(np.float32) * 0.75
>>> pm = encode_parametric_map(values, Series.from_volume(ph.hu),
...                            quantity=dcm("130402", "Class activation"),
...                            units="{probability}", anatomic_region="body")
>>> float(read_parametric_map(pm).array.max())
0.75
"""

from radbridge.iods.pm import *  # noqa: F403 - the family's public names
from radbridge.iods.pm import __all__ as __all__
