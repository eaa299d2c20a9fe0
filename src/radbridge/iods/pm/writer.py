"""Write DICOM Parametric Maps: float32, float64 or integer maps with real-world units.

A Parametric Map (PS3.3 A.75) is an enhanced multi-frame image, one frame per
slice, whose pixel values mean a measured or derived quantity: the Real World
Value Mapping names the quantity (CID 7180), the UCUM units (CID 7181) and, for
integer maps, the slope and intercept from stored values to real-world values.
Float maps go in Float Pixel Data or Double Float Pixel Data, which DICOM
stores uncompressed; integer maps can be compressed losslessly (RLE, JPEG-LS,
JPEG 2000).

The writer is strict: NaN or infinity need a declared policy, the map must lie
on the source grid (or be a :class:`~radbridge.geometry.Volume` in the source's
frame of reference), and units must be UCUM.

Examples
--------
>>> import numpy as np
>>> from radbridge.coding import dcm
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series, resolve_source
>>> ph = generate_phantom(slices=4, size=16)
>>> probability = (ph.labels.array > 0).astype(np.float32) * 0.75
>>> pm = encode_parametric_map(
...     probability, Series.from_volume(ph.hu),
...     quantity=dcm("130402", "Class activation"), units="{probability}",
...     anatomic_region="body")   # default: the source's Body Part Examined
>>> pm.SOPClassUID == PARAMETRIC_MAP_STORAGE, int(pm.BitsAllocated), int(pm.NumberOfFrames)
(True, 32, 4)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from radbridge.codes.regions import anatomic_region as region_of_name
from radbridge.codes.regions import body_part_region
from radbridge.coding import Code
from radbridge.errors import EncodingError, UnknownTermError
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.common import SeriesOptions, choice, finish_file, new_instance
from radbridge.iods.multiframe.dimensions import add_dimensions
from radbridge.iods.multiframe.functional_groups import format_ds, raw_sequence
from radbridge.iods.multiframe.groups import derivation_items, per_frame_items, shared_groups
from radbridge.iods.multiframe.planes import on_source_grid
from radbridge.iods.pm.quantize import INTEGER_DTYPES, quantize
from radbridge.iods.pm.types import (
    PARAMETRIC_MAP_STORAGE,
    QUANTITY,
    UNSPECIFIED_CALCULATION,
    NanPolicy,
)
from radbridge.iods.profiles import Profile, writable_syntax
from radbridge.iods.source import (
    Series,
    SeriesLike,
    referenced_series_sequence,
    resolve_source,
    write_context,
    write_lossy_compression,
)
from radbridge.pixels import TransferSyntax, encode_pixel_data
from radbridge.ucum import parse_units

__all__ = ["MapDescription", "encode_parametric_map"]

log = logging.getLogger(__name__)

_CS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ")


@dataclass(frozen=True, eq=False)
class _Map:
    """The checked map: frames, grid, and what the mapping needs."""

    frames: NDArray[Any]
    geometry: VolumeGeometry
    same_grid: bool
    low: float
    high: float
    padding: float | None


def _resolve_source(source: SeriesLike) -> Series:
    return resolve_source(
        source,
        consequence="the map could not be placed",
        hint="make maps of images that have a FrameOfReferenceUID (CT, MR, PET do)",
    )


def _grid(
    values: NDArray[Any] | Volume, source: Series
) -> tuple[NDArray[Any], VolumeGeometry, bool]:
    """Return the array, its grid, and whether that grid is the source's."""
    return on_source_grid(
        values,
        source,
        what="map",
        attribute="values",
        register_hint="compute the map on the source series, or register it to the source first",
        shape_hint="give the map in the source's slice order (see `radbridge info --json`), "
        "or pass it as a Volume with its own geometry",
    )


