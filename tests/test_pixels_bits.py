"""1-bit packing: round trips, frame subsets, byte layout, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from radbridge.errors import DecodingError, EncodingError
from radbridge.pixels import pack_each_frame, pack_frames, unpack_frames

shapes = st.tuples(
    st.integers(1, 12),  # frames
    st.integers(1, 40),  # rows
    st.integers(1, 40),  # columns
)


@st.composite
def masks(draw):
    n, rows, columns = draw(st.one_of(shapes, st.sampled_from([(3, 23, 38), (5, 1, 1), (9, 3, 3)])))
    return draw(arrays(np.bool_, (n, rows, columns)))


def reference_bits(frames: np.ndarray) -> np.ndarray:
    """The bit stream written out pixel by pixel (first pixel = bit 0 of byte 0)."""
    flat = frames.reshape(-1).astype(np.uint8)
    out = np.zeros((flat.size + 7) // 8, np.uint8)
    for position in np.flatnonzero(flat):
        out[position // 8] |= 1 << (position % 8)
    return out


@given(masks())
@settings(max_examples=150, deadline=None)
def test_pack_matches_the_dicom_bit_order(frames):
    data = pack_frames(frames)
    expected = reference_bits(frames).tobytes()
    assert len(data) % 2 == 0
    assert data[: len(expected)] == expected
    assert data[len(expected) :] in (b"", b"\x00")


@given(masks())
@settings(max_examples=150, deadline=None)
def test_unpack_round_trip(frames):
    n, rows, columns = frames.shape
    data = pack_frames(frames)
    back = unpack_frames(data, rows=rows, columns=columns, number_of_frames=n)
    assert back.dtype == np.bool_
    np.testing.assert_array_equal(back, frames)


@given(masks(), st.data())
@settings(max_examples=200, deadline=None)
def test_unpack_selected_frames_in_any_order(frames, data):
    n, rows, columns = frames.shape
    indices = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2 * n))
    packed = pack_frames(frames)
    back = unpack_frames(packed, rows=rows, columns=columns, number_of_frames=n, indices=indices)
    np.testing.assert_array_equal(back, frames[indices])


@given(masks(), st.data())
@settings(max_examples=100, deadline=None)
def test_chunks_pack_like_the_whole(frames, data):
    n = frames.shape[0]
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    chunks = np.split(frames, cuts)
    assert pack_frames(iter(chunks)) == pack_frames(frames)


@given(masks())
@settings(max_examples=100, deadline=None)
def test_pack_each_frame_starts_every_frame_on_a_byte(frames):
    n, rows, columns = frames.shape
    packed = pack_each_frame(frames)
    assert packed.shape == (n, (rows * columns + 7) // 8)
    for i in range(n):
        assert packed[i].tobytes() == reference_bits(frames[i : i + 1]).tobytes()
        back = unpack_frames(packed[i].tobytes(), rows=rows, columns=columns, indices=[0])
        np.testing.assert_array_equal(back[0], frames[i])


def test_frames_straddle_bytes_for_odd_sizes():
    # 23 x 38 = 874 pixels: frame 2 starts at bit 874 = byte 109, bit 2.
    frames = np.zeros((3, 23, 38), bool)
    frames[1, 0, 0] = True
    data = pack_frames(frames)
    assert data[109] == 0b100
    assert len(data) == 328  # ceil(3 * 874 / 8) = 328, already even


def test_integer_zero_one_frames_pack_like_booleans():
    frames = np.array([[[0, 1], [1, 1]]], np.uint8)
    assert pack_frames(frames) == pack_frames(frames.astype(bool))


@pytest.mark.parametrize("bad", [np.array([[[0, 2]]]), np.array([[[-1, 0]]]), np.ones((1, 2, 2))])
def test_values_other_than_zero_and_one_are_refused(bad):
    with pytest.raises(EncodingError):
        pack_frames(bad)
    with pytest.raises(EncodingError):
        pack_each_frame(bad)


def test_truncated_buffer_names_the_frame():
    frames = np.ones((4, 5, 5), bool)
    data = pack_frames(frames)[:10]  # 80 bits: frames 1-3 complete, frame 4 cut short
    assert unpack_frames(data, rows=5, columns=5, number_of_frames=4, indices=[2]).all()
    with pytest.raises(DecodingError, match="frame 4 is truncated"):
        unpack_frames(data, rows=5, columns=5, number_of_frames=4, indices=[3])


def test_frame_outside_the_count_is_refused():
    data = pack_frames(np.ones((2, 4, 4), bool))
    with pytest.raises(DecodingError, match="frame 3 does not exist"):
        unpack_frames(data, rows=4, columns=4, number_of_frames=2, indices=[2])
    with pytest.raises(DecodingError, match="does not exist"):
        unpack_frames(data, rows=4, columns=4, number_of_frames=2, indices=[-1])


def test_large_selection_reads_in_chunks():
    rng = np.random.default_rng(3)
    frames = rng.random((300, 7, 9)) > 0.5  # 63 pixels: every bit offset occurs
    data = pack_frames(frames)
    indices = rng.permutation(300)[:290]
    back = unpack_frames(data, rows=7, columns=9, number_of_frames=300, indices=indices)
    np.testing.assert_array_equal(back, frames[indices])
