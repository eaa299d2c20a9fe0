"""The ``ko`` output: a Key Object Selection flagging the result's key slice.

Without explicit keys, the slice where the largest present finding (or, without
one, the largest segmented area) is biggest is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydicom import Dataset

from radbridge.coding import Code
from radbridge.errors import EncodingError
from radbridge.geometry import SliceRef
from radbridge.ko import encode_key_objects
from radbridge.results.registry import Output, OutputKind, ResultContext, skipped
from radbridge.sr import concepts as c

__all__ = ["KIND", "KoOutput"]


@dataclass(frozen=True)
class KoOutput(Output):
    """Settings of the ``ko`` output.

    Parameters
    ----------
    keys
        SOP Instance UIDs of the source to flag instead of the chosen slice.
    description
        Key Object Description (default: says why the slice was chosen).
    title
        Document title from CID 7010 (default DCM 113000 "Of Interest"; the gateway
        writes DCM 113002 "For Referring Provider" for an urgent result).
    """

    kind: ClassVar[str] = "ko"
    keys: Sequence[str] | None = None
    description: str | None = None
    title: Code | None = None


def _key_slice(context: ResultContext) -> tuple[SliceRef, str]:
    """Return the key slice (its instance, and frame in a multi-frame one) and why."""
    result, source = context.result, context.series
    if not source.slice_refs:
        raise EncodingError(
            "key images need source instances, and the source has none",
            attribute="labels",
            hint="give the series as its data sets or a folder, not a bare volume",
        )
    labels = context.labels_on_source("ko")
    present = [f.label for f in result.findings if f.label and f.value.lower() == "present"]
    chosen = [lab for lab in present if (labels == lab).any()]
    mask = np.isin(labels, chosen) if chosen else labels > 0
    area = mask.reshape(mask.shape[0], -1).sum(axis=1)
    index = int(np.argmax(area))
    what = "largest finding" if chosen else "largest segmented area"
    return source.slice_refs[index], f"radbridge: slice with the {what}"


def encode(context: ResultContext, output: KoOutput) -> Dataset | None:
    """Flag ``output.keys``, or the result's key slice; None (logged) without a label map."""
    keys: list[str | SliceRef]
    if output.keys is not None:
        keys, description = list(output.keys), output.description or ""
    elif context.result.labels is None:
        skipped("ko", "the result has no label map to choose a key slice from")
        return None
    else:
        key, why = _key_slice(context)
        keys, description = [key], output.description or why
    return encode_key_objects(
        keys,
        context.series,
        title=output.title or c.OF_INTEREST,
        description=description,
        options=context.series_options("ko"),
    )


KIND = OutputKind("ko", KoOutput, encode)
