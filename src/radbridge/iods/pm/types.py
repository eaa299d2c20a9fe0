"""The Parametric Map family's types: SOP class, codes and enums for the writer and reader.

Examples
--------
>>> NanPolicy("padding") is NanPolicy.PADDING
True
"""

from __future__ import annotations

import enum

from radbridge.coding import dcm, sct

__all__ = ["PARAMETRIC_MAP_STORAGE", "QUANTITY", "UNSPECIFIED_CALCULATION", "NanPolicy"]

#: Parametric Map Storage.
PARAMETRIC_MAP_STORAGE = "1.2.840.10008.5.1.4.1.1.30"
#: Concept name of the Quantity Definition item (formerly G-C1C6, SRT).
QUANTITY = sct("246205007", "Quantity")
#: Default derivation (DCM 112187; CID 7203 is a baseline group, with no generic code).
UNSPECIFIED_CALCULATION = dcm("112187", "Unspecified method of calculation")


class NanPolicy(enum.StrEnum):
    """What to do with NaN and infinite values in a float map.

    ``refuse`` (default) raises; ``zero`` stores 0; ``padding`` stores a
    padding value declared in Float (or Double Float) Pixel Padding Value, which
    readers (radbridge's included) turn back into NaN.
    """

    REFUSE = "refuse"
    ZERO = "zero"
    PADDING = "padding"
