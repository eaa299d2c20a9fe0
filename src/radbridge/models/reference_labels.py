"""The reference anatomy: the labels the reference CT model gives, and the phantom draws.

:mod:`radbridge.io.phantom` paints these structures into its CT as ground truth, and
:class:`radbridge.models.reference_ct.ReferenceCTModel` finds them again, under the
same label values. Names resolve to codes in :mod:`radbridge.codes`.

Examples
--------
>>> REFERENCE_LABELS[6]
'lung_nodule'
"""

from __future__ import annotations

__all__ = ["REFERENCE_LABELS"]

#: Label value -> name.
REFERENCE_LABELS: dict[int, str] = {
    1: "body",
    2: "lung_left",
    3: "lung_right",
    4: "bone",
    5: "liver",
    6: "lung_nodule",
    7: "liver_lesion",
}
