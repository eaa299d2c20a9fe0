"""Write DICOM Segmentations: BINARY, FRACTIONAL and LABELMAP.

The writer is strict: once :func:`encode_segmentation` returns, the data set is
a conformant Segmentation (or Label Map Segmentation) instance; invalid input is
refused with an :class:`~radbridge.errors.EncodingError` (or a
:class:`~radbridge.errors.GeometryError`) before anything is built.

Examples
--------
>>> import numpy as np
>>> from radbridge.coding import sct
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.source import Series, resolve_source
>>> ph = generate_phantom(slices=8, size=32)
>>> liver = (ph.labels.array == 5).astype(np.uint8)
>>> segment = SegmentDescription(
...     1, "Liver", category=sct("123037004", "Anatomical Structure"),
...     property_type=sct("10200004", "Liver"),
...     algorithm=AlgorithmIdentification("phantom-truth", "1"))
>>> seg = encode_segmentation(liver, Series.from_volume(ph.hu), [segment],
...                           segmentation_type="labelmap", transfer_syntax="explicit")
>>> seg.SegmentationType, seg.SOPClassUID == LABEL_MAP_SEGMENTATION_STORAGE
('LABELMAP', True)
>>> int(seg.NumberOfFrames) == int(liver.any(axis=(1, 2)).sum())
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from radbridge.coding import dcm
from radbridge.errors import EncodingError
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.common import (
    SeriesOptions,
    choice,
    finish_file,
    new_instance,
    series_options,
)
from radbridge.iods.content import (
    AlgorithmIdentification,
    LabelMapping,
    SegmentDescription,
    default_colour,
)
from radbridge.iods.multiframe.dimensions import add_dimensions
from radbridge.iods.multiframe.functional_groups import raw_sequence
from radbridge.iods.multiframe.groups import derivation_items, per_frame_items, shared_groups
from radbridge.iods.multiframe.planes import on_source_grid
from radbridge.iods.multiframe.segmentation import (
    check_labels,
    check_stacked,
    describe_segments,
    pixel_module,
    segmentation_attributes,
)
from radbridge.iods.profiles import Profile, writable_syntax
from radbridge.iods.seg.frames import (
    Box,
    FramePlan,
    binary_frames,
    label_presence,
    occupied_slices,
    pack_boxed,
    plan_frames,
    plan_labelmap,
    stacked_presence,
)
from radbridge.iods.seg.types import (
    LABEL_MAP_SEGMENTATION_STORAGE,
    SEG_TRANSFER_SYNTAXES,
    SEGMENTATION_STORAGE,
    FractionalType,
    SegmentationType,
)
from radbridge.iods.source import (
    Series,
    SeriesLike,
    referenced_series_sequence,
    resolve_source,
    write_context,
    write_lossy_compression,
)
from radbridge.pixels import TransferSyntax, encode_pixel_data, pack_frames
from radbridge.uids import derived_uid

__all__ = ["encode_segmentation"]

log = logging.getLogger(__name__)

_DERIVATION = dcm("113076", "Segmentation")


def _resolve_source(source: SeriesLike) -> Series:
    return resolve_source(
        source,
        consequence="segment positions would be meaningless",
        hint="segment images that have a FrameOfReferenceUID (CT, MR, PET do)",
    )


def _resolve_grid(
    mask: NDArray[Any] | Volume, source: Series, stacked: bool
) -> tuple[NDArray[Any], VolumeGeometry, bool]:
    """Return the array, its grid, and whether that grid is the source's."""
    return on_source_grid(
        mask,
        source,
        what="mask",
        attribute="mask",
        register_hint="segment the source series itself, or register the mask to it first",
        shape_hint="give the mask in the source's slice order (see `radbridge info --json`), "
        "or pass it as a Volume with its own geometry",
        stacked="segment" if stacked else None,
    )


def _stacked_to_labels(stacked: NDArray[np.bool_]) -> NDArray[Any]:
    counts = stacked.sum(axis=0, dtype=np.uint16)
    if counts.size and int(counts.max()) > 1:
        where = np.argwhere(counts > 1)[0].tolist()
        raise EncodingError(
            f"segments overlap (e.g. at voxel {where} [slice, row, column]), which a LABELMAP "
            "cannot represent",
            attribute="mask",
            hint="use segmentation_type='binary' for overlapping segments",
        )
    dtype = np.uint8 if stacked.shape[0] <= 255 else np.uint16
    labels = np.zeros(stacked.shape[1:], dtype)
    for k in range(stacked.shape[0]):
        labels[stacked[k]] = k + 1
    return labels