def _check_values(array: NDArray[Any], policy: NanPolicy) -> tuple[NDArray[Any], float | None]:
    """Return the pixel values to store and the padding value (if any)."""
    kind = array.dtype.kind
    if kind == "b":
        array = array.astype(np.uint16)
        kind = "u"
    if kind in "iu":
        if array.size and (int(array.min()) < -32768 or int(array.max()) > 65535):
            raise EncodingError(
                "integer map values do not fit 16 bits",
                attribute="values",
                hint="store the map as float32, or scale it and pass slope/intercept",
            )
        if array.size and int(array.min()) < 0:
            if int(array.max()) > 32767:
                raise EncodingError(
                    "integer map spans more than 16 signed bits", attribute="values"
                )
            return array.astype(np.int16), None
        return array.astype(np.uint16), None
    if kind != "f" or array.dtype.itemsize not in (4, 8):
        raise EncodingError(
            f"a parametric map holds float32, float64 or 16-bit integers, not {array.dtype}",
            attribute="values",
            hint="convert the array with .astype(np.float32)",
        )
    finite = np.isfinite(array)
    if finite.all():
        return array, None
    if policy is NanPolicy.REFUSE:
        count = int(array.size - finite.sum())
        where = np.argwhere(~finite)[0].tolist()
        raise EncodingError(
            f"the map holds {count} NaN or infinite values (first at [slice, row, column] {where})",
            attribute="values",
            hint="pass nan_policy='padding' (stored as a declared padding value, read back as "
            "NaN) or nan_policy='zero', or clean the map first",
        )
    if not finite.any():
        raise EncodingError("every value of the map is NaN or infinite", attribute="values")
    out = array.copy()
    if policy is NanPolicy.ZERO:
        out[~finite] = 0
        return out, None
    padding = float(np.finfo(array.dtype).min)
    if (array[finite] == padding).any():
        raise EncodingError(
            "the map already uses the padding value (the lowest float)", attribute="values"
        )
    out[~finite] = padding
    return out, padding


def _prepare(values: NDArray[Any] | Volume, source: Series, policy: NanPolicy) -> _Map:
    array, geometry, same_grid = _grid(values, source)
    if array.ndim != 3 or array.size == 0:
        raise EncodingError(
            f"a map must be a non-empty 3-D array [slice, row, column], got shape {array.shape}",
            attribute="values",
        )
    frames, padding = _check_values(array, policy)
    kept = frames if padding is None else frames[frames != padding]
    low, high = float(kept.min()), float(kept.max())
    return _Map(np.ascontiguousarray(frames), geometry, same_grid, low, high, padding)


def _mapping_item(
    pm: _Map, quantity: Code, units: Code, slope: float, intercept: float, label: str
) -> Dataset:
    item = Dataset()
    item.LUTExplanation = quantity.meaning[:64]
    item.LUTLabel = label[:16]
    item.MeasurementUnitsCodeSequence = [units.to_dataset()]
    definition = Dataset()
    definition.ValueType = "CODE"
    definition.ConceptNameCodeSequence = [QUANTITY.to_dataset()]
    definition.ConceptCodeSequence = [quantity.to_dataset()]
    item.QuantityDefinitionSequence = [definition]
    if pm.frames.dtype.kind == "f":
        item.DoubleFloatRealWorldValueFirstValueMapped = pm.low
        item.DoubleFloatRealWorldValueLastValueMapped = pm.high
    else:
        vr = "SS" if pm.frames.dtype.kind == "i" else "US"
        item.RealWorldValueFirstValueMapped = int(pm.low)
        item.RealWorldValueLastValueMapped = int(pm.high)
        item["RealWorldValueFirstValueMapped"].VR = vr
        item["RealWorldValueLastValueMapped"].VR = vr
    item.RealWorldValueIntercept = float(intercept)
    item.RealWorldValueSlope = float(slope)
    return item


def _window(pm: _Map, window: tuple[float, float] | None) -> Dataset:
    """Frame VOI LUT item: the given window, or one spanning the stored values."""
    item = Dataset()
    floating = pm.frames.dtype.kind == "f"
    if window is None:
        width = min(pm.high - pm.low, float(np.finfo(np.float64).max))  # no overflow to inf
        center = pm.high / 2 + pm.low / 2
        if not floating:
            width, center = width + 1, center + 0.5  # LINEAR: width counts values
        window = (center, width if width > 0 else 1.0)
    center, width = (float(v) for v in window)
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        raise EncodingError(
            f"window (center {center}, width {width}) is not usable",
            attribute="WindowWidth",
            hint="give a finite center and a positive width",
        )
    if not floating and width < 1:
        raise EncodingError(
            "a window over integer values needs a width of at least 1", attribute="WindowWidth"
        )
    item.WindowCenter = format_ds(center)
    item.WindowWidth = format_ds(width)
    item.VOILUTFunction = "LINEAR_EXACT" if floating else "LINEAR"
    return item


