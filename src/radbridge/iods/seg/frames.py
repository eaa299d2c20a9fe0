"""Which frames a Segmentation holds, and their pixels, computed from the input arrays.

A *frame plan* lists, for every frame to write, the segment it shows (0 for a
LABELMAP frame, which shows all) and the slice of the grid it lies on. Building
it looks only at which (slice, segment) pairs are non-empty, so the cost follows
the number of frames, not segments × slices.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import EncodingError

__all__ = ["FramePlan", "binary_frames", "label_presence", "plan_frames", "stacked_presence"]

#: Frames packed or compared per step: bounds temporary memory for huge volumes.
CHUNK = 64


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


def label_presence(labels: NDArray[Any], n_segments: int) -> NDArray[np.bool_]:
    """``presence[slice, segment]``: whether a label value occurs in a slice.

    Column 0 is the background. Values outside ``0..n_segments`` raise
    :class:`~radbridge.errors.EncodingError`.
    """
    slices = labels.shape[0]
    presence = np.zeros((slices, n_segments + 1), dtype=bool)
    for k in range(slices):
        counts = np.bincount(labels[k].ravel(), minlength=n_segments + 1)
        if counts.shape[0] > n_segments + 1:
            extra = np.flatnonzero(counts[n_segments + 1 :]) + n_segments + 1
            raise EncodingError(
                f"the label map holds values without a segment description: "
                f"{extra[:10].tolist()} (slice {k})",
                attribute="segments",
                hint=f"describe every label value; the descriptions cover 1..{n_segments}",
            )
        presence[k] = counts > 0
    return presence


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
    plan: FramePlan, labels: NDArray[Any] | None, stacked: NDArray[Any] | None
) -> Iterator[NDArray[np.bool_]]:
    """Yield the boolean frames of ``plan`` in chunks of at most :data:`CHUNK`."""
    for start in range(0, len(plan), CHUNK):
        segs = plan.segments[start : start + CHUNK]
        sl = plan.slices[start : start + CHUNK]
        if labels is not None:
            yield labels[sl] == segs[:, None, None].astype(labels.dtype)
        else:
            assert stacked is not None
            yield stacked[segs - 1, sl].astype(bool, copy=False)
