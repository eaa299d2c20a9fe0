r"""Read RT Structure Sets: ROIs, their contours, and masks on any grid of the same frame.

The reader is tolerant. It reads what real files contain and says what it
recovered from, once per file or per ROI (Python warnings):

- no Frame of Reference Module (files before 2014 did not have one): the
  frame comes from the Referenced Frame of Reference Sequence or the ROIs;
- a frame of reference that differs from the target's while the contours
  reference the target's images (some exporters invent a new UID): the image
  references are trusted;
- SOP Instance UID equal to the Series Instance UID: read anyway;
- contours that reference no image: placed by their coordinates;
- points slightly off the slice plane: projected onto it within a tolerance
  (default a quarter of the slice spacing); contours further away are left out;
- ROIs missing from one of the three ROI sequences, point counts that do not
  match, contours with fewer than three points;
- ROIs that share a name (compared without case and surrounding spaces): all are
  kept; :meth:`StructureSet.roi` asks for such ROIs by number.

Holes: all closed contours of one ROI on one image are combined with the
even-odd rule (CLOSEDPLANAR_XOR semantics; nested CLOSED_PLANAR contours read
as holes, keyhole contours fill correctly).

Examples
--------
>>> import numpy as np
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series
>>> from radbridge.iods.rtstruct import encode_rtstruct
>>> ph = generate_phantom(slices=6, size=32)
>>> src = Series.from_volume(ph.hu)
>>> liver = ph.labels.array == 5
>>> rs = read_rtstruct(encode_rtstruct(liver.astype(np.uint8), src, {1: "Liver"}))
>>> [(roi.number, roi.name) for roi in rs.rois.values()]
[(1, 'Liver')]
>>> bool(np.array_equal(rs.mask("Liver", src).array, liver))
True
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from radbridge.errors import (
    GridMismatchError,
    InvalidAttributeError,
)
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.common import (
    ReadObject,
    RegionSlices,
    StackedMasks,
    paint_label_map,
    paint_regions,
)
from radbridge.iods.multiframe.fast_read import DicomFile
from radbridge.iods.raster import fill_polygons
from radbridge.iods.rtstruct.placement import Contour, PlacementReport, Target, place_contours
from radbridge.iods.rtstruct.types import (
    RT_STRUCTURE_SET_STORAGE,
    describe_same_names,
    roi_name_key,
    same_names,
)
from radbridge.iods.source import Series

__all__ = ["ROI", "StructureSet", "read_rtstruct"]

log = logging.getLogger(__name__)

_CONTOUR_DATA = 0x30060050
TargetLike = VolumeGeometry | Series | Volume


@dataclass(frozen=True, eq=False)
class ROI:
    """One ROI as read: identification, display, interpretation and contours.

    Values are kept as written (an interpreted type outside the Defined Terms,
    or empty, stays as it is); see :meth:`StructureSet.description` for a
    validated :class:`~radbridge.iods.rtstruct.ROIDescription`.
    """

    number: int
    name: str
    frame_of_reference_uid: str | None
    generation_algorithm: str
    interpreted_type: str
    display_rgb: tuple[int, int, int] | None
    contours: tuple[Contour, ...]
    structure_item: Dataset
    observation_item: Dataset | None
    description: str | None = None


def read_rtstruct(file: DicomFile) -> StructureSet:
    """Open an RT Structure Set from a path, encoded bytes, or a pydicom data set.

    Raises
    ------
    NotDicomError
        The input is not DICOM.
    UnsupportedObjectError
        It is DICOM but not an RT Structure Set.
    """
    from radbridge.iods.multiframe.fast_read import open_dataset

    # Contour Data stays raw: _points parses it (and skips damaged contours) itself.
    ds, name = open_dataset(file, raw_tags=(), unchecked=(_CONTOUR_DATA,))
    return StructureSet(ds, source=name)


def _points(item: Dataset, where: str) -> NDArray[np.float64] | None:
    """Contour Data as ``(n, 3)``, parsed from the raw bytes when possible."""
    element = item.get_item(_CONTOUR_DATA) if _CONTOUR_DATA in item else None
    if element is None:
        return None
    try:
        if isinstance(element, RawDataElement) and isinstance(element.value, bytes):
            text = element.value.rstrip(b"\x00 ")
            values = np.array(text.split(b"\\")).astype(np.float64) if text else np.zeros(0)
        else:
            raw = element.value
            values = np.asarray([raw] if np.isscalar(raw) else list(raw), dtype=np.float64)
    except (ValueError, TypeError):
        warnings.warn(f"{where}: Contour Data holds values that are not numbers", stacklevel=4)
        return None
    if values.size % 3 or not np.all(np.isfinite(values)):
        warnings.warn(
            f"{where}: Contour Data holds {values.size} values (not x, y, z triplets)",
            stacklevel=4,
        )
        return None
    return values.reshape(-1, 3)


def _contour(item: Dataset, where: str, counts: dict[str, int]) -> Contour | None:
    points = _points(item, where)
    if points is None:
        return None
    declared = item.get("NumberOfContourPoints")
    if declared not in (None, "") and _integer(declared) != len(points):
        counts["point_count"] += 1  # a damaged count is a wrong count (the points rule)
    images = item.get("ContourImageSequence") or []
    uid = str(images[0].get("ReferencedSOPInstanceUID", "") or "") if images else ""
    frame = images[0].get("ReferencedFrameNumber") if images else None
    return Contour(
        points,
        str(item.get("ContourGeometricType", "") or "CLOSED_PLANAR").strip().upper(),
        uid or None,
        _integer(frame) if frame not in (None, "") else None,
    )


def _integer(value: Any) -> int | None:
    """``value`` as an integer, or ``None`` when a damaged file holds no number there."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class StructureSet(ReadObject):
    """An RT Structure Set read for analysis (``dataset`` and ``source`` as :class:`ReadObject`).

    Attributes
    ----------
    rois
        ROIs by ROI Number, in the order of the Structure Set ROI Sequence.
    frame_of_reference_uid
        The frame of reference the contours are in (from the Frame of
        Reference Module, else the Referenced Frame of Reference Sequence,
        else the ROIs), or ``None``.
    """

    SOP_CLASSES = (RT_STRUCTURE_SET_STORAGE,)
    WHAT = "an RT Structure Set"
    HINT = "radbridge reads RT Structure Set Storage here"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        super().__init__(ds, source=source)
        self._where = source or "RTSTRUCT"
        if ds.get("SOPInstanceUID") and ds.get("SOPInstanceUID") == ds.get("SeriesInstanceUID"):
            self._warn(
                "SOP Instance UID equals Series Instance UID (UIDs must differ); reading anyway"
            )
        self.frame_of_reference_uid = self._frame_of_reference()
        self.rois: dict[int, ROI] = self._read_rois()

    def _warn(self, message: str) -> None:
        warnings.warn(f"{self._where}: {message}", stacklevel=3)

    # -- header -------------------------------------------------------------

    def _frame_of_reference(self) -> str | None:
        own = self.dataset.get("FrameOfReferenceUID")
        if own:
            return str(own)
        referenced = [
            str(item.FrameOfReferenceUID)
            for item in self.dataset.get("ReferencedFrameOfReferenceSequence", []) or []
            if item.get("FrameOfReferenceUID")
        ]
        from_rois = [
            str(item.ReferencedFrameOfReferenceUID)
            for item in self.dataset.get("StructureSetROISequence", []) or []
            if item.get("ReferencedFrameOfReferenceUID")
        ]
        found = referenced[0] if referenced else (from_rois[0] if from_rois else None)
        self._warn(
            "no Frame of Reference Module (older files omit it); using "
            + (f"frame of reference {found} named by the structure set" if found else "none")
        )
        if len(set(referenced + from_rois)) > 1:
            self._warn("ROIs lie in several frames of reference; the first is used")
        return found

    def _referenced_series(self) -> Iterator[Dataset]:
        """Yield each RT Referenced Series item of the Referenced Frame of Reference Sequence."""
        for frame in self.dataset.get("ReferencedFrameOfReferenceSequence", []) or []:
            for study in frame.get("RTReferencedStudySequence", []) or []:
                yield from study.get("RTReferencedSeriesSequence", []) or []

    @property
    def referenced_series_uids(self) -> tuple[str, ...]:
        """Series named in the Referenced Frame of Reference Sequence."""
        uids = (series.get("SeriesInstanceUID") for series in self._referenced_series())
        return tuple(dict.fromkeys(str(uid) for uid in uids if uid))

    @property
    def referenced_images(self) -> tuple[str, ...]:
        """SOP Instance UIDs of the images the structure set was defined on."""
        uids = (
            image.get("ReferencedSOPInstanceUID")
            for series in self._referenced_series()
            for image in series.get("ContourImageSequence", []) or []
        )
        return tuple(dict.fromkeys(str(uid) for uid in uids if uid))

    # -- ROIs ---------------------------------------------------------------

    def _read_rois(self) -> dict[int, ROI]:
        ds = self.dataset
        structures = _by_number(ds.get("StructureSetROISequence"), "ROINumber")
        contours = _by_number(ds.get("ROIContourSequence"), "ReferencedROINumber")
        observations = _by_number(ds.get("RTROIObservationsSequence"), "ReferencedROINumber")
        numbers = list(dict.fromkeys([*structures, *contours]))
        missing = [n for n in numbers if n not in structures]
        if missing:
            self._warn(f"ROIs {missing} have contours but no Structure Set ROI item")
        counts = {"point_count": 0}
        out: dict[int, ROI] = {}
        for number in numbers:
            structure = structures.get(number, Dataset())
            contour_item = contours.get(number, Dataset())
            observation = observations.get(number)
            where = f"{self._where} ROI {number}"
            parsed = [
                c
                for c in (
                    _contour(item, where, counts)
                    for item in contour_item.get("ContourSequence", []) or []
                )
                if c is not None
            ]
            out[number] = ROI(
                number=number,
                name=str(structure.get("ROIName", "") or f"ROI {number}"),
                frame_of_reference_uid=str(structure.get("ReferencedFrameOfReferenceUID", ""))
                or self.frame_of_reference_uid,
                generation_algorithm=str(structure.get("ROIGenerationAlgorithm", "") or ""),
                interpreted_type=str(observation.get("RTROIInterpretedType", "") or "")
                if observation is not None
                else "",
                display_rgb=_colour(contour_item),
                contours=tuple(parsed),
                structure_item=structure,
                observation_item=observation,
                description=str(structure.ROIDescription)
                if structure.get("ROIDescription")
                else None,
            )
        if counts["point_count"]:
            self._warn(
                f"{counts['point_count']} contours declare a Number of Contour Points that "
                "differs from their Contour Data; the data was used"
            )
        groups = same_names([(roi.number, roi.name) for roi in out.values()])
        if groups:
            self._warn(
                f"{describe_same_names(groups)} have the same ROI Name (compared without case "
                "and surrounding spaces); all are read, ask for them by ROI number"
            )
        return out

    def roi(self, key: int | str) -> ROI:
        """Return an ROI by number or by name (names compare without case and surrounding spaces).

        Raises
        ------
        InvalidAttributeError
            No such ROI (the message lists the ROIs there are), or several ROIs
            have that name (a file from another system; ask by number).
        """
        if isinstance(key, int) and key in self.rois:
            return self.rois[key]
        wanted = roi_name_key(str(key))
        found = [roi for roi in self.rois.values() if roi_name_key(roi.name) == wanted]
        if len(found) == 1:
            return found[0]
        if found:
            named = ", ".join(f"{r.number} ({r.name!r})" for r in found)
            raise InvalidAttributeError(
                f"ROI name {key!r} is ambiguous: ROIs {named} have it",
                path=self.source,
                attribute="ROIName",
                hint=f"ask for the ROI by number ({found[0].number}, ...)",
            )
        names = ", ".join(f"{r.number} {r.name!r}" for r in self.rois.values())
        raise InvalidAttributeError(
            f"no ROI {key!r}", path=self.source, attribute="ROIName", hint=f"ROIs: {names}"
        )

    # -- masks --------------------------------------------------------------

    def _target(self, target: TargetLike) -> Target:
        resolved = Target.of(target)
        own = self.frame_of_reference_uid
        theirs = resolved.geometry.frame_of_reference_uid
        if own and theirs and own != theirs:
            referenced = set(self.referenced_images) | {
                c.referenced_sop_instance_uid
                for roi in self.rois.values()
                for c in roi.contours
                if c.referenced_sop_instance_uid
            }
            known = {r.sop_instance_uid for r in resolved.slice_refs}
            if not referenced & known:
                raise GridMismatchError(
                    f"the structure set is in frame of reference {own}, the target in {theirs}, "
                    "and it references none of the target's images",
                    path=self.source,
                    attribute="FrameOfReferenceUID",
                    hint="read it with the series it was drawn on, or register that series to "
                    "the target first",
                )
            self._warn(
                f"frame of reference {own} differs from the target's ({theirs}), but the "
                "contours reference the target's images; trusting the image references"
            )
        return resolved

    def mask(
        self, roi: int | str, target: TargetLike, *, tolerance_mm: float | None = None
    ) -> Volume:
        """Rasterise one ROI on ``target`` (pixel centres inside, even-odd rule).

        Parameters
        ----------
        roi
            ROI number or name.
        target
            The referenced series (:class:`Series`), a ``Volume`` or a
            ``VolumeGeometry`` in the same frame of reference.
        tolerance_mm
            How far off a slice plane a contour may lie and still be placed on
            it (default: a quarter of the slice spacing).

        Raises
        ------
        InvalidAttributeError
            No such ROI, or ``tolerance_mm`` is negative or NaN.
        GridMismatchError
            The ROI lies in another frame of reference than the target's and
            references none of its images.
        """
        resolved = self._target(target)
        return Volume.from_geometry(
            self._fill(self.roi(roi), resolved, tolerance_mm), resolved.geometry
        )

    def _check_roi_frame(self, roi: ROI, target: Target) -> None:
        """Refuse an ROI defined in a third frame of reference unless it names the target's images.

        Each ROI's Referenced Frame of Reference UID names the frame its contours are in
        (PS3.3 C.8.8.5); the structure set's own frame was checked by :meth:`_target`.
        """
        frame = roi.frame_of_reference_uid
        theirs = target.geometry.frame_of_reference_uid
        if not frame or not theirs or frame in (theirs, self.frame_of_reference_uid):
            return
        known = {r.sop_instance_uid for r in target.slice_refs}
        if not any(c.referenced_sop_instance_uid in known for c in roi.contours):
            raise GridMismatchError(
                f"ROI {roi.number} ({roi.name!r}) is defined in frame of reference {frame}, "
                f"the target in {theirs}, and its contours reference none of the target's images",
                path=self.source,
                attribute="ReferencedFrameOfReferenceUID",
                hint="read this ROI with the series of its own frame, or leave it out "
                "(rois=[...] of stacked_volume)",
            )
        self._warn(
            f"ROI {roi.number} ({roi.name!r}) is defined in frame of reference {frame}, not the "
            f"target's ({theirs}), but its contours reference the target's images; trusting them"
        )

    def _placed(
        self, roi: ROI, target: Target, tolerance_mm: float | None
    ) -> dict[int, list[NDArray[np.float64]]]:
        """Place the ROI's polygons on ``target``'s slices; warn about what was corrected."""
        self._check_roi_frame(roi, target)
        report = PlacementReport()
        placed = place_contours(roi.contours, target, tolerance_mm=tolerance_mm, report=report)
        tolerance = tolerance_mm if tolerance_mm is not None else 0.25 * target.slice_spacing
        for message in report.messages(max(tolerance, 0.01)):
            self._warn(f"ROI {roi.number} ({roi.name!r}): {message}")
        if report.no_image_reference and target.slice_refs:
            log.info(
                "ROI %d: %d contours reference no image; placed by coordinates",
                roi.number,
                report.no_image_reference,
            )
        return placed

    def _fill(self, roi: ROI, target: Target, tolerance_mm: float | None) -> NDArray[np.bool_]:
        out = np.zeros(target.geometry.shape, bool)
        for k, plane in _planes(self._placed(roi, target, tolerance_mm), target):
            out[k] = plane
        return out

    def stacked_volume(
        self,
        target: TargetLike,
        *,
        rois: Sequence[int | str] | None = None,
        tolerance_mm: float | None = None,
    ) -> StackedMasks:
        """Return one mask per ROI, ``[roi, slice, row, column]`` (ROIs may overlap)."""
        resolved = self._target(target)
        chosen = [self.roi(k) for k in rois] if rois is not None else list(self.rois.values())
        array = np.zeros((len(chosen), *resolved.geometry.shape), bool)
        for i, roi in enumerate(chosen):
            array[i] = self._fill(roi, resolved, tolerance_mm)
        return StackedMasks(array, resolved.geometry, tuple(r.number for r in chosen))

    def label_volume(
        self,
        target: TargetLike,
        *,
        overlap: str = "error",
        tolerance_mm: float | None = None,
    ) -> Volume:
        """Return a label map (0 background, ROI numbers elsewhere).

        The ROIs are filled one slice at a time into the label map, so memory
        is the label map plus one slice, whatever the number of ROIs (not one
        mask per ROI as :meth:`stacked_volume`).

        Parameters
        ----------
        target
            See :meth:`mask`.
        overlap
            ``"error"`` (default) refuses overlapping ROIs; ``"smallest"`` lets
            the smaller ROI win where ROIs overlap (organs inside a body
            outline keep their label; between ROIs of the same size the later
            one in the file wins).
        tolerance_mm
            See :meth:`mask`.

        Raises
        ------
        DecodingError
            ROIs overlap and ``overlap`` is ``"error"``, or ROI numbers do not
            fit 16 bits.
        InvalidAttributeError
            An unknown ``overlap`` policy.
        """
        resolved = self._target(target)
        rois = list(self.rois.values())
        return paint_label_map(
            resolved.geometry,
            tuple(roi.number for roi in rois),
            self._region_slices(rois, resolved, tolerance_mm),
            overlap=overlap,
            what="ROI",
            path=self.source,
            attribute="ROIContourSequence",
        )

    def compact_masks(
        self, target: TargetLike, *, tolerance_mm: float | None = None
    ) -> tuple[NDArray[Any], tuple[int, ...]]:
        """Return all ROIs on ``target`` in as little memory as they allow, and their numbers.

        When no two ROIs share a voxel: a label map ``[slice, row, column]`` in
        which value ``k`` is the ``k``-th ROI (in the order of :attr:`rois`),
        filled slice by slice in the memory of one label map. Otherwise the
        stacked masks ``[roi, slice, row, column]`` of :meth:`stacked_volume`.
        A Segmentation encodes either the same way (``rtstruct_to_seg``).
        """
        resolved = self._target(target)
        rois = list(self.rois.values())
        numbers = tuple(roi.number for roi in rois)
        slices = self._region_slices(rois, resolved, tolerance_mm)
        shape = resolved.geometry.shape
        labels, _, overlapping = paint_regions(
            shape, np.min_scalar_type(len(rois)), range(1, len(rois) + 1), slices
        )
        if not overlapping.any():
            return labels, numbers
        del labels
        stacked = np.zeros((len(rois), *shape), bool)
        for i in range(len(rois)):
            for k, plane in slices(i):
                stacked[i, k] = plane
        return stacked, numbers

    def _region_slices(
        self, rois: Sequence[ROI], target: Target, tolerance_mm: float | None
    ) -> RegionSlices:
        """Fill ROI ``i`` slice by slice; its contours are placed (and warned about) once."""
        placed: dict[int, dict[int, list[NDArray[np.float64]]]] = {}

        def slices(i: int) -> Iterator[tuple[int, NDArray[np.bool_]]]:
            if i not in placed:
                placed[i] = self._placed(rois[i], target, tolerance_mm)
            return _planes(placed[i], target)

        return slices


