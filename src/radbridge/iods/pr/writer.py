r"""Write Grayscale Softcopy Presentation States: segment outlines over the source images.

:func:`encode_gsps` outlines each segment of a mask on every slice where it has
voxels (marching squares, the same contours as the RT Structure Set writer:
vertices half-way between inside and outside pixel centres, so filling the closed
polylines by pixel centre gives the mask back exactly), one graphic layer per
segment in its recommended colour, optional text labels (segment label, area,
measurement text), and the grayscale pipeline of the source (or the window given).
:func:`encode_presentation_state` writes graphics and text made elsewhere.

The writer is strict: once it returns, the data set is a conformant GSPS; a mask
off the source grid, labels nobody described, colour images or a source without
image references are refused with a :class:`~radbridge.errors.RadbridgeError`.

Examples
--------
>>> import numpy as np
>>> from pydicom import examples
>>> from radbridge.iods.source import Series
>>> source = Series.from_datasets([examples.ct])
>>> mask = np.zeros(source.geometry.shape, np.uint8)
>>> mask[0, 40:60, 50:80] = 1
>>> ps = encode_gsps(mask, source, {1: "Liver"}, window=Window(40, 400))
>>> ps.Modality, ps.GraphicLayerSequence[0].GraphicLayer
('PR', 'LIVER')
>>> graphic = ps.GraphicAnnotationSequence[0].GraphicObjectSequence[0]
>>> graphic.GraphicType, graphic.GraphicFilled, graphic.GraphicData[:2]
('POLYLINE', 'N', [50.5, 40.0])
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from radbridge.color import rgb_to_lab
from radbridge.errors import EncodingError, MissingAttributeError
from radbridge.geometry import Volume
from radbridge.iods.common import (
    SeriesOptions,
    finish_file,
    little_endian_for,
    new_instance,
    series_options,
)
from radbridge.iods.content import SegmentDescription, default_colour
from radbridge.iods.contours import check_outline_settings, slice_polygons
from radbridge.iods.pr.modules import (
    add_displayed_area,
    add_identification,
    add_pipeline,
    add_relationship,
    annotation_item,
    grayscale_pipeline,
    group_item,
    layer_item,
)
from radbridge.iods.pr.types import (
    GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    GraphicAnnotation,
    GraphicGroup,
    GraphicLayer,
    GraphicObject,
    TextObject,
    Window,
)
from radbridge.iods.regions import mask_on_source, region_masks
from radbridge.iods.source import (
    Series,
    SeriesLike,
    resolve_source,
    source_given_first,
    write_context,
)
from radbridge.iods.threshold import DEFAULT_THRESHOLD

__all__ = ["OutlineOptions", "SegmentStyle", "encode_gsps", "encode_presentation_state"]

log = logging.getLogger(__name__)

_CS = re.compile(r"[^A-Z0-9_ ]")


@dataclass(frozen=True)
class OutlineOptions:
    """How segments become outlines and labels.

    Parameters
    ----------
    tolerance_mm
        Douglas-Peucker tolerance: every dropped vertex lies within this distance
        (mm) of the outline. 0 (default) drops only collinear vertices, so the
        outlines give the mask back exactly.
    level
        Iso-level of probability maps (stacked floats): inside from this value on.
    labels
        Write each segment's label as text beside its outline on every slice.
    areas
        Add the outlined area on that slice (mm², from the voxel count) to the label.
    """

    tolerance_mm: float = 0.0
    level: float = DEFAULT_THRESHOLD
    labels: bool = True
    areas: bool = False

    def __post_init__(self) -> None:
        check_outline_settings(self.tolerance_mm, self.level)


@dataclass(frozen=True)
class SegmentStyle:
    """A segment as a presentation state draws it: number, label, colour, layer name."""

    number: int
    label: str
    display_rgb: tuple[int, int, int]
    layer: str

    @property
    def display_gray(self) -> int:
        """A P-value for monochrome displays: the colour's lightness, in the upper half."""
        lightness = rgb_to_lab(self.display_rgb)[0]
        return round((0.5 + 0.5 * min(max(lightness, 0.0), 100.0) / 100) * 65535)


SegmentSpec = str | SegmentDescription | Mapping[str, Any]


