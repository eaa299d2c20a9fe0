"""The modules of a Grayscale Softcopy Presentation State (PS3.3 A.33.1), one builder each.

- Presentation State Identification (C.11.10) and Relationship (C.11.11): the
  creation date/time, content identification and every source image;
- Displayed Area (C.10.4): the whole image, scaled to fit, with the source's pixel
  spacing as the Presentation Pixel Spacing;
- Graphic Annotation (C.10.5), Graphic Layer (C.10.7), Graphic Group (C.10.8);
- the grayscale pipeline: Modality LUT (C.11.1, the source's Rescale Slope and
  Intercept), Softcopy VOI LUT (C.11.8, windows) and Softcopy Presentation LUT
  (C.11.6, IDENTITY, or INVERSE for MONOCHROME1 images). A presentation state
  replaces the images' own pipeline (PS3.4 N.2), so all three are written from the
  source headers (see :func:`grayscale_pipeline`).

Examples
--------
>>> from radbridge.iods.pr.types import GraphicLayer
>>> layer = GraphicLayer("LIVER", 1, "Liver", display_rgb=(221, 130, 101))
>>> item = layer_item(layer)
>>> item.GraphicLayer, list(item.GraphicLayerRecommendedDisplayCIELabValue)
('LIVER', [41663, 41166, 40794])
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from radbridge.color import rgb_to_dicom_lab
from radbridge.errors import EncodingError, MissingAttributeError
from radbridge.geometry import SliceRef
from radbridge.iods.display import SliceDisplay
from radbridge.iods.multiframe.functional_groups import format_ds
from radbridge.iods.pr import types
from radbridge.iods.source import Series, image_reference

__all__ = [
    "Pipeline",
    "add_displayed_area",
    "add_identification",
    "add_pipeline",
    "add_relationship",
    "annotation_item",
    "graphic_item",
    "grayscale_pipeline",
    "group_item",
    "layer_item",
    "text_item",
]

log = logging.getLogger(__name__)

_GRAPHIC_DATA = Tag(0x00700022)


def add_identification(ds: Dataset, when: _dt.datetime) -> None:
    """Presentation State Identification: creation date/time (content ids are set already)."""
    ds.PresentationCreationDate = when.strftime("%Y%m%d")
    ds.PresentationCreationTime = when.strftime("%H%M%S")


def referenced_images(refs: Sequence[SliceRef]) -> list[Dataset]:
    """Referenced Image Sequence items; the frames of one multi-frame image share an item."""
    frames: dict[tuple[str, str], list[int]] = {}
    for ref in refs:
        listed = frames.setdefault((ref.sop_class_uid, ref.sop_instance_uid), [])
        if ref.frame_number is not None:
            listed.append(ref.frame_number)
    items = []
    for (sop_class, sop_instance), numbers in frames.items():
        item = image_reference(SliceRef(sop_class, sop_instance))
        if numbers:
            item.ReferencedFrameNumber = sorted(set(numbers))
        items.append(item)
    return items


def add_relationship(ds: Dataset, source: Series) -> None:
    """Presentation State Relationship: the source series and every image of it.

    Raises
    ------
    MissingAttributeError
        The source names no series or images (a presentation state applies to images).
    """
    if not source.series_instance_uid or not source.slice_refs:
        raise MissingAttributeError(
            "a presentation state applies to images, but the source names none",
            attribute="ReferencedSeriesSequence",
            hint="read the source series from its DICOM files (read_series), not from a volume",
        )
    series = Dataset()
    series.SeriesInstanceUID = source.series_instance_uid
    series.ReferencedImageSequence = referenced_images(source.slice_refs)
    ds.ReferencedSeriesSequence = [series]


def add_displayed_area(ds: Dataset, source: Series) -> None:
    """Add the Displayed Area: the whole image, scaled to fit, at the source's pixel spacing."""
    _, rows, columns = source.geometry.shape
    item = Dataset()
    item.DisplayedAreaTopLeftHandCorner = [1, 1]
    item.DisplayedAreaBottomRightHandCorner = [columns, rows]
    item.PresentationSizeMode = "SCALE TO FIT"
    item.PresentationPixelSpacing = [format_ds(v) for v in source.geometry.pixel_spacing]
    ds.DisplayedAreaSelectionSequence = [item]


