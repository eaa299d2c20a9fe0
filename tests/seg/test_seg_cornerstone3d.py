"""What an OHIF 3.13 user sees: the Cornerstone3D adapter rebuilds our SEGs on the source.

``@cornerstonejs/adapters`` 5.6.8 (the version OHIF 3.13.2 pins) finds each frame's
source image from the frame's Derivation Image reference, through the metadata that
Cornerstone parses from the source files, and writes the segment number into one
labelmap image per source image; BINARY and Label Map SEGs must come back voxel for
voxel. What it refuses is measured here and in tests/test_compatibility.py.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from radbridge.iods.seg import encode_segmentation
from tests.peers import PeerCommandError, cornerstone3d_segmentation

from .conftest import descriptions, source_stack

pytestmark = pytest.mark.peer

RLE = "1.2.840.10008.1.2.5"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"


def _write(tmp_path, data, study, n, name="seg", **options):
    ds = encode_segmentation(data, study.source, descriptions(n), **options)
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("profile", [None, "slicer", "ohif"])
def test_cornerstone3d_rebuilds_the_default_binary_seg_exactly(study, tmp_path, profile):
    path = _write(tmp_path, study.labels, study, 7, profile=profile)
    theirs = cornerstone3d_segmentation(path, source_stack(study), tmp_path / "js")
    assert len(theirs.labelmaps) == 1
    assert not theirs.overlapping
    np.testing.assert_array_equal(theirs.labelmaps[0], study.labels)
    assert theirs.segments == {k: f"segment {k}" for k in range(1, 8)}


@pytest.mark.parametrize(
    ("options", "syntax"),
    [
        ({}, RLE),
        ({"profile": "ohif"}, RLE),
        ({"transfer_syntax": "explicit"}, EXPLICIT),
        ({"profile": "slicer"}, DEFLATED),
    ],
)
def test_cornerstone3d_rebuilds_label_map_segs_exactly(study, tmp_path, options, syntax):
    path = _write(tmp_path, study.labels, study, 7, segmentation_type="labelmap", **options)
    written = pydicom.dcmread(path, stop_before_pixels=True)
    assert (written.SegmentationType, written.file_meta.TransferSyntaxUID) == ("LABELMAP", syntax)
    theirs = cornerstone3d_segmentation(path, source_stack(study), tmp_path / "js")
    assert len(theirs.labelmaps) == 1
    np.testing.assert_array_equal(theirs.labelmaps[0], study.labels)
    assert theirs.segments == {k: f"segment {k}" for k in range(1, 8)}


def test_cornerstone3d_rebuilds_overlapping_segments_exactly(study, tmp_path):
    masks = np.random.default_rng(11).random((3, *study.labels.shape)) > 0.7
    path = _write(tmp_path, masks, study, 3)
    theirs = cornerstone3d_segmentation(path, source_stack(study), tmp_path / "js")
    assert theirs.overlapping and len(theirs.labelmaps) > 1
    for k in range(3):
        rebuilt = np.any([labelmap == k + 1 for labelmap in theirs.labelmaps], axis=0)
        np.testing.assert_array_equal(rebuilt, masks[k], err_msg=f"segment {k + 1}")


def test_cornerstone3d_reads_fractional_segs_only_when_every_value_is_zero_or_maximum(
    study, tmp_path
):
    masks = np.stack([study.labels == k for k in range(1, 8)])
    whole = _write(
        tmp_path, masks.astype(np.float32), study, 7, "whole", segmentation_type="fractional"
    )
    theirs = cornerstone3d_segmentation(whole, source_stack(study), tmp_path / "whole")
    np.testing.assert_array_equal(theirs.labelmaps[0], study.labels)

    fractions = _write(
        tmp_path,
        masks.astype(np.float32) * 0.6,
        study,
        7,
        "fractions",
        segmentation_type="fractional",
    )
    with pytest.raises(PeerCommandError, match="Fractional segmentations are not yet supported"):
        cornerstone3d_segmentation(fractions, source_stack(study), tmp_path / "fractions")
