"""The ``ann`` output: a slide model's annotation groups as Microscopy Bulk Simple Annotations.

Each of the result's ``annotations`` — a :class:`~radbridge.models.ModelAnnotations`
or an ``(AnnotationGroupDescription, annotations)`` pair — becomes one Annotation
Group on the result's ``level``, numbered 1..N in order; a ``ModelAnnotations``
group is AUTOMATIC, made by the result's algorithm.

:func:`radbridge.ann.write_annotations` streams to a file (bounded memory while
the annotations are consumed); this kind writes it to a temporary folder, reads it
back and returns the data set, so it is saved, sent and given Contributing
Equipment like every other kind (the gateway holds each result's bytes anyway).
The object is then in memory once: about 16 bytes per point plus 4 per value (a
million single-point annotations with one value: ~20 MB).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pydicom
from pydicom import Dataset

from radbridge.ann import (
    Annotation,
    AnnotationGroupDescription,
    MeasurementDescription,
    write_annotations,
)
from radbridge.errors import EncodingError
from radbridge.models import ModelAnnotations
from radbridge.results.registry import Output, OutputKind, ResultContext

__all__ = ["KIND", "AnnOutput"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnOutput(Output):
    """Settings of the ``ann`` output.

    Parameters
    ----------
    level
        The level the coordinates refer to (default: the result's ``level``, else 0).
    single_precision
        Store coordinates as 32-bit floats (half the size).
    """

    kind: ClassVar[str] = "ann"
    level: int | None = None
    single_precision: bool = False


def _with_values(label: str, items: Iterable[Any]) -> Iterator[Annotation]:
    for number, item in enumerate(items, start=1):
        if isinstance(item, Annotation):
            yield item
            continue
        try:
            points, values = item
        except (TypeError, ValueError):
            raise EncodingError(
                f"annotation {number} of group {label!r} is not (points, values), but the "
                "group has measurements",
                attribute="annotations",
                hint="give each annotation as (points, values), one value per measurement",
            ) from None
        yield Annotation(points, tuple(values))


def _group(
    context: ResultContext, number: int, group: Any
) -> tuple[AnnotationGroupDescription, Iterable[Any]]:
    if not isinstance(group, ModelAnnotations):
        description, items = group
        return description, items
    description = AnnotationGroupDescription(
        number,
        group.label,
        category=group.category,
        property_type=group.property_type,
        graphic_type=group.graphic_type,
        algorithm=context.algorithm,
        measurements=tuple(MeasurementDescription(name, unit) for name, unit in group.measurements),
    )
    items = (
        _with_values(group.label, group.annotations) if group.measurements else group.annotations
    )
    return description, items


def encode(context: ResultContext, output: AnnOutput) -> Dataset | None:
    """Write the result's annotation groups; None (logged) when it has none."""
    result = context.result
    if not result.annotations:
        log.warning("the model returned no annotations: ANN skipped")
        return None
    groups = [_group(context, k, group) for k, group in enumerate(result.annotations, start=1)]
    level = output.level if output.level is not None else result.level
    with tempfile.TemporaryDirectory(prefix="radbridge-ann-") as folder:
        path = write_annotations(
            Path(folder) / "ann.dcm",
            context.slide,
            groups,
            level=level or 0,
            single_precision=output.single_precision,
            options=context.series_options("ann"),
        )
        return pydicom.dcmread(path)


KIND = OutputKind("ann", AnnOutput, encode, source="slide")