def _planes(
    placed: dict[int, list[NDArray[np.float64]]], target: Target
) -> Iterator[tuple[int, NDArray[np.bool_]]]:
    """Fill placed polygons slice by slice (even-odd rule): ``(slice index, 2-D mask)``."""
    rows, cols = target.geometry.shape[1:]
    for k, polygons in placed.items():
        yield k, fill_polygons(polygons, (rows, cols))


def _by_number(sequence: Any, keyword: str) -> dict[int, Dataset]:
    out: dict[int, Dataset] = {}
    for item in sequence or []:
        value = item.get(keyword)
        try:
            number = int(value)
        except (TypeError, ValueError):
            warnings.warn(f"an item without a usable {keyword} was skipped", stacklevel=4)
            continue
        if number in out:
            warnings.warn(f"{keyword} {number} appears twice; the first item is used", stacklevel=4)
            continue
        out[number] = item
    return out


def _colour(item: Dataset) -> tuple[int, int, int] | None:
    value = item.get("ROIDisplayColor")
    try:
        rgb = [int(v) for v in value] if value is not None else []
    except (TypeError, ValueError):
        return None
    if len(rgb) != 3:
        return None
    return (
        int(np.clip(rgb[0], 0, 255)),
        int(np.clip(rgb[1], 0, 255)),
        int(np.clip(rgb[2], 0, 255)),
    )
