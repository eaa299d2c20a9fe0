"""The ``slide-seg`` output: a slide model's mask as a tiled SEG on its level.

The result's ``slide_labels`` (``[row, column]`` on the level named by the result's
``level``) become a BINARY Segmentation, its ``slide_probabilities`` (``[segment,
row, column]``) a FRACTIONAL one, through
:func:`radbridge.wsi.encode_slide_segmentation`: TILED_FULL by default, TILED_SPARSE
without the empty tiles when ``omit_empty_tiles``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydicom import Dataset

from radbridge.errors import EncodingError
from radbridge.results.registry import Output, OutputKind, ResultContext
from radbridge.wsi import encode_slide_segmentation

__all__ = ["KIND", "SlideSegOutput"]


@dataclass(frozen=True)
class SlideSegOutput(Output):
    """Settings of the ``slide-seg`` output.

    Parameters
    ----------
    segmentation_type
        ``binary`` (default) or ``fractional``; a result with probabilities but no
        label map always gives ``fractional``.
    omit_empty_tiles
        Leave out tiles without segmented pixels (the SEG is then TILED_SPARSE).
    mask, level
        The mask to encode instead of the result's, and its level (default: the
        result's ``level``, else 0); its segments are the result's.
    optical_path
        Reference only the level's images of this optical path (default: all).
    """

    kind: ClassVar[str] = "slide-seg"
    segmentation_type: str = "binary"
    omit_empty_tiles: bool = False
    mask: Any = None
    level: int | None = None
    optical_path: str | None = None


def _mask(context: ResultContext, output: SlideSegOutput) -> tuple[Any, str]:
    result = context.result
    if output.mask is not None:
        return output.mask, output.segmentation_type
    if result.slide_labels is not None:
        return result.slide_labels, output.segmentation_type
    if result.slide_probabilities is not None:
        return result.slide_probabilities, "fractional"
    raise EncodingError(
        "the result has no slide label map and no slide probabilities to encode as a SEG",
        attribute="slide_labels",
        hint="return slide_labels= or slide_probabilities= (with level=) from the model, "
        "or pass SlideSegOutput(mask=..., level=...)",
    )


def encode(context: ResultContext, output: SlideSegOutput) -> Dataset:
    """Encode the result's slide labels (or probabilities, FRACTIONAL) as a tiled SEG."""
    mask, segmentation_type = _mask(context, output)
    level = output.level if output.level is not None else context.result.level
    return encode_slide_segmentation(
        mask,
        context.slide,
        context.segments,
        level=level or 0,
        segmentation_type=segmentation_type,
        omit_empty_tiles=output.omit_empty_tiles,
        optical_path=output.optical_path,
        algorithm=context.algorithm,
        options=context.series_options("slide-seg"),
    )


KIND = OutputKind("slide-seg", SlideSegOutput, encode, source="slide")
