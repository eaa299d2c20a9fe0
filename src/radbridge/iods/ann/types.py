"""The annotation family's types: SOP class, graphic types, group and measurement descriptions.

Examples
--------
>>> from radbridge.coding import sct, ucum
>>> AnnotationGraphicType("polygon") is AnnotationGraphicType.POLYGON
True
>>> area = MeasurementDescription(sct("42798000", "Area"), ucum("um2", "square micrometer"))
>>> nuclei = AnnotationGroupDescription(
...     1, "Nuclei", category=sct("91723000", "Anatomical structure"),
...     property_type=sct("84640000", "Nucleus"), graphic_type="polygon",
...     algorithm_type="manual", measurements=(area,))
>>> nuclei.graphic_type, nuclei.points_per_annotation
(<AnnotationGraphicType.POLYGON: 'POLYGON'>, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from numpy.typing import ArrayLike

from radbridge.coding import Code
from radbridge.errors import EncodingError
from radbridge.iods.common import CaseInsensitiveEnum, choice
from radbridge.iods.content import AlgorithmIdentification, AlgorithmType

__all__ = [
    "MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE",
    "Annotation",
    "AnnotationGraphicType",
    "AnnotationGroupDescription",
    "MeasurementDescription",
]

#: Microscopy Bulk Simple Annotations Storage.
MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE = "1.2.840.10008.5.1.4.1.1.91.1"


class AnnotationGraphicType(CaseInsensitiveEnum):
    """Graphic Type (0070,0023) of an annotation group."""

    POINT = "POINT"
    POLYLINE = "POLYLINE"
    POLYGON = "POLYGON"
    ELLIPSE = "ELLIPSE"
    RECTANGLE = "RECTANGLE"


#: Points per annotation of the graphic types with a fixed count.
FIXED_POINTS = {
    AnnotationGraphicType.POINT: 1,
    AnnotationGraphicType.ELLIPSE: 4,
    AnnotationGraphicType.RECTANGLE: 4,
}
#: Fewest points of the graphic types with a variable count.
MIN_POINTS = {AnnotationGraphicType.POLYLINE: 2, AnnotationGraphicType.POLYGON: 3}


@dataclass(frozen=True)
class MeasurementDescription:
    """One measurement every annotation of a group may carry (e.g. area in µm²).

    Parameters
    ----------
    name
        Concept Name (e.g. SCT 42798000 "Area").
    unit
        Measurement Units (UCUM, e.g. ``um2``).
    """

    name: Code
    unit: Code


@dataclass(frozen=True)
class AnnotationGroupDescription:
    """One Annotation Group: what its annotations are, how they were made, their shape.

    Parameters
    ----------
    number
        Annotation Group Number: 1, 2, ... in order.
    label
        Annotation Group Label (at most 64 characters).
    category, property_type
        Annotation Property Category and Type (e.g. SCT "Anatomical structure" /
        "Nucleus"), what the annotated objects are.
    graphic_type
        POINT, POLYLINE, POLYGON, ELLIPSE (four points: the ends of the major, then
        the minor axis) or RECTANGLE (four corners) — an enum or its name.
    algorithm_type
        Annotation Group Generation Type: AUTOMATIC (default), SEMIAUTOMATIC or MANUAL.
    algorithm
        Required unless MANUAL.
    measurements
        The measurements the group's annotations carry, in order.
    uid
        Annotation Group UID (default: derived from the SOP Instance UID and number).
    description
        Annotation Group Description (free text), optional.
    property_type_modifiers
        Annotation Property Type Modifiers, optional.
    optical_paths
        The Optical Path Identifiers the annotations apply to; empty (default): all.
    """

    number: int
    label: str
    category: Code
    property_type: Code
    graphic_type: AnnotationGraphicType | str = AnnotationGraphicType.POLYGON
    algorithm_type: AlgorithmType | str = AlgorithmType.AUTOMATIC
    algorithm: AlgorithmIdentification | None = None
    measurements: tuple[MeasurementDescription, ...] = ()
    uid: str | None = None
    description: str | None = None
    property_type_modifiers: tuple[Code, ...] = field(default=())
    optical_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        graphic = choice(AnnotationGraphicType, self.graphic_type, "GraphicType")
        algorithm_type = choice(AlgorithmType, self.algorithm_type, "AnnotationGroupGenerationType")
        object.__setattr__(self, "graphic_type", graphic)
        object.__setattr__(self, "algorithm_type", algorithm_type)
        object.__setattr__(self, "measurements", tuple(self.measurements))
        object.__setattr__(self, "optical_paths", tuple(str(p) for p in self.optical_paths))

    @property
    def points_per_annotation(self) -> int | None:
        """1 (POINT) or 4 (ELLIPSE, RECTANGLE); ``None`` when it varies."""
        return FIXED_POINTS.get(AnnotationGraphicType(self.graphic_type))

    def validate(self) -> None:
        """Raise :class:`~radbridge.errors.EncodingError` for what DICOM cannot hold."""
        if not 1 <= self.number <= 65535:
            raise EncodingError(
                f"annotation group number {self.number} is not 1..65535",
                attribute="AnnotationGroupNumber",
            )
        if not self.label or len(self.label) > 64:
            raise EncodingError(
                f"annotation group {self.number}: the label must be 1..64 characters",
                attribute="AnnotationGroupLabel",
            )
        if self.algorithm_type is not AlgorithmType.MANUAL and self.algorithm is None:
            raise EncodingError(
                f"annotation group {self.number} is {self.algorithm_type} but names no algorithm",
                attribute="AnnotationGroupAlgorithmIdentificationSequence",
                hint="pass algorithm=AlgorithmIdentification(name, version), or "
                "algorithm_type='MANUAL'",
            )


class Annotation(NamedTuple):
    """One annotation: its points (``[point, 2]``: column, row) and measurement values.

    ``values`` follow the group's measurements; NaN means "not measured".
    """

    coordinates: ArrayLike
    values: tuple[float, ...] | Any = ()
