"""Convert a classic single-frame CT, MR or PET series to one Legacy Converted Enhanced image.

The converted image holds the same pixels (stored values, bit for bit) and the same
geometry as the classic images, one frame per image in slice order, with every
attribute of the classic images kept (:mod:`.attributes` says where) and, per frame,
a reference to the image it came from (Image Frame Conversion Source).

Examples
--------
>>> import tempfile
>>> from radbridge.io.phantom import write_phantom
>>> from radbridge.io.series import read_series, read_series_datasets
>>> study = write_phantom(tempfile.mkdtemp(), slices=4, size=16, nifti=False)
>>> ds = encode_legacy_enhanced(read_series_datasets(study.dicom_dir))
>>> int(ds.NumberOfFrames), ds.SOPClassUID.name
(4, 'Legacy Converted Enhanced CT Image Storage')
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from radbridge.errors import EncodingError
from radbridge.iods.common import SeriesOptions, finish_file
from radbridge.iods.legacy import groups
from radbridge.iods.legacy.attributes import split_attributes
from radbridge.iods.legacy.references import add_references, locations
from radbridge.iods.legacy.types import LegacyKind, kind_of
from radbridge.iods.multiframe.dimensions import add_dimensions
from radbridge.iods.source import Series, drop_empty_character_set
from radbridge.pixels import TransferSyntax
from radbridge.uids import derived_uid

__all__ = ["encode_legacy_enhanced"]

log = logging.getLogger(__name__)

_PIXEL_MODULE = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation")


def encode_legacy_enhanced(
    datasets: Sequence[Dataset],
    *,
    sources: Sequence[str] | None = None,
    options: SeriesOptions | None = None,
    referenced: Iterable[Dataset] = (),
) -> FileDataset:
    """Convert the classic images of one series into a Legacy Converted Enhanced image.

    Parameters
    ----------
    datasets
        The single-frame CT, MR or PET images of one series, with their pixel data,
        in any order (they are ordered along the slice normal).
    sources
        A name for each data set in messages (default: its file name).
    options
        Series and instance attributes of the new image. By default it goes into a
        new series of the same study numbered 1000 above the source's, described as
        the source's description plus ``" (enhanced)"``, with UIDs derived from the
        source instances (converting the same images again gives the same UIDs).
    referenced
        Other instances the images reference, or just their headers: the localizers
        named in their Referenced Image Sequence, or the images named in their Source
        Image Sequence. The converted image lists each reference with its study and
        series (Referenced/Source Image Evidence Sequence), which a classic reference
        does not give. A reference to an instance that is neither among ``datasets``
        nor in ``referenced`` is left out of the converted frames, with a warning
        (the classic images keep it).

    Returns
    -------
    pydicom.dataset.FileDataset
        The image, Explicit VR Little Endian, ready to ``save_as``.

    Raises
    ------
    EncodingError
        Not CT/MR/PET images, multi-frame or colour images, or images whose pixel
        layout differs.
    radbridge.errors.GeometryError
        Images without positions, of several orientations or series.
    radbridge.errors.MixedSeriesError
        Images of several patients, studies or frames of reference.
    """
    datasets = list(datasets)
    if not datasets:
        raise EncodingError("no images to convert", hint="give the images of one series")
    names = list(sources) if sources else [_name(ds) for ds in datasets]
    kind = kind_of(str(datasets[0].get("SOPClassUID", "")))
    _check_images(datasets, names)
    series = Series.from_datasets(datasets, sources=names, allow_nonuniform_spacing=True)
    assert series.plan is not None
    order = [index for index, _ in series.plan.slice_locations]
    images = [datasets[i] for i in order]
    split = split_attributes(images, [names[i] for i in order], contrast=kind.modality != "PT")
    ds = _new_image(images, kind, options)
    ds.update(split.top)
    drop_empty_character_set(ds)
    _image_module(ds, images, kind)
    ds.NumberOfFrames = len(images)
    ds.PixelData = _pixel_bytes(series, images[0])
    _functional_groups(ds, images, kind, split.shared, split.per_frame)
    known = locations(images, referenced)
    add_references(ds, ds.PerFrameFunctionalGroupsSequence, images, known)
    _empty_when_unknown(ds)
    _common_instance_reference(ds, images)
    # the classic images' attributes are copied throughout, as the images have them
    return finish_file(ds, TransferSyntax.EXPLICIT.uid, check_values=False)


def _name(ds: Dataset) -> str:
    filename = getattr(ds, "filename", None)
    return str(filename) if filename else f"<dataset {ds.get('SOPInstanceUID', '?')}>"


def _check_images(datasets: Sequence[Dataset], names: Sequence[str]) -> None:
    first = datasets[0]
    for ds, name in zip(datasets, names, strict=True):
        if int(ds.get("NumberOfFrames", 1) or 1) != 1:
            raise EncodingError(
                "a multi-frame image cannot be converted again",
                attribute="NumberOfFrames",
                hint="give the classic single-frame images",
            )
        if int(ds.get("SamplesPerPixel", 1)) != 1 or ds.get("PhotometricInterpretation") != (
            "MONOCHROME2"
        ):
            raise EncodingError(
                f"{name}: only MONOCHROME2 images are converted "
                f"(this one is {ds.get('PhotometricInterpretation', 'without one')})",
                attribute="PhotometricInterpretation",
                hint="enhanced CT/MR/PET images are MONOCHROME2; invert MONOCHROME1 images first",
            )
        for keyword in _PIXEL_MODULE:
            if ds.get(keyword) != first.get(keyword):
                raise EncodingError(
                    f"{name}: {keyword} is {ds.get(keyword)} where the first image has "
                    f"{first.get(keyword)}",
                    attribute=keyword,
                    hint="one converted image has one pixel layout: convert such images apart",
                )


def _new_image(
    images: Sequence[Dataset], kind: LegacyKind, options: SeriesOptions | None
) -> Dataset:
    first = images[0]
    digest = hashlib.sha256("\\".join(str(ds.SOPInstanceUID) for ds in images).encode())
    key = digest.hexdigest()[:32]
    if options is None:
        description = str(first.get("SeriesDescription", "") or kind.modality)
        options = SeriesOptions(
            series_description=f"{description} (enhanced)"[:64],
            series_number=(int(first.get("SeriesNumber", 0) or 0) + 1000) % 2**31,
        )
    options.validate()
    when = options.timestamp or _dt.datetime.now()
    ds = Dataset()
    ds.SOPClassUID = kind.sop_class_uid
    ds.SOPInstanceUID = options.sop_instance_uid or derived_uid(key, "legacy-enhanced")
    ds.InstanceCreationDate, ds.InstanceCreationTime = (
        when.strftime("%Y%m%d"),
        when.strftime("%H%M%S"),
    )
    ds.SeriesInstanceUID = options.series_instance_uid or derived_uid(key, "legacy-series")
    ds.SeriesNumber = options.series_number
    ds.SeriesDescription = options.series_description[:64]
    ds.InstanceNumber = options.instance_number
    content = _earliest(images, "ContentDate", "ContentTime") or when
    ds.ContentDate, ds.ContentTime = content.strftime("%Y%m%d"), content.strftime("%H%M%S.%f")
    return ds


def _image_module(ds: Dataset, images: Sequence[Dataset], kind: LegacyKind) -> None:
    """Image Pixel and the Enhanced CT/MR/PET Image Module attributes."""
    first = images[0]
    for keyword in _PIXEL_MODULE:
        setattr(ds, keyword, first.get(keyword))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    if kind.full_bits:
        ds.BitsStored, ds.HighBit = int(ds.BitsAllocated), int(ds.BitsAllocated) - 1
    types = [_frame_type(image) for image in images]
    first_values = {t[0] for t in types}
    ds.ImageType = [first_values.pop() if len(first_values) == 1 else "MIXED", *types[0][1:]]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.PresentationLUTShape = "IDENTITY"
    ds.ContentQualification = "PRODUCT"
    acquired = _earliest(images, "AcquisitionDate", "AcquisitionTime")
    if acquired is not None:
        ds.AcquisitionDateTime = acquired.strftime("%Y%m%d%H%M%S.%f")
    lossy = [str(image.get("LossyImageCompression", "")) for image in images]
    ds.LossyImageCompression = "01" if "01" in lossy else "00"
    ds.AcquisitionContextSequence = []


def _frame_type(ds: Dataset) -> list[str]:
    """Frame Type from the classic Image Type (PS3.3 C.8.16.1).

    Value 2 is always PRIMARY: the only value the enhanced CT/MR/PET images allow
    (C.8.16.1.2); a classic SECONDARY image (a reformat, say) stays DERIVED in value 1.
    """
    values = [str(v) for v in (ds.get("ImageType") or [])]
    first = values[0] if values and values[0] in ("ORIGINAL", "DERIVED") else "ORIGINAL"
    second = "PRIMARY"
    flavour = values[2] if len(values) > 2 and values[2] else "VOLUME"
    if flavour == "AXIAL":  # a classic CT flavour; enhanced images say VOLUME (C.8.16.1.3)
        flavour = "VOLUME"
    return [first, second, flavour, "NONE"]


def _when(date: Any, time: Any) -> _dt.datetime | None:
    date, time = str(date or "").strip(), str(time or "").strip()
    if len(date) != 8 or not date.isdigit():
        return None
    whole, _, fraction = time.partition(".")
    whole = (whole + "000000")[:6] if whole.isdigit() else "000000"
    micro = (fraction + "000000")[:6] if fraction.isdigit() else "000000"
    try:
        return _dt.datetime.strptime(date + whole + micro, "%Y%m%d%H%M%S%f")
    except ValueError:
        return None


def _earliest(images: Sequence[Dataset], date: str, time: str) -> _dt.datetime | None:
    found = [_when(ds.get(date), ds.get(time)) for ds in images]
    known = [when for when in found if when is not None]
    return min(known) if known else None


def _pixel_bytes(series: Series, first: Dataset) -> bytes:
    stored: NDArray[Any] = series.volume(rescale=False).array
    bits = int(first.BitsAllocated)
    signed = int(first.PixelRepresentation) == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    frames = stored.astype(dtype, copy=False)
    if frames.dtype != stored.dtype and not np.array_equal(frames, stored):
        raise EncodingError(
            "stored pixel values do not fit the images' own Bits Allocated",
            attribute="BitsAllocated",
            hint="the images are damaged: check Bits Stored and Pixel Representation",
        )
    return frames.tobytes()


def _functional_groups(
    ds: Dataset,
    images: Sequence[Dataset],
    kind: LegacyKind,
    unassigned_shared: Dataset,
    unassigned_per_frame: Sequence[Dataset],
) -> None:
    shared = Dataset()
    frames = [Dataset() for _ in images]
    for build in (groups.measures, groups.orientation, groups.anatomy, groups.window):
        groups.place(shared, frames, [build(image) for image in images])
    rescales = [groups.transformation(i, kind.rescale_type, required=_hu(i, kind)) for i in images]
    groups.place(shared, frames, rescales)
    if (
        kind.needs_window
        and "FrameVOILUTSequence" not in shared
        and not all("FrameVOILUTSequence" in frame for frame in frames)
    ):
        _add_default_window(shared, frames, ds)
    shared.UnassignedSharedConvertedAttributesSequence = [unassigned_shared]
    for number, (image, frame, unassigned) in enumerate(
        zip(images, frames, unassigned_per_frame, strict=True), start=1
    ):
        _per_frame(frame, image, kind, number)
        frame.UnassignedPerFrameConvertedAttributesSequence = [unassigned]
    add_dimensions(ds, by_segment=False)
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = frames


def _hu(image: Dataset, kind: LegacyKind) -> str | None:
    """``HU`` for an original CT frame (PS3.3 C.8.15.3.10), else None (the image's own).

    A classic CT image may say ``US`` (its Rescale Type is optional, HU by
    default); the enhanced CT frame of an ORIGINAL non-LOCALIZER image shall say HU.
    """
    frame_type = _frame_type(image)
    if kind.modality != "CT" or frame_type[0] != "ORIGINAL" or frame_type[2] == "LOCALIZER":
        return None
    given = str(image.get("RescaleType", "") or "")
    if given and given != "HU":
        log.info("%s: Rescale Type %s written as HU (original CT frame)", _name(image), given)
    return "HU"


def _add_default_window(shared: Dataset, frames: Sequence[Dataset], ds: Dataset) -> None:
    """Frame VOI LUT is mandatory for CT and PET: frames without a window get the data range."""
    bits = int(ds.BitsStored)
    low, high = (
        (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if ds.PixelRepresentation
        else (
            0,
            2**bits - 1,
        )
    )
    item = Dataset()
    item.WindowCenter = f"{(low + high + 1) / 2:g}"
    item.WindowWidth = f"{high - low + 1:g}"
    item.WindowCenterWidthExplanation = "STORED VALUE RANGE"
    if not any("FrameVOILUTSequence" in frame for frame in frames):
        shared.FrameVOILUTSequence = [item]
        return
    for frame in frames:
        if "FrameVOILUTSequence" not in frame:
            frame.FrameVOILUTSequence = [item]


def _per_frame(frame: Dataset, image: Dataset, kind: LegacyKind, number: int) -> None:
    content = Dataset()
    acquired = _when(image.get("AcquisitionDate"), image.get("AcquisitionTime"))
    if acquired is not None:
        content.FrameAcquisitionDateTime = acquired.strftime("%Y%m%d%H%M%S.%f")
    content.DimensionIndexValues = [number]
    frame.FrameContentSequence = [content]
    position = Dataset()
    position.ImagePositionPatient = image.ImagePositionPatient
    frame.PlanePositionSequence = [position]
    frame_type = Dataset()
    frame_type.FrameType = _frame_type(image)
    frame_type.PixelPresentation = "MONOCHROME"
    frame_type.VolumetricProperties = "VOLUME"
    frame_type.VolumeBasedCalculationTechnique = "NONE"
    setattr(frame, kind.frame_type_sequence, [frame_type])
    source = Dataset()
    source.ReferencedSOPClassUID = image.SOPClassUID
    source.ReferencedSOPInstanceUID = image.SOPInstanceUID
    frame.ConversionSourceAttributesSequence = [source]


def _empty_when_unknown(ds: Dataset) -> None:
    """Type 2 and 2C attributes the classic images lack: present, empty (unknown).

    Position Reference Indicator (Frame of Reference, Type 2); and Laterality (General
    Series, 2C: required for a paired body part unless Frame Laterality is given) when
    no frame has a Frame Anatomy, so the body part, paired or not, is unknown.
    """
    if "PositionReferenceIndicator" not in ds:
        ds.PositionReferenceIndicator = ""
    groups_ = [*ds.SharedFunctionalGroupsSequence, *ds.PerFrameFunctionalGroupsSequence]
    if "Laterality" not in ds and not any("FrameAnatomySequence" in g for g in groups_):
        ds.Laterality = ""


def _common_instance_reference(ds: Dataset, images: Sequence[Dataset]) -> None:
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID
    refs = []
    for image in images:
        ref = Dataset()
        ref.ReferencedSOPClassUID = image.SOPClassUID
        ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
        refs.append(ref)
    series.ReferencedInstanceSequence = refs
    ds.ReferencedSeriesSequence = [series]
