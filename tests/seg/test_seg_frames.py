"""Frame planning of label maps: presence and bounding boxes against SciPy and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from radbridge.errors import EncodingError
from radbridge.iods.seg.frames import (
    label_presence,
    occupied_slices,
    pack_boxed,
    plan_frames,
    plan_labelmap,
)


def _brute_presence(labels: np.ndarray, n: int) -> np.ndarray:
    return np.stack([[(labels[s] == k).any() for k in range(n + 1)] for s in range(len(labels))])


label_maps = arrays(
    np.uint8,
    st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 17)),
    elements=st.integers(0, 4),
)


@settings(max_examples=150, deadline=None)
@given(label_maps)
def test_presence_and_boxes_match_scipy_and_brute_force(labels):
    presence, boxes = label_presence(labels, 4)
    assert boxes == ndimage.find_objects(labels, max_label=4)
    expected = _brute_presence(labels, 4)
    assert np.array_equal(presence[:, 1:], expected[:, 1:])
    assert np.array_equal(occupied_slices(labels, 4), (labels > 0).any(axis=(1, 2)))


def test_boxes_of_a_realistic_volume_match_scipy():
    rng = np.random.default_rng(3)
    labels = np.zeros((40, 64, 64), np.uint16)
    for k in range(1, 300):  # uint16 labels, boxes touching every border
        z, y, x = rng.integers(0, (40, 64, 64))
        labels[max(z - 3, 0) : z + 3, max(y - 5, 0) : y + 5, max(x - 7, 0) : x + 7] = k
    presence, boxes = label_presence(labels, 300)
    assert boxes == ndimage.find_objects(labels, max_label=300)
    assert boxes[-1] is None  # label 300 never painted
    assert np.array_equal(presence[:, 1:], _brute_presence(labels, 300)[:, 1:])


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.uint8,
        st.tuples(st.integers(1, 4), st.integers(1, 6), st.sampled_from([8, 16, 24])),
        elements=st.integers(0, 3),
    ),
    st.booleans(),
)
def test_packed_frames_equal_plain_packbits(labels, keep_empty):
    presence, boxes = label_presence(labels, 3)
    plan = plan_frames(presence, keep_empty=keep_empty)
    packed = pack_boxed(plan, labels, boxes)
    frames = labels[plan.slices] == plan.segments[:, None, None]
    expected = np.packbits(frames.reshape(-1), bitorder="little").tobytes()
    assert packed is not None
    assert packed[: len(expected)] == expected
    assert len(packed) == len(expected) + len(expected) % 2


def test_labelmap_plan_keeps_slice_order_and_drops_empty_slices():
    labels = np.zeros((5, 4, 4), np.uint8)
    labels[1, 0, 0], labels[3, 2, 2] = 2, 1
    plan = plan_labelmap(occupied_slices(labels, 2), keep_empty=False)
    assert plan.slices.tolist() == [1, 3] and plan.segments.tolist() == [0, 0]
    assert plan_labelmap(occupied_slices(labels, 2), keep_empty=True).slices.tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


@pytest.mark.parametrize("find", [label_presence, occupied_slices])
def test_undescribed_label_is_refused(find):
    labels = np.zeros((3, 4, 4), np.uint8)
    labels[2, 1, 1] = 5
    with pytest.raises(EncodingError, match=r"value 5 \(e.g. in slice 2\).*segments 1..4"):
        find(labels, 4)