def _shared(
    pm: _Map, source: Series, mapping: Dataset, window: Dataset, frame_type: list[str]
) -> Dataset:
    shared = shared_groups(pm.geometry, source.acquired_positions if pm.same_grid else None)
    shared.FrameVOILUTSequence = [window]
    identity = Dataset()
    identity.RescaleIntercept = "0"
    identity.RescaleSlope = "1"
    identity.RescaleType = "US"
    shared.PixelValueTransformationSequence = [identity]
    kind = Dataset()
    kind.FrameType = frame_type
    shared.ParametricMapFrameTypeSequence = [kind]
    shared.RealWorldValueMappingSequence = [mapping]
    return shared


def _cs(value: str, attribute: str) -> str:
    if not value or len(value) > 16 or set(value) - _CS:
        raise EncodingError(
            f"{value!r} is not a valid CS value",
            attribute=attribute,
            hint="use up to 16 upper-case letters, digits, underscores or spaces",
        )
    return value


@dataclass(frozen=True)
class MapDescription:
    """How the Parametric Map describes its pixels.

    Parameters
    ----------
    image_flavor, derived_pixel_contrast
        Values 3 and 4 of Image Type and Frame Type (e.g. ``VOLUME`` and
        ``QUANTITY``; ``ADC``, ``PERFUSION``, ... for MR maps).
    derivation
        How the map was derived from the source (baseline CID 7203 Image
        Derivation; the default is DCM 112187 "Unspecified method of
        calculation").
    content_qualification
        ``RESEARCH``, ``PRODUCT`` or ``SERVICE``.
    label
        LUT Label of the mapping (short name of the quantity).
    """

    image_flavor: str = "VOLUME"
    derived_pixel_contrast: str = "QUANTITY"
    derivation: Code = UNSPECIFIED_CALCULATION
    content_qualification: str = "RESEARCH"
    label: str = "MAP"

    def validate(self) -> None:
        """Raise :class:`~radbridge.errors.EncodingError` for values DICOM cannot hold."""
        _cs(self.image_flavor, "ImageType")
        _cs(self.derived_pixel_contrast, "ImageType")
        if self.content_qualification not in ("RESEARCH", "PRODUCT", "SERVICE"):
            raise EncodingError(
                f"content qualification {self.content_qualification!r} is not allowed",
                attribute="ContentQualification",
                hint="use RESEARCH, PRODUCT or SERVICE",
            )
        if not self.label or len(self.label) > 16:
            raise EncodingError("the LUT label needs 1 to 16 characters", attribute="LUTLabel")


#: Transfer syntaxes for float maps (Float/Double Float Pixel Data are never encapsulated).
_FLOAT_SYNTAXES = (TransferSyntax.EXPLICIT, TransferSyntax.DEFLATED_EXPLICIT)
_INTEGER_SYNTAXES = (
    TransferSyntax.EXPLICIT,
    TransferSyntax.DEFLATED_EXPLICIT,
    TransferSyntax.RLE,
    TransferSyntax.JPEGLS,
    TransferSyntax.JPEG2000,
)


def _syntax(value: str | None, floating: bool, profile: Profile) -> TransferSyntax:
    if value is None:
        return TransferSyntax.EXPLICIT if floating else profile.transfer_syntax("pm-integer")
    return writable_syntax(
        value,
        _FLOAT_SYNTAXES if floating else _INTEGER_SYNTAXES,
        refusal=f"a {'float' if floating else 'integer'} Parametric Map cannot be written in",
        why=" (DICOM stores float pixel data uncompressed)" if floating else "",
    )