def _palette(ds: Dataset, descriptions: list[SegmentDescription]) -> None:
    """Add the Palette Color Lookup Table (16-bit entries, entry 0 black).

    16-bit entries (each 8-bit colour times 257) leave no doubt about how the
    data is packed; validators question 8-bit tables whose values look small.
    """
    from radbridge.color import srgb_icc_profile

    # One unused white entry after the last label: dciodvfy reports an error for any
    # channel whose largest value stays in the lower half of the range, which dark or
    # pure colours would trigger. Pixel values never reach this entry.
    entries = len(descriptions) + 2
    table = np.zeros((entries, 3), np.uint16)
    table[-1] = 255
    for d in descriptions:
        table[d.segment_number] = d.display_rgb or default_colour(d.segment_number)
    ds.PhotometricInterpretation = "PALETTE COLOR"
    descriptor = [entries % 65536, 0, 16]
    for index, colour in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", descriptor)
        ds[f"{colour}PaletteColorLookupTableDescriptor"].VR = "US"  # ambiguous US/SS
        data = (table[:, index] * 257).astype("<u2").tobytes()
        setattr(ds, f"{colour}PaletteColorLookupTableData", data)
        ds[f"{colour}PaletteColorLookupTableData"].VR = "OW"
    ds.PaletteColorLookupTableUID = derived_uid(str(ds.SOPInstanceUID), "palette")
    ds.ICCProfile = srgb_icc_profile()
    ds.ColorSpace = "SRGB"
    for item in ds.SegmentSequence:  # the palette now carries the colours
        if "RecommendedDisplayCIELabValue" in item:
            del item.RecommendedDisplayCIELabValue


def _encode_native(pixels: _Pixels, seg_type: SegmentationType) -> bytes:
    plan, labels, stacked = pixels.plan, pixels.labels, pixels.stacked
    if seg_type is SegmentationType.BINARY:
        packed = pack_boxed(plan, labels, pixels.boxes) if labels is not None else None
        if packed is not None:
            return packed
        return pack_frames(binary_frames(plan, labels, stacked, pixels.boxes))
    if seg_type is SegmentationType.LABELMAP:
        assert labels is not None
        data = _labelmap_frames(labels, plan).tobytes()
    else:
        assert stacked is not None
        data = stacked[plan.segments - 1, plan.slices].tobytes()
    return data + b"\x00" if len(data) % 2 else data


