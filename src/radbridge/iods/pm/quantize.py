"""Store a real-valued map as 16-bit integers with a faithful slope and intercept.

A Parametric Map stored as integers means ``real = stored * slope + intercept``
(Real World Value Mapping). Casting a float map to integers with slope 1 would
keep only its whole part (an ADC map of 0-0.004 mm²/s becomes all zeros), so
radbridge spreads the data range over the whole integer range instead: the
error of any value is then at most half a step (``slope / 2``).

Examples
--------
>>> import numpy as np
>>> adc = np.linspace(0, 0.004, 1000).reshape(10, 10, 10)
>>> q = quantize(adc, "uint16")
>>> q.stored.dtype.name, q.stored.min(), q.stored.max()
('uint16', np.uint16(0), np.uint16(65535))
>>> bool(q.max_error <= q.slope / 2 * (1 + 1e-9))
True
>>> quantize(np.array([[[3.0, 7.0]]]), "uint16").slope   # whole numbers stay exact
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import EncodingError

__all__ = ["INTEGER_DTYPES", "Quantization", "quantize"]

#: Integer types a Parametric Map stores (16-bit Pixel Data).
INTEGER_DTYPES = ("uint16", "int16")


@dataclass(frozen=True, eq=False)
class Quantization:
    """Integers to store and the mapping back: ``real = stored * slope + intercept``.

    ``max_error`` is the largest difference between a value and its mapped-back
    stored value over the whole map (0 when the mapping is exact).
    """

    stored: NDArray[Any]
    slope: float
    intercept: float
    max_error: float

    @property
    def exact(self) -> bool:
        """Whether every value maps back exactly."""
        return self.max_error == 0.0


def quantize(values: NDArray[Any], dtype: str) -> Quantization:
    """Map finite ``values`` onto ``dtype`` (``uint16`` or ``int16``) without losing range.

    Whole numbers whose range fits are stored exactly (slope 1); anything else is
    spread linearly over the full integer range, so one step is
    ``(max - min) / 65535``.

    Raises
    ------
    EncodingError
        ``dtype`` is not a 16-bit integer type, or the map holds NaN or infinity.
    """
    if dtype not in INTEGER_DTYPES:
        raise EncodingError(
            f"a Parametric Map stores integers as uint16 or int16, not {dtype}",
            attribute="stored_dtype",
            hint="use uint16, int16, float32 or float64",
        )
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0 or not np.isfinite(array).all():
        raise EncodingError(
            "only a non-empty map of finite values can be stored as integers",
            attribute="values",
            hint="pass nan_policy='zero', or store the map as float32 (NaN kept as padding)",
        )
    info = np.iinfo(dtype)
    low, high = float(array.min()), float(array.max())
    whole = bool(np.array_equal(array, np.round(array)))
    if whole and high - low <= info.max - info.min:
        intercept = 0.0 if low >= info.min and high <= info.max else low - info.min
        stored = (array - intercept).astype(dtype)
        return Quantization(stored, 1.0, intercept, 0.0)
    slope = (high - low) / (int(info.max) - int(info.min)) if high > low else 1.0
    intercept = low - int(info.min) * slope
    scaled = np.rint((array - intercept) / slope)
    stored = np.clip(scaled, info.min, info.max).astype(dtype)
    error = float(np.abs(stored.astype(np.float64) * slope + intercept - array).max())
    return Quantization(stored, slope, intercept, error)