def encode_parametric_map(
    values: NDArray[Any] | Volume,
    source: SeriesLike,
    *,
    quantity: Code,
    units: Code | str,
    nan_policy: NanPolicy | str = NanPolicy.REFUSE,
    window: tuple[float, float] | None = None,
    slope: float = 1.0,
    intercept: float = 0.0,
    anatomic_region: Code | str | None = None,
    description: MapDescription | None = None,
    options: SeriesOptions | None = None,
    transfer_syntax: str | None = None,
    workers: int | None = None,
    stored_dtype: str | None = None,
    profile: Profile | str | None = None,
) -> FileDataset:
    """Encode a map of real-world values as a DICOM Parametric Map.

    Parameters
    ----------
    values
        ``[slice, row, column]`` on the source grid in its slice order, or a
        :class:`~radbridge.geometry.Volume` on its own grid in the source's
        frame of reference. float32 goes in Float Pixel Data, float64 in Double
        Float Pixel Data (both exactly); integers (bool, 8/16-bit) in 16-bit
        Pixel Data.
    source
        The source series: a :class:`~radbridge.iods.source.Series`, its
        data sets (headers suffice), or a Volume (then the map goes into a new
        study).
    quantity
        What the values measure (CID 7180, e.g. ``dcm("130402", "Class
        activation")``, ``dcm("113041", "Apparent Diffusion Coefficient")``).
    units
        UCUM units, a code or an expression: ``"{probability}"`` or ``"1"`` for
        probabilities, ``"mm2/s"``, ``"ms"``, ...
    nan_policy
        NaN/infinity in a float map: ``refuse`` (default, raises), ``zero``, or
        ``padding`` (stored as a declared Float Pixel Padding Value).
    window
        ``(center, width)`` of the default display window in the values given
        (for real values stored as integers by ``stored_dtype``, radbridge turns
        it into stored values with the slope and intercept it computes; for
        integers with your own ``slope``/``intercept``, in stored values);
        default: the range of the values.
    slope, intercept
        Integer maps only: real-world value = stored value * slope + intercept.
    anatomic_region
        The Frame Anatomy functional group's region (mandatory in the IOD; dcmqi's
        ``paramap2itkimage`` crashes without it): a CID 4 code, or a name from
        the anatomy table (``"liver"``, ``"kidney_left"``: its laterality
        becomes the Frame Laterality, otherwise ``U``). Default: the region of
        the source's Body Part Examined (``CHEST``, ``ABDOMEN``, ...; see
        :mod:`radbridge.codes.regions`); a source without a known body part is
        refused rather than given an invented region.
    description
        Image Type values, derivation code, content qualification, LUT label.
    options
        Series/instance/equipment attributes and fixed UIDs/time (fix them for
        byte-identical re-runs).
    transfer_syntax
        ``explicit`` (default) or ``deflated-explicit``; integer maps also
        ``rle``, ``jpegls``, ``jpeg2000`` (lossless).
    workers
        Threads/processes for frame compression.
    stored_dtype
        Store the values as ``float32``, ``float64``, ``uint16`` or ``int16``
        (default: as given, except float64 values that float32 holds exactly,
        which go as float32: dcmqi reads only float32 maps). Real values stored
        as integers get a slope and intercept computed from the data range
        (:func:`~radbridge.iods.pm.quantize.quantize`: at most half a step of
        error, stated in the Real World Value Mapping); ``float32`` rounds
        float64 values to float32 precision (the largest change is logged).
    profile
        Encoding set for integer maps when ``transfer_syntax`` is not given
        (:mod:`radbridge.iods.profiles`; ``interop``: uncompressed, which highdicom,
        Orthanc and dciodvfy read; dcmqi reads no integer map, only float32 ones).

    Returns
    -------
    pydicom.dataset.FileDataset
        Ready to ``save_as`` or send.

    Raises
    ------
    EncodingError
        NaN/infinity without a policy, units that are not UCUM, a value type or
        transfer syntax a Parametric Map cannot hold, a lossy ``stored_dtype``,
        no anatomic region.
    GridMismatchError
        The map does not fit the source grid.
    """
    policy = choice(NanPolicy, nan_policy, "nan_policy")
    unit_code = parse_units(units)
    details = description or MapDescription()
    details.validate()
    settings = options or SeriesOptions(
        series_description="Parametric Map", content_label="MAP", series_number=400
    )
    settings.validate()
    resolved = _resolve_source(source)
    region, laterality = _frame_anatomy(anatomic_region, resolved)
    pm = _prepare(values, resolved, policy)
    pm, slope, intercept = _convert(pm, stored_dtype, slope, intercept)
    if window is not None and stored_dtype in INTEGER_DTYPES:  # given in real-world values
        window = ((window[0] - intercept) / slope, window[1] / slope)
    floating = pm.frames.dtype.kind == "f"
    syntax = _syntax(transfer_syntax, floating, Profile.parse(profile))
    if floating and (slope, intercept) != (1.0, 0.0):
        raise EncodingError(
            "slope and intercept apply to integer maps only",
            attribute="RealWorldValueSlope",
            hint="scale a float map before encoding it",
        )
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise EncodingError("slope must be finite and non-zero", attribute="RealWorldValueSlope")
    ds = _build(resolved, pm, details, settings)
    mapping = _mapping_item(pm, quantity, unit_code, slope, intercept, details.label)
    shared = _shared(pm, resolved, mapping, _window(pm, window), list(ds.ImageType))
    anatomy = Dataset()
    anatomy.AnatomicRegionSequence = [region.to_dataset()]
    anatomy.FrameLaterality = laterality
    shared.FrameAnatomySequence = [anatomy]
    ds.SharedFunctionalGroupsSequence = [shared]
    _pixels(ds, pm, syntax, workers)
    out = finish_file(ds, syntax.uid, raw_explicit_le=True)
    log.info(
        "encoded Parametric Map %s: %d frames, %s",
        ds.SOPInstanceUID,
        pm.geometry.shape[0],
        pm.frames.dtype,
    )
    return out


