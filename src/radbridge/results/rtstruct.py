"""The ``rtstruct`` output: the result's masks as an RT Structure Set.

ROIs are described from the result's ``segments`` mapping by the RT rules
(:func:`~radbridge.iods.rtstruct.describe_rois`): like the SEG's descriptions,
plus free-text ROI names (``"PTV_70"``), ``interpreted_type`` and
``observation_label`` — which a SEG segment cannot carry, so this kind does not
share the SEG's resolved descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydicom import Dataset

from radbridge.results.registry import Output, OutputKind, ResultContext
from radbridge.rtstruct import ContourOptions, encode_rtstruct

__all__ = ["KIND", "RtstructOutput"]


@dataclass(frozen=True)
class RtstructOutput(Output):
    """Settings of the ``rtstruct`` output.

    Parameters
    ----------
    mask
        The mask to encode instead of the result's label map (a label map or
        ``[roi, slice, row, column]``).
    contours, interpreted_type, allow_empty, structure_set_label
        As :func:`~radbridge.iods.rtstruct.encode_rtstruct` takes them.
    """

    kind: ClassVar[str] = "rtstruct"
    mask: Any = None
    contours: ContourOptions | None = None
    interpreted_type: str | None = None
    allow_empty: bool = False
    structure_set_label: str = "RADBRIDGE"


def encode(context: ResultContext, output: RtstructOutput) -> Dataset | None:
    """Contour the result's label map (or ``output.mask``); None (logged) without either."""
    mask = context.mask_or_labels(output.mask, output)
    if mask is None:
        return None
    return encode_rtstruct(
        mask,
        context.series,
        dict(context.result.segments),
        contours=output.contours,
        algorithm=context.algorithm,
        interpreted_type=output.interpreted_type,
        allow_empty=output.allow_empty,
        structure_set_label=output.structure_set_label,
        options=context.series_options("rtstruct"),
    )


KIND = OutputKind("rtstruct", RtstructOutput, encode)