def _layer_name(label: str, taken: set[str]) -> str:
    """Return a distinct CS name: the label in upper case, accents dropped, marks ``_``."""
    plain = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    base = _CS.sub("_", plain.upper()).strip()[:16] or "SEGMENT"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base[: 15 - len(str(k))]}_{k}"
    taken.add(name)
    return name


def _style(number: int, spec: SegmentSpec, taken: set[str]) -> SegmentStyle:
    rgb: Any = None
    if isinstance(spec, SegmentDescription):
        label, rgb = spec.label, spec.display_rgb
    elif isinstance(spec, str):
        label = spec
    elif isinstance(spec, Mapping):
        label = str(spec.get("label") or spec.get("name") or "")
        rgb = spec.get("rgb")
    else:
        raise EncodingError(
            f"segment {number}: {type(spec).__name__} is not a segment description",
            attribute="segments",
        )
    if not label.strip() or len(label) > 64:
        raise EncodingError(
            f"segment {number}: a label needs 1 to 64 characters", attribute="segments"
        )
    colour = default_colour(number) if rgb is None else tuple(int(v) for v in rgb)
    if len(colour) != 3 or not all(0 <= v <= 255 for v in colour):
        raise EncodingError(
            f"segment {number}: a colour is three values 0-255", attribute="segments"
        )
    return SegmentStyle(number, label, (colour[0], colour[1], colour[2]), _layer_name(label, taken))


def segment_styles(
    segments: Sequence[SegmentDescription] | Mapping[int, SegmentSpec] | Mapping[str, SegmentSpec],
) -> list[SegmentStyle]:
    """Return each segment's label, colour and layer name, by number.

    Examples
    --------
    >>> [(s.number, s.layer, s.display_rgb) for s in segment_styles({"2": "Lung L", 1: "Body"})]
    [(1, 'BODY', (230, 159, 0)), (2, 'LUNG L', (86, 180, 233))]
    """
    if isinstance(segments, Mapping):
        items = [(int(str(k)), v) for k, v in segments.items()]
    else:
        items = [(d.segment_number, d) for d in segments]
    if not items:
        raise EncodingError("no segments are described", attribute="segments")
    numbers = [n for n, _ in items]
    if len(set(numbers)) != len(numbers) or min(numbers) < 1:
        raise EncodingError(
            f"segment numbers must be distinct positive integers, got {numbers}",
            attribute="segments",
        )
    taken: set[str] = set()
    return [_style(n, spec, taken) for n, spec in sorted(items, key=lambda item: item[0])]


def _graphic_points(polygon: NDArray[np.float64]) -> NDArray[np.float64]:
    """(row, column) pixel-centre polygon -> closed (column, row) PIXEL graphic data."""
    points = polygon[:, ::-1] + 0.5
    return np.concatenate([points, points[:1]])


def _text_box(
    points: NDArray[np.float64], text: str, shape: tuple[int, int]
) -> tuple[tuple[float, float, float, float], tuple[float, float]]:
    """Return a text box above the outline (below it at the top edge) and the anchor point.

    The box is about a fortieth of the image high and as wide as the text needs at
    that height, inside the image; the anchor is the outline's top-most point.
    """
    rows, columns = shape
    height = float(max(4, round(max(rows, columns) / 40)))
    width = min(float(columns), round(0.6 * height * len(text)) + 2.0)
    left = min(float(points[:, 0].min()), columns - width)
    above = float(points[:, 1].min()) - height - 1
    top = above if above >= 0 else min(float(points[:, 1].max()) + 1, rows - height)
    highest = points[int(np.argmin(points[:, 1]))]
    return (left, top, left + width, top + height), (float(highest[0]), float(highest[1]))


@dataclass(frozen=True)
class _Outlined:
    """The outlines of one segment on one slice."""

    slice_index: int
    graphics: tuple[GraphicObject, ...]
    voxels: int