def _frame_anatomy(region: Code | str | None, source: Series) -> tuple[Code, str]:
    """Return the Frame Anatomy region and laterality (given, named, or the source's)."""
    if isinstance(region, Code):
        return region, "U"
    if isinstance(region, str):
        try:
            return region_of_name(region)
        except UnknownTermError as exc:
            raise EncodingError(
                f"{region!r} is not in radbridge's anatomy table"
                + (f" (close: {', '.join(exc.suggestions)})" if exc.suggestions else ""),
                attribute="anatomic_region",
                hint="use a name listed in docs/codes.md, or give a code "
                "(CLI: --anatomy SCT:10200004:Liver)",
            ) from None
    found = body_part_region(source.body_part_examined)
    if found is None:
        raise EncodingError(
            "a Parametric Map needs an anatomic region (Frame Anatomy is mandatory, and "
            "dcmqi's paramap2itkimage crashes without it), and the source's Body Part "
            f"Examined ({source.body_part_examined or 'empty'!r}) names none radbridge knows",
            attribute="FrameAnatomySequence",
            hint="pass anatomic_region= a CID 4 code or a name such as 'liver' (CLI: "
            "--anatomy liver; names in docs/codes.md)",
        )
    return found, "U"


def _as_float(pm: _Map, dtype: str) -> _Map:
    """Return the map as float ``dtype`` (values rounded to its precision, padding kept)."""
    with np.errstate(over="ignore"):  # the float64 padding, or values beyond float32
        frames = pm.frames.astype(dtype)
    real = Ellipsis if pm.padding is None else pm.frames != pm.padding
    if np.isinf(frames[real]).any():
        raise EncodingError(
            f"the map holds values beyond the range of {dtype} (largest magnitude "
            f"{float(np.abs(pm.frames[real]).max()):g}); they would be stored as infinity",
            attribute="stored_dtype",
            hint="keep the map as float64 (leave stored_dtype out), or scale it",
        )
    changed = float(np.abs(frames[real].astype(np.float64) - pm.frames[real]).max())
    if changed:
        log.warning("map stored as %s: values change by up to %g", dtype, changed)
    padding = None if pm.padding is None else float(np.finfo(dtype).min)
    if padding is not None:
        frames[pm.frames == pm.padding] = padding
    kept = frames if padding is None else frames[frames != padding]
    return replace(
        pm, frames=frames, padding=padding, low=float(kept.min()), high=float(kept.max())
    )


