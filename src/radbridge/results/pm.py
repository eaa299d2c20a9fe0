"""The ``pm`` output: a map of real-world values as a Parametric Map.

By default the model's probability map (quantity Probability, unit ``1``; with
several segments, the highest probability per voxel). Its Frame Anatomy is
``anatomic_region`` or the source's Body Part Examined.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydicom import Dataset

from radbridge.coding import Code
from radbridge.pm import encode_parametric_map
from radbridge.results.registry import Output, OutputKind, ResultContext
from radbridge.sr import concepts

__all__ = ["KIND", "PmOutput"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PmOutput(Output):
    """Settings of the ``pm`` output.

    Parameters
    ----------
    values
        The map to encode instead of the result's probabilities (on the source grid).
    quantity, units
        What the values are (CID 7180) and their UCUM unit.
    anatomic_region
        Frame Anatomy: a name from the code table or a code (default: the
        source's Body Part Examined).
    nan_policy, stored_dtype, transfer_syntax
        As :func:`~radbridge.iods.pm.encode_parametric_map` takes them.
    """

    kind: ClassVar[str] = "pm"
    values: Any = None
    quantity: Code = field(default=concepts.PROBABILITY)
    units: Code | str = "1"
    anatomic_region: Code | str | None = None
    nan_policy: str = "refuse"
    stored_dtype: str | None = None
    transfer_syntax: str | None = None


def encode(context: ResultContext, output: PmOutput) -> Dataset | None:
    """Encode ``output.values`` or the result's probabilities; None (logged) without either."""
    values = output.values
    if values is None:
        heat = context.result.probabilities
        if heat is None:
            log.warning("the model returned no probability map: PM skipped")
            return None
        values = heat.max(axis=0) if heat.ndim == 4 else heat  # [segment, slice, row, column]
    return encode_parametric_map(
        values,
        context.series,
        quantity=output.quantity,
        units=output.units,
        nan_policy=output.nan_policy,
        anatomic_region=output.anatomic_region,
        options=context.series_options("pm"),
        transfer_syntax=output.transfer_syntax,
        stored_dtype=output.stored_dtype,
        profile=context.options.profile,
    )


KIND = OutputKind("pm", PmOutput, encode)
