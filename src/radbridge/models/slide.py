"""Slide models: from a whole-slide image to masks on a level and annotation groups.

A slide model has ``run_slide(slide, series) -> ModelResult``: it gets the
:class:`radbridge.wsi.Slide` (pyramid levels whose tiles and regions are decoded
on demand, never a whole level unless the model reads one) and the
:class:`~radbridge.models.SeriesInfo` of its images, and returns a
:class:`~radbridge.models.ModelResult` with ``level`` set: a label map
(``slide_labels``) or probabilities (``slide_probabilities``) on that level's Total
Pixel Matrix, with ``segments``, and/or annotation groups (``annotations``), plus
measurements and findings as usual. The output kinds ``slide-seg`` and ``ann``
(:mod:`radbridge.results`) encode it; the gateway runs slide models on VL Whole
Slide Microscopy series.

Examples
--------
>>> import numpy as np
>>> class Everything:
...     name, version = "everything", "1"
...     def run_slide(self, slide, series):
...         level = len(slide.levels) - 1  # the coarsest level
...         labels = np.ones(slide.level(level).shape, np.uint8)
...         return ModelResult(level=level, slide_labels=labels, segments={1: "liver"})
>>> isinstance(Everything(), SlideModel)
True
>>> from radbridge.wsi import read_slide
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> run_slide_model(Everything(), slide, SeriesInfo(modality="SM")).slide_labels.shape
(50, 50)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from radbridge.errors import ModelError
from radbridge.models.base import ModelAnnotations, ModelResult, SeriesInfo, call_model

__all__ = ["SlideModel", "run_slide_model"]


@runtime_checkable
class SlideModel(Protocol):
    """A slide model: ``model.run_slide(slide, series) -> ModelResult`` with a name and version.

    ``slide`` is a :class:`radbridge.wsi.Slide`; the result's ``level`` names the
    pyramid level its masks and annotation coordinates refer to.
    """

    name: str
    version: str

    def run_slide(self, slide: Any, series: SeriesInfo) -> ModelResult:
        """Segment or annotate ``slide``."""
        ...


def run_slide_model(model: Any, slide: Any, series: SeriesInfo) -> ModelResult:
    """Run a slide model and check its output fits the slide.

    Raises
    ------
    ModelError
        The model is no slide model, raised, or returned volume masks, a level the
        slide does not have, masks off that level's Total Pixel Matrix, labels it
        did not describe in ``segments``, or annotation groups of the wrong type
        (the message names the model). Labels are checked when ``slide_labels`` is
        a NumPy array (one pass over it); a lazy array's are checked by the encoder.
    """
    name = getattr(model, "name", type(model).__name__)
    if not isinstance(model, SlideModel):
        raise ModelError(
            f"model {name} takes volumes, not slides (it has no run_slide(slide, series))",
            attribute="model",
            hint="route VL Whole Slide Microscopy series to a slide model (e.g. reference-slide)",
        )
    result = call_model(name, model.run_slide, slide, series)
    _check_level(name, result, slide)
    _check_slide_labels(name, result)
    _check_annotations(name, result)
    return result


def _shape(array: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in getattr(array, "shape", ()))


def _check_level(name: str, result: ModelResult, slide: Any) -> None:
    if result.labels is not None or result.probabilities is not None:
        raise ModelError(
            f"model {name} returned volume masks (labels/probabilities) for a slide",
            attribute="labels",
            hint="return slide_labels= or slide_probabilities= on a level, with level=",
        )
    on_level = (result.slide_labels, result.slide_probabilities, *result.annotations)
    if result.level is None:
        if any(item is not None for item in on_level):
            raise ModelError(
                f"model {name} returned slide masks or annotations without their level",
                attribute="level",
                hint="set level= (0: the finest) in the ModelResult",
            )
        return
    if not 0 <= result.level < len(slide.levels):
        raise ModelError(
            f"model {name} returned level {result.level}; the slide has levels "
            f"0..{len(slide.levels) - 1}",
            attribute="level",
        )
    matrix = tuple(slide.level(result.level).shape)
    labels, probabilities = result.slide_labels, result.slide_probabilities
    if labels is not None and _shape(labels) != matrix:
        raise ModelError(
            f"model {name} returned slide labels of shape {_shape(labels)}, but level "
            f"{result.level} is {matrix[0]} x {matrix[1]} pixels",
            attribute="slide_labels",
            hint="return [row, column] labels of the level's Total Pixel Matrix size",
        )
    expected = (len(result.segments), *matrix)
    if probabilities is not None and _shape(probabilities) != expected:
        raise ModelError(
            f"model {name} returned slide probabilities of shape {_shape(probabilities)}, "
            f"expected [segment, row, column] = {list(expected)}",
            attribute="slide_probabilities",
        )


def _check_slide_labels(name: str, result: ModelResult) -> None:
    """Refuse labels the model did not describe, as the volume path does (not retried)."""
    labels = result.slide_labels
    if not isinstance(labels, np.ndarray) or not labels.size:
        return
    flat = labels.reshape(-1)
    if labels.dtype.kind == "u" and labels.dtype.itemsize <= 2:
        present = np.flatnonzero(np.bincount(flat))  # one pass, no sort
    else:
        present = np.unique(flat)
    undeclared = sorted(set(present.tolist()) - {0} - set(result.segments))
    if undeclared:
        raise ModelError(
            f"model {name} returned slide labels {undeclared[:10]} it did not describe",
            attribute="segments",
            hint="describe every label in segments= (0 is background)",
        )


def _check_annotations(name: str, result: ModelResult) -> None:
    for number, group in enumerate(result.annotations, start=1):
        if isinstance(group, ModelAnnotations):
            continue
        if isinstance(group, tuple) and len(group) == 2:
            continue
        raise ModelError(
            f"model {name} returned annotation group {number} as {type(group).__name__}",
            attribute="annotations",
            hint="give ModelAnnotations(...) or (AnnotationGroupDescription, annotations)",
        )
