"""BINARY frames into one label map, a segment at a time (the fast path of label_volume).

The reference here is the plainest possible fill: unpack each whole frame and write
its segment number where its bits are set. The reader's own results on real files
are checked against the writers' input labels in test_seg_contract.py and friends.
"""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.errors import DecodingError
from radbridge.iods.seg import label_fill
from radbridge.iods.seg.label_fill import SegmentsOverlapError, fill_by_segment


def frames_of(masks: list[np.ndarray]) -> np.ndarray:
    """Pack [row, column] boolean frames as 1-bit rows (LSB first), ``[frame, row, byte]``."""
    return np.stack([np.packbits(m, axis=1, bitorder="little") for m in masks])


def plain_fill(shape, packed, slices, segments) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for frame, z, number in zip(packed, slices, segments, strict=True):
        bits = np.unpackbits(frame, axis=1, bitorder="little").astype(bool)
        assert not out[z][bits].any()
        out[z][bits] = number
    return out


def random_frames(rng, count, slices, rows, columns):
    """Frames of 5 segments, each on distinct slices, in a shuffled order, no overlaps."""
    owner = rng.integers(0, 6, size=(slices, rows, columns))  # 0: background
    masks, zs, numbers = [], [], []
    for number in range(1, 6):
        for z in rng.choice(slices, size=count, replace=False):
            masks.append(owner[z] == number)
            zs.append(int(z))
            numbers.append(number)
    order = rng.permutation(len(masks))
    return (
        frames_of([masks[i] for i in order]),
        np.array(zs)[order],
        np.array(numbers)[order],
    )


@pytest.mark.parametrize("chunk", [64, 3])  # a segment's 4 frames at once, or in two parts
@pytest.mark.parametrize("columns", [64, 24])  # whole 64-bit words per row, and not
def test_the_same_label_map_as_a_frame_at_a_time(columns, chunk, monkeypatch):
    monkeypatch.setattr(label_fill, "SEGMENT_CHUNK", chunk)
    rng = np.random.default_rng(3)
    packed, slices, segments = random_frames(rng, 4, 7, 9, columns)
    out = np.zeros((7, 9, columns), np.uint8)
    assert fill_by_segment(out, packed, slices, segments)
    np.testing.assert_array_equal(out, plain_fill(out.shape, packed, slices, segments))


def test_two_frames_of_a_segment_on_one_slice_are_left_to_the_frame_path():
    mask = np.zeros((4, 16), bool)
    mask[1, 2] = True
    packed = frames_of([mask, mask, mask])
    out = np.zeros((3, 4, 16), np.uint8)
    assert not fill_by_segment(out, packed, np.array([0, 0, 1]), np.array([1, 1, 2]))
    assert not out.any()  # nothing written before handing over


def test_overlapping_segments_are_found():
    a = np.zeros((4, 16), bool)
    a[1, 2:5] = True
    b = np.zeros((4, 16), bool)
    b[1, 4] = True  # one voxel of segment 1's
    packed = frames_of([a, b])
    with pytest.raises(SegmentsOverlapError):
        fill_by_segment(np.zeros((1, 4, 16), np.uint8), packed, np.array([0, 0]), np.array([1, 2]))


def test_dcmqis_overlapping_seg_is_refused_by_name(interop):
    from radbridge.seg import read_segmentation

    path = interop / "seg" / "dcmqi" / "partial_overlaps.dcm"  # BINARY, 512 columns
    seg = read_segmentation(path)
    assert seg._pixels.packed() is not None  # the by-segment path reads it
    with pytest.raises(DecodingError, match="segments overlap") as caught:
        seg.label_volume()
    assert caught.value.attribute == "SegmentsOverlap" and caught.value.path == str(path)
