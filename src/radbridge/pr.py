"""Presentation states (segment outlines over the source images): the public face.

Outline a mask's segments on their source images as a Grayscale Softcopy
Presentation State with :func:`encode_gsps` (or a SEG's with :func:`seg_to_gsps`,
an RT Structure Set's with :func:`rtstruct_to_gsps`), and read one back, graphics
per image and masks from its closed outlines, with :func:`read_gsps`. The modules
behind this face (``radbridge.iods``) are private.

Examples
--------
>>> import numpy as np
>>> from pydicom import examples
>>> from radbridge import Series
>>> source = Series.from_datasets([examples.ct])
>>> mask = np.zeros(source.geometry.shape, bool)
>>> mask[0, 20:40, 30:45] = True
>>> ps = read_gsps(encode_gsps(mask, source, {1: "Liver"}, window=(40, 400)))
>>> ps.segments, ps.windows[0][0].width
({1: 'Liver'}, 400.0)
>>> bool(np.array_equal(ps.stacked_volume(source).array[0], mask))
True
"""

from radbridge.iods.convert import rtstruct_to_gsps, seg_to_gsps
from radbridge.iods.pr import *  # noqa: F403 - the family's public names
from radbridge.iods.pr import __all__ as _family

__all__ = [*_family, "rtstruct_to_gsps", "seg_to_gsps"]
