r"""PNG snapshots for QA: a montage of the slices with the most segmented area.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.sc.render import render_overlay
>>> ph = generate_phantom(slices=5, size=32)
>>> frames = render_overlay(ph.hu, ph.labels.array, {}, ph.label_names)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "montage.png"
>>> chosen = render_png_montage(frames, ph.labels.array, out, count=2)
>>> len(chosen), out.read_bytes()[:4] == b"\x89PNG"
(2, True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge._optional import require
from radbridge.errors import EncodingError, GridMismatchError

__all__ = ["choose_slices", "montage", "render_png_montage"]

_GAP = 4


def choose_slices(labels: NDArray[Any], count: int) -> list[int]:
    """Return up to ``count`` slice indices with the most segmented area, in slice order.

    ``labels`` is a label map ``[slice, row, column]`` or stacked masks
    ``[segment, slice, row, column]``.

    Raises
    ------
    EncodingError
        No slice holds a segmented voxel.
    """
    if count < 1:
        raise EncodingError(f"count must be at least 1, not {count}", attribute="count")
    array = np.asarray(labels)
    inside = (array > 0).any(axis=0) if array.ndim == 4 else array > 0
    area = inside.sum(axis=(1, 2))
    ranked = [int(k) for k in np.argsort(-area, kind="stable") if area[k] > 0][:count]
    if not ranked:
        raise EncodingError(
            "no slice holds a segmented voxel", attribute="labels", hint="check the mask"
        )
    return sorted(ranked)


def montage(frames: NDArray[np.uint8], slices: list[int], *, columns: int = 3) -> NDArray[np.uint8]:
    """Tile the chosen RGB frames in a grid (black gaps), row by row."""
    count = len(slices)
    across = max(1, min(columns, count))
    down = -(-count // across)
    height, width = frames.shape[1:3]
    out = np.zeros(
        (down * height + (down - 1) * _GAP, across * width + (across - 1) * _GAP, 3), np.uint8
    )
    for i, k in enumerate(slices):
        top, left = (i // across) * (height + _GAP), (i % across) * (width + _GAP)
        out[top : top + height, left : left + width] = frames[k]
    return out


def render_png_montage(
    frames: NDArray[np.uint8],
    labels: NDArray[Any],
    path: str | os.PathLike[str],
    *,
    count: int = 6,
    columns: int = 3,
) -> list[int]:
    """Write a PNG montage of the ``count`` slices with the most segmented area.

    Parameters
    ----------
    frames
        RGB frames from :func:`~radbridge.iods.sc.render_overlay`.
    labels
        The label map (or stacked masks) the frames show (chooses the slices).
    path
        The PNG file to write (its folder is created).
    count, columns
        How many slices, and how many side by side.

    Returns
    -------
    list of int
        The slices shown (0-based, in the source's slice order).
    """
    image_module = require("PIL.Image", "render", purpose="write PNG snapshots")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise EncodingError("frames must be uint8 [slice, row, column, 3]", attribute="frames")
    slice_count = np.asarray(labels).shape[-3]
    if len(frames) != slice_count:
        raise GridMismatchError(
            f"{len(frames)} frames but {slice_count} label slices",
            attribute="labels",
        )
    slices = choose_slices(labels, count)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    image_module.fromarray(montage(frames, slices, columns=columns)).save(target, format="PNG")
    return slices
