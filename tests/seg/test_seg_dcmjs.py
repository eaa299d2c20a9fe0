"""What an OHIF user sees: dcmjs's segmentation adapter rebuilds our SEGs on the source.

dcmjs finds each frame's source image itself (from the frame's Derivation Image
reference, or by position) and writes the segment number into a labelmap per source
image; the masks must come back voxel for voxel.
"""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.iods.seg import encode_segmentation
from tests.peers import dcmjs_segmentation

from .conftest import descriptions, source_stack

pytestmark = pytest.mark.peer


@pytest.mark.parametrize("profile", [None, "slicer", "ohif"])
def test_dcmjs_rebuilds_the_default_binary_seg_exactly(study, tmp_path, profile):
    ds = encode_segmentation(study.labels, study.source, descriptions(7), profile=profile)
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    theirs = dcmjs_segmentation(path, source_stack(study), tmp_path / "js")
    assert len(theirs.labelmaps) == 1
    np.testing.assert_array_equal(theirs.labelmaps[0], study.labels)
    assert theirs.segments == {k: f"segment {k}" for k in range(1, 8)}


def test_dcmjs_rebuilds_overlapping_segments_exactly(study, tmp_path):
    rng = np.random.default_rng(11)
    masks = rng.random((3, *study.labels.shape)) > 0.7
    path = tmp_path / "seg.dcm"
    encode_segmentation(masks, study.source, descriptions(3)).save_as(
        path, enforce_file_format=True
    )
    theirs = dcmjs_segmentation(path, source_stack(study), tmp_path / "js")
    assert len(theirs.labelmaps) > 1  # dcmjs splits overlapping segments over labelmaps
    for k in range(3):
        rebuilt = np.any([labelmap == k + 1 for labelmap in theirs.labelmaps], axis=0)
        np.testing.assert_array_equal(rebuilt, masks[k], err_msg=f"segment {k + 1}")