def encode_segmentation(
    mask: NDArray[Any] | Volume,
    source: SeriesLike,
    segments: Sequence[SegmentDescription] | LabelMapping,
    *,
    segmentation_type: SegmentationType | str = SegmentationType.BINARY,
    fractional_type: FractionalType | str = FractionalType.PROBABILITY,
    max_fractional_value: int = 255,
    transfer_syntax: str | None = None,
    keep_empty_frames: bool = False,
    palette: bool = False,
    algorithm: AlgorithmIdentification | None = None,
    options: SeriesOptions | None = None,
    workers: int | None = None,
    profile: Profile | str | None = None,
    series: SeriesOptions | None = None,
) -> FileDataset:
    """Encode a mask as a DICOM Segmentation.

    Parameters
    ----------
    mask
        Either a label map ``[slice, row, column]`` of integers (0 background,
        1..N segments), or a stacked array ``[segment, slice, row, column]``
        (one-hot/binary for BINARY and LABELMAP, probabilities in [0, 1] or
        integers 0..``max_fractional_value`` for FRACTIONAL). Arrays are on the
        source grid in its slice order; a :class:`~radbridge.geometry.Volume` may
        lie on another grid in the same frame of reference.
    source
        The source series: its data sets (headers suffice), a
        :class:`~radbridge.iods.source.Series`, or a ``Volume`` (then the
        SEG goes into a new study unless the Series carries a context).
    segments
        Descriptions of segments 1..N, or ``{label: name}`` resolved through the
        curated code table (:func:`~radbridge.iods.seg.describe_labels`).
    segmentation_type
        ``"binary"`` (default), ``"fractional"`` or ``"labelmap"`` (Label Map
        Segmentation Storage).
    fractional_type, max_fractional_value
        For FRACTIONAL: PROBABILITY or OCCUPANCY, and the stored value meaning 1.0.
    transfer_syntax
        ``"explicit"`` (Explicit VR Little Endian), ``"deflated-explicit"``,
        ``"rle"``, ``"jpegls"``, ``"jpeg2000"``, or a transfer syntax UID;
        default: the profile's choice (``interop``: RLE Lossless for LABELMAP,
        Explicit VR Little Endian otherwise — what dcmqi/3D Slicer, highdicom,
        dcmjs and Orthanc all read).
    keep_empty_frames
        Write frames with no segmented pixel too (some viewers need them).
    palette
        LABELMAP only: store a PALETTE COLOR lookup table built from the segments'
        display colours, so plain image viewers show the labels in colour.
    algorithm
        Algorithm of every segment when ``segments`` is a mapping (without it the
        segments are MANUAL).
    options
        Series/instance/equipment attributes and fixed UIDs/time (fix them for
        byte-identical re-runs).
    workers
        Threads for frame compression (default: all cores).
    profile
        ``interop`` (default), ``slicer``, ``ohif``, ``pacs`` or ``compact``: the
        encoding set of :mod:`radbridge.iods.profiles` (``transfer_syntax`` wins).
        ``ohif`` refuses FRACTIONAL, which OHIF 3.13 cannot open.
    series
        Deprecated name of ``options``.

    Returns
    -------
    pydicom.dataset.FileDataset
        Ready to ``save_as`` or send.
    """
    started = time.perf_counter()
    seg_type = choice(SegmentationType, segmentation_type, "SegmentationType")
    frac_type = choice(FractionalType, fractional_type, "SegmentationFractionalType")
    if not 1 <= max_fractional_value <= 255:
        raise EncodingError(
            "max_fractional_value must be 1..255 (8-bit frames)", attribute="MaximumFractionalValue"
        )
    if palette and seg_type is not SegmentationType.LABELMAP:
        raise EncodingError(
            "a palette is only defined for LABELMAP segmentations",
            attribute="PhotometricInterpretation",
            hint="pass segmentation_type='labelmap' or palette=False",
        )
    settings = series_options(
        options,
        series,
        default=SeriesOptions(series_description="Segmentation", content_label="SEGMENTATION"),
    )
    resolved = _resolve_source(source)
    descriptions = describe_segments(segments, algorithm)
    syntax = _transfer_syntax(transfer_syntax, seg_type, Profile.parse(profile))
    is_stacked = np.ndim(mask.array if isinstance(mask, Volume) else mask) == 4
    array, geometry, same_grid = _resolve_grid(mask, resolved, is_stacked)
    pixels = _prepare_pixels(
        array, seg_type, len(descriptions), max_fractional_value, keep_empty_frames
    )
    ds = _build(
        resolved,
        descriptions,
        settings,
        seg_type,
        frac_type,
        max_fractional_value,
        geometry,
        same_grid,
        pixels.plan,
        pixels.labels,
    )
    pixel_module(ds, geometry.shape[1], geometry.shape[2], pixels.bits)
    if palette:
        _palette(ds, descriptions)
    ds.NumberOfFrames = len(pixels.plan)
    if syntax.encapsulated:
        frames = _frame_arrays(pixels, seg_type)
        encode_pixel_data(frames, syntax, bits_allocated=pixels.bits, workers=workers).store(ds)
    else:
        ds.PixelData = _encode_native(pixels, seg_type)
        ds["PixelData"].VR = "OB" if pixels.bits <= 8 else "OW"
    out = finish_file(ds, syntax.uid, raw_explicit_le=True)
    log.info(
        "encoded %s SEG %s: %d segments, %d frames in %.2f s",
        seg_type.value,
        ds.SOPInstanceUID,
        len(descriptions),
        len(pixels.plan),
        time.perf_counter() - started,
    )
    return out


@dataclass(frozen=True, eq=False)
class _Pixels:
    """The checked input and the frames to write."""

    plan: FramePlan
    bits: int
    labels: NDArray[Any] | None = None
    stacked: NDArray[Any] | None = None
    boxes: list[Box | None] = field(default_factory=list)


