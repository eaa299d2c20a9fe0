"""`radbridge render` draws overlapping segments of a BINARY SEG (our own output too).

The SC's pixels are decoded by pydicom, not radbridge; where two segments overlap,
both must show: blended tints (filled) and each segment's own outline (outline).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from radbridge.cli import main
from radbridge.iods.sc import render_frames
from radbridge.iods.seg import encode_segmentation

COLOURS = {1: (255, 0, 0), 2: (0, 0, 255)}


@pytest.fixture
def overlapping(study, tmp_path):
    masks = np.zeros((2, *study.labels.shape), bool)
    masks[0, :, 8:30, 8:30] = True
    masks[1, :, 18:40, 18:40] = True
    spec = {
        n: {
            "label": f"box {n}",
            "category": {"value": "49755003", "scheme": "SCT", "meaning": "Morph"},
            "type": {"value": "108369006", "scheme": "SCT", "meaning": "Tumor"},
            "rgb": list(COLOURS[n]),
        }
        for n in (1, 2)
    }
    ds = encode_segmentation(masks, study.source, spec)
    path = tmp_path / "overlap.seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, masks


def _render(study, path, out, style):
    argv = ["render", str(path), "--source", str(study.folder), "-o", str(out)]
    assert main([*argv, "--sc", "--style", style, "--window", "40,400"]) == 0
    return pydicom.dcmread(out / "overlay.dcm").pixel_array


def _layout(study):
    blank = render_frames(study.volume, np.zeros_like(study.labels), {}, {}, window=(40, 400))
    return blank.image_top, blank.zoom, blank.image_area()


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose four neighbours are in the mask too (not on an outline)."""
    inner = mask.copy()
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[:, :, 1:] &= mask[:, :, :-1]
    inner[:, :, :-1] &= mask[:, :, 1:]
    return inner


def _image(frames, study, top, zoom):
    rows = study.labels.shape[1] * zoom
    return frames[:, top : top + rows].astype(float)


def test_filled_blends_both_segments_where_they_overlap(study, overlapping, tmp_path):
    path, masks = overlapping
    top, zoom, grey = _layout(study)
    image = _image(_render(study, path, tmp_path / "f", "filled"), study, top, zoom)
    big = masks.repeat(zoom, axis=2).repeat(zoom, axis=3)
    base = grey.astype(float)
    one = np.rint(base * 0.6 + np.array(COLOURS[1]) * 0.4)
    both = np.rint(one * 0.6 + np.array(COLOURS[2]) * 0.4)
    only_one = _interior(big[0]) & ~big[1]
    overlap = _interior(big[0]) & _interior(big[1])
    assert overlap.sum() > 100 and only_one.sum() > 100
    np.testing.assert_array_equal(image[only_one], one[only_one])
    np.testing.assert_array_equal(image[overlap], both[overlap])


def test_outline_draws_each_segment_boundary_inside_the_other(study, overlapping, tmp_path):
    path, masks = overlapping
    top, zoom, _ = _layout(study)
    image = _image(_render(study, path, tmp_path / "o", "outline"), study, top, zoom)
    # Segment 1's right edge runs through segment 2's interior: it stays visible in red.
    k, row = 3, 25
    column = 29  # the last column of box 1, inside box 2 (18..39)
    assert masks[0, k, row, column] and masks[1, k, row, column]
    pixel = image[k, row * zoom + zoom // 2, column * zoom + zoom - 1]
    np.testing.assert_array_equal(pixel, COLOURS[1])
    # Segment 2's left edge inside segment 1 is blue.
    pixel = image[k, row * zoom + zoom // 2, 18 * zoom]
    np.testing.assert_array_equal(pixel, COLOURS[2])
