"""The ``gsps`` output: the result's segments outlined on the source images (GSPS).

A Grayscale Softcopy Presentation State that every PACS viewer can show, even one
that cannot show a SEG: each segment's outline per slice in its colour, its label
beside it, and the result's per-segment measurements (``volume 12.3 mm3``) as text
on the slice where the segment is largest. Segments are the descriptions resolved
once for every output (so labels and colours match the SEG's); a presentation state
needs no codes, so labels the code tables do not know (``"Lung L"``, or an object
without codes) are outlined
with their label and given colour (``"rgb"``) instead of refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydicom import Dataset

from radbridge.errors import ConfigError, UnknownTermError
from radbridge.models import ModelMeasurement
from radbridge.pr import OutlineOptions, encode_gsps
from radbridge.results.registry import Output, OutputKind, ResultContext

__all__ = ["KIND", "GspsOutput", "measurement_texts"]


@dataclass(frozen=True)
class GspsOutput(Output):
    """Settings of the ``gsps`` output.

    Parameters
    ----------
    mask
        The mask to outline instead of the result's label map (a label map or
        ``[segment, slice, row, column]``).
    outlines
        Simplification, iso-level and which text to write
        (:class:`~radbridge.pr.OutlineOptions`).
    window
        ``(center, width)`` for every image (modality units), or ``None``: each
        image's own recommended window.
    measurements
        Write the result's per-segment measurements as text.
    allow_empty
        Keep described segments without voxels (a layer without graphics).
    """

    kind: ClassVar[str] = "gsps"
    mask: Any = None
    outlines: OutlineOptions | None = None
    window: tuple[float, float] | None = None
    measurements: bool = True
    allow_empty: bool = False


def measurement_texts(measurements: Sequence[ModelMeasurement]) -> dict[int, str]:
    """Return per-segment text of the measurements that belong to a whole segment.

    Examples
    --------
    >>> measurement_texts([ModelMeasurement("volume", 12.25, "mm3", label=5)])
    {5: 'volume 12.25 mm3'}
    """
    out: dict[int, list[str]] = {}
    for m in measurements:
        if m.label is not None and m.instance is None:
            out.setdefault(m.label, []).append(f"{m.name} {m.value:.6g} {m.unit}")
    return {label: ", ".join(parts) for label, parts in out.items()}


def encode(context: ResultContext, output: GspsOutput) -> Dataset | None:
    """Outline the result's label map (or ``output.mask``); None (logged) without either."""
    mask = context.mask_or_labels(output.mask, output)
    if mask is None:
        return None
    texts = measurement_texts(context.result.measurements) if output.measurements else {}
    segments: Any
    try:
        segments = list(context.segments)
    except (UnknownTermError, ConfigError):  # no codes needed: the labels and colours as given
        segments = dict(context.result.segments)
    return encode_gsps(
        mask,
        context.series,
        segments,
        outlines=output.outlines,
        window=output.window,
        measurements=texts,
        allow_empty=output.allow_empty,
        options=context.series_options("gsps"),
    )


KIND = OutputKind("gsps", GspsOutput, encode)
