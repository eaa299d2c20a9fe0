"""Every writer option the suite uses, through dciodvfy and dcentvfy with the source series."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pydicom
import pytest

from radbridge.geometry import Volume
from radbridge.iods.common import SeriesOptions
from radbridge.iods.seg import encode_segmentation, read_segmentation
from tests.peers import dcentvfy, dciodvfy

from .conftest import descriptions

pytestmark = pytest.mark.peer


def variants(study):
    labels = study.labels
    rng = np.random.default_rng(5)
    prob = rng.random((2, *labels.shape)).astype(np.float32)
    prob[prob < 0.6] = 0
    coarse = study.source.geometry.affine.copy()
    coarse[:3, 1:3] *= 2
    small = np.zeros((labels.shape[0], 24, 24), np.uint8)
    small[3:6, 5:10, 5:10] = 1
    coloured = [replace(d, display_rgb=(30 * d.segment_number, 90, 200)) for d in descriptions(7)]
    yield "binary", encode_segmentation(labels, study.source, descriptions(7))
    yield (
        "binary keep empty",
        encode_segmentation(labels, study.source, descriptions(7), keep_empty_frames=True),
    )
    yield (
        "binary overlapping",
        encode_segmentation(rng.random((3, *labels.shape)) > 0.8, study.source, descriptions(3)),
    )
    yield (
        "fractional occupancy",
        encode_segmentation(
            prob,
            study.source,
            descriptions(2),
            segmentation_type="fractional",
            fractional_type="occupancy",
            max_fractional_value=100,
        ),
    )
    yield (
        "labelmap",
        encode_segmentation(
            labels, study.source, coloured, segmentation_type="labelmap", transfer_syntax="explicit"
        ),
    )
    yield (
        "labelmap palette",
        encode_segmentation(
            labels, study.source, coloured, segmentation_type="labelmap", palette=True
        ),
    )
    yield (
        "labelmap 16-bit",
        encode_segmentation(
            (labels.astype(np.uint16) * 50) % 301,
            study.source,
            descriptions(300),
            segmentation_type="labelmap",
        ),
    )
    yield (
        "other grid",
        encode_segmentation(
            Volume(small, coarse, study.source.frame_of_reference_uid),
            study.source,
            descriptions(1),
        ),
    )
    yield (
        "fixed uids",
        encode_segmentation(
            labels,
            study.source,
            descriptions(7),
            options=SeriesOptions(
                series_instance_uid="2.25.11",
                sop_instance_uid="2.25.12",
                content_label="LIVER_AI",
                series_number=901,
            ),
        ),
    )


def test_every_variant_passes_dciodvfy_and_dcentvfy(study, tmp_path):
    sources = sorted(study.folder.glob("*.dcm"))
    for name, ds in variants(study):
        path = tmp_path / f"{name.replace(' ', '_')}.dcm"
        ds.save_as(path, enforce_file_format=True)
        result = dciodvfy(path)
        assert result.errors == [], f"{name}: {result.output}"
        together = dcentvfy([path, *sources])
        assert together.errors == [], f"{name}: {together.output}"


def test_our_frames_equal_pydicoms_on_every_interop_seg(interop):
    import warnings

    for path in sorted((interop / "seg").rglob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = read_segmentation(path)
            ours = np.concatenate([frames for _, frames in seg.iter_frames()])
            reference = pydicom.dcmread(path)
            if path.name in ("liver_rle.dcm", "liver_nonbyte_aligned_rle.dcm", "liver_deflate.dcm"):
                # pydicom 3.0 decodes neither 1-bit RLE nor Deflated Image Frame Compression;
                # these are compared with the original liver.dcm in test_seg_peers.py.
                continue
            theirs = reference.pixel_array
        theirs = theirs.reshape(ours.shape)
        np.testing.assert_array_equal(ours.astype(int), theirs.astype(int), err_msg=str(path))
