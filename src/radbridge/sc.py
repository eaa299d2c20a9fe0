"""Secondary Capture overlays (segments drawn over the source images): the public face.

:func:`render_overlay` composites a label map over its source images (outline
or filled, legend, "NOT FOR DIAGNOSTIC USE" banner); :func:`encode_overlay_sc`
stores the frames as a Multi-frame True Color Secondary Capture in the source's
study; :func:`render_png_montage` writes a PNG of the slices with the most
segmented area for QA. The modules behind this face (``radbridge.iods``) are
private.

Examples
--------
>>> from radbridge import Series
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=3, size=32)
>>> rendering = render_overlay(ph.hu, ph.labels.array, {}, ph.label_names)
>>> sc = encode_overlay_sc(rendering, Series.from_volume(ph.hu))
>>> sc.BurnedInAnnotation, int(sc.NumberOfFrames)
('YES', 3)
"""

from radbridge.iods.sc import *  # noqa: F403 - the family's public names
from radbridge.iods.sc import __all__ as __all__
