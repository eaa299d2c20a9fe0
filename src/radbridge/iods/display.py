"""How each source slice is meant to be displayed: Modality LUT, window, polarity.

A presentation state replaces the grayscale pipeline of the images it references
(PS3.4 N.2: a transformation absent from the presentation state is the identity, and
the image's own is *not* used), so whoever writes one needs each source slice's
Rescale Slope/Intercept/Type, its Window Center/Width and its Photometric
Interpretation. :func:`slice_display` reads them from a single-frame image or from
one frame's functional groups (Pixel Value Transformation, Frame VOI LUT) of an
enhanced one. Reading is tolerant: a value that is absent or cannot be read is
left unknown (``None``), never fatal — planning a series must not fail because
of a damaged window.

Examples
--------
>>> from pydicom import examples
>>> display = slice_display(examples.ct)
>>> display.rescale_slope, display.rescale_intercept, display.photometric_interpretation
(1.0, -1024.0, 'MONOCHROME2')
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

__all__ = ["SliceDisplay", "common_window", "shows_minimum_white", "slice_display"]


@dataclass(frozen=True)
class SliceDisplay:
    """The display attributes of one source slice.

    Attributes
    ----------
    rescale_slope, rescale_intercept
        The linear Modality LUT (stored value -> modality value); 1 and 0 when absent.
    rescale_type
        Rescale Type (``HU`` for CT), or ``""`` when the image does not say.
    window_center, window_width
        The first window the image recommends, or ``None``.
    photometric_interpretation
        As the image says (upper case; ``MONOCHROME2`` when absent): ``MONOCHROME1``
        shows the minimum white, ``MONOCHROME2`` black; anything else is colour.
    bits_stored, signed
        The stored pixel range (for a window over the whole range when none is known).
    """

    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    rescale_type: str = ""
    window_center: float | None = None
    window_width: float | None = None
    photometric_interpretation: str = "MONOCHROME2"
    bits_stored: int = 16
    signed: bool = False

    @property
    def window(self) -> tuple[float, float] | None:
        """``(center, width)`` when the image recommends a window."""
        if self.window_center is None or self.window_width is None:
            return None
        return self.window_center, self.window_width

    def stored_range(self) -> tuple[float, float]:
        """Return the modality values of the smallest and largest storable pixel value."""
        bits = min(max(self.bits_stored, 1), 32)
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if self.signed else (0, 2**bits - 1)
        ends = sorted(v * self.rescale_slope + self.rescale_intercept for v in (low, high))
        return ends[0], ends[1]


def _first_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        if not len(value):
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _item(ds: Dataset, keyword: str, frame: int | None) -> Dataset:
    """Return the functional group item holding ``keyword`` for ``frame``, else ``ds``."""
    if frame is None:
        return ds
    try:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        shared = ds.get("SharedFunctionalGroupsSequence") or []
        for groups in ([per_frame[frame]] if frame < len(per_frame) else []) + list(shared[:1]):
            items = groups.get(keyword) or []
            if len(items):
                return items[0]  # type: ignore[no-any-return]
    except Exception:  # a damaged functional group: fall back to the top level
        return ds
    return ds


def _text(value: Any) -> str:
    try:
        return str(value or "").strip()
    except Exception:  # pragma: no cover - str() of a damaged value
        return ""


def slice_display(ds: Dataset, frame: int | None = None) -> SliceDisplay:
    """Return the display attributes of an image (``frame``: 0-based, of a multi-frame image).

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset()
    >>> ds.WindowCenter, ds.WindowWidth = ["40", "-600"], ["400", "1500"]
    >>> slice_display(ds).window
    (40.0, 400.0)
    """
    rescale = _item(ds, "PixelValueTransformationSequence", frame)
    voi = _item(ds, "FrameVOILUTSequence", frame)
    slope = _first_number(rescale.get("RescaleSlope"))
    intercept = _first_number(rescale.get("RescaleIntercept"))
    width = _first_number(voi.get("WindowWidth"))
    photometric = _text(ds.get("PhotometricInterpretation")).upper()
    bits = _first_number(ds.get("BitsStored"))
    return SliceDisplay(
        rescale_slope=slope if slope not in (None, 0.0) else 1.0,
        rescale_intercept=intercept if intercept is not None else 0.0,
        rescale_type=_text(rescale.get("RescaleType")),
        window_center=_first_number(voi.get("WindowCenter")),
        window_width=width if width is not None and width > 0 else None,
        photometric_interpretation=photometric or "MONOCHROME2",
        bits_stored=int(bits) if bits is not None and 1 <= bits <= 32 else 16,
        signed=_first_number(ds.get("PixelRepresentation")) == 1,
    )


def common_window(displays: Sequence[SliceDisplay]) -> tuple[float, float] | None:
    """Return the window most slices recommend (the first of equals), or ``None``.

    Examples
    --------
    >>> lung, soft = SliceDisplay(window_center=-600, window_width=1500), SliceDisplay(
    ...     window_center=40, window_width=400
    ... )
    >>> common_window([soft, lung, soft, SliceDisplay()])
    (40, 400)
    >>> common_window([SliceDisplay()]) is None
    True
    """
    windows = Counter(d.window for d in displays if d.window is not None)
    return windows.most_common(1)[0][0] if windows else None


def shows_minimum_white(displays: Sequence[SliceDisplay]) -> bool:
    """Whether every slice is MONOCHROME1 (the minimum shown white, as on a film).

    Examples
    --------
    >>> shows_minimum_white([SliceDisplay(photometric_interpretation="MONOCHROME1")])
    True
    >>> shows_minimum_white([])
    False
    """
    return bool(displays) and all(d.photometric_interpretation == "MONOCHROME1" for d in displays)
