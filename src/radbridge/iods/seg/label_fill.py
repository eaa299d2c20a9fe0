"""BINARY 1-bit frames into one label map, a segment at a time.

:meth:`radbridge.iods.seg.reader.Segmentation.label_volume` uses this for native
1-bit pixel data whose rows are whole bytes; anything else goes frame by frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["SEGMENT_CHUNK", "SegmentsOverlapError", "fill_by_segment"]


class SegmentsOverlapError(Exception):
    """Two segments claim one voxel (the caller raises its DecodingError)."""


#: Frames of one segment unpacked together (at 512 x 512: 16 MB of temporaries).
SEGMENT_CHUNK = 64


def fill_by_segment(
    out: NDArray[Any],
    packed: NDArray[np.uint8],
    slices: NDArray[np.int64],
    segments: NDArray[Any],
) -> bool:
    """Write packed BINARY frames into the label map ``out``, one segment at a time.

    A segment's frames (up to :data:`SEGMENT_CHUNK` at a time) are cropped to their
    common box, unpacked and written with a few NumPy calls (a frame at a time costs
    ~40 us of calls: 0.1 s for a 100-organ CT). Returns ``False``, writing nothing,
    when a segment has two frames on one slice (the frame-at-a-time path handles
    that). Raises :class:`SegmentsOverlapError` when segments overlap.
    """
    order = np.argsort(segments, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(segments[order])) + 1)
    if any(len(np.unique(slices[g])) != len(g) for g in groups if len(g)):
        return False
    words = packed.view(np.uint64) if packed.shape[2] % 8 == 0 else packed
    occupied = (words != 0).any(axis=2)  # [frame, row]: one pass over the pixel data
    for group in groups:
        for start in range(0, len(group), SEGMENT_CHUNK):  # bounded temporaries
            part = group[start : start + SEGMENT_CHUNK]
            _fill_segment(out, packed, occupied, slices[part], part, int(segments[part[0]]))
    return True


def _fill_segment(
    out: NDArray[Any],
    packed: NDArray[np.uint8],
    occupied: NDArray[np.bool_],
    z: NDArray[np.int64],
    frames: NDArray[np.int64],
    number: int,
) -> None:
    rows = np.flatnonzero(occupied[frames].any(axis=0))
    if not rows.size:
        return
    r = slice(int(rows[0]), int(rows[-1]) + 1)
    block = packed[frames, r]
    columns = np.flatnonzero(block.any(axis=(0, 1)))
    c = slice(int(columns[0]), int(columns[-1]) + 1)
    inside = np.unpackbits(block[:, :, c], axis=2, bitorder="little").view(bool)
    pixels = slice(c.start * 8, c.stop * 8)
    region = out[z, r, pixels]
    if region[inside].any():
        raise SegmentsOverlapError
    region[inside] = number
    out[z, r, pixels] = region
