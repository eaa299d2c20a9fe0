"""The one rule that turns fractional values (FRACTIONAL SEG, probabilities) into masks.

A voxel is *inside* when its fraction is at least the threshold:
``stored / maximum >= threshold`` (0.5 unless given). The SEG reader (label maps,
stacked masks, masks per source image), ``radbridge render``, ``seg decode`` and
SEG → RTSTRUCT conversion (the contour's iso-level) all use :func:`binarize` and
:data:`DEFAULT_THRESHOLD`, so the same file gives the same voxels everywhere.

Examples
--------
>>> import numpy as np
>>> binarize(np.array([0, 127, 128, 255], np.uint8), maximum=255).tolist()
[False, False, True, True]
>>> binarize(np.array([0.2, 0.5, 0.7]), threshold=0.6).tolist()
[False, False, True]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import ConfigError

__all__ = ["DEFAULT_THRESHOLD", "binarize", "check_threshold"]

#: Fraction at or above which a voxel is inside (PS3.3 leaves the choice to the reader;
#: 0.5 is what highdicom's users, dcmqi's converters and iso-contouring use).
DEFAULT_THRESHOLD = 0.5


def check_threshold(threshold: float, *, attribute: str = "threshold") -> float:
    """Return ``threshold`` as a float if ``0 < threshold <= 1``, else raise.

    Raises
    ------
    ConfigError
        The value is not a number in (0, 1].
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value <= 1:
        raise ConfigError(
            f"threshold {threshold!r} must be a fraction in (0, 1]",
            attribute=attribute,
            hint=f"e.g. {DEFAULT_THRESHOLD}: voxels whose fraction is at least it are inside",
        )
    return value


def binarize(
    values: NDArray[Any], *, maximum: float = 1.0, threshold: float = DEFAULT_THRESHOLD
) -> NDArray[np.bool_]:
    """Return ``values / maximum >= threshold`` (booleans stay as they are).

    Parameters
    ----------
    values
        Stored fractional values (integers 0..``maximum``) or fractions in [0, 1].
    maximum
        The value that means 1.0 (a FRACTIONAL SEG's Maximum Fractional Value).
    threshold
        The fraction at or above which a voxel is inside, in (0, 1].
    """
    array = np.asarray(values)
    if array.dtype == np.bool_:
        return array
    limit = check_threshold(threshold)
    # Always the fraction in float64, so stored integers and the fractions computed from
    # them (e.g. for iso-contouring) are inside at exactly the same voxels.
    fraction = array.astype(np.float64) / float(maximum) if maximum != 1 else array
    inside: NDArray[np.bool_] = np.asarray(fraction, np.float64) >= limit
    return inside
