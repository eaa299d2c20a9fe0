"""The shared layer of the multi-frame object families (SEG, Parametric Map, later more).

- :mod:`~radbridge.iods.multiframe.functional_groups`: per-frame functional groups as
  bulk bytes (encode and parse without a pydicom Dataset per item);
- :mod:`~radbridge.iods.multiframe.fast_read`: open a file with its large sequences kept
  raw, check every other element once;
- :mod:`~radbridge.iods.multiframe.frame_index`: each frame's position, segment and
  source reference, from the raw bytes;
- :mod:`~radbridge.iods.multiframe.dimensions`: the Multi-frame Dimension Module;
- :mod:`~radbridge.iods.multiframe.groups`: the functional groups a derived object
  writes (plane orientation and measures, derivation references, frame content);
- :mod:`~radbridge.iods.multiframe.planes`: the one plane-geometry reader (a grid from
  the frames, frames placed on a target grid) and arrays placed on the source grid.

Families import these modules, never each other.
"""