def layer_item(layer: types.GraphicLayer) -> Dataset:
    """One Graphic Layer Sequence item."""
    item = Dataset()
    item.GraphicLayer = layer.name
    item.GraphicLayerOrder = layer.order
    if layer.display_gray is not None:
        item.GraphicLayerRecommendedDisplayGrayscaleValue = layer.display_gray
    if layer.display_rgb is not None:
        item.GraphicLayerRecommendedDisplayCIELabValue = list(rgb_to_dicom_lab(layer.display_rgb))
    if layer.description:
        item.GraphicLayerDescription = layer.description
    return item


def group_item(group: types.GraphicGroup) -> Dataset:
    """One Graphic Group Sequence item."""
    item = Dataset()
    item.GraphicGroupID = group.group_id
    item.GraphicGroupLabel = group.label
    if group.description:
        item.GraphicGroupDescription = group.description
    return item


def graphic_item(graphic: types.GraphicObject) -> Dataset:
    """One Graphic Object Sequence item (Graphic Filled only for closed graphics)."""
    item = Dataset()
    item.GraphicAnnotationUnits = str(graphic.units)
    item.GraphicDimensions = 2
    item.NumberOfGraphicPoints = len(graphic.points)
    # FL values as bytes (what pydicom would write, without validating each float)
    data = graphic.points.astype("<f4").tobytes()
    item[_GRAPHIC_DATA] = RawDataElement(_GRAPHIC_DATA, "FL", len(data), data, 0, False, True)
    item.GraphicType = str(graphic.graphic_type)
    if graphic.closed:
        item.GraphicFilled = "Y" if graphic.filled else "N"
    if graphic.group_id is not None:
        item.GraphicGroupID = graphic.group_id
    return item


def text_item(text: types.TextObject) -> Dataset:
    """One Text Object Sequence item."""
    item = Dataset()
    item.UnformattedTextValue = text.text
    if text.bounding_box is not None:
        left, top, right, bottom = text.bounding_box
        item.BoundingBoxAnnotationUnits = str(text.units)
        item.BoundingBoxTopLeftHandCorner = [left, top]
        item.BoundingBoxBottomRightHandCorner = [right, bottom]
        item.BoundingBoxTextHorizontalJustification = text.justification
    if text.anchor is not None:
        item.AnchorPointAnnotationUnits = str(text.units)
        item.AnchorPoint = list(text.anchor)
        item.AnchorPointVisibility = "Y" if text.anchor_visible else "N"
    if text.group_id is not None:
        item.GraphicGroupID = text.group_id
    return item


def annotation_item(annotation: types.GraphicAnnotation) -> Dataset:
    """One Graphic Annotation Sequence item."""
    item = Dataset()
    if annotation.images:
        item.ReferencedImageSequence = [image_reference(ref) for ref in annotation.images]
    item.GraphicLayer = annotation.layer
    if annotation.texts:
        item.TextObjectSequence = [text_item(t) for t in annotation.texts]
    if annotation.graphics:
        item.GraphicObjectSequence = [graphic_item(g) for g in annotation.graphics]
    return item


@dataclass(frozen=True)
class Pipeline:
    """The grayscale pipeline to write: Modality LUT, windows and their images, polarity.

    Attributes
    ----------
    rescale
        ``(slope, intercept, type)`` of the Modality LUT, or ``None`` (identity).
    windows
        ``(window, images)``: the window for those slices (indices; empty: all).
    shape
        Presentation LUT Shape: IDENTITY or INVERSE.
    """

    rescale: tuple[float, float, str] | None
    windows: tuple[tuple[types.Window, tuple[int, ...]], ...]
    shape: str


def _check_monochrome(displays: Sequence[SliceDisplay]) -> str:
    kinds = {d.photometric_interpretation for d in displays}
    colour = kinds - {"MONOCHROME1", "MONOCHROME2"}
    if colour:
        raise EncodingError(
            f"a Grayscale Softcopy Presentation State applies to monochrome images only; "
            f"the source is {sorted(colour)[0]}",
            attribute="PhotometricInterpretation",
            hint="draw the outlines on a CT, MR or PET series",
        )
    if kinds == {"MONOCHROME1"}:
        return "INVERSE"
    if len(kinds) > 1:
        log.warning("the source mixes MONOCHROME1 and MONOCHROME2 slices; IDENTITY is written")
    return "IDENTITY"


