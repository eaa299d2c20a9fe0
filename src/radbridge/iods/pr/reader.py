r"""Read Grayscale Softcopy Presentation States: graphics per image, windows, and masks.

:func:`read_gsps` opens a presentation state (radbridge's or another writer's);
:class:`PresentationState` gives its layers, graphic groups, annotations (graphic
and text objects per image), the images it applies to and its grayscale pipeline,
and fills its closed graphics back into masks on the source series
(:meth:`PresentationState.stacked_volume`, :meth:`PresentationState.label_volume`).

Which graphics make one region: the objects of one Graphic Group when every closed
graphic names a group (radbridge writes one group per segment, numbered as the
segment), else those of one layer (numbered 1, 2, ... in layer order). A pixel is
inside when its centre lies inside an odd number of the region's closed polylines
on that image (the even-odd rule, so holes stay holes), or inside one of its
circles or ellipses. Open polylines, points and DISPLAY-relative graphics enclose
no anatomy and are left out (counted in a warning).

The reader is tolerant: damaged graphics are skipped with a warning naming them;
only a file that is not a presentation state, or one whose content cannot be
decoded at all, raises.

Examples
--------
>>> import numpy as np
>>> from pydicom import examples
>>> from radbridge.iods.pr.writer import encode_gsps
>>> from radbridge.iods.source import Series
>>> source = Series.from_datasets([examples.ct])
>>> mask = np.zeros(source.geometry.shape, np.uint8)
>>> mask[0, 40:60, 50:80] = 1
>>> ps = read_gsps(encode_gsps(mask, source, {1: "Liver"}))
>>> ps.segments, [layer.name for layer in ps.layers]
({1: 'Liver'}, ['LIVER'])
>>> bool(np.array_equal(ps.label_volume(source).array, mask))
True
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from radbridge.attributes import int_value
from radbridge.color import dicom_lab_to_rgb
from radbridge.errors import (
    DecodingError,
    GridMismatchError,
    InvalidAttributeError,
)
from radbridge.geometry import SliceRef, Volume
from radbridge.iods.common import ReadObject, RegionSlices, StackedMasks, paint_label_map
from radbridge.iods.multiframe.fast_read import (
    DicomFile,
    inflated_value_complete,
    open_dataset,
)
from radbridge.iods.pr import types
from radbridge.iods.pr.fill import encloses_area, region_mask
from radbridge.iods.source import Series

__all__ = ["PresentationState", "read_gsps"]

#: An image (or one frame of it): SOP Instance UID and 1-based frame number.
ImageKey = tuple[str, int | None]

#: Presentation state SOP classes whose graphics this reader understands.
PRESENTATION_STATES = {
    types.GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE: "Grayscale Softcopy Presentation State",
    types.COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE: "Color Softcopy Presentation State",
    "1.2.840.10008.5.1.4.1.1.11.3": "Pseudo-Color Softcopy Presentation State",
    "1.2.840.10008.5.1.4.1.1.11.4": "Blending Softcopy Presentation State",
}


def read_gsps(file: DicomFile) -> PresentationState:
    """Open a softcopy presentation state from a path, encoded bytes or a data set.

    Raises
    ------
    NotDicomError
        The input is not DICOM.
    UnsupportedObjectError
        It is DICOM but not a softcopy presentation state.
    DecodingError, InvalidAttributeError
        It is damaged beyond reading (the message names the attribute).

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom import examples
    >>> from radbridge.iods.pr.writer import encode_gsps
    >>> source = Series.from_datasets([examples.ct])
    >>> mask = np.zeros(source.geometry.shape, bool)
    >>> mask[0, 10:20, 10:30] = True
    >>> state = read_gsps(encode_gsps(mask, source, {1: "Liver"}, window=(40, 400)))
    >>> [(a.layer, len(a.graphics)) for a in state.annotations], state.windows[0][0].center
    ([('LIVER', 1)], 40.0)
    >>> int(state.stacked_volume(source).array.sum())
    200
    """
    if not isinstance(file, Dataset):
        _check_complete(file)
    ds, name = open_dataset(file, raw_tags=())
    return PresentationState(ds, source=name)


#: A Sequence Delimitation Item (Little Endian): how an undefined-length sequence ends.
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def _check_complete(file: str | os.PathLike[str] | bytes | bytearray) -> None:
    """Refuse a file that ends inside its last attribute (truncated).

    pydicom reads a truncated sequence without complaint, which would silently drop
    graphics; the last top-level element must end where the file ends.
    """
    name = "<bytes>" if isinstance(file, bytes | bytearray) else os.fspath(file)
    try:
        data = bytes(file) if isinstance(file, bytes | bytearray) else Path(name).read_bytes()
        ds = dcmread(io.BytesIO(data))
        keys = list(ds.keys())
        raw = ds.get_item(max(keys)) if keys else None
    except Exception:  # open_dataset reports what is wrong with it
        return
    if not isinstance(raw, RawDataElement) or not raw.is_little_endian:
        return
    inflated = inflated_value_complete(ds, raw)
    if inflated is not None:
        complete = inflated
    elif raw.length == 0xFFFFFFFF:
        complete = data.endswith(_SEQUENCE_END)
    else:
        complete = raw.value_tell + raw.length <= len(data)
    if not complete:
        raise DecodingError(
            f"ends inside attribute ({raw.tag.group:04X},{raw.tag.element:04X})",
            path=name,
            hint="the file is truncated: copy or download it again",
        )


def _check_mandatory(ds: Dataset, source: str | None) -> None:
    """Refuse a presentation state without the attributes every one of its kind has.

    The Displayed Area (every softcopy presentation state) and, in a GSPS, the
    Presentation LUT Shape (its last attribute): a file cut cleanly between two
    elements reads without error, and without them its graphics would pass for all.
    """
    missing = [] if ds.get("DisplayedAreaSelectionSequence") else ["DisplayedAreaSelectionSequence"]
    grayscale = (
        str(ds.get("SOPClassUID", "")) == types.GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE
    )
    if grayscale and not ("PresentationLUTShape" in ds or "PresentationLUTSequence" in ds):
        missing.append("PresentationLUTShape")
    if missing:
        raise DecodingError(
            f"lacks {' and '.join(missing)}, which every "
            f"{PRESENTATION_STATES[str(ds.SOPClassUID)]} has",
            path=source,
            attribute=missing[0],
            hint="the file is truncated, or its writer left out a mandatory module",
        )


def _text(value: Any) -> str:
    return str(value or "").strip()


def _floats(value: Any, count: int | None, where: str, attribute: str) -> NDArray[np.float64]:
    try:
        values = np.asarray([value] if np.isscalar(value) else list(value), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidAttributeError(
            f"{where}: holds values that are not numbers", attribute=attribute
        ) from None
    if (count is not None and values.size != count) or not np.all(np.isfinite(values)):
        raise InvalidAttributeError(
            f"{where}: holds {values.size} values, {count or 'finite'} expected",
            attribute=attribute,
        )
    return values


def _image_refs(item: Dataset) -> tuple[SliceRef, ...]:
    """Return the images of a Referenced Image Sequence, one ref per frame when frames are named."""
    out: list[SliceRef] = []
    for image in item.get("ReferencedImageSequence") or []:
        uid = _text(image.get("ReferencedSOPInstanceUID"))
        if not uid:
            continue
        sop_class = _text(image.get("ReferencedSOPClassUID"))
        frames = image.get("ReferencedFrameNumber")
        numbers: list[Any] = (
            [] if frames in (None, "") else ([frames] if np.isscalar(frames) else list(frames))
        )
        if not numbers:
            out.append(SliceRef(sop_class, uid))
        out += [SliceRef(sop_class, uid, int(f)) for f in numbers]
    return tuple(out)


def _group_id(item: Dataset) -> int | None:
    value = item.get("GraphicGroupID")
    return None if value in (None, "") else int(value)


def _graphic(item: Dataset, where: str) -> types.GraphicObject:
    dimensions = int_value(item, "GraphicDimensions", 2, source=where)
    if dimensions != 2:
        raise InvalidAttributeError(
            f"{where}: {dimensions}-D graphics are not image graphics",
            attribute="GraphicDimensions",
        )
    data = _floats(item.get("GraphicData"), None, where, "GraphicData")
    if data.size % 2:
        raise InvalidAttributeError(
            f"{where}: holds {data.size} values (not column, row pairs)", attribute="GraphicData"
        )
    return types.GraphicObject(
        _text(item.get("GraphicType")).upper() or "POLYLINE",
        data.reshape(-1, 2),
        units=_text(item.get("GraphicAnnotationUnits")).upper() or "PIXEL",
        filled=_text(item.get("GraphicFilled")).upper() == "Y"
        and _closed_data(data.reshape(-1, 2), item),
        group_id=_group_id(item),
    )


def _closed_data(points: NDArray[np.float64], item: Dataset) -> bool:
    kind = _text(item.get("GraphicType")).upper()
    if kind in ("CIRCLE", "ELLIPSE"):
        return True
    return len(points) >= 4 and bool(np.array_equal(points[0], points[-1]))


def _text_object(item: Dataset, where: str) -> types.TextObject:
    anchor = item.get("AnchorPoint")
    box_tlhc, box_brhc = (
        item.get("BoundingBoxTopLeftHandCorner"),
        item.get("BoundingBoxBottomRightHandCorner"),
    )
    anchor_xy = None if anchor in (None, "") else _floats(anchor, 2, where, "AnchorPoint")
    box = None
    if box_tlhc not in (None, "") and box_brhc not in (None, ""):
        tl = _floats(box_tlhc, 2, where, "BoundingBoxTopLeftHandCorner")
        br = _floats(box_brhc, 2, where, "BoundingBoxBottomRightHandCorner")
        box = (float(tl[0]), float(tl[1]), float(br[0]), float(br[1]))
    units = item.get("AnchorPointAnnotationUnits") or item.get("BoundingBoxAnnotationUnits")
    justification = _text(item.get("BoundingBoxTextHorizontalJustification")).upper()
    return types.TextObject(
        str(item.get("UnformattedTextValue") or ""),
        None if anchor_xy is None else (float(anchor_xy[0]), float(anchor_xy[1])),
        box,
        units=_text(units).upper() or "PIXEL",
        anchor_visible=_text(item.get("AnchorPointVisibility")).upper() == "Y",
        justification=justification if justification in ("LEFT", "RIGHT", "CENTER") else "LEFT",
        group_id=_group_id(item),
    )


@dataclass
class _Skipped:
    damaged: list[str] = field(default_factory=list)
    not_area: int = 0
    display_units: int = 0
    unknown_image: int = 0


class PresentationState(ReadObject):
    """A softcopy presentation state read for its graphics and grayscale pipeline.

    Parameters
    ----------
    ds
        The data set.
    source
        Name for messages.

    Attributes
    ----------
    dataset
        The underlying data set.
    layers
        Graphic layers in rendering order (Graphic Layer Order).
    groups
        Graphic groups by Graphic Group ID.
    annotations
        Graphic Annotation items: layer, images, graphic and text objects.
    images
        Every image (and frame) the presentation state applies to, by series UID.
    windows
        ``(window, images)`` of the Softcopy VOI LUT (images empty: all); windows are
        in the units the Modality LUT puts out (stored values when there is none).
    rescale
        ``(slope, intercept, type)`` of the Modality LUT, or ``None`` (identity).
    presentation_lut_shape
        IDENTITY or INVERSE (``""`` when absent or given as a table).
    """

    SOP_CLASSES = tuple(PRESENTATION_STATES)
    WHAT = "a softcopy presentation state"
    HINT = "radbridge reads Grayscale (and Color) Softcopy Presentation States here"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        super().__init__(ds, source=source)
        _check_mandatory(ds, source)
        self._where = source or "presentation state"
        self._skipped = _Skipped()
        try:
            self.layers = self._read_layers()
            self.groups = self._read_groups()
            self.annotations = self._read_annotations()
            self.images = self._read_images()
            self.windows = self._read_windows()
            self.rescale = self._read_rescale()
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            if isinstance(exc, InvalidAttributeError | DecodingError):
                raise
            raise DecodingError(
                f"cannot be read ({type(exc).__name__}: {exc})",
                path=source,
                hint="the file is damaged or was written by a faulty writer",
            ) from exc
        self.presentation_lut_shape = _text(ds.get("PresentationLUTShape")).upper()
        if self._skipped.damaged:
            self._warn(
                f"{len(self._skipped.damaged)} damaged graphic or text objects were skipped "
                f"({'; '.join(self._skipped.damaged[:3])})"
            )

    def _warn(self, message: str, stacklevel: int = 3) -> None:
        warnings.warn(f"{self._where}: {message}", stacklevel=stacklevel)

    @property
    def sop_class_name(self) -> str:
        """The kind of presentation state (e.g. ``Grayscale Softcopy Presentation State``)."""
        return PRESENTATION_STATES[_text(self.dataset.get("SOPClassUID"))]

    @property
    def label(self) -> str:
        """Presentation Label (Content Label)."""
        return _text(self.dataset.get("ContentLabel"))

    # -- header -------------------------------------------------------------

    def _read_layers(self) -> tuple[types.GraphicLayer, ...]:
        layers = []
        for k, item in enumerate(self.dataset.get("GraphicLayerSequence") or []):
            lab = item.get("GraphicLayerRecommendedDisplayCIELabValue")
            gray = item.get("GraphicLayerRecommendedDisplayGrayscaleValue")
            rgb = None
            if lab not in (None, "") and len(lab) == 3:
                rgb = dicom_lab_to_rgb(tuple(int(v) for v in lab))
            order = item.get("GraphicLayerOrder")
            layers.append(
                types.GraphicLayer(
                    _text(item.get("GraphicLayer")),
                    int(order) if order not in (None, "") else k + 1,
                    _text(item.get("GraphicLayerDescription")),
                    rgb,
                    None if gray in (None, "") else int(gray),
                )
            )
        return tuple(sorted(layers, key=lambda layer: layer.order))

    def _read_groups(self) -> dict[int, types.GraphicGroup]:
        groups = {}
        for item in self.dataset.get("GraphicGroupSequence") or []:
            number = _group_id(item)
            if number is not None:
                groups[number] = types.GraphicGroup(
                    number,
                    _text(item.get("GraphicGroupLabel")) or f"group {number}",
                    _text(item.get("GraphicGroupDescription")),
                )
        return groups

    def _objects(
        self, item: Dataset, keyword: str, parse: Any, where: str
    ) -> Iterator[types.GraphicObject | types.TextObject]:
        for j, obj in enumerate(item.get(keyword) or []):
            here = f"{where} {keyword[:-8].lower()} {j + 1}"
            try:
                yield parse(obj, here)
            except (InvalidAttributeError, ValueError, TypeError) as exc:
                self._skipped.damaged.append(f"{here}: {getattr(exc, 'message', exc)}")

    def _read_annotations(self) -> tuple[types.GraphicAnnotation, ...]:
        out = []
        for k, item in enumerate(self.dataset.get("GraphicAnnotationSequence") or []):
            where = f"annotation {k + 1}"
            graphics = tuple(self._objects(item, "GraphicObjectSequence", _graphic, where))
            texts = tuple(self._objects(item, "TextObjectSequence", _text_object, where))
            out.append(
                types.GraphicAnnotation(
                    _text(item.get("GraphicLayer")),
                    _image_refs(item),
                    graphics,  # type: ignore[arg-type]
                    texts,  # type: ignore[arg-type]
                )
            )
        return tuple(out)

    def _read_images(self) -> dict[str, tuple[SliceRef, ...]]:
        out: dict[str, tuple[SliceRef, ...]] = {}
        for item in self.dataset.get("ReferencedSeriesSequence") or []:
            uid = _text(item.get("SeriesInstanceUID"))
            out[uid] = out.get(uid, ()) + _image_refs(item)
        return out

    def _read_windows(self) -> tuple[tuple[types.Window, tuple[SliceRef, ...]], ...]:
        out = []
        for k, item in enumerate(self.dataset.get("SoftcopyVOILUTSequence") or []):
            if item.get("WindowCenter") in (None, "") or item.get("WindowWidth") in (None, ""):
                continue  # a VOI LUT table: not a window
            where = f"Softcopy VOI LUT item {k + 1}"
            center = _floats(item.WindowCenter, None, where, "WindowCenter")[0]
            width = _floats(item.WindowWidth, None, where, "WindowWidth")[0]
            if width <= 0:
                raise InvalidAttributeError(
                    f"{where}: window width {width} is not positive",
                    path=self.source,
                    attribute="WindowWidth",
                )
            explanation = item.get("WindowCenterWidthExplanation")
            if isinstance(explanation, list | tuple) or type(explanation).__name__ == "MultiValue":
                explanation = explanation[0] if len(explanation) else ""
            out.append(
                (types.Window(float(center), float(width), _text(explanation)), _image_refs(item))
            )
        return tuple(out)

    def _read_rescale(self) -> tuple[float, float, str] | None:
        ds = self.dataset
        if ds.get("RescaleSlope") in (None, "") or ds.get("RescaleIntercept") in (None, ""):
            return None
        slope = _floats(ds.RescaleSlope, 1, "Modality LUT", "RescaleSlope")[0]
        intercept = _floats(ds.RescaleIntercept, 1, "Modality LUT", "RescaleIntercept")[0]
        return float(slope), float(intercept), _text(ds.get("RescaleType"))

    # -- graphics per image and regions ---------------------------------------

    def _applies_to(self, annotation: types.GraphicAnnotation) -> tuple[SliceRef, ...]:
        if annotation.images:
            return annotation.images
        return tuple(ref for refs in self.images.values() for ref in refs)

    @property
    def by_image(self) -> dict[ImageKey, tuple[types.GraphicAnnotation, ...]]:
        """The annotations drawn on each image, by ``(SOP Instance UID, frame number)``.

        An annotation that names no image applies to every image of the
        presentation state; the frame number is ``None`` for single-frame images
        (and for a multi-frame image referenced as a whole).
        """
        out: dict[ImageKey, list[types.GraphicAnnotation]] = {}
        for annotation in self.annotations:
            for ref in self._applies_to(annotation):
                out.setdefault((ref.sop_instance_uid, ref.frame_number), []).append(annotation)
        return {key: tuple(value) for key, value in out.items()}

    def _by_group(self) -> bool:
        """Whether regions are graphic groups (every closed graphic names one)."""
        closed = [g for a in self.annotations for g in a.graphics if encloses_area(g)]
        return bool(closed) and all(g.group_id is not None for g in closed)

    @property
    def segments(self) -> dict[int, str]:
        """The regions the closed graphics outline: number -> label.

        Graphic groups (by Graphic Group ID) when every closed graphic names a
        group, else graphic layers numbered 1, 2, ... in layer order (labelled by
        their description, else their name). Every group of the Graphic Group
        Sequence counts, drawn or not (a segment without voxels has no outline).
        """
        if self._by_group():
            drawn = {g.group_id for a in self.annotations for g in a.graphics}
            ids = sorted({n for n in drawn if n is not None} | set(self.groups))
            return {n: self.groups[n].label if n in self.groups else f"group {n}" for n in ids}
        return {k + 1: layer.description or layer.name for k, layer in enumerate(self.layers)}

    def _region_of(self) -> dict[str, int]:
        return {layer.name: k + 1 for k, layer in enumerate(self.layers)}

    def _slice_index(self, source: Series) -> dict[ImageKey, list[int]]:
        index: dict[ImageKey, list[int]] = {}
        for k, ref in enumerate(source.slice_refs):
            index.setdefault((ref.sop_instance_uid, ref.frame_number), []).append(k)
            if ref.frame_number is not None:  # a multi-frame image referenced as a whole
                index.setdefault((ref.sop_instance_uid, None), []).append(k)
        return index

    def _region_graphics(
        self, source: Series
    ) -> tuple[dict[tuple[int, int], list[types.GraphicObject]], int]:
        """Return closed graphics by ``(region, slice index)``, and how many lie elsewhere."""
        by_group, layers = self._by_group(), self._region_of()
        index = self._slice_index(source)
        out: dict[tuple[int, int], list[types.GraphicObject]] = {}
        outside = 0
        for annotation in self.annotations:
            closed = [g for g in annotation.graphics if encloses_area(g)]
            if not closed:
                continue
            slices = [
                k
                for r in self._applies_to(annotation)
                for k in index.get((r.sop_instance_uid, r.frame_number), [])
            ]
            outside += not slices
            for graphic in closed:
                number = graphic.group_id if by_group else layers.get(annotation.layer)
                if number is None:
                    continue
                for k in slices:
                    out.setdefault((number, k), []).append(graphic)
        return out, outside

    def _region_slices(self, source: Series, numbers: Sequence[int]) -> RegionSlices:
        """Fill region ``numbers[i]`` slice by slice: ``(slice index, 2-D mask)``.

        Raises :class:`GridMismatchError` when no graphic lies on ``source``, and
        warns (once) about annotations on other images, before any filling.
        """
        graphics, outside = self._region_graphics(source)
        if outside and not graphics:
            raise GridMismatchError(
                "the presentation state's graphics lie on images that are not in the source "
                f"series ({source.series_instance_uid or 'no series UID'})",
                path=self.source,
                attribute="ReferencedImageSequence",
                hint=f"give the series {', '.join(self.images) or 'it references'}",
            )
        if outside:
            self._warn(f"{outside} annotations lie on images outside the source series", 4)
        by_region: dict[int, list[int]] = {}
        for number, k in sorted(graphics):
            by_region.setdefault(number, []).append(k)
        plane = source.geometry.shape[1:]

        def slices(i: int) -> Iterator[tuple[int, NDArray[np.bool_]]]:
            for k in by_region.get(numbers[i], []):
                yield k, region_mask(graphics[numbers[i], k], plane)

        return slices

    def _chosen(self, segments: Sequence[int] | None) -> list[int]:
        known = self.segments
        chosen = list(known) if segments is None else [int(n) for n in segments]
        for number in chosen:
            if number not in known:
                raise InvalidAttributeError(
                    f"no region {number} (regions: {sorted(known)})",
                    path=self.source,
                    attribute="GraphicGroupID",
                )
        return chosen

    def stacked_volume(
        self, source: Series, *, segments: Sequence[int] | None = None
    ) -> StackedMasks:
        """Fill the closed graphics back into one mask per region on the source series.

        Parameters
        ----------
        source
            The series the presentation state applies to (its images give the
            slices; headers suffice).
        segments
            Region numbers (see :attr:`segments`) to fill, default all.

        Returns
        -------
        StackedMasks
            ``array[region, slice, row, column]`` on the source grid: one whole
            mask per region, so its memory grows with the regions
            (:meth:`label_volume` does not).

        Raises
        ------
        GridMismatchError
            None of the presentation state's graphics lies on an image of ``source``.
        InvalidAttributeError
            A region number that does not exist.
        """
        chosen = self._chosen(segments)
        slices = self._region_slices(source, chosen)
        array = np.zeros((len(chosen), *source.geometry.shape), bool)
        for i in range(len(chosen)):
            for k, plane in slices(i):
                array[i, k] = plane
        return StackedMasks(array, source.geometry, tuple(chosen))

    def label_volume(self, source: Series, *, overlap: str = "error") -> Volume:
        """Return the regions as one label map on the source grid (0 background).

        The regions are filled one slice at a time straight into the label map, so
        memory is the label map plus a slice, however many regions there are (not
        one mask per region as :meth:`stacked_volume`).

        Parameters
        ----------
        source
            See :meth:`stacked_volume`.
        overlap
            ``"error"`` (default) refuses overlapping regions; ``"smallest"`` lets
            the region with fewer pixels win where regions overlap (of two the
            same size, the later in :attr:`segments`).

        Raises
        ------
        DecodingError
            Regions overlap and ``overlap`` is ``"error"``, or region numbers are
            not 1 to 65535.
        GridMismatchError
            As :meth:`stacked_volume`.
        InvalidAttributeError
            An unknown ``overlap`` policy.
        """
        numbers = self._chosen(None)
        return paint_label_map(
            source.geometry,
            numbers,
            self._region_slices(source, numbers),
            overlap=overlap,
            what="region",
            path=self.source,
            attribute="GraphicObjectSequence",
        )
