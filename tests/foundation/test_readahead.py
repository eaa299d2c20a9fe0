"""A file read ahead is the same file to every reader, and its errors are the same."""

from __future__ import annotations

import os

import numpy as np
import pytest

from radbridge.errors import NotDicomError
from radbridge.readahead import ReadAhead, read_bytes
from radbridge.seg import read_segmentation


def test_a_segmentation_read_ahead_is_the_segmentation(interop):
    path = interop / "seg" / "dcmqi" / "liver.dcm"
    ahead = ReadAhead(path)
    ours = read_segmentation(ahead)
    plain = read_segmentation(path)
    assert ours.source == plain.source == str(path)
    assert ours.dataset == plain.dataset
    assert np.array_equal(ours.label_volume().array, plain.label_volume().array)
    assert ahead._data is None  # the bytes were handed over, not kept twice


def test_the_bytes_are_taken_once_then_read_again(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"first")
    ahead = ReadAhead(path)
    assert ahead.take() == b"first"
    path.write_bytes(b"second")
    assert read_bytes(ahead) == b"second"  # a second reader reads the file as it is now
    assert read_bytes(path) == b"second" and os.fspath(ahead) == str(path)


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_an_unreadable_file_is_named_when_it_is_read(tmp_path, make):
    path = tmp_path / "seg.dcm"
    if make == "folder":
        path.mkdir()
    ahead = ReadAhead(path)  # no error yet: the reader raises, as it would have
    with pytest.raises(NotDicomError, match="cannot be opened") as caught:
        read_segmentation(ahead)
    assert str(path) in str(caught.value)


def test_a_truncated_file_read_ahead_fails_as_the_file_does(interop, tmp_path):
    data = (interop / "seg" / "dcmqi" / "liver.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception) as plain:
        read_segmentation(path)
    with pytest.raises(type(plain.value)) as ahead:
        read_segmentation(ReadAhead(path))
    assert str(ahead.value) == str(plain.value) and str(path) in str(ahead.value)
