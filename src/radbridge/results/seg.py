"""The ``seg`` output: the result's masks as a DICOM Segmentation."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pydicom import Dataset

from radbridge.errors import EncodingError
from radbridge.geometry import Volume
from radbridge.results.numbering import relabel_mask
from radbridge.results.registry import Output, OutputKind, ResultContext
from radbridge.seg import encode_segmentation

__all__ = ["KIND", "SegOutput"]


@dataclass(frozen=True)
class SegOutput(Output):
    """Settings of the ``seg`` output.

    Parameters
    ----------
    segmentation_type
        ``binary`` (default), ``fractional`` or ``labelmap``; a result with
        probabilities but no label map always gives ``fractional``.
    mask
        The mask to encode instead of the result's (a label map, or
        ``[segment, slice, row, column]`` as read from a file); its segments are
        the result's.
    transfer_syntax, keep_empty_frames, palette
        As :func:`~radbridge.iods.seg.encode_segmentation` takes them.
    """

    kind: ClassVar[str] = "seg"
    segmentation_type: str = "binary"
    mask: Any = None
    transfer_syntax: str | None = None
    keep_empty_frames: bool = False
    palette: bool = False


def _mask(context: ResultContext, output: SegOutput) -> tuple[Any, str]:
    """Return the mask to encode, numbered as the segments (labels with gaps: 1..N)."""
    if output.mask is not None:
        mask = relabel_mask(output.mask, context.segment_numbers, "the seg output's mask")
        return mask, output.segmentation_type
    result = context.numbered
    labels: Volume | None = result.labels
    if labels is not None:
        return labels, output.segmentation_type
    if result.probabilities is not None:
        return result.probabilities, "fractional"
    raise EncodingError(
        "the result has no label map and no probabilities to encode as a SEG",
        attribute="labels",
        hint="return labels= or probabilities= from the model, or pass SegOutput(mask=...)",
    )


def encode(context: ResultContext, output: SegOutput) -> Dataset:
    """Encode the result's label map (or its probabilities, FRACTIONAL) as a SEG."""
    mask, segmentation_type = _mask(context, output)
    numbers = context.segment_numbers
    segments = [
        replace(d, segment_number=numbers.get(d.segment_number, d.segment_number))
        for d in context.segments
    ]
    return encode_segmentation(
        mask,
        context.series,
        segments,
        segmentation_type=segmentation_type,
        transfer_syntax=output.transfer_syntax,
        keep_empty_frames=output.keep_empty_frames,
        palette=output.palette,
        algorithm=context.algorithm,
        options=context.series_options("seg"),
        profile=context.options.profile,
    )


KIND = OutputKind("seg", SegOutput, encode)
