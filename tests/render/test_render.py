"""Overlay rendering and PNG snapshots, checked pixel by pixel."""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.errors import EncodingError, GridMismatchError
from radbridge.iods.sc import (
    BANNER_TEXT,
    choose_slices,
    render_frames,
    render_overlay,
    render_png_montage,
)
from radbridge.iods.sc.font import text_mask
from radbridge.iods.sc.render import BANNER_FOREGROUND

from .conftest import COLOURS

NAMES = {1: "body", 2: "lung left", 3: "lung right", 4: "bone", 5: "liver"}


def _grey(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])


def _zoomed(labels: np.ndarray, zoom: int) -> np.ndarray:
    return labels.repeat(zoom, axis=1).repeat(zoom, axis=2)


def test_outline_colours_only_where_the_mask_is(study):
    r = render_frames(study.volume, study.labels, COLOURS, NAMES, style="outline")
    image = r.image_area()
    labels = _zoomed(study.labels, r.zoom)
    assert image.shape[:3] == labels.shape
    assert _grey(image[labels == 0]).all(), "colour outside every segment"
    coloured = ~_grey(image)
    assert coloured.any()
    # Every coloured pixel is exactly its segment's colour.
    for label, colour in COLOURS.items():
        here = coloured & (labels == label)
        assert (image[here] == colour).all()
    # Each segment present in a slice shows up in that slice.
    for k in range(labels.shape[0]):
        for label in np.unique(study.labels[k]):
            if label:
                assert (coloured[k] & (labels[k] == label)).any(), (k, label)
    # Outline: interior pixels stay grey.
    assert _grey(image[labels > 0]).any()


def test_filled_tints_every_mask_pixel(study):
    r = render_frames(study.volume, study.labels, COLOURS, NAMES, style="filled", opacity=0.5)
    image = r.image_area()
    labels = _zoomed(study.labels, r.zoom)
    assert _grey(image[labels == 0]).all()
    assert not _grey(image[labels > 0]).any()
    plain = render_frames(study.volume, np.zeros_like(study.labels), {}, {}, legend=False)
    base = plain.image_area()[..., 0].astype(float)
    for label, colour in COLOURS.items():
        where = labels == label
        expected = np.rint(base[where][:, None] * 0.5 + np.array(colour) * 0.5)
        got = image[where].astype(float)
        is_edge = (got == colour).all(axis=1)
        assert np.array_equal(got[~is_edge], expected[~is_edge])


def test_banner_is_burned_into_every_frame(study):
    r = render_frames(study.volume, study.labels, COLOURS, NAMES)
    banner = r.frames[:, r.banner_rows]
    text = (banner == BANNER_FOREGROUND).all(axis=-1)
    expected = text_mask(BANNER_TEXT, max(1, r.frames.shape[2] // 256))
    expected = _crop(expected)
    for frame in text:
        assert np.array_equal(_crop(frame), expected)


def _crop(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def test_legend_shows_each_present_segment_colour(study):
    r = render_frames(study.volume, study.labels, COLOURS, NAMES)
    legend = r.frames[:, r.legend_rows]
    assert legend.shape[1] > 0
    for label in np.unique(study.labels):
        if label:
            assert (legend[0] == COLOURS[int(label)]).all(axis=-1).any()
    absent = render_frames(study.volume, np.where(study.labels == 1, 1, 0), COLOURS, NAMES)
    assert not (absent.frames[:, absent.legend_rows] == COLOURS[2]).all(axis=-1).any()


def test_labels_on_black_without_pixels(study):
    frames = render_overlay(study.source, study.labels, COLOURS, NAMES)
    assert frames.dtype == np.uint8 and frames.shape[0] == study.labels.shape[0]


def test_same_input_same_pixels(study):
    a = render_overlay(study.volume, study.labels, COLOURS, NAMES, style="filled")
    b = render_overlay(study.volume, study.labels, COLOURS, NAMES, style="filled")
    assert np.array_equal(a, b)


def test_bad_input(study):
    with pytest.raises(GridMismatchError) as info:
        render_overlay(study.volume, study.labels[:, :10], COLOURS, NAMES)
    assert info.value.attribute == "labels"
    with pytest.raises(EncodingError, match="style"):
        render_overlay(study.volume, study.labels, COLOURS, NAMES, style="hatched")
    with pytest.raises(EncodingError, match="non-negative"):
        render_overlay(study.volume, study.labels.astype(np.int8) - 1, COLOURS, NAMES)
    with pytest.raises(EncodingError, match="RGB"):
        render_overlay(study.volume, study.labels, {1: (300, 0, 0)}, NAMES)


def test_png_montage_pixels(study, tmp_path):
    from PIL import Image

    r = render_frames(study.volume, study.labels, COLOURS, NAMES)
    path = tmp_path / "qa" / "montage.png"
    chosen = render_png_montage(r.frames, study.labels, path, count=2, columns=2)
    area = (study.labels > 0).sum(axis=(1, 2))
    assert sorted(chosen) == chosen and len(chosen) == 2
    assert min(area[chosen]) >= max(np.delete(area, chosen))
    png = np.asarray(Image.open(path).convert("RGB"))
    height, width = r.frames.shape[1:3]
    assert png.shape == (height, 2 * width + 4, 3)
    for i, k in enumerate(chosen):
        tile = png[:, i * (width + 4) : i * (width + 4) + width]
        assert np.array_equal(tile, r.frames[k])
        image = tile[r.image_top : r.image_top + r.image_shape[0] * r.zoom]
        labels = _zoomed(study.labels[k : k + 1], r.zoom)[0]
        assert _grey(image[labels == 0]).all()
        assert not _grey(image[labels > 0]).all()
        assert (tile[r.banner_rows] == BANNER_FOREGROUND).all(axis=-1).any()


def test_choose_slices_refuses_empty_labels():
    with pytest.raises(EncodingError, match="no slice"):
        choose_slices(np.zeros((3, 4, 4), np.uint8), 2)
    assert choose_slices(np.array([[[0]], [[1]], [[1]]]), 1) == [1]
