"""Which frames a Segmentation holds, and their pixels, computed from the input arrays.

A *frame plan* lists, for every frame to write, the segment it shows (0 for a
LABELMAP frame, which shows all) and the slice of the grid it lies on. Building
it looks only at which (slice, segment) pairs are non-empty, so the cost follows
the number of frames, not segments × slices.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from radbridge.errors import EncodingError

__all__ = [
    "Box",
    "FramePlan",
    "binary_frames",
    "label_presence",
    "pack_boxed",
    "plan_frames",
    "stacked_presence",
]

#: Frames packed or compared per step: bounds temporary memory for huge volumes.
CHUNK = 64
#: A bounding box as (slice, row, column) slices, as scipy.ndimage.find_objects gives.
Box = tuple[slice, slice, slice]


@dataclass(frozen=True, eq=False)
class FramePlan:
    """Frames in writing order.

    Attributes
    ----------
    segments
        Segment number of each frame (0 for LABELMAP frames).
    slices
        Slice index (in the grid) of each frame.
    """

    segments: NDArray[np.int64]
    slices: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.slices)

    def position_indices(self) -> NDArray[np.int64]:
        """1-based index of each frame's slice among the distinct slices used."""
        used = np.unique(self.slices)
        return np.searchsorted(used, self.slices).astype(np.int64) + 1


def label_presence(
    labels: NDArray[Any], n_segments: int
) -> tuple[NDArray[np.bool_], list[Box | None]]:
    """``presence[slice, segment]`` of a label map, and each segment's bounding box.

    Column 0 (background) is unused. One pass over the volume finds the boxes;
    presence is then checked inside each box only. Values above ``n_segments``
    raise :class:`~radbridge.errors.EncodingError`.
    """
    top = int(labels.max(initial=0))
    if top > n_segments:
        slice_index = int(np.argmax((labels > n_segments).any(axis=(1, 2))))
        raise EncodingError(
            f"the label map holds value {top} (e.g. in slice {slice_index}) but only "
            f"segments 1..{n_segments} are described",
            attribute="segments",
            hint="describe every label value, or remove the extra labels",
        )
    boxes: list[Box | None] = list(ndimage.find_objects(labels, max_label=n_segments))
    presence = np.zeros((labels.shape[0], n_segments + 1), dtype=bool)
    for k, box in enumerate(boxes, start=1):
        if box is None:
            continue
        present = (labels[box] == k).any(axis=(1, 2))
        presence[box[0].start + np.flatnonzero(present), k] = True
    return presence, boxes


def stacked_presence(stacked: NDArray[Any]) -> NDArray[np.bool_]:
    """``presence[slice, segment]`` (segment 1 in column 1) of a stacked array."""
    n, slices = stacked.shape[0], stacked.shape[1]
    presence = np.zeros((slices, n + 1), dtype=bool)
    presence[:, 1:] = stacked.reshape(n, slices, -1).any(axis=2).T
    return presence


def plan_frames(presence: NDArray[np.bool_], *, labelmap: bool, keep_empty: bool) -> FramePlan:
    """Choose the frames to write from a presence table.

    BINARY and FRACTIONAL frames are ordered by segment, then slice; LABELMAP
    frames by slice. Empty frames are omitted unless ``keep_empty``.
    """
    slices, columns = presence.shape
    if labelmap:
        chosen = np.arange(slices) if keep_empty else np.flatnonzero(presence[:, 1:].any(axis=1))
        return FramePlan(np.zeros(len(chosen), np.int64), chosen.astype(np.int64))
    if keep_empty:
        grid_segs, grid_slices = np.meshgrid(
            np.arange(1, columns), np.arange(slices), indexing="ij"
        )
        return FramePlan(grid_segs.ravel().astype(np.int64), grid_slices.ravel().astype(np.int64))
    found_segs, found_slices = np.nonzero(presence[:, 1:].T)
    return FramePlan((found_segs + 1).astype(np.int64), found_slices.astype(np.int64))


def binary_frames(
    plan: FramePlan,
    labels: NDArray[Any] | None,
    stacked: NDArray[Any] | None,
    boxes: Sequence[Box | None] = (),
) -> Iterator[NDArray[np.bool_]]:
    """Yield the boolean frames of ``plan`` in chunks of at most :data:`CHUNK`.

    With ``boxes`` (from :func:`label_presence`), each frame is compared only
    inside its segment's bounding box.
    """
    for start in range(0, len(plan), CHUNK):
        segs = plan.segments[start : start + CHUNK]
        sl = plan.slices[start : start + CHUNK]
        if labels is not None and boxes:
            chunk = np.zeros((len(sl), *labels.shape[1:]), bool)
            for i, (seg, k) in enumerate(zip(segs.tolist(), sl.tolist(), strict=True)):
                box = boxes[seg - 1]
                if box is not None:
                    chunk[i][box[1:]] = labels[k][box[1:]] == seg
            yield chunk
        elif labels is not None:
            yield labels[sl] == segs[:, None, None].astype(labels.dtype)
        else:
            assert stacked is not None
            yield stacked[segs - 1, sl].astype(bool, copy=False)


def pack_boxed(plan: FramePlan, labels: NDArray[Any], boxes: Sequence[Box | None]) -> bytes | None:
    """Pack BINARY frames of a label map touching only each segment's bounding box.

    Works when every row is a whole number of bytes (columns divisible by 8);
    returns ``None`` otherwise so the caller packs full frames instead. The
    output starts zeroed, so empty regions cost nothing.
    """
    rows, columns = labels.shape[1], labels.shape[2]
    if columns % 8:
        return None
    row_bytes = columns // 8
    total = len(plan) * rows * row_bytes
    out = np.zeros(total + (total % 2), np.uint8)
    frames = out[:total].reshape(len(plan), rows, row_bytes)
    for index, (seg, k) in enumerate(
        zip(plan.segments.tolist(), plan.slices.tolist(), strict=True)
    ):
        box = boxes[seg - 1]
        if box is None:
            continue
        first = (box[2].start // 8) * 8
        last = -(-box[2].stop // 8) * 8
        block = labels[k, box[1], first:last] == seg
        frames[index, box[1], first // 8 : last // 8] = np.packbits(
            block, axis=1, bitorder="little"
        )
    return out.tobytes()