def _prepare_pixels(
    array: NDArray[Any],
    seg_type: SegmentationType,
    n: int,
    max_fractional: int,
    keep_empty: bool,
) -> _Pixels:
    """Check the mask values and choose the frames (strict: raises before writing)."""
    labels: NDArray[Any] | None = None
    stacked: NDArray[Any] | None = None
    if array.ndim == 3 and seg_type is SegmentationType.FRACTIONAL and n == 1:
        array = array[None]  # one segment's probabilities
    if array.ndim == 4:
        if array.shape[0] != n:
            raise EncodingError(
                f"stacked mask has {array.shape[0]} segments but {n} are described",
                attribute="segments",
            )
        stacked = check_stacked(array, seg_type, max_fractional)
        if seg_type is SegmentationType.LABELMAP:
            labels, stacked = _stacked_to_labels(stacked), None
    else:
        if seg_type is SegmentationType.FRACTIONAL:
            raise EncodingError(
                f"{n} segments are described, but FRACTIONAL values come as one "
                "[slice, row, column] volume",
                attribute="mask",
                hint="give one volume per segment: [segment, slice, row, column] (a 4-D NIfTI "
                "in the order of the labels), or describe a single segment",
            )
        labels = check_labels(array)
    boxes: list[Box | None] = []
    labelmap = seg_type is SegmentationType.LABELMAP
    if labelmap:
        assert labels is not None
        plan = plan_labelmap(occupied_slices(labels, n), keep_empty=keep_empty)
    elif labels is not None:
        presence, boxes = label_presence(labels, n)
        plan = plan_frames(presence, keep_empty=keep_empty)
    else:
        assert stacked is not None
        plan = plan_frames(stacked_presence(stacked), keep_empty=keep_empty)
    if len(plan) == 0:
        raise EncodingError(
            "every frame is empty, so the Segmentation would hold no pixels",
            attribute="mask",
            hint="pass keep_empty_frames=True to store empty frames anyway",
        )
    bits = 1 if seg_type is SegmentationType.BINARY else 8
    if labelmap and labels is not None:
        if n > 255:
            labels = labels.astype(np.uint16)
        bits = 16 if labels.dtype == np.uint16 else 8
    return _Pixels(plan, bits, labels, stacked, boxes)


def _labelmap_frames(labels: NDArray[Any], plan: FramePlan) -> NDArray[Any]:
    """Return the LABELMAP frames: a view when they are consecutive slices (no copy)."""
    slices = plan.slices
    if len(slices) and int(slices[-1]) - int(slices[0]) == len(slices) - 1:
        return labels[int(slices[0]) : int(slices[-1]) + 1]
    return labels[slices]


def _frame_arrays(pixels: _Pixels, seg_type: SegmentationType) -> NDArray[Any]:
    plan = pixels.plan
    if seg_type is SegmentationType.BINARY:
        chunks = list(binary_frames(plan, pixels.labels, pixels.stacked, pixels.boxes))
        return np.concatenate(chunks).astype(np.uint8)
    if seg_type is SegmentationType.LABELMAP:
        assert pixels.labels is not None
        return _labelmap_frames(pixels.labels, plan)
    assert pixels.stacked is not None
    return pixels.stacked[plan.segments - 1, plan.slices]


def _transfer_syntax(
    value: str | None, seg_type: SegmentationType, profile: Profile
) -> TransferSyntax:
    by_profile = profile.transfer_syntax(f"seg-{seg_type.value.lower()}")
    if value is None:
        return by_profile
    return writable_syntax(value, SEG_TRANSFER_SYNTAXES, refusal="radbridge does not write SEGs in")


def _build(
    source: Series,
    descriptions: list[SegmentDescription],
    options: SeriesOptions,
    seg_type: SegmentationType,
    frac_type: FractionalType,
    max_fractional: int,
    geometry: VolumeGeometry,
    same_grid: bool,
    plan: FramePlan,
    labels: NDArray[Any] | None,
) -> Dataset:
    labelmap = seg_type is SegmentationType.LABELMAP
    sop_class = LABEL_MAP_SEGMENTATION_STORAGE if labelmap else SEGMENTATION_STORAGE
    ds = new_instance(sop_class, options, modality="SEG")
    write_context(ds, source.context)
    ds.FrameOfReferenceUID = source.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageType = ["DERIVED", "PRIMARY"]
    write_lossy_compression(ds, source)
    segmentation_attributes(
        ds,
        seg_type,
        frac_type,
        max_fractional,
        overlap=not (labelmap or labels is not None),
        descriptions=descriptions,
    )
    add_dimensions(ds, by_segment=not labelmap)
    uneven = source.acquired_positions if same_grid else None
    ds.SharedFunctionalGroupsSequence = [shared_groups(geometry, uneven)]
    refs = derivation_items(source, geometry, same_grid, _DERIVATION)
    if any(refs[k] is not None for k in plan.slices.tolist()):
        # Common Instance Reference: only when frames reference source images.
        ds.ReferencedSeriesSequence = referenced_series_sequence(source)
    positions = source.slice_positions() if same_grid else geometry.slice_positions
    items = per_frame_items(
        plan.slices,
        positions,
        refs,
        position_indices=plan.position_indices(),
        segments=None if labelmap else plan.segments,
    )
    ds[0x52009230] = raw_sequence(0x52009230, items)
    return ds