def _outline_segment(
    volume: NDArray[Any], style: SegmentStyle, options: OutlineOptions, source: Series
) -> list[_Outlined]:
    inside_counts = (
        volume.reshape(volume.shape[0], -1).sum(axis=1)
        if volume.dtype == np.bool_
        else (volume >= options.level).reshape(volume.shape[0], -1).sum(axis=1)
    )
    out = []
    for k, polygons in slice_polygons(
        volume,
        level=options.level,
        tolerance=options.tolerance_mm,
        spacing=source.geometry.pixel_spacing,
    ):
        graphics = tuple(
            GraphicObject("POLYLINE", _graphic_points(p), group_id=style.number) for p in polygons
        )
        out.append(_Outlined(k, graphics, int(inside_counts[k])))
    return out


def _label_text(
    style: SegmentStyle, outlined: _Outlined, options: OutlineOptions, extra: str, pixel_area: float
) -> str:
    parts = [style.label]
    if options.areas:
        parts.append(f"{outlined.voxels * pixel_area:.1f} mm2")
    if extra:
        parts.append(extra)
    return "; ".join(parts)


def _segment_annotations(
    style: SegmentStyle,
    outlines: list[_Outlined],
    source: Series,
    options: OutlineOptions,
    measurement: str,
) -> list[GraphicAnnotation]:
    rows, columns = source.geometry.shape[1:]
    spacing = source.geometry.pixel_spacing
    largest = max(outlines, key=lambda o: o.voxels).slice_index if outlines else -1
    annotations = []
    for outlined in outlines:
        texts: tuple[TextObject, ...] = ()
        if options.labels:
            extra = measurement if outlined.slice_index == largest else ""
            text = _label_text(style, outlined, options, extra, spacing[0] * spacing[1])
            points = np.concatenate([g.points for g in outlined.graphics])
            box, anchor = _text_box(points, text, (rows, columns))
            texts = (TextObject(text, anchor, box, group_id=style.number),)
        annotations.append(
            GraphicAnnotation(
                style.layer,
                (source.slice_refs[outlined.slice_index],),
                outlined.graphics,
                texts,
            )
        )
    return annotations


