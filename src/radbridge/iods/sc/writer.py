"""Write rendered overlays as one Multi-frame True Color Secondary Capture image.

The SC goes into the source's study (new series), one frame per source slice,
RGB 8-bit (PS3.3 A.8.5). Burned In Annotation is YES: every frame carries the
"NOT FOR DIAGNOSTIC USE" banner. The Slice Location Vector gives each frame's
position along the source's slice normal, so viewers can page through it in
step with the source.

Examples
--------
>>> import numpy as np
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.sc.render import render_overlay
>>> from radbridge.iods.source import Series
>>> ph = generate_phantom(slices=3, size=32)
>>> src = Series.from_volume(ph.hu)
>>> sc = encode_overlay_sc(render_overlay(ph.hu, ph.labels.array, {}, ph.label_names), src)
>>> sc.BurnedInAnnotation, int(sc.NumberOfFrames)
('YES', 3)
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from radbridge.coding import dcm
from radbridge.color import srgb_icc_profile
from radbridge.errors import EncodingError, GridMismatchError
from radbridge.iods.common import SeriesOptions, finish_file, new_instance
from radbridge.iods.multiframe.functional_groups import format_ds
from radbridge.iods.profiles import Profile, writable_syntax
from radbridge.iods.source import (
    Series,
    SeriesLike,
    as_series,
    instance_references,
    referenced_series_sequence,
    source_given_first,
    write_context,
    write_lossy_compression,
)
from radbridge.pixels import TransferSyntax, encode_pixel_data

__all__ = ["MULTIFRAME_TRUE_COLOR_SC_STORAGE", "encode_overlay_sc"]

log = logging.getLogger(__name__)

MULTIFRAME_TRUE_COLOR_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.4"
_SYNTAXES = (
    TransferSyntax.EXPLICIT,
    TransferSyntax.DEFLATED_EXPLICIT,
    TransferSyntax.RLE,
    TransferSyntax.JPEGLS,
)


def _source_images(source: Series) -> list[Dataset]:
    """Source Image Sequence: every source instance, once (General Reference Module)."""
    purpose = dcm("121322", "Source image for image processing operation").to_dataset()
    items = instance_references(source)
    for item in items:
        item.PurposeOfReferenceCodeSequence = [purpose]
    return items


def _pixel_aspect_ratio(source: Series) -> tuple[int, int] | None:
    """Pixel Aspect Ratio (row spacing : column spacing) of non-square source pixels.

    The frames keep the source's pixel grid (enlarged alike in both directions), so
    without it a viewer shows pixels of 0.5 mm x 1 mm as squares, the anatomy
    stretched. ``None`` for square pixels (1:1 is not written, PS3.3 C.7.6.3.1.7).

    Examples
    --------
    >>> import numpy as np
    >>> from radbridge.geometry import Volume
    >>> volume = Volume(np.zeros((1, 4, 4)), np.diag([1.0, 0.5, 1.0, 1.0]), "2.25.1")
    >>> _pixel_aspect_ratio(Series.from_volume(volume))
    (1, 2)
    """
    rows, columns = source.geometry.pixel_spacing
    if not (rows > 0 and columns > 0) or abs(rows / columns - 1) < 1e-3:
        return None
    ratio = Fraction(rows / columns).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def _syntax(value: str | None, profile: Profile) -> TransferSyntax:
    if value is None:
        return profile.transfer_syntax("sc")
    return writable_syntax(
        value,
        _SYNTAXES,
        refusal="radbridge does not write colour Secondary Captures in",
        note=" (JPEG 2000 would need YBR_RCT)",
    )


def encode_overlay_sc(
    rgb_frames: NDArray[Any],
    source: SeriesLike,
    *,
    options: SeriesOptions | None = None,
    transfer_syntax: str | None = None,
    description: str = "AI overlay: segments over source images",
    workers: int | None = None,
    profile: Profile | str | None = None,
) -> FileDataset:
    """Encode RGB frames as a Multi-frame True Color Secondary Capture in the source's study.

    Parameters
    ----------
    rgb_frames
        ``uint8 [slice, row, column, 3]``, one frame per source slice, as
        :func:`~radbridge.iods.sc.render_overlay` returns them (banner burned in).
    source
        The source series (study context, slice positions, references): a
        :class:`~radbridge.iods.source.Series`, its data sets, or a volume. The
        former order ``(source, rgb_frames)`` still works, with a
        :class:`DeprecationWarning`.
    options
        Series/instance/equipment attributes and fixed UIDs/time.
    transfer_syntax
        ``explicit``, ``deflated-explicit``, ``rle`` or ``jpegls`` (all
        lossless); default: the profile's (``interop``: ``explicit``).
    description
        Derivation Description.
    workers
        Threads/processes for compression.
    profile
        Encoding set (:mod:`radbridge.iods.profiles`) when ``transfer_syntax``
        is not given.

    Returns
    -------
    pydicom.dataset.FileDataset

    Raises
    ------
    EncodingError
        Frames that are not 8-bit RGB.
    GridMismatchError
        The number of frames is not the number of source slices.
    """
    if source_given_first("encode_overlay_sc", rgb_frames):
        rgb_frames, source = cast(NDArray[Any], source), cast(Series, rgb_frames)
    source = as_series(source)
    frames = np.asarray(rgb_frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise EncodingError(
            f"frames must be uint8 [slice, row, column, 3], got {frames.dtype} {frames.shape}",
            attribute="rgb_frames",
            hint="pass the output of render_overlay()",
        )
    if frames.shape[0] != source.geometry.shape[0]:
        raise GridMismatchError(
            f"{frames.shape[0]} frames for {source.geometry.shape[0]} source slices",
            attribute="rgb_frames",
            hint="render one frame per source slice",
        )
    syntax = _syntax(transfer_syntax, Profile.parse(profile))
    settings = options or SeriesOptions(
        series_description="AI overlay (not for diagnostic use)",
        series_number=500,
        content_label="OVERLAY",
    )
    ds = new_instance(MULTIFRAME_TRUE_COLOR_SC_STORAGE, settings, modality="OT")
    for keyword in ("ContentLabel", "ContentDescription", "ContentCreatorName"):
        del ds[keyword]  # Content Identification is not part of this IOD
    write_context(ds, source.context)
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = description[:1024]
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "YES"
    ds.RecognizableVisualFeatures = "NO"
    write_lossy_compression(ds, source)
    ds.DateOfSecondaryCapture = ds.ContentDate
    ds.TimeOfSecondaryCapture = ds.ContentTime
    ds.Laterality = ""  # Type 2C: unknown (an overlay may show both sides)
    if source.slice_refs and source.series_instance_uid:
        ds.SourceImageSequence = _source_images(source)
        ds.ReferencedSeriesSequence = referenced_series_sequence(source)
    if frames.shape[0] > 1:  # Type 1C: only when there are several frames to step through
        distance = source.slice_positions() @ source.geometry.slice_normal
        ds.FrameIncrementPointer = 0x00182005  # Slice Location Vector
        ds.SliceLocationVector = [format_ds(v) for v in distance]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    aspect = _pixel_aspect_ratio(source)
    if aspect is not None:  # Type 1C: the frames have no Pixel Spacing to show the shape
        ds.PixelAspectRatio = list(aspect)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames.shape[0]
    ds.ICCProfile = srgb_icc_profile()
    ds.ColorSpace = "SRGB"
    encode_pixel_data(frames, syntax, workers=workers).store(ds)
    out = finish_file(ds, syntax.uid)
    log.info("encoded overlay SC %s: %d frames", ds.SOPInstanceUID, frames.shape[0])
    return out
