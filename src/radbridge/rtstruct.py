"""RT Structure Sets (masks <-> closed planar contours): the public face.

Write masks as an RT Structure Set with :func:`encode_rtstruct`, read one with
:func:`read_rtstruct`, and convert to and from Segmentations with
:func:`seg_to_rtstruct` and :func:`rtstruct_to_seg`. The modules behind this
face (``radbridge.iods``) are private.

Examples
--------
>>> from radbridge import Series
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=6, size=32)
>>> source = Series.from_volume(ph.hu)
>>> rs = encode_rtstruct(ph.labels.array == 5, source, {1: "liver"})
>>> read_rtstruct(rs).rois[1].name
'liver'
"""

from radbridge.iods.convert import rtstruct_to_seg, seg_to_rtstruct
from radbridge.iods.rtstruct import *  # noqa: F403 - the family's public names
from radbridge.iods.rtstruct import __all__ as _family

__all__ = [*_family, "rtstruct_to_seg", "seg_to_rtstruct"]
