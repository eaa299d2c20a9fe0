"""Property: any mask on the source grid comes back exactly from its outlines."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from radbridge.pr import encode_gsps, read_gsps


@st.composite
def label_maps(draw):
    """Up to three labels of random pixels (noise, thin lines, holes) on two slices."""
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.floats(0.05, 0.6))
    labels = draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    out = np.zeros((10, 64, 64), np.uint8)
    for k in rng.choice(10, size=2, replace=False):
        patch = rng.integers(1, labels + 1, size=(12, 12)) * (rng.random((12, 12)) < density)
        top, left = rng.integers(0, 52, size=2)
        out[k, top : top + 12, left : left + 12] = patch
    return out


@settings(max_examples=10, deadline=None)
@given(mask=label_maps())
def test_outlines_fill_back_to_the_mask(study, mask):
    present = {int(n): f"Label {n}" for n in np.unique(mask) if n}
    if not present:
        return
    ps = read_gsps(encode_gsps(mask, study.source, present, window=(40, 400)))
    assert np.array_equal(ps.label_volume(study.source).array, mask)
