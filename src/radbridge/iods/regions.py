"""Masks of labelled regions on a source series, from a label map or stacked masks.

Writers that outline regions (RT Structure Sets, presentation states) take either
a label map ``[slice, row, column]`` (0 background, value = region number) or
stacked masks ``[region, slice, row, column]`` (booleans, or probabilities in
[0, 1]) on the source grid. :func:`mask_on_source` checks the input against the
source and :func:`region_masks` yields one 3-D mask per described region.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros((1, 3, 3), np.uint8)
>>> labels[0, 1, 1] = 2
>>> [(n, int(m.sum())) for n, m in region_masks(labels, [1, 2], what="ROI")]
[(1, 0), (2, 1)]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import EncodingError
from radbridge.geometry import Volume
from radbridge.iods.multiframe.planes import on_source_grid
from radbridge.iods.source import Series

__all__ = ["mask_on_source", "region_masks"]


def mask_on_source(
    mask: NDArray[Any] | Volume, source: Series, *, what: str, register_hint: str
) -> NDArray[Any]:
    """Return the mask's array after checking that it lies on the source grid.

    Parameters
    ----------
    mask
        A label map or stacked masks (4-D), as an array or a Volume.
    source
        The source series.
    what
        The region's name in messages (``"ROI"``, ``"segment"``).
    register_hint
        What to do when the mask lies on another grid.

    Raises
    ------
    GridMismatchError
        The mask does not fit the source grid.
    """
    stacked = np.ndim(mask.array if isinstance(mask, Volume) else mask) == 4
    array, _, same_grid = on_source_grid(
        mask,
        source,
        what="mask",
        attribute="mask",
        register_hint=register_hint,
        shape_hint=f"give a label map [slice, row, column] or stacked masks [{what.lower()}, "
        "slice, row, column] in the source's slice order (see `radbridge info --json`); "
        "resample masks made on another grid first",
        stacked=what if stacked else None,
    )
    if isinstance(mask, Volume) and not same_grid:
        source.geometry.require_same_grid(mask.geometry, what="the mask")
    return np.asarray(array)


def region_masks(
    array: NDArray[Any], numbers: Sequence[int], *, what: str
) -> Iterator[tuple[int, NDArray[Any]]]:
    """Yield each region number with its 3-D mask (bool) or probability map (float).

    Parameters
    ----------
    array
        A label map (integers or booleans) or stacked masks in the order of ``numbers``.
    numbers
        The described region numbers, ascending.
    what
        The region's name in messages (``"ROI"``, ``"segment"``).

    Raises
    ------
    EncodingError
        Stacked masks and descriptions differ in number, probabilities outside
        [0, 1], a label map of floats, or label values nobody described.
    """
    plural = f"{what}s"
    if array.ndim == 4:
        if array.shape[0] != len(numbers):
            raise EncodingError(
                f"stacked mask has {array.shape[0]} masks but {len(numbers)} {plural} are "
                "described",
                attribute=f"{what.lower()}s",
            )
        if np.issubdtype(array.dtype, np.floating) and (
            not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1
        ):
            raise EncodingError(
                "stacked probabilities must be finite and lie in [0, 1]", attribute="mask"
            )
        for k, number in enumerate(numbers):
            plane = array[k]
            yield number, plane if np.issubdtype(plane.dtype, np.floating) else plane != 0
        return
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise EncodingError(
            f"a label map needs integers, got {array.dtype}",
            attribute="mask",
            hint=f"for probabilities pass stacked [{what.lower()}, slice, row, column] floats "
            "in [0, 1]",
        )
    present = np.unique(array)
    unknown = [int(v) for v in present if v != 0 and int(v) not in set(numbers)]
    if unknown:
        raise EncodingError(
            f"label values {unknown[:10]} have no {what} description",
            attribute=f"{what.lower()}s",
            hint="describe every label (labels.json), or set unwanted labels to 0",
        )
    for number in numbers:
        yield number, array == number
