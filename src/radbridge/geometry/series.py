"""Build a :class:`~radbridge.geometry.volume.Volume` from DICOM image data sets.

Two kinds of input are understood:

- several single-frame instances of one series (CT, MR, PET, ...), in any order;
- one multi-frame instance with functional groups (Enhanced CT/MR/PET, Legacy
  Converted Enhanced images).

:func:`plan_series` orders the planes from the headers alone; :func:`volume_from_plan`
then decodes the planned slices through the pixel layer
(:func:`radbridge.pixels.read_planes`: compressed slices in parallel).
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

from radbridge.attributes import first_item, floats_value, int_value
from radbridge.errors import (
    DecodingError,
    InvalidAttributeError,
    MissingAttributeError,
    MixedSeriesError,
    RadbridgeError,
    UnsupportedObjectError,
)
from radbridge.geometry.stack import PlaneInfo, StackPlan, plan_stack
from radbridge.geometry.volume import SliceRef, Volume

__all__ = [
    "SeriesPlan",
    "plan_series",
    "planes_from_dataset",
    "volume_from_datasets",
    "volume_from_plan",
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

    @property
    def slice_locations(self) -> list[tuple[int, int | None]]:
        """Return ``(data set index, frame index or None)`` of each slice, in slice order."""
        return [self.locations[i] for i in self.stack.order]


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
    ref = SliceRef(sop_class, sop_instance, None)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        if frames > 1:
            raise UnsupportedObjectError(
                f"multi-frame image with {frames} frames but no functional groups, so frame "
                "positions are unknown",
                path=name,
                attribute="PerFrameFunctionalGroupsSequence",
                hint="convert it to an enhanced multi-frame or to single frames first",
            )
        return [_plane(name, ref, rows, columns, ds, ds, ds)]
    positions = _frame_groups(ds, "PlanePositionSequence", frames)
    orientations = _frame_groups(ds, "PlaneOrientationSequence", frames)
    measures = _frame_groups(ds, "PixelMeasuresSequence", frames)
    return [
        _plane(
            f"{name} [frame {index + 1}]",
            SliceRef(sop_class, sop_instance, index + 1),
            rows,
            columns,
            positions[index],
            orientations[index],
            measures[index],
        )
        for index in range(frames)
    ]


def _plane(
    name: str,
    ref: SliceRef,
    rows: int,
    columns: int,
    position: Dataset | None,
    orientation: Dataset | None,
    measures: Dataset | None,
) -> PlaneInfo:
    """One plane from the items (or the data set) holding its position, orientation, measures."""
    return PlaneInfo(
        source=name,
        ref=ref,
        rows=rows,
        columns=columns,
        position=_check_values(position, name, "ImagePositionPatient", 3) if position else None,
        orientation=(
            _check_values(orientation, name, "ImageOrientationPatient", 6) if orientation else None
        ),
        pixel_spacing=_check_values(measures, name, "PixelSpacing", 2) if measures else None,
        slice_thickness=_optional_float(measures.get("SliceThickness")) if measures else None,
        spacing_between_slices=(
            _optional_float(measures.get("SpacingBetweenSlices")) if measures else None
        ),
    )


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


def _check_pixels(ds: Dataset, name: str) -> None:
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise MissingAttributeError(
            "image has no pixel data",
            path=name,
            attribute="PixelData",
            hint="the file may be a header-only copy; fetch the full instance",
        )


def _decode(
    datasets: Sequence[Dataset],
    planes: list[tuple[int, int]],
    names: Sequence[str],
    workers: int | None,
) -> NDArray[Any]:
    """Decode the planes ``(data set index, frame)`` through the pixel layer."""
    from radbridge.pixels import read_planes

    for ds_index in sorted({ds_index for ds_index, _ in planes}):
        _check_pixels(datasets[ds_index], names[ds_index])
    try:
        return read_planes(
            [(datasets[i], frame) for i, frame in planes],
            paths=[names[i] for i, _ in planes],
            workers=workers,
        )
    except RadbridgeError:
        raise
    except Exception as exc:  # codecs raise many types for damaged or odd pixel data
        first = datasets[planes[0][0]]
        syntax = getattr(getattr(first, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise DecodingError(
            f"pixel data cannot be decoded ({type(exc).__name__}: {exc})",
            path=names[planes[0][0]],
            attribute=f"PixelData (transfer syntax {syntax})",
            hint="the file may be truncated, or its compression needs a codec that is not "
            "installed (pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls)",
        ) from exc


def _rescale_pair(item: Dataset | None, name: str) -> tuple[float, float]:
    """Return the Modality LUT's slope and intercept; absent ones are the identity.

    Raises
    ------
    InvalidAttributeError
        Either holds several values (both are VM 1), or one that is not a finite number.
    """
    if item is None:
        return 1.0, 0.0
    slope = floats_value(item, "RescaleSlope", 1, source=name)
    intercept = floats_value(item, "RescaleIntercept", 1, source=name)
    return slope[0] if slope else 1.0, intercept[0] if intercept else 0.0


def _rescale_params(ds: Dataset, frame: int | None, name: str) -> tuple[float, float]:
    if frame is None:
        return _rescale_pair(ds, name)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    item = _frame_groups(ds, "PixelValueTransformationSequence", frames)[frame]
    return _rescale_pair(item, f"{name} [frame {frame + 1}]")


def _apply_rescale(
    array: NDArray[Any], slopes: NDArray[np.float64], intercepts: NDArray[np.float64]
) -> NDArray[Any]:
    """Apply one slope and intercept per slice in a type that holds every result.

    Integer pixels with slope 1 and whole intercepts stay integers: the smallest of
    ``int16``, ``int32`` and ``int64`` that holds the lowest and highest result (32-bit
    pixels near their limits need ``int64``). Otherwise the result is the float type
    that holds the stored values exactly: ``float32`` for 8- and 16-bit pixels,
    ``float64`` for 32-bit ones.
    """
    integral = (
        np.issubdtype(array.dtype, np.integer)
        and np.all(slopes == 1.0)
        and np.all(intercepts == np.round(intercepts))
    )
    dtype = _integer_type(array, intercepts) if integral else None
    if dtype is not None:
        out = array.astype(dtype)
        out += intercepts.astype(dtype)[:, None, None]
        return out
    floating = np.result_type(array.dtype, np.float32)
    result = array.astype(floating)
    result *= slopes.astype(floating)[:, None, None]
    result += intercepts.astype(floating)[:, None, None]
    return result


def _integer_type(
    array: NDArray[Any], intercepts: NDArray[np.float64]
) -> type[np.signedinteger[Any]] | None:
    """Return the smallest signed integer type holding ``array + intercept`` (None: none)."""
    low = int(array.min()) + int(intercepts.min())  # Python integers: exact, no wrap-around
    high = int(array.max()) + int(intercepts.max())
    for dtype in (np.int16, np.int32, np.int64):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return dtype
    return None


def volume_from_datasets(
    datasets: Sequence[Dataset],
    *,
    rescale: bool = False,
    sources: Sequence[str] | None = None,
    spacing_tolerance: float = 0.01,
    allow_nonuniform_spacing: bool = False,
    workers: int | None = None,
) -> Volume:
    """Read the pixels of one series into a :class:`Volume`.

    Parameters
    ----------
    datasets
        Single-frame instances of one series in any order, or one multi-frame
        instance with functional groups.
    rescale
        Apply the Modality LUT (``RescaleSlope``/``RescaleIntercept``, per slice
        or per frame). Integer results stay integers (``int16``, ``int32`` or
        ``int64``, whichever holds them); otherwise the result is ``float32``
        (``float64`` for 32-bit pixels). A slope or intercept that is not one
        finite number raises :class:`~radbridge.errors.InvalidAttributeError`.
    sources
        Names for messages, one per data set (defaults to file names).
    spacing_tolerance, allow_nonuniform_spacing
        See :func:`radbridge.geometry.stack.plan_stack`.
    workers
        Processes for decoding compressed slices (see :func:`radbridge.pixels.read_planes`).

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
    return volume_from_plan(plan, datasets, rescale=rescale, sources=sources, workers=workers)


def volume_from_plan(
    plan: SeriesPlan,
    datasets: Sequence[Dataset],
    *,
    rescale: bool = False,
    sources: Sequence[str] | None = None,
    workers: int | None = None,
) -> Volume:
    """Decode the slices ``plan`` ordered (from the same data sets, with pixel data).

    The plan may come from the headers alone (:func:`plan_series` on data sets read
    without pixels); ``datasets`` are then the same instances read in full, in the
    same order. See :func:`volume_from_datasets` for ``rescale``.
    """
    names = [_source_name(ds, sources[i] if sources else None) for i, ds in enumerate(datasets)]
    planes = [(ds_index, frame or 0) for ds_index, frame in plan.slice_locations]
    array = _decode(datasets, planes, names, workers)
    if rescale:
        pairs = [_rescale_params(datasets[i], frame, names[i]) for i, frame in plan.slice_locations]
        slopes = np.array([slope for slope, _ in pairs])
        intercepts = np.array([intercept for _, intercept in pairs])
        array = _apply_rescale(array, slopes, intercepts)
    return Volume(
        array,
        plan.stack.geometry.affine,
        plan.stack.geometry.frame_of_reference_uid,
        plan.slice_refs,
        plan.stack.acquired_positions,
    )
