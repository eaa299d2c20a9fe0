"""What a Grayscale Softcopy Presentation State holds: layers, graphics, text, windows.

Names follow PS3.3 (C.10.5 Graphic Annotation, C.10.7 Graphic Layer, C.10.8 Graphic
Group, C.11.8 Softcopy VOI LUT). Coordinates are DICOM's: ``(column, row)`` pairs
in image pixels whose origin ``(0, 0)`` is the top left corner of the top left
pixel, so the centre of pixel ``(row r, column c)`` is ``(c + 0.5, r + 0.5)``
(PIXEL units), or fractions of the displayed area (DISPLAY units).

Examples
--------
>>> import numpy as np
>>> square = GraphicObject("POLYLINE", np.array([[1, 1], [3, 1], [3, 3], [1, 3], [1, 1.0]]))
>>> square.closed, square.graphic_type
(True, <GraphicType.POLYLINE: 'POLYLINE'>)
>>> Window(40, 400).lowest_visible, Window(40, 400).highest_visible
(-160.0, 240.0)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radbridge.errors import EncodingError
from radbridge.geometry import SliceRef
from radbridge.iods.common import choice

__all__ = [
    "COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE",
    "GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE",
    "AnnotationUnits",
    "GraphicAnnotation",
    "GraphicGroup",
    "GraphicLayer",
    "GraphicObject",
    "GraphicType",
    "TextObject",
    "Window",
]

#: SOP Class UID of Grayscale Softcopy Presentation State Storage.
GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE = "1.2.840.10008.5.1.4.1.1.11.1"
#: SOP Class UID of Color Softcopy Presentation State Storage (for colour images).
COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE = "1.2.840.10008.5.1.4.1.1.11.2"


class GraphicType(enum.StrEnum):
    """Graphic Type (0070,0023) of a graphic object."""

    POINT = "POINT"
    POLYLINE = "POLYLINE"
    INTERPOLATED = "INTERPOLATED"
    CIRCLE = "CIRCLE"
    ELLIPSE = "ELLIPSE"


class AnnotationUnits(enum.StrEnum):
    """Graphic / Bounding Box / Anchor Point Annotation Units."""

    PIXEL = "PIXEL"
    DISPLAY = "DISPLAY"
    MATRIX = "MATRIX"


_POINTS = {GraphicType.POINT: (1, 1), GraphicType.CIRCLE: (2, 2), GraphicType.ELLIPSE: (4, 4)}


def _points(value: ArrayLike, what: str) -> NDArray[np.float64]:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or not np.all(np.isfinite(array)):
        raise EncodingError(
            f"{what} must be finite (column, row) pairs, shape (n, 2)", attribute="GraphicData"
        )
    return array


@dataclass(frozen=True, eq=False)
class GraphicObject:
    """One Graphic Object Sequence item.

    Parameters
    ----------
    graphic_type
        POINT, POLYLINE, INTERPOLATED, CIRCLE or ELLIPSE (enum or string).
    points
        ``(n, 2)`` ``(column, row)`` pairs; a closed POLYLINE repeats its first point
        at the end.
    units
        PIXEL (image relative, default) or DISPLAY (fractions of the displayed area).
    filled
        Render the closed shape filled (only a closed shape may be filled).
    group_id
        The Graphic Group ID the object belongs to (radbridge: the segment number).
    """

    graphic_type: GraphicType | str
    points: NDArray[np.float64]
    units: AnnotationUnits | str = AnnotationUnits.PIXEL
    filled: bool = False
    group_id: int | None = None

    def __post_init__(self) -> None:
        kind = choice(GraphicType, self.graphic_type, "GraphicType", what="graphic type")
        object.__setattr__(self, "graphic_type", kind)
        units = choice(AnnotationUnits, self.units, "GraphicAnnotationUnits", what="units")
        object.__setattr__(self, "units", units)
        points = _points(self.points, "graphic data")
        object.__setattr__(self, "points", points)
        low, high = _POINTS.get(kind, (2, None))
        if len(points) < low or (high is not None and len(points) > high):
            raise EncodingError(
                f"a {kind.value} takes {low}{'' if high == low else ' or more'} points, "
                f"got {len(points)}",
                attribute="GraphicData",
            )
        if self.filled and not self.closed:
            raise EncodingError(
                "only a closed graphic can be filled (a CIRCLE, an ELLIPSE, or a POLYLINE "
                "whose last point repeats its first)",
                attribute="GraphicFilled",
            )

    @property
    def closed(self) -> bool:
        """Whether the graphic encloses an area (PS3.3: first point equal to the last)."""
        if self.graphic_type in (GraphicType.CIRCLE, GraphicType.ELLIPSE):
            return True
        if self.graphic_type is GraphicType.POINT or len(self.points) < 4:
            return False
        return bool(np.array_equal(self.points[0], self.points[-1]))


@dataclass(frozen=True)
class TextObject:
    """One Text Object Sequence item: text at an anchor point and/or in a bounding box.

    Parameters
    ----------
    text
        Unformatted Text Value.
    anchor
        Anchor Point ``(column, row)``, or ``None``.
    bounding_box
        ``(left, top, right, bottom)``: Bounding Box Top Left and Bottom Right Hand
        Corners, or ``None``. One of ``anchor`` and ``bounding_box`` is required.
    units
        PIXEL (default) or DISPLAY, for both the anchor and the box.
    anchor_visible
        Anchor Point Visibility: draw a line from the box to the anchor.
    justification
        Bounding Box Text Horizontal Justification: LEFT, RIGHT or CENTER.
    group_id
        The Graphic Group ID the text belongs to.
    """

    text: str
    anchor: tuple[float, float] | None = None
    bounding_box: tuple[float, float, float, float] | None = None
    units: AnnotationUnits | str = AnnotationUnits.PIXEL
    anchor_visible: bool = False
    justification: str = "LEFT"
    group_id: int | None = None

    def __post_init__(self) -> None:
        units = choice(AnnotationUnits, self.units, "AnchorPointAnnotationUnits", what="units")
        object.__setattr__(self, "units", units)
        if self.anchor is None and self.bounding_box is None:
            raise EncodingError(
                "a text object needs an anchor point or a bounding box",
                attribute="AnchorPoint",
            )
        if self.justification not in ("LEFT", "RIGHT", "CENTER"):
            raise EncodingError(
                f"unknown justification {self.justification!r}",
                attribute="BoundingBoxTextHorizontalJustification",
                hint="use LEFT, RIGHT or CENTER",
            )


@dataclass(frozen=True)
class GraphicLayer:
    """One Graphic Layer Sequence item.

    Parameters
    ----------
    name
        Graphic Layer (CS: up to 16 of ``A-Z 0-9 _`` and space).
    order
        Graphic Layer Order: lower layers are drawn first.
    description
        Graphic Layer Description (free text, up to 64 characters).
    display_rgb
        Recommended display colour (sRGB 0-255, written as CIELab), or ``None``.
    display_gray
        Recommended grayscale P-value (0-65535), or ``None``.
    """

    name: str
    order: int
    description: str = ""
    display_rgb: tuple[int, int, int] | None = None
    display_gray: int | None = None


@dataclass(frozen=True)
class GraphicGroup:
    """One Graphic Group Sequence item: graphics that belong together (one segment)."""

    group_id: int
    label: str
    description: str = ""


@dataclass(frozen=True, eq=False)
class GraphicAnnotation:
    """One Graphic Annotation Sequence item: graphics and text on a layer of some images.

    Attributes
    ----------
    layer
        The Graphic Layer they are drawn in.
    images
        The images (and frames) it applies to; empty: every image of the
        presentation state.
    graphics, texts
        The graphic and text objects.
    """

    layer: str
    images: tuple[SliceRef, ...] = ()
    graphics: tuple[GraphicObject, ...] = ()
    texts: tuple[TextObject, ...] = field(default=())


@dataclass(frozen=True)
class Window:
    """A VOI LUT window: modality values ``center ± width / 2`` span the gray scale.

    Parameters
    ----------
    center, width
        Window Center and Window Width (in modality units: HU for CT); width > 0.
    explanation
        Window Center & Width Explanation (e.g. ``"ABDOMEN"``).
    """

    center: float
    width: float
    explanation: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.center) and np.isfinite(self.width) and self.width > 0):
            raise EncodingError(
                f"a window needs a finite center and a width > 0, got {self.center}, {self.width}",
                attribute="WindowCenter/WindowWidth",
            )

    @property
    def lowest_visible(self) -> float:
        """The modality value shown black."""
        return float(self.center - self.width / 2)

    @property
    def highest_visible(self) -> float:
        """The modality value shown white."""
        return float(self.center + self.width / 2)