def encode_gsps(
    mask: NDArray[Any] | Volume,
    source: SeriesLike,
    segments: Sequence[SegmentDescription] | Mapping[int, SegmentSpec] | Mapping[str, SegmentSpec],
    *,
    outlines: OutlineOptions | None = None,
    window: Window | tuple[float, float] | None = None,
    measurements: Mapping[int, str] | None = None,
    allow_empty: bool = False,
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Outline a mask's segments on their source images as a Grayscale Softcopy PS.

    Parameters
    ----------
    mask
        A label map ``[slice, row, column]`` (0 background, value = segment number)
        or stacked masks ``[segment, slice, row, column]`` (booleans, or
        probabilities outlined at ``outlines.level``) in the order of the segments
        by number; on the source grid, in its slice order.
    source
        The source images (headers suffice) or a :class:`Series` read from them.
    segments
        ``{number: label}`` (or a labels.json mapping with ``label`` and ``rgb``), or
        SEG segment descriptions (their labels and recommended colours are used).
    outlines
        Simplification, iso-level, and which text to write.
    window
        ``Window(center, width)`` (or a pair) in modality units (HU for CT) for every
        image; ``None`` keeps each image's own recommended window.
    measurements
        Text per segment number (e.g. ``"volume 12.3 ml"``), written beside its
        outline on the slice where it is largest.
    allow_empty
        Write a described segment without voxels as a layer without graphics
        instead of refusing it.
    options
        Series/instance/equipment attributes; its Content Label is the
        Presentation Label.

    Returns
    -------
    pydicom.dataset.FileDataset
        Ready to ``save_as``: Explicit VR Little Endian, or Implicit VR Little Endian
        when an outline has more points than an explicit-VR FL element can hold.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom import examples
    >>> source = Series.from_datasets([examples.ct])
    >>> mask = np.zeros(source.geometry.shape, np.uint8)
    >>> mask[0, 20:40, 30:50] = 3
    >>> ps = encode_gsps(mask, source, {3: {"label": "Lesion", "rgb": (255, 0, 0)}},
    ...                  outlines=OutlineOptions(areas=True), measurements={3: "12 mm"})
    >>> ps.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
    'Lesion; 175.0 mm2; 12 mm'
    """
    started = time.perf_counter()
    outline_options = outlines or OutlineOptions()
    resolved = _resolve_source(source)
    styles = segment_styles(segments)
    array = mask_on_source(
        mask,
        resolved,
        what="segment",
        register_hint="outline on the source series itself, or register the mask to it first",
    )
    by_number = {style.number: style for style in styles}
    annotations: list[GraphicAnnotation] = []
    for number, volume in region_masks(array, list(by_number), what="segment"):
        style = by_number[number]
        outlined = _outline_segment(volume, style, outline_options, resolved)
        if not outlined and not allow_empty:
            raise EncodingError(
                f"segment {number} ({style.label!r}) has no voxels in the mask",
                attribute="mask",
                hint="remove it from the segment descriptions, or pass allow_empty=True "
                "(CLI: --allow-empty)",
            )
        text = (measurements or {}).get(number, "")
        annotations += _segment_annotations(style, outlined, resolved, outline_options, text)
    ds = encode_presentation_state(
        annotations,
        resolved,
        [GraphicLayer(s.layer, s.number, s.label, s.display_rgb, s.display_gray) for s in styles],
        groups=[GraphicGroup(s.number, s.label) for s in styles],
        window=window,
        options=options,
    )
    log.info(
        "encoded GSPS %s: %d segments, %d annotated images in %.2f s",
        ds.SOPInstanceUID,
        len(styles),
        len({a.images[0] for a in annotations}),
        time.perf_counter() - started,
    )
    return ds


def _data_range(source: Series, window: Window | None) -> tuple[float, float] | None:
    """Return the smallest and largest modality value, when a slice needs it for a window."""
    if window is not None or all(d.window is not None for d in source.display):
        return None
    try:
        values = source.volume(rescale=True).array
    except MissingAttributeError:
        return None  # headers only: the stored range will do
    return float(values.min()), float(values.max())


def _resolve_source(source: SeriesLike) -> Series:
    resolved = resolve_source(
        source,
        consequence="outlines cannot be placed on its images",
        hint="outline images that have a FrameOfReferenceUID (CT, MR, PET do)",
    )
    if not resolved.series_instance_uid or len(resolved.slice_refs) != resolved.geometry.shape[0]:
        raise MissingAttributeError(
            "a presentation state applies to images, but the source names none",
            attribute="ReferencedImageSequence",
            hint="read the source series from its DICOM files (read_series), not from a volume",
        )
    return resolved


def encode_presentation_state(
    annotations: Sequence[GraphicAnnotation],
    source: SeriesLike,
    layers: Sequence[GraphicLayer],
    *,
    groups: Sequence[GraphicGroup] = (),
    window: Window | tuple[float, float] | None = None,
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Write graphics and text over the source images as a Grayscale Softcopy PS.

    Parameters
    ----------
    annotations
        Graphic Annotation items: a layer, the images they apply to (source images
        only), graphic and text objects.
    source
        The source images (headers suffice) or a :class:`Series` read from them. The
        former order ``(source, annotations, layers)`` still works, with a
        :class:`DeprecationWarning`.
    layers
        Every layer the annotations use (names unique).
    groups
        Graphic groups the objects name by ``group_id``.
    window
        The window for every image (modality units), or ``None``: each image's own.
    options
        Series/instance/equipment attributes (Content Label = Presentation Label).

    Raises
    ------
    EncodingError
        An annotation names an unknown layer, group or image, or draws outside the image.

    Examples
    --------
    >>> from pydicom import examples
    >>> source = Series.from_datasets([examples.ct])
    >>> arrow = GraphicObject("POLYLINE", [[10, 10], [40, 40]])
    >>> note = TextObject("look here", anchor=(40, 40), bounding_box=(42, 42, 90, 50))
    >>> ps = encode_presentation_state(
    ...     [GraphicAnnotation("NOTES", source.slice_refs[:1], (arrow,), (note,))],
    ...     source,
    ...     [GraphicLayer("NOTES", 1, "Reader notes", display_rgb=(255, 255, 0))],
    ...     window=(40, 400),
    ... )
    >>> ps.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
    'look here'
    """
    if source_given_first("encode_presentation_state", annotations):
        annotations, source = (
            cast(Sequence[GraphicAnnotation], source),
            cast(SeriesLike, annotations),
        )
    resolved = _resolve_source(source) if not isinstance(source, Series) else source
    settings = series_options(
        options,
        None,
        default=SeriesOptions(
            series_description="Presentation State (outlines)",
            series_number=302,
        ),
    )
    chosen = window if window is None or isinstance(window, Window) else Window(*window)
    _check_annotations(annotations, layers, groups, resolved)
    pipeline = grayscale_pipeline(resolved, chosen, _data_range(resolved, chosen))
    ds = _new_state(resolved, settings)
    add_relationship(ds, resolved)
    add_displayed_area(ds, resolved)
    if annotations:
        ds.GraphicAnnotationSequence = [annotation_item(a) for a in annotations]
    ds.GraphicLayerSequence = [layer_item(layer) for layer in layers]
    if groups:
        ds.GraphicGroupSequence = [group_item(g) for g in groups]
    add_pipeline(ds, pipeline, resolved.slice_refs)
    longest = max((len(g.points) * 8 for a in annotations for g in a.graphics), default=0)
    return finish_file(ds, little_endian_for(longest, "an outline's Graphic Data"))


#: new_instance() attributes that belong to no module of the GSPS IOD.
_NOT_IN_IOD = ("ContentDate", "ContentTime")


def _new_state(source: Series, settings: SeriesOptions) -> Dataset:
    """SOP Common, series, equipment, identification and the source's patient/study."""
    ds = new_instance(GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE, settings, modality="PR")
    when = _dt.datetime.strptime(ds.SeriesDate + ds.SeriesTime, "%Y%m%d%H%M%S")
    for keyword in _NOT_IN_IOD:
        del ds[keyword]
    write_context(ds, source.context)
    ds.Laterality = ""  # Type 2C (dciodvfy: absent is an error): unknown, outlines may span sides
    add_identification(ds, when)
    return ds


def _inside(points: NDArray[np.float64], units: str, shape: tuple[int, int]) -> bool:
    rows, columns = shape
    high = (1.0, 1.0) if units == "DISPLAY" else (float(columns), float(rows))
    return bool(
        np.all(points >= 0) and np.all(points[:, 0] <= high[0]) and np.all(points[:, 1] <= high[1])
    )


def _check_annotations(
    annotations: Sequence[GraphicAnnotation],
    layers: Sequence[GraphicLayer],
    groups: Sequence[GraphicGroup],
    source: Series,
) -> None:
    """Refuse unknown layers, groups and images, and graphics outside the image."""
    names = [layer.name for layer in layers]
    for name in names:
        if not name or len(name) > 16 or _CS.search(name):
            raise EncodingError(
                f"graphic layer {name!r} is not a valid CS value",
                attribute="GraphicLayer",
                hint="use up to 16 upper-case letters, digits, underscores or spaces",
            )
    if len(set(names)) != len(names):
        raise EncodingError("graphic layer names must be distinct", attribute="GraphicLayer")
    group_ids = {g.group_id for g in groups}
    images = {(r.sop_instance_uid, r.frame_number) for r in source.slice_refs}
    shape = source.geometry.shape[1:]
    for annotation in annotations:
        if annotation.layer not in names:
            raise EncodingError(
                f"unknown graphic layer {annotation.layer!r}", attribute="GraphicLayer"
            )
        for ref in annotation.images:
            if (ref.sop_instance_uid, ref.frame_number) not in images:
                raise EncodingError(
                    f"image {ref.sop_instance_uid} is not in the source series",
                    attribute="ReferencedImageSequence",
                )
        objects: list[GraphicObject | TextObject] = [*annotation.graphics, *annotation.texts]
        for obj in objects:
            if obj.group_id is not None and obj.group_id not in group_ids:
                raise EncodingError(
                    f"unknown graphic group {obj.group_id}", attribute="GraphicGroupID"
                )
        for graphic in annotation.graphics:
            if not _inside(graphic.points, str(graphic.units), shape):
                raise EncodingError("a graphic lies outside the image", attribute="GraphicData")
        if not annotation.graphics and not annotation.texts:
            raise EncodingError(
                "a graphic annotation needs graphics or text", attribute="GraphicAnnotationSequence"
            )
