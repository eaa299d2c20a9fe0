"""DICOM Segmentation (BINARY, FRACTIONAL, LABELMAP): the public face.

Write a mask as a Segmentation with :func:`encode_segmentation`, read one with
:func:`read_segmentation`. Segments are described by :class:`SegmentDescription`
(or ``{label: name}`` through the curated code table, :func:`describe_labels`).
The modules behind this face (``radbridge.iods``) are private.

Examples
--------
>>> import numpy as np
>>> from radbridge import Series
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=6, size=32)
>>> source = Series.from_volume(ph.hu)
>>> seg = encode_segmentation(ph.labels.array, source, ph.label_names,
...                           algorithm=AlgorithmIdentification("truth", "1"))
>>> back = read_segmentation(seg).label_volume(source)
>>> bool(np.array_equal(back.array, ph.labels.array))
True
"""

from radbridge.iods.seg import *  # noqa: F403 - the family's public names
from radbridge.iods.seg import __all__ as __all__
