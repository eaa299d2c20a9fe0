"""The grey of a drawn overlay checked against the standard's LINEAR window (PS3.3 C.11.2.1.2.1)."""

from __future__ import annotations

import numpy as np

from radbridge.sc import render_frames


def assert_grey_follows_window(frames, volume, labels, window, *, invert=False):
    """Every body pixel (label 1) far from an outline shows the window's grey, to 2 levels.

    ``frames`` are the SC's RGB frames; the layout (banner height, zoom) is
    radbridge's own, the expected grey the standard's formula on the source values.
    """
    calm = np.ones(labels.shape, bool)  # the same label 2 pixels around: no outline near
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            calm &= np.roll(np.roll(labels, dy, 1), dx, 2) == labels
    calm[:, :2], calm[:, -2:], calm[:, :, :2], calm[:, :, -2:] = False, False, False, False
    z, y, x = np.nonzero(calm & (labels == 1))
    c, w = window
    hu = volume.array[z, y, x].astype(float)
    expected = np.clip(((hu - (c - 0.5)) / (w - 1) + 0.5) * 255, 0, 255)
    if invert:
        expected = 255 - expected
    layout = render_frames(volume, labels, {}, {})  # where the image sits in a frame
    grey = frames[z, layout.image_top + y * layout.zoom, x * layout.zoom, 0].astype(float)
    assert len(grey) > 100 and np.ptp(expected) > 30
    np.testing.assert_allclose(grey, expected, atol=2)
