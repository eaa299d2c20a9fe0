"""seg_to_gsps: segments that do not overlap reach the encoder as one label map.

It used to read one whole-volume mask per segment (stacked_volume), and for
FRACTIONAL SEGs a float64 copy of them all: 117 segments on a 500x512x512 CT held
tens of GB. LABELMAP SEGs, and BINARY ones whose segments turn out apart, now go
through Segmentation.label_volume; the file and the warnings are the same as on
the stacked path, which overlapping and FRACTIONAL segments keep.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from radbridge.iods import convert
from radbridge.pr import read_gsps, seg_to_gsps
from radbridge.seg import encode_segmentation, read_segmentation
from tests.foundation.regions import overlapping_masks
from tests.pr.test_from_rtstruct import FIXED, _saved
from tests.seg.conftest import descriptions


def _seg(study, kind: str, *, undescribed: bool = False):
    """The phantom's organs as a SEG of ``kind``; FRACTIONAL and overlapping ones stacked."""
    count = len(study.present)
    if kind == "overlapping":
        masks = overlapping_masks(study.labels)[:-1]  # the empty mask is not a segment here
        ds = encode_segmentation(masks, study.source, descriptions(len(masks)))
    elif kind == "fractional":
        fractions = np.stack([(study.labels == n) * 0.8 for n in study.present])
        fractions[0, :, ::3] *= 0.5  # fractions both sides of the 0.5 level
        ds = encode_segmentation(
            fractions, study.source, descriptions(count), segmentation_type="fractional"
        )
    else:
        labels = np.searchsorted(sorted(study.present), study.labels) + 1
        labels[study.labels == 0] = 0
        ds = encode_segmentation(
            labels.astype(np.uint8), study.source, descriptions(count), segmentation_type=kind
        )
    if undescribed:  # the SEG no longer describes its last segment; its voxels are left out
        ds.SegmentSequence = ds.SegmentSequence[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "frames refer to undescribed segments", said on read
        return read_segmentation(ds)


CASES = [
    ("labelmap", False, True),
    ("labelmap", True, True),
    ("binary", False, True),
    ("binary", True, True),
    ("overlapping", False, False),
    ("fractional", False, False),
]


@pytest.mark.parametrize(("kind", "undescribed", "as_labels"), CASES)
def test_the_same_gsps_and_warnings_as_from_stacked_masks(
    study, monkeypatch, kind, undescribed, as_labels
):
    seg = _seg(study, kind, undescribed=undescribed)
    numbers = tuple(sorted(seg.segment_numbers))
    taken = convert._disjoint_labels(seg, study.source, numbers)
    assert (taken is not None) == as_labels  # apart: one label map, not one volume each
    if taken is not None:
        assert taken.shape == study.labels.shape
        assert set(np.unique(taken).tolist()) <= {0, *numbers}

    def convert_it():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = seg_to_gsps(seg, study.source, window=(40, 400), allow_empty=True, options=FIXED)
        return _saved(ds), [(w.category, str(w.message), w.filename) for w in caught]

    now, said = convert_it()
    with monkeypatch.context() as patched:  # the former way: one mask per segment, always
        patched.setattr(convert, "_disjoint_labels", lambda *args: None)
        before, said_before = convert_it()
    assert now == before
    assert said == said_before
    state = read_gsps(now)
    assert tuple(state.segments) == numbers
    if kind != "fractional":
        stacked = seg.stacked_volume(study.source)
        got = state.stacked_volume(study.source, segments=list(numbers))
        np.testing.assert_array_equal(got.array, stacked.array)


def test_overlap_declared_yes_keeps_the_stacked_path(study):
    seg = _seg(study, "binary")
    seg.dataset.SegmentsOverlap = "YES"
    assert convert._disjoint_labels(seg, study.source, tuple(seg.segment_numbers)) is None
