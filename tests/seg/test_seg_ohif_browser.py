"""OHIF 3.13's own SEG load path in a real browser rebuilds our SEGs on the source.

``tests/js/seg_ohif_browser.mjs`` opens a page bundled from ``tests/js/node_modules`` in
Debian's headless Chromium; the sources and the SEG are served from 127.0.0.1 as
``wadouri:`` images, ``@cornerstonejs/dicom-image-loader`` decodes the SEG's frames in
its web worker, and ``createFromDicomSegImageId`` places them as OHIF's SEG extension
does. A browser start takes a few seconds: slow tier.
"""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.iods.seg import encode_segmentation
from tests.peers import ohif_browser_segmentation

from .conftest import descriptions, source_stack

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@pytest.mark.parametrize(
    ("seg_type", "profile"),
    [
        ("binary", None),
        ("binary", "ohif"),
        ("labelmap", None),
        ("labelmap", "ohif"),
        ("labelmap", "compact"),
    ],
    ids=["binary-explicit", "binary-ohif", "labelmap-rle", "labelmap-ohif", "labelmap-jpegls"],
)
def test_ohif_rebuilds_our_segs_exactly_in_a_browser(study, tmp_path, seg_type, profile):
    ds = encode_segmentation(
        study.labels, study.source, descriptions(7), segmentation_type=seg_type, profile=profile
    )
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    theirs = ohif_browser_segmentation(path, source_stack(study), tmp_path / "js")
    assert len(theirs.labelmaps) == 1
    np.testing.assert_array_equal(theirs.labelmaps[0], study.labels)
    assert theirs.segments == {k: f"segment {k}" for k in range(1, 8)}