def _source_windows(
    displays: Sequence[SliceDisplay], modality: str, data_range: tuple[float, float] | None
) -> list[tuple[types.Window, tuple[int, ...]]]:
    """Each source slice's own window (modality units), grouped; else the values' range."""
    groups: dict[tuple[float, float], list[int]] = {}
    missing = 0
    for k, display in enumerate(displays):
        window = display.window
        if window is None:
            missing += 1
            low, high = data_range or display.stored_range()
            window = ((low + high) / 2, max(high - low, 1.0))
        groups.setdefault(window, []).append(k)
    if missing:
        log.warning(
            "%d of %d %s slices recommend no window: the %s range is used for them "
            "(give a window to choose one)",
            missing,
            len(displays),
            modality or "source",
            "pixel values'" if data_range else "stored values'",
        )
    return [(types.Window(c, w), tuple(ks)) for (c, w), ks in groups.items()]


def grayscale_pipeline(
    source: Series, window: types.Window | None, data_range: tuple[float, float] | None = None
) -> Pipeline:
    """Return the Modality LUT, windows and polarity that show the source as intended.

    Slices that recommend no window (when none is given) get one spanning
    ``data_range`` (the smallest and largest modality value of the series), else the
    whole stored range.

    One Modality LUT serves every image of a presentation state (PS3.3 A.33.1, note 1).
    When the slices share their Rescale Slope and Intercept, it is theirs and the
    windows are in modality units (HU); when they differ (PET often), the Modality LUT
    is left out (identity) and each slice gets its window converted to stored values.

    Raises
    ------
    MissingAttributeError
        The source was not read from its images (no display attributes to copy).
    EncodingError
        Colour images, or a window that cannot be expressed on slices with a negative
        rescale slope.
    """
    displays = source.display
    if not displays or len(displays) != len(source.slice_refs):
        raise MissingAttributeError(
            "the source's display attributes (Rescale Slope/Intercept, Window) are unknown",
            attribute="RescaleSlope",
            hint="read the source series from its DICOM files (read_series)",
        )
    shape = _check_monochrome(displays)
    wanted = (
        [(window, tuple(range(len(displays))))]
        if window is not None
        else _source_windows(displays, source.modality, data_range)
    )
    pairs = {(d.rescale_slope, d.rescale_intercept) for d in displays}
    if len(pairs) == 1:
        slope, intercept = next(iter(pairs))
        kind = displays[0].rescale_type or ("HU" if source.modality == "CT" else "US")
        rescale = None if (slope, intercept) == (1.0, 0.0) else (slope, intercept, kind)
        windows = tuple((w, () if len(ks) == len(displays) else ks) for w, ks in wanted)
        return Pipeline(rescale, windows, shape)
    return Pipeline(None, _stored_windows(wanted, displays), shape)


def _stored_windows(
    wanted: Sequence[tuple[types.Window, tuple[int, ...]]], displays: Sequence[SliceDisplay]
) -> tuple[tuple[types.Window, tuple[int, ...]], ...]:
    """Windows in stored values, grouped by slice: ``(c - intercept) / slope``, ``w / slope``."""
    groups: dict[tuple[float, float], list[int]] = {}
    for window, slices in wanted:
        for k in slices:
            d = displays[k]
            if d.rescale_slope <= 0:
                raise EncodingError(
                    f"slice {k} has Rescale Slope {d.rescale_slope}: a window cannot be "
                    "carried over to its stored values",
                    attribute="RescaleSlope",
                )
            stored = (
                (window.center - d.rescale_intercept) / d.rescale_slope,
                window.width / d.rescale_slope,
            )
            groups.setdefault(stored, []).append(k)
    return tuple((types.Window(c, w), tuple(sorted(ks))) for (c, w), ks in groups.items())


def add_pipeline(ds: Dataset, pipeline: Pipeline, refs: Sequence[SliceRef]) -> None:
    """Modality LUT (when not identity), Softcopy VOI LUT and Softcopy Presentation LUT."""
    if pipeline.rescale is not None:
        slope, intercept, kind = pipeline.rescale
        ds.RescaleIntercept = format_ds(intercept)
        ds.RescaleSlope = format_ds(slope)
        ds.RescaleType = kind
    items = []
    for window, slices in pipeline.windows:
        item = Dataset()
        if slices:
            item.ReferencedImageSequence = referenced_images([refs[k] for k in slices])
        item.WindowCenter = format_ds(window.center)
        item.WindowWidth = format_ds(window.width)
        if window.explanation:
            item.WindowCenterWidthExplanation = window.explanation[:64]
        items.append(item)
    ds.SoftcopyVOILUTSequence = items
    ds.PresentationLUTShape = pipeline.shape
