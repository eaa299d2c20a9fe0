"""Which frames a Segmentation holds, and their pixels, computed from the input arrays.

A *frame plan* lists, for every frame to write, the segment it shows (0 for a
LABELMAP frame, which shows all) and the slice of the grid it lies on. Building
it looks only at which (slice, segment) pairs are non-empty, so the cost follows
the number of frames, not segments × slices.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import EncodingError

__all__ = [
    "Box",
    "FramePlan",
    "binary_frames",
    "label_presence",
    "occupied_slices",
    "pack_boxed",
    "plan_frames",
    "plan_labelmap",
    "stacked_presence",
]

#: Frames packed or compared per step: bounds temporary memory for huge volumes.
CHUNK = 64
#: A bounding box as (slice, row, column) slices (stop excluded).
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


def _check_range(labels: NDArray[Any], n_segments: int) -> None:
    """Raise :class:`~radbridge.errors.EncodingError` for label values above ``n_segments``."""
    top = int(labels.max(initial=0))
    if top > n_segments:
        slice_index = int(np.argmax((labels > n_segments).any(axis=(1, 2))))
        raise EncodingError(
            f"the label map holds value {top} (e.g. in slice {slice_index}) but only "
            f"segments 1..{n_segments} are described",
            attribute="segments",
            hint="describe every label value, or remove the extra labels",
        )


#: Slices compared per step when looking for runs (bounds the temporary to a few MB).
_RUN_CHUNK = 16


def _label_runs(labels: NDArray[Any]) -> tuple[NDArray[np.intp], ...]:
    """Every horizontal run of one non-zero label: (slice, row, first column, last column, label).

    A run starts at column 0 and wherever a value differs from its left
    neighbour, so the runs are found with one comparison per voxel, a chunk of
    slices at a time.
    """
    slices, rows, columns = labels.shape
    change = np.empty((min(_RUN_CHUNK, slices) * rows, columns), bool)
    found: list[list[NDArray[np.intp]]] = [[], [], [], [], []]
    for first in range(0, slices, _RUN_CHUNK):
        flat = labels[first : first + _RUN_CHUNK].reshape(-1, columns)
        lines = len(flat)
        step = change[:lines]
        step[:, 0] = True
        np.not_equal(flat[:, 1:], flat[:, :-1], out=step[:, 1:])
        starts = np.flatnonzero(step)
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:] - 1  # a run ends before the next starts (each line starts one)
        ends[-1] = lines * columns - 1
        values = flat.reshape(-1)[starts]
        keep = np.flatnonzero(values)
        starts, ends = starts[keep], ends[keep]
        line = starts // columns
        found[0].append(first + line // rows)
        found[1].append(line % rows)
        found[2].append(starts - line * columns)
        found[3].append(ends - line * columns)
        found[4].append(values[keep].astype(np.intp))
    return tuple(np.concatenate(parts) for parts in found)


def label_presence(
    labels: NDArray[Any], n_segments: int
) -> tuple[NDArray[np.bool_], list[Box | None]]:
    """``presence[slice, segment]`` of a label map, and each segment's bounding box.

    Column 0 (background) is unused. Both come from the runs of equal labels
    along rows (:func:`_label_runs`), in a few NumPy passes over the volume.
    Values above ``n_segments`` raise :class:`~radbridge.errors.EncodingError`.
    """
    _check_range(labels, n_segments)
    slice_of, row_of, first_column, last_column, label = _label_runs(labels)
    presence = np.zeros((labels.shape[0], n_segments + 1), dtype=bool)
    presence[slice_of, label] = True
    low = np.full((3, n_segments + 1), np.iinfo(np.intp).max, np.intp)
    high = np.full((3, n_segments + 1), -1, np.intp)
    for axis, (start, stop) in enumerate(
        ((slice_of, slice_of), (row_of, row_of), (first_column, last_column))
    ):
        np.minimum.at(low[axis], label, start)
        np.maximum.at(high[axis], label, stop)
    stop = high + 1
    boxes: list[Box | None] = [
        (slice(low[0, k], stop[0, k]), slice(low[1, k], stop[1, k]), slice(low[2, k], stop[2, k]))
        if high[0, k] >= 0
        else None
        for k in range(1, n_segments + 1)
    ]
    return presence, boxes


def occupied_slices(labels: NDArray[Any], n_segments: int) -> NDArray[np.bool_]:
    """Which slices of a label map hold any label (all a LABELMAP SEG needs to know).

    Values above ``n_segments`` raise :class:`~radbridge.errors.EncodingError`.
    """
    _check_range(labels, n_segments)
    return np.asarray(labels.reshape(len(labels), -1).any(axis=1), dtype=bool)


def stacked_presence(stacked: NDArray[Any]) -> NDArray[np.bool_]:
    """``presence[slice, segment]`` (segment 1 in column 1) of a stacked array."""
    n, slices = stacked.shape[0], stacked.shape[1]
    presence = np.zeros((slices, n + 1), dtype=bool)
    presence[:, 1:] = stacked.reshape(n, slices, -1).any(axis=2).T
    return presence


def plan_frames(presence: NDArray[np.bool_], *, keep_empty: bool) -> FramePlan:
    """Choose the BINARY or FRACTIONAL frames to write from a presence table.

    Frames are ordered by segment, then slice. Empty frames are omitted unless
    ``keep_empty``.
    """
    slices, columns = presence.shape
    if keep_empty:
        grid_segs, grid_slices = np.meshgrid(
            np.arange(1, columns), np.arange(slices), indexing="ij"
        )
        return FramePlan(grid_segs.ravel().astype(np.int64), grid_slices.ravel().astype(np.int64))
    found_segs, found_slices = np.nonzero(presence[:, 1:].T)
    return FramePlan((found_segs + 1).astype(np.int64), found_slices.astype(np.int64))


def plan_labelmap(occupied: NDArray[np.bool_], *, keep_empty: bool) -> FramePlan:
    """Choose the LABELMAP frames (one per slice, in slice order) from :func:`occupied_slices`.

    Slices without any label are omitted unless ``keep_empty``.
    """
    chosen = np.arange(len(occupied)) if keep_empty else np.flatnonzero(occupied)
    return FramePlan(np.zeros(len(chosen), np.int64), chosen.astype(np.int64))


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
    output starts zeroed, so empty regions cost nothing. The frames are written
    into the buffer of the ``bytes`` returned, not copied into it afterwards
    (``ndarray.tobytes``: ~0.04 s for 88 MB): ``io.BytesIO`` lends its buffer,
    and CPython's ``getvalue`` hands that same buffer over as ``bytes`` when it
    is exactly full and no longer lent (other Pythons copy it once).
    """
    rows, columns = labels.shape[1], labels.shape[2]
    if columns % 8:
        return None
    row_bytes = columns // 8
    total = len(plan) * rows * row_bytes
    if not total:
        return b""
    buffer = io.BytesIO()
    buffer.seek(total + (total % 2) - 1)
    buffer.write(b"\x00")  # the buffer grows to its full size, zeroed
    with buffer.getbuffer() as view:
        frames = np.frombuffer(view, np.uint8)[:total].reshape(len(plan), rows, row_bytes)
        _pack_segments(frames, plan, labels, boxes)
        del frames  # the loan ends with the last array on the buffer
    return buffer.getvalue()


def _pack_segments(
    frames: NDArray[np.uint8], plan: FramePlan, labels: NDArray[Any], boxes: Sequence[Box | None]
) -> None:
    """Write each segment's packed frames into ``frames``, inside its bounding box."""
    for seg, box in enumerate(boxes, start=1):
        if box is None:
            continue
        index = np.flatnonzero(plan.segments == seg)
        index = index[(plan.slices[index] >= box[0].start) & (plan.slices[index] < box[0].stop)]
        if not len(index):
            continue
        first = (box[2].start // 8) * 8
        last = -(-box[2].stop // 8) * 8
        # all of the segment's frames at once: one comparison and one packbits call
        block = labels[plan.slices[index], box[1], first:last] == seg
        frames[index, box[1], first // 8 : last // 8] = np.packbits(
            block, axis=2, bitorder="little"
        )
