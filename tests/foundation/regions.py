"""Overlapping regions and the label-map rule, for the label_volume tests of every family.

A family's ``label_volume`` paints its regions (ROIs, graphic groups, ...) into one
label map; these helpers give the overlapping masks to test that on, the documented
rule computed from one full mask per region, and the peak memory of a call.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def overlapping_masks(labels: np.ndarray) -> np.ndarray:
    """Phantom organs plus masks over them and each other, a tie and an empty mask.

    In order: a body outline around everything, the liver, a box over lungs, liver and
    body, two twins of the same size that share pixels, the left lung, the liver once
    more (a full overlap of the same size), nothing.
    """
    box = np.zeros(labels.shape, bool)
    box[3:12, 20:44, 20:44] = True
    twin_a, twin_b = np.zeros_like(box), np.zeros_like(box)
    twin_a[5:9, 10:20, 10:20] = True
    twin_b[5:9, 15:25, 12:22] = True
    return np.stack(
        [labels > 0, labels == 5, box, twin_a, twin_b, labels == 2, labels == 5, np.zeros_like(box)]
    )


def reference_label_map(masks: np.ndarray, numbers: tuple[int, ...]) -> np.ndarray:
    """The documented rule, from one full mask per region: the smaller wins, ties the later."""
    counts = masks.reshape(len(numbers), -1).sum(axis=1)
    out = np.zeros(masks.shape[1:], np.uint8 if max(numbers) <= 255 else np.uint16)
    for size in sorted(set(counts.tolist()), reverse=True):
        for i in np.flatnonzero(counts == size):  # same size: in region order, the later wins
            out[masks[i]] = numbers[i]
    return out


def peak_of(call: Callable[[], Any]) -> tuple[Any, int]:
    """Return what ``call()`` returns and the peak of memory traced while it ran (bytes)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
