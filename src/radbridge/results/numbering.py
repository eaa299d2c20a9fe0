"""Label values with gaps become segment numbers 1..N, as dcmqi numbers them.

DICOM numbers the segments of a Segmentation 1, 2, ... N (PS3.3 C.8.20.2), and a
label map's values are those numbers. Label maps from the field often skip values:
BraTS's 1, 2, 4, or a few structures chosen from a TotalSegmentator map (liver 5
alone). The ``seg`` output writes such labels as segments 1..N in ascending order
(:func:`relabel_mask`, :func:`compact_result`: the label map or the mask it was given,
the descriptions), and the ``sr`` output refers to them by those numbers (measurements
and findings follow); a label map that holds a value no segment describes is refused,
as dcmqi refuses it. dcmqi's ``itkimage2segimage`` numbers labels 1, 5, 7 as segments
1, 2, 3 the same way; a reader of the SEG sees 1, 2, 3. The other kinds keep the label
values: an RTSTRUCT's ROI Numbers need not be 1..N, and ``sc``, ``ko`` and ``gsps`` draw
by label (with the colour the SEG recommends for it).

Probabilities keep their rule (channel ``k`` is label ``k + 1``): the channels of the
described labels are kept, in order; probabilities with exactly one channel per
described segment are taken as they are. Slide results are not renumbered (their label
maps are read tile by tile, never whole); their gaps are refused by the slide SEG.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import EncodingError
from radbridge.geometry import Volume
from radbridge.iods.content import label_number
from radbridge.models import Finding, ModelMeasurement, ModelResult

__all__ = ["compact_result", "relabel_mask", "renumbering", "whole_labels"]


def renumbering(segments: Mapping[Any, Any]) -> dict[int, int]:
    """Return ``{label: segment number}`` when the labels are not already 1..N, else ``{}``.

    Examples
    --------
    >>> renumbering({1: "liver", 2: "spleen"})
    {}
    >>> renumbering({"1": "body", "5": "liver", "7": "liver_lesion"})
    {1: 1, 5: 2, 7: 3}
    """
    labels = sorted(label_number(key) for key in segments)
    if labels == list(range(1, len(labels) + 1)) or any(label < 1 for label in labels):
        return {}  # in order already, or invalid (the describer names the bad key)
    return {label: number for number, label in enumerate(labels, start=1)}


def whole_labels(array: NDArray[Any]) -> NDArray[Any]:
    """Return a label map of whole numbers stored as floats as unsigned integers.

    nibabel's ``get_fdata()`` gives float64 label maps; anything else (integers,
    fractions, negative or non-finite values) is returned unchanged, for the kind to
    refuse.

    Examples
    --------
    >>> whole_labels(np.array([0.0, 2.0, 7.0])).dtype
    dtype('uint8')
    """
    if array.dtype.kind != "f" or not array.size or not np.isfinite(array).all():
        return array
    if array.min() < 0 or not np.array_equal(array, np.rint(array)):
        return array
    top = float(array.max())
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    return array.astype(dtype)


def _relabel(array: NDArray[Any], mapping: dict[int, int], what: str) -> NDArray[Any]:
    """Return ``array`` with its label values renumbered by ``mapping`` (0 stays 0)."""
    values = whole_labels(np.asarray(array))
    if values.dtype.kind not in "ui":
        return values  # fractions or negative values: the kind refuses them, naming them
    present = np.unique(values)
    extra = [int(v) for v in present if v != 0 and int(v) not in mapping]
    if extra:
        raise EncodingError(
            f"{what} holds label values {extra[:10]} that no segment describes "
            f"(described: {sorted(mapping)[:20]})",
            attribute="segments",
            hint="describe every label value of the label map, or set the others to 0",
        )
    lookup = np.zeros(int(present.max()) + 1, np.uint8 if len(mapping) < 256 else np.uint16)
    for label, number in mapping.items():
        if label < lookup.size:
            lookup[label] = number
    relabelled: NDArray[Any] = lookup[values]
    return relabelled


def _probabilities(
    probabilities: NDArray[Any] | None, mapping: dict[int, int]
) -> NDArray[Any] | None:
    """Return the channels of the described labels, in order.

    Channel ``k`` is label ``k + 1``; channels that are exactly one per described
    segment (as many as segments, fewer than the highest label) are taken in order.
    """
    if probabilities is None:
        return None
    labels = sorted(mapping)
    if probabilities.shape[0] == len(labels):
        return probabilities  # one channel per described segment already
    if probabilities.shape[0] < labels[-1]:
        raise EncodingError(
            f"probabilities have {probabilities.shape[0]} channels, but the segments are "
            f"labels {labels[:20]} and channel k is label k + 1",
            attribute="probabilities",
            hint=f"return {labels[-1]} channels (one per label value up to {labels[-1]}), "
            f"or {len(labels)} (one per segment, in label order)",
        )
    return probabilities[[label - 1 for label in labels]]


def relabel_mask(mask: Any, mapping: dict[int, int], what: str) -> Any:
    """Renumber a label map given as a mask (a Volume or array); stacked masks keep theirs.

    ``[segment, slice, row, column]`` masks hold one mask per described segment, in
    order, and are returned as they are.

    Raises
    ------
    EncodingError
        The label map holds a value that no segment describes.
    """
    if not mapping:
        return mask
    if isinstance(mask, Volume):
        if mask.array.ndim != 3:
            return mask
        return mask.with_array(_relabel(np.asarray(mask.array), mapping, what))
    if isinstance(mask, np.ndarray) and mask.ndim == 3:
        return _relabel(mask, mapping, what)
    return mask


def compact_result(result: ModelResult, mapping: dict[int, int]) -> ModelResult:
    """Return ``result`` with its labels renumbered by ``mapping`` (:func:`renumbering`).

    The label map (or, without one, the probabilities' channels: with a label map
    the renumbered result has none, as the SEG encodes the label map), the segments,
    the measurements and the findings. An empty ``mapping``, or a slide result,
    returns ``result`` itself.

    Raises
    ------
    EncodingError
        A label map holds a value that no segment describes, or the probabilities
        lack a described label's channel.

    Examples
    --------
    >>> labels = Volume(np.array([[[0, 5, 7]]], np.uint8), np.eye(4))
    >>> result = ModelResult(labels=labels, segments={5: "liver", 7: "liver_lesion"})
    >>> compacted = compact_result(result, renumbering(result.segments))
    >>> sorted(compacted.segments), compacted.labels.array.tolist()
    ([1, 2], [[[0, 1, 2]]])
    """
    slide = result.slide_labels is not None or result.slide_probabilities is not None
    if not mapping or slide:
        return result
    return replace(
        result,
        labels=relabel_mask(result.labels, mapping, "the result's label map"),
        # with a label map the SEG and SR never read the probabilities: only check them
        # when they are what the SEG encodes
        probabilities=(
            _probabilities(result.probabilities, mapping) if result.labels is None else None
        ),
        segments={mapping[label_number(k)]: v for k, v in result.segments.items()},
        measurements=tuple(_moved(m, mapping) for m in result.measurements),
        findings=tuple(_moved(f, mapping) for f in result.findings),
    )


_Item = TypeVar("_Item", ModelMeasurement, Finding)


def _moved(item: _Item, mapping: dict[int, int]) -> _Item:
    """Return a measurement or finding with its label renumbered (image-level ones stay)."""
    label = item.label
    if label is None:
        return item
    # a label no segment describes goes with the image-level values (where the SR puts
    # it anyway), so that it cannot take the number of a renumbered segment
    return replace(item, label=mapping.get(label))
