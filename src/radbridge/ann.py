"""Microscopy Bulk Simple Annotations: write and read points, polygons and ellipses.

Millions of annotations on one level of a slide, written streaming and read from the
memory-mapped file. The modules behind this face (``radbridge.iods``) are private.

Examples
--------
>>> from radbridge.ann import AnnotationGraphicType, read_annotations, write_annotations
>>> AnnotationGraphicType("ellipse").value
'ELLIPSE'
"""

from radbridge.iods.ann import *  # noqa: F403 - the family's public names
from radbridge.iods.ann import __all__ as __all__