def _default_dtype(pm: _Map) -> str | None:
    """float64 maps that float32 holds exactly go as float32 (the type dcmqi reads)."""
    if pm.frames.dtype != np.float64:
        return None
    kept = pm.frames if pm.padding is None else pm.frames[pm.frames != pm.padding]
    with np.errstate(over="ignore"):  # beyond float32's range: not exact, kept as float64
        fits = np.array_equal(kept.astype(np.float32), kept)
    if fits:
        return "float32"
    log.warning(
        "float64 map kept as Double Float Pixel Data (float32 would round it); dcmqi reads "
        "only float32 maps: pass stored_dtype='float32' to round"
    )
    return None


def _convert(
    pm: _Map, dtype: str | None, slope: float, intercept: float
) -> tuple[_Map, float, float]:
    """Return the map stored as ``dtype`` and its slope/intercept (stated, never hidden)."""
    dtype = dtype or _default_dtype(pm)
    if dtype is None:
        return pm, slope, intercept
    if dtype in ("float32", "float64"):
        return _as_float(pm, dtype), slope, intercept
    if (slope, intercept) != (1.0, 0.0):
        raise EncodingError(
            "give either slope/intercept (for integers you scaled) or stored_dtype "
            "(radbridge computes them), not both",
            attribute="RealWorldValueSlope",
        )
    if pm.padding is not None:
        raise EncodingError(
            "NaN cannot be stored in an integer map",
            attribute="stored_dtype",
            hint="use nan_policy='zero', or store the map as float32 with nan_policy='padding'",
        )
    q = quantize(pm.frames, dtype)
    stored = np.ascontiguousarray(q.stored)
    low, high = float(stored.min()), float(stored.max())
    log.info(
        "map stored as %s: real = stored * %r + %r (largest error %g)",
        dtype,
        q.slope,
        q.intercept,
        q.max_error,
    )
    return replace(pm, frames=stored, low=low, high=high), q.slope, q.intercept


def _build(
    source: Series,
    pm: _Map,
    details: MapDescription,
    options: SeriesOptions,
) -> Dataset:
    ds = new_instance(PARAMETRIC_MAP_STORAGE, options, modality=source.modality or "OT")
    write_context(ds, source.context)
    ds.FrameOfReferenceUID = source.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageType = ["DERIVED", "PRIMARY", details.image_flavor, details.derived_pixel_contrast]
    ds.ContentQualification = details.content_qualification
    ds.PixelPresentation = "MONOCHROME"
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "NO"
    write_lossy_compression(ds, source)
    ds.PresentationLUTShape = "IDENTITY"
    ds.AcquisitionContextSequence = []
    add_dimensions(ds, by_segment=False)
    refs = derivation_items(source, pm.geometry, pm.same_grid, details.derivation)
    if any(ref is not None for ref in refs):
        ds.ReferencedSeriesSequence = referenced_series_sequence(source)
    positions = source.slice_positions() if pm.same_grid else pm.geometry.slice_positions
    slices = np.arange(len(positions), dtype=np.int64)
    items = per_frame_items(slices, positions, refs, position_indices=slices + 1)
    ds[0x52009230] = raw_sequence(0x52009230, items)
    return ds


def _pixels(ds: Dataset, pm: _Map, syntax: TransferSyntax, workers: int | None) -> None:
    frames = pm.frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.NumberOfFrames = frames.shape[0]
    if frames.dtype.kind == "f":
        ds.BitsAllocated = frames.dtype.itemsize * 8
        data = np.ascontiguousarray(frames, dtype=frames.dtype.newbyteorder("<")).tobytes()
        if frames.dtype.itemsize == 4:
            ds.FloatPixelData = data
            if pm.padding is not None:
                # The limit equal to the value: a range of one value (dciodvfy wants both).
                ds.FloatPixelPaddingValue = pm.padding
                ds.FloatPixelPaddingRangeLimit = pm.padding
        else:
            ds.DoubleFloatPixelData = data
            if pm.padding is not None:
                ds.DoubleFloatPixelPaddingValue = pm.padding
                ds.DoubleFloatPixelPaddingRangeLimit = pm.padding
        return
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if frames.dtype.kind == "i" else 0
    encode_pixel_data(frames, syntax, workers=workers).store(ds)
