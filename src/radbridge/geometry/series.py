"""Build a :class:`~radbridge.geometry.volume.Volume` from DICOM image data sets.

Two kinds of input are understood:

- several single-frame instances of one series (CT, MR, PET, ...), in any order;
- one multi-frame instance with functional groups (Enhanced CT/MR/PET, Legacy
  Converted Enhanced images).

Reading folders lives in :mod:`radbridge.io`; this module takes data sets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.attributes import first_item, int_value
from radbridge.errors import (
    DecodingError,
    InvalidAttributeError,
    MissingAttributeError,
    MixedSeriesError,
    UnsupportedObjectError,
)
from radbridge.geometry.stack import PlaneInfo, StackPlan, plan_stack
from radbridge.geometry.volume import SliceRef, Volume

__all__ = [
    "SeriesPlan",
    "plan_series",
    "planes_from_dataset",
    "volume_from_datasets",
]

log = logging.getLogger(__name__)

_SLIDE_MICROSCOPY = "1.2.840.10008.5.1.4.1.1.77.1.6"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True, eq=False)
class SeriesPlan:
    """Where each slice of a volume comes from, before any pixel is decoded.

    Attributes
    ----------
    stack
        Slice order and grid.
    planes
        Plane descriptions in input order (``stack.order`` indexes them).
    locations
        For each input plane, ``(dataset index, frame index or None)``.
    """

    stack: StackPlan
    planes: tuple[PlaneInfo, ...]
    locations: tuple[tuple[int, int | None], ...]

    @property
    def slice_refs(self) -> tuple[SliceRef, ...]:
        """Source instance (and frame) of each slice, in slice order."""
        return tuple(self.planes[i].ref for i in self.stack.order)


def _source_name(ds: Dataset, given: str | None) -> str:
    if given:
        return given
    filename = getattr(ds, "filename", None)
    if isinstance(filename, str) and filename:
        return filename
    return f"<dataset {ds.get('SOPInstanceUID', '?')}>"


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        values = tuple(float(v) for v in (value if isinstance(value, Sequence | list) else [value]))
    except (TypeError, ValueError):
        return None
    if len(values) != count or not all(np.isfinite(values)):
        return None
    return values


def _optional_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def _check_values(ds: Dataset, source: str, keyword: str, count: int) -> tuple[float, ...] | None:
    """Return a numeric multi-value attribute, ``None`` if absent, raise if garbled."""
    raw = ds.get(keyword)
    if raw is None or raw == "" or (isinstance(raw, Sequence) and len(raw) == 0):
        return None
    values = _floats(raw, count)
    if values is None:
        raise InvalidAttributeError(
            f"expected {count} finite numbers, found {raw!r}",
            path=source,
            attribute=keyword,
            hint="the file is damaged or was written by a faulty converter",
        )
    return values


def _frame_groups(ds: Dataset, keyword: str, frames: int) -> list[Dataset | None]:
    shared = first_item(first_item(ds, "SharedFunctionalGroupsSequence"), keyword)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    out: list[Dataset | None] = []
    for index in range(frames):
        own = first_item(per_frame[index], keyword) if index < len(per_frame) else None
        out.append(own if own is not None else shared)
    return out


def planes_from_dataset(ds: Dataset, source: str | None = None) -> list[PlaneInfo]:
    """Describe the image planes of one instance (one per frame).

    Parameters
    ----------
    ds
        A single-frame image, or a multi-frame image with functional groups.
    source
        Name for messages (defaults to the data set's file name).

    Returns
    -------
    list of PlaneInfo
    """
    name = _source_name(ds, source)
    sop_class = str(ds.get("SOPClassUID", ""))
    sop_instance = str(ds.get("SOPInstanceUID", ""))
    if sop_class == _SLIDE_MICROSCOPY:
        raise UnsupportedObjectError(
            "slide microscopy images use slide coordinates, not patient coordinates",
            path=name,
            attribute="SOPClassUID",
            hint="radbridge volumes are patient-space (LPS); read tiles with pydicom directly",
        )
    if int_value(ds, "SamplesPerPixel", 1, source=name) != 1:
        raise UnsupportedObjectError(
            f"{ds.SamplesPerPixel} samples per pixel (colour) cannot form a scalar volume",
            path=name,
            attribute="SamplesPerPixel",
            hint="only greyscale images (CT, MR, PET, ...) are read as volumes",
        )
    rows = int_value(ds, "Rows", 0, source=name)
    columns = int_value(ds, "Columns", 0, source=name)
    if rows < 1 or columns < 1:
        raise MissingAttributeError(
            "image has no matrix size",
            path=name,
            attribute="Rows/Columns",
            hint="the file is not an image or is damaged",
        )
    frames = int_value(ds, "NumberOfFrames", 1, source=name)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        if frames > 1:
            raise UnsupportedObjectError(
                f"multi-frame image with {frames} frames but no functional groups, so frame "
                "positions are unknown",
                path=name,
                attribute="PerFrameFunctionalGroupsSequence",
                hint="convert it to an enhanced multi-frame or to single frames first",
            )
        return [
            PlaneInfo(
                source=name,
                ref=SliceRef(sop_class, sop_instance, None),
                rows=rows,
                columns=columns,
                position=_check_values(ds, name, "ImagePositionPatient", 3),
                orientation=_check_values(ds, name, "ImageOrientationPatient", 6),
                pixel_spacing=_check_values(ds, name, "PixelSpacing", 2),
                slice_thickness=_optional_float(ds.get("SliceThickness")),
                spacing_between_slices=_optional_float(ds.get("SpacingBetweenSlices")),
            )
        ]
    positions = _frame_groups(ds, "PlanePositionSequence", frames)
    orientations = _frame_groups(ds, "PlaneOrientationSequence", frames)
    measures = _frame_groups(ds, "PixelMeasuresSequence", frames)
    planes = []
    for index in range(frames):
        label = f"{name} [frame {index + 1}]"
        pos, ori, mea = positions[index], orientations[index], measures[index]
        planes.append(
            PlaneInfo(
                source=label,
                ref=SliceRef(sop_class, sop_instance, index + 1),
                rows=rows,
                columns=columns,
                position=(_check_values(pos, label, "ImagePositionPatient", 3) if pos else None),
                orientation=(
                    _check_values(ori, label, "ImageOrientationPatient", 6) if ori else None
                ),
                pixel_spacing=(_check_values(mea, label, "PixelSpacing", 2) if mea else None),
                slice_thickness=_optional_float(mea.get("SliceThickness")) if mea else None,
                spacing_between_slices=(
                    _optional_float(mea.get("SpacingBetweenSlices")) if mea else None
                ),
            )
        )
    return planes


def _check_same(
    datasets: Sequence[Dataset], names: Sequence[str], keyword: str, *, required: bool
) -> str | None:
    values = [str(ds.get(keyword, "") or "") for ds in datasets]
    distinct = sorted(set(values))
    if len(distinct) > 1:
        other = next(i for i, v in enumerate(values) if v != values[0])
        raise MixedSeriesError(
            f"the input mixes {len(distinct)} different values ({names[0]} and this file differ)",
            path=names[other],
            attribute=keyword,
            hint="select one series, e.g. with series_instance_uid= (CLI: --series UID)",
        )
    value = distinct[0] if distinct else ""
    if not value and required:
        raise MissingAttributeError(
            "image has no value",
            path=names[0],
            attribute=keyword,
            hint="the file is damaged or not a patient-space image",
        )
    return value or None


def plan_series(
    datasets: Sequence[Dataset],
    *,
    sources: Sequence[str] | None = None,
    spacing_tolerance: float = 0.01,
    allow_nonuniform_spacing: bool = False,
) -> SeriesPlan:
    """Check and order the planes of a series without decoding pixels.

    Parameters
    ----------
    datasets
        Single-frame instances of one series, or exactly one multi-frame instance.
    sources
        Names for messages, one per data set (defaults to file names).
    spacing_tolerance, allow_nonuniform_spacing
        See :func:`radbridge.geometry.stack.plan_stack`.

    Returns
    -------
    SeriesPlan
    """
    if not datasets:
        raise MixedSeriesError("no images were given", attribute="datasets")
    names = [_source_name(ds, sources[i] if sources else None) for i, ds in enumerate(datasets)]
    _check_same(datasets, names, "SeriesInstanceUID", required=False)
    frame_of_reference = _check_same(datasets, names, "FrameOfReferenceUID", required=False)
    if frame_of_reference is None:
        log.warning("series has no FrameOfReferenceUID; the volume will have none")
    planes: list[PlaneInfo] = []
    locations: list[tuple[int, int | None]] = []
    for index, ds in enumerate(datasets):
        found = planes_from_dataset(ds, names[index])
        multi = "PerFrameFunctionalGroupsSequence" in ds
        planes.extend(found)
        locations.extend((index, frame if multi else None) for frame in range(len(found)))
    stack = plan_stack(
        planes,
        frame_of_reference_uid=frame_of_reference,
        spacing_tolerance=spacing_tolerance,
        allow_nonuniform_spacing=allow_nonuniform_spacing,
    )
    return SeriesPlan(stack, tuple(planes), tuple(locations))


def _pixels(ds: Dataset, name: str) -> NDArray[Any]:
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise MissingAttributeError(
            "image has no pixel data",
            path=name,
            attribute="PixelData",
            hint="the file may be a header-only copy; fetch the full instance",
        )
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises many types for damaged or odd pixel data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DecodingError(
            f"pixel data cannot be decoded ({type(exc).__name__}: {exc})",
            path=name,
            attribute=f"PixelData (transfer syntax {syntax})",
            hint="the file may be truncated, or its compression needs a codec that is not "
            "installed (pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls)",
        ) from exc


def _rescale_pair(item: Dataset | None) -> tuple[float, float]:
    if item is None:
        return 1.0, 0.0
    slope = item.get("RescaleSlope")
    intercept = item.get("RescaleIntercept")
    return (
        float(slope) if slope not in (None, "") else 1.0,
        float(intercept) if intercept not in (None, "") else 0.0,
    )


def _rescale_params(ds: Dataset, frame: int | None) -> tuple[float, float]:
    if frame is None:
        return _rescale_pair(ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    item = _frame_groups(ds, "PixelValueTransformationSequence", frames)[frame]
    return _rescale_pair(item)


def _apply_rescale(
    array: NDArray[Any], slopes: NDArray[np.float64], intercepts: NDArray[np.float64]
) -> NDArray[Any]:
    integral = (
        np.issubdtype(array.dtype, np.integer)
        and np.all(slopes == 1.0)
        and np.all(intercepts == np.round(intercepts))
    )
    if integral:
        low = float(array.min()) + float(intercepts.min())
        high = float(array.max()) + float(intercepts.max())
        dtype: type[np.signedinteger[Any]] = np.int16
        if low < np.iinfo(np.int16).min or high > np.iinfo(np.int16).max:
            dtype = np.int32
        out = array.astype(dtype)
        out += intercepts.astype(dtype)[:, None, None]
        return out
    result = array.astype(np.float32)
    result *= slopes.astype(np.float32)[:, None, None]
    result += intercepts.astype(np.float32)[:, None, None]
    return result


def volume_from_datasets(
    datasets: Sequence[Dataset],
    *,
    rescale: bool = False,
    sources: Sequence[str] | None = None,
    spacing_tolerance: float = 0.01,
    allow_nonuniform_spacing: bool = False,
) -> Volume:
    """Read the pixels of one series into a :class:`Volume`.

    Parameters
    ----------
    datasets
        Single-frame instances of one series in any order, or one multi-frame
        instance with functional groups.
    rescale
        Apply the Modality LUT (``RescaleSlope``/``RescaleIntercept``, per slice
        or per frame). Integer results stay integers (``int16`` or ``int32``);
        otherwise the result is ``float32``.
    sources
        Names for messages, one per data set (defaults to file names).
    spacing_tolerance, allow_nonuniform_spacing
        See :func:`radbridge.geometry.stack.plan_stack`.

    Returns
    -------
    Volume
        ``array[slice, row, column]`` ordered along the slice normal.

    Examples
    --------
    >>> from pydicom import examples
    >>> vol = volume_from_datasets([examples.ct], rescale=True)
    >>> vol.shape, vol.array.dtype
    ((1, 128, 128), dtype('int16'))
    """
    plan = plan_series(
        datasets,
        sources=sources,
        spacing_tolerance=spacing_tolerance,
        allow_nonuniform_spacing=allow_nonuniform_spacing,
    )
    names = [_source_name(ds, sources[i] if sources else None) for i, ds in enumerate(datasets)]
    decoded: dict[int, NDArray[Any]] = {}
    slices: list[NDArray[Any]] = []
    slopes: list[float] = []
    intercepts: list[float] = []
    for plane_index in plan.stack.order:
        ds_index, frame = plan.locations[plane_index]
        if ds_index not in decoded:
            decoded[ds_index] = _pixels(datasets[ds_index], names[ds_index])
        pixels = decoded[ds_index]
        image = pixels[frame] if frame is not None and pixels.ndim == 3 else pixels
        if image.shape != plan.stack.geometry.shape[1:]:
            raise InvalidAttributeError(
                f"pixel data has shape {image.shape}, expected "
                f"{plan.stack.geometry.shape[1:]} from Rows/Columns",
                path=names[ds_index],
                attribute="PixelData",
                hint="the file is damaged",
            )
        slices.append(image)
        if rescale:
            slope, intercept = _rescale_params(datasets[ds_index], frame)
            slopes.append(slope)
            intercepts.append(intercept)
    array = np.stack(slices)
    if rescale:
        array = _apply_rescale(array, np.array(slopes), np.array(intercepts))
    return Volume(
        array,
        plan.stack.geometry.affine,
        plan.stack.geometry.frame_of_reference_uid,
        plan.slice_refs,
        plan.stack.acquired_positions,
    )
