"""Pieces every object family shares: series options, equipment, file meta, enum choices.

And the base of what a reader returns (:class:`ReadObject`, :func:`check_sop_class`).

Examples
--------
>>> opts = SeriesOptions(series_description="Liver AI", series_number=901)
>>> ds = new_instance("1.2.840.10008.5.1.4.1.1.66.4", opts, modality="SEG")
>>> ds.Modality, int(ds.SeriesNumber), ds.Manufacturer
('SEG', 901, 'radbridge')
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VM
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from radbridge._version import __version__
from radbridge.errors import (
    DecodingError,
    EncodingError,
    InvalidAttributeError,
    UnsupportedObjectError,
)
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.source import CONTEXT_KEYWORDS
from radbridge.uids import derived_uid, is_valid_uid, new_uid

__all__ = [
    "EXPLICIT_VALUE_LIMIT",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "CaseInsensitiveEnum",
    "ReadObject",
    "RegionSlices",
    "SeriesOptions",
    "StackedMasks",
    "check_single_values",
    "check_sop_class",
    "choice",
    "file_meta",
    "finish_file",
    "label_map",
    "little_endian_for",
    "new_instance",
    "paint_label_map",
    "paint_regions",
    "series_options",
    "texts_of",
    "use_character_set_for",
]

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=enum.Enum)

#: Implementation Class UID written in the file meta of every radbridge file.
IMPLEMENTATION_CLASS_UID = derived_uid("radbridge", "implementation-class")
#: Implementation Version Name (at most 16 characters).
IMPLEMENTATION_VERSION_NAME = "RADBRIDGE_010"
_CS_LABEL = re.compile(r"^[A-Z0-9_ ]{1,16}$")


@dataclass(frozen=True)
class SeriesOptions:
    """Series, instance and equipment attributes of a derived object.

    Parameters
    ----------
    series_description, series_number, instance_number
        General Series / General Image attributes.
    content_label
        Content Label (CS: up to 16 of ``A-Z 0-9 _`` and space).
    content_description, content_creator_name
        Content Identification attributes.
    series_instance_uid, sop_instance_uid
        Give them to fix the UIDs (e.g. derived UIDs for repeatable results);
        new random UIDs otherwise.
    manufacturer, manufacturer_model_name, device_serial_number, software_versions
        Enhanced General Equipment attributes (the device is radbridge itself by
        default).
    timestamp
        Date and time written as series, content and instance creation date/time;
        ``None`` uses the current time. Fix it (with the UIDs) for byte-identical
        re-runs.
    """

    series_description: str = "radbridge result"
    series_number: int = 300
    instance_number: int = 1
    content_label: str = "RADBRIDGE"
    content_description: str = ""
    content_creator_name: str = ""
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    manufacturer: str = "radbridge"
    manufacturer_model_name: str = "radbridge"
    device_serial_number: str = "0"
    software_versions: str | None = None
    timestamp: _dt.datetime | None = None

    def validate(self) -> None:
        """Raise :class:`~radbridge.errors.EncodingError` for values DICOM cannot hold."""
        if not _CS_LABEL.match(self.content_label):
            raise EncodingError(
                f"content label {self.content_label!r} is not a valid CS value",
                attribute="ContentLabel",
                hint="use up to 16 upper-case letters, digits, underscores or spaces",
            )
        for name in ("series_instance_uid", "sop_instance_uid"):
            value = getattr(self, name)
            if value is not None and not is_valid_uid(value):
                raise EncodingError(f"{name} {value!r} is not a valid UID", attribute=name)
        if not 0 <= self.series_number <= 2**31 - 1 or self.instance_number < 0:
            raise EncodingError(
                "series and instance numbers must be non-negative integers",
                attribute="SeriesNumber/InstanceNumber",
            )


def new_instance(
    sop_class_uid: str,
    options: SeriesOptions,
    *,
    modality: str,
    now: _dt.datetime | None = None,
) -> Dataset:
    """Start a derived instance: SOP Common, General Series/Image, equipment, content ids.

    Patient/study context and the module-specific attributes are the caller's.
    """
    options.validate()
    when = now or options.timestamp or _dt.datetime.now()
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds = Dataset()
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = options.sop_instance_uid or new_uid()
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.Modality = modality
    ds.SeriesInstanceUID = options.series_instance_uid or new_uid()
    ds.SeriesNumber = options.series_number
    ds.SeriesDescription = options.series_description
    ds.SeriesDate, ds.SeriesTime = date, time
    ds.InstanceNumber = options.instance_number
    ds.ContentDate, ds.ContentTime = date, time
    ds.Manufacturer = options.manufacturer
    ds.ManufacturerModelName = options.manufacturer_model_name
    ds.DeviceSerialNumber = options.device_serial_number
    ds.SoftwareVersions = options.software_versions or __version__
    ds.ContentLabel = options.content_label
    ds.ContentDescription = options.content_description
    ds.ContentCreatorName = options.content_creator_name
    return ds


@dataclass(frozen=True, eq=False)
class StackedMasks:
    """One mask per segment (or ROI) on a grid: ``array[segment, slice, row, column]``."""

    array: NDArray[Any]
    geometry: VolumeGeometry
    segment_numbers: tuple[int, ...]


def label_map(
    masks: StackedMasks,
    *,
    overlap: str = "error",
    what: str = "segment",
    path: str | None = None,
    attribute: str | None = None,
) -> Volume:
    """Combine stacked masks into one label map (0 background, numbers elsewhere).

    Parameters
    ----------
    masks
        One mask per region, ``[region, slice, row, column]``.
    overlap
        ``"error"`` (default) refuses overlapping regions; ``"smallest"`` lets the
        smaller region win where regions overlap (organs inside a body outline keep
        their label).
    what, path, attribute
        The region's name, the file and the attribute for messages.

    Raises
    ------
    DecodingError
        Regions overlap and ``overlap`` is ``"error"``, or numbers are not 1 to 65535.

    Examples
    --------
    >>> import numpy as np
    >>> grid = VolumeGeometry((1, 1, 3), np.eye(4))
    >>> masks = StackedMasks(np.array([[[[1, 1, 1]]], [[[0, 1, 0]]]], bool), grid, (1, 2))
    >>> label_map(masks, overlap="smallest").array.tolist()
    [[[1, 2, 1]]]
    """
    numbers = masks.segment_numbers
    dtype = _label_dtype(numbers, overlap, what, path, attribute)
    flat = masks.array.reshape(len(numbers), int(np.prod(masks.geometry.shape)))  # 0 regions too
    counts = np.count_nonzero(flat, axis=1) if numbers else np.zeros(0, np.int64)
    # Regions overlap when their voxels outnumber those of their union (no summed copy).
    if overlap == "error" and numbers and int(counts.sum()) > np.count_nonzero(flat.any(axis=0)):
        raise _overlap_error(what, path, attribute)
    out = np.zeros(masks.geometry.shape, dtype)
    for i in np.argsort(-np.asarray(counts), kind="stable"):
        out[masks.array[i]] = numbers[i]
    return Volume.from_geometry(out, masks.geometry)


def _label_dtype(
    numbers: Sequence[int], overlap: str, what: str, path: str | None, attribute: str | None
) -> type[np.unsignedinteger[Any]]:
    """Check the overlap policy and the numbers of a label map; return its dtype."""
    if overlap not in ("error", "smallest"):
        raise InvalidAttributeError(
            f"unknown overlap policy {overlap!r}",
            attribute="overlap",
            hint="use error or smallest",
        )
    if numbers and (max(numbers) > 65535 or min(numbers) < 1):
        raise DecodingError(
            f"{what} numbers must be 1 to 65535 to be the values of a label map "
            f"(0 is the background), not {min(numbers)}..{max(numbers)}",
            path=path,
            attribute=attribute,
            hint="use stacked_volume()",
        )
    return np.uint8 if not numbers or max(numbers) <= 255 else np.uint16


def _overlap_error(what: str, path: str | None, attribute: str | None) -> DecodingError:
    return DecodingError(
        f"{what}s overlap, so they cannot be combined into one label map",
        path=path,
        attribute=attribute,
        hint="pass overlap='smallest' (CLI: --overlap smallest) or use stacked masks",
    )


#: Yields ``(slice index, 2-D mask)`` of one region, each slice at most once.
RegionSlices = Callable[[int], Iterable[tuple[int, NDArray[np.bool_]]]]


def paint_label_map(
    geometry: VolumeGeometry,
    numbers: Sequence[int],
    slices: RegionSlices,
    *,
    overlap: str = "error",
    what: str = "segment",
    path: str | None = None,
    attribute: str | None = None,
) -> Volume:
    """:func:`label_map` of regions given slice by slice, without one mask per region.

    ``slices(i)`` yields the masked slices of region ``i`` (number ``numbers[i]``;
    numbers are unique). Memory: the label map and one slice, whatever the
    number of regions. Every region is painted in its order while its voxels are
    counted and the regions it overlaps noted; with ``overlap="smallest"`` the
    overlapping regions are then painted again, largest first (ties: the later
    wins), which is :func:`label_map`'s result voxel for voxel: only they cover
    voxels that several regions share. ``slices`` is called once per region, and
    a second time for the overlapping ones.

    Raises
    ------
    DecodingError, InvalidAttributeError
        As :func:`label_map`; the policy and numbers are checked before any slice.

    Examples
    --------
    >>> grid = VolumeGeometry((1, 1, 3), np.eye(4))
    >>> rows = [np.array([[1, 1, 1]], bool), np.array([[0, 1, 0]], bool)]
    >>> paint_label_map(grid, (1, 2), lambda i: [(0, rows[i])], overlap="smallest").array.tolist()
    [[[1, 2, 1]]]
    """
    dtype = _label_dtype(numbers, overlap, what, path, attribute)
    out, counts, overlapping = paint_regions(geometry.shape, dtype, numbers, slices)
    if overlapping.any():
        if overlap == "error":
            raise _overlap_error(what, path, attribute)
        chosen = np.flatnonzero(overlapping)
        for i in chosen[np.argsort(-counts[chosen], kind="stable")]:
            for k, mask in slices(int(i)):
                out[k][mask] = numbers[i]
    return Volume.from_geometry(out, geometry)


def paint_regions(
    shape: tuple[int, ...], dtype: Any, values: Sequence[int], slices: RegionSlices
) -> tuple[NDArray[Any], NDArray[np.int64], NDArray[np.bool_]]:
    """Paint region ``i``'s slices with ``values[i]``, in order (later regions on top).

    Returns the painted array, each region's voxel count, and which regions
    share a voxel with another (``values`` unique and not 0).
    """
    out = np.zeros(shape, dtype)
    index = {value: i for i, value in enumerate(values)}
    counts = np.zeros(len(values), np.int64)
    overlapping = np.zeros(len(values), bool)
    for i, value in enumerate(values):
        for k, mask in slices(i):
            plane = out[k]
            under = plane[mask]
            counts[i] += under.size
            shared = np.unique(under[under != 0])
            if shared.size:
                overlapping[i] = True
                overlapping[[index[int(v)] for v in shared]] = True
            plane[mask] = value
    return out, counts, overlapping


#: Longest value (bytes) an Explicit VR element with a 2-byte length field can hold.
EXPLICIT_VALUE_LIMIT = 0xFFFE


def little_endian_for(longest: int, what: str) -> UID:
    """Return Explicit VR Little Endian, or Implicit if a value of ``longest`` bytes needs it.

    Explicit VR gives most value representations (FL, DS, ...) a 2-byte length, so
    a value over :data:`EXPLICIT_VALUE_LIMIT` bytes (an outline of many thousand
    points) can only be written in Implicit VR Little Endian, whose lengths have 4
    bytes. ``what`` names that value in the log line saying so.

    Examples
    --------
    >>> little_endian_for(80, "a contour").name
    'Explicit VR Little Endian'
    >>> little_endian_for(70_000, "a contour").name
    'Implicit VR Little Endian'
    """
    if longest <= EXPLICIT_VALUE_LIMIT:
        return ExplicitVRLittleEndian
    log.info("%s holds %d bytes: writing Implicit VR Little Endian", what, longest)
    return ImplicitVRLittleEndian


def file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    """Return the file meta information for ``ds`` written with ``transfer_syntax``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(str(ds.SOPClassUID))
    meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def finish_file(
    ds: Dataset,
    transfer_syntax: str,
    *,
    raw_explicit_le: bool = False,
    as_given: Collection[str] = CONTEXT_KEYWORDS,
    check_values: bool = True,
) -> FileDataset:
    """Return ``ds`` as a file data set with its file meta, ready to ``save_as``.

    A text the data set's character set cannot hold (a segment label in Japanese
    beside a Latin-1 patient name) switches it to UTF-8 (:func:`use_character_set_for`)
    instead of being written as question marks. An attribute of one value that holds
    several (a backslash in a label: DICOM's value separator) is refused
    (:func:`check_single_values`), and so is a text longer than its value
    representation holds (a 70-character algorithm version in an LO), which
    would otherwise be cut or make a non-conformant file; neither is checked in
    the top-level attributes named in ``as_given`` (copied from the source as they
    were: its patient and study attributes by default); ``check_values=False``
    checks none (a conversion that copies the source's attributes throughout).

    Raises
    ------
    EncodingError
        An attribute of one value holds several, or a text is too long.

    ``raw_explicit_le``: the data set holds raw sequences encoded as Explicit VR
    Little Endian (the bulk per-frame functional groups); its original encoding is
    declared so, and pydicom writes those bytes unchanged.
    """
    # one walk for both: the texts, and (when checking) no attribute of one value with several
    use_character_set_for(ds, _walk_texts(ds, check_values, frozenset(as_given)))
    out = FileDataset("", ds, file_meta=file_meta(ds, transfer_syntax), preamble=b"\x00" * 128)
    if raw_explicit_le:
        out.set_original_encoding(False, True, out._character_set)
    return out


class CaseInsensitiveEnum(enum.StrEnum):
    """A string enum that also takes its values in any case, hyphens for underscores.

    Examples
    --------
    >>> class Organization(CaseInsensitiveEnum):
    ...     TILED_FULL = "TILED_FULL"
    >>> Organization(" tiled-full") is Organization.TILED_FULL
    True
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            wanted = value.strip().upper().replace("-", "_")
            for member in cls:
                if member.value == wanted:
                    return member
        return None


def choice(
    cls: type[_E], value: object, attribute: str, *, where: str = "", what: str = "value"
) -> _E:
    """Return the member of ``cls`` that ``value`` names: a member, or its value in any case.

    The one coercer of every enum parameter (each parameter takes an enum or its
    string value). Hyphens count as underscores (``"closed-planar"`` is
    ``CLOSED_PLANAR``); an enum may accept more through its own ``_missing_``.

    Raises
    ------
    EncodingError
        No member matches: "<where>: unknown <what> <value>", the hint lists the values.

    Examples
    --------
    >>> class Kind(enum.StrEnum):
    ...     BINARY = "BINARY"
    ...     LABEL_MAP = "LABEL_MAP"
    >>> choice(Kind, "label-map", "kind"), choice(Kind, Kind.BINARY, "kind")
    (<Kind.LABEL_MAP: 'LABEL_MAP'>, <Kind.BINARY: 'BINARY'>)
    >>> choice(Kind, "other", "kind")
    Traceback (most recent call last):
    ...
    radbridge.errors.EncodingError: unknown value 'other' [kind]. Use one of BINARY, LABEL_MAP.
    """
    try:
        return cls(value)
    except ValueError:
        pass
    if isinstance(value, str):
        wanted = value.strip().replace("-", "_").upper()
        for member in cls:
            if str(member.value).upper() == wanted:
                return member
    raise EncodingError(
        f"{where + ': ' if where else ''}unknown {what} {value!r}",
        attribute=attribute,
        hint="use one of " + ", ".join(str(m.value) for m in cls),
    )


def series_options(
    options: SeriesOptions | None,
    series: SeriesOptions | None,
    *,
    default: SeriesOptions,
) -> SeriesOptions:
    """Return the series options given as ``options=`` (or the old ``series=``), else ``default``.

    Every encoder names them ``options``; ``series=`` was the name in SEG and RTSTRUCT
    and still works, with a :class:`DeprecationWarning`.

    Examples
    --------
    >>> series_options(None, None, default=SeriesOptions(series_number=7)).series_number
    7
    """
    if series is not None:
        if options is not None:
            raise TypeError("give the series options as options= only (series= is its old name)")
        warnings.warn(
            "series= is deprecated: pass the SeriesOptions as options=",
            DeprecationWarning,
            stacklevel=3,
        )
        options = series
    chosen = options or default
    chosen.validate()
    return chosen


def check_sop_class(
    ds: Dataset, sop_classes: Collection[str], *, what: str, source: str | None, hint: str
) -> str:
    """Return the data set's SOP Class UID if it is one of ``sop_classes``.

    Raises
    ------
    UnsupportedObjectError
        Another (or no) SOP class: the message says what was expected (``what``,
        e.g. ``"a Segmentation"``) and what came, ``hint`` what to give instead.

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    >>> try:
    ...     check_sop_class(ds, ["1.2.840.10008.5.1.4.1.1.66.4"], what="a Segmentation",
    ...                     source="ct.dcm", hint="give a SEG")
    ... except UnsupportedObjectError as err:
    ...     print(err.message, "|", err.attribute)
    not a Segmentation (SOP class 1.2.840.10008.5.1.4.1.1.2) | SOPClassUID
    """
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in sop_classes:
        raise UnsupportedObjectError(
            f"not {what} (SOP class {sop_class or 'missing'})",
            path=source,
            attribute="SOPClassUID",
            hint=hint,
        )
    return sop_class


class ReadObject:
    """The base of what a family's reader returns: a data set of the family's SOP class.

    A subclass names the SOP classes it reads (``SOP_CLASSES``), what it is called in
    messages (``WHAT``) and what to give instead (``HINT``); its own ``__init__`` calls
    this one first, then reads its modules.

    Parameters
    ----------
    ds
        The data set.
    source
        Name for messages (the file's path when read from one).

    Attributes
    ----------
    dataset
        The underlying data set.
    source
        Name for messages.

    Raises
    ------
    UnsupportedObjectError
        The data set is of another SOP class.

    Examples
    --------
    >>> class Note(ReadObject):
    ...     SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.88.11",)
    ...     WHAT = "a Basic Text SR"
    >>> ds = Dataset()
    >>> ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    >>> Note(ds, source="note.dcm").dataset is ds
    True
    """

    SOP_CLASSES: ClassVar[tuple[str, ...]] = ()
    WHAT: ClassVar[str] = "a supported object"
    HINT: ClassVar[str] = ""

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        self.dataset = ds
        self.source = source
        check_sop_class(ds, self.SOP_CLASSES, what=self.WHAT, source=source, hint=self.HINT)


def use_character_set_for(ds: Dataset, texts: Sequence[str]) -> None:
    """Switch to UTF-8 (ISO_IR 192) when a text cannot be written in the data set's repertoire.

    Examples
    --------
    >>> ds = Dataset()
    >>> use_character_set_for(ds, ["Leber", "Lébér"])
    >>> ds.SpecificCharacterSet
    'ISO_IR 192'
    """
    wide = [t for t in texts if not t.isascii()]
    if not wide:
        return
    value = ds.get("SpecificCharacterSet") or ""
    encoding = convert_encodings(value)[0] if value else "ascii"
    try:
        for text in wide:
            text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        # a new element: the old one may be shared with the source's context
        ds[_CHARACTER_SET] = DataElement(_CHARACTER_SET, "CS", "ISO_IR 192")


#: Value representations whose bytes depend on the Specific Character Set (PS3.5 6.1.2.3).
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
_CHARACTER_SET = 0x00080005


def check_single_values(ds: Dataset, *, skip: Collection[str] = ()) -> None:
    r"""Refuse an attribute of one value (VM 1) that holds several, in ``ds`` or its items.

    pydicom splits a string at each backslash, DICOM's value separator, so a label
    such as ``"left\right"`` would be written as two values where the standard
    allows one, and readers would show ``"left"``. A text longer than its value
    representation holds (SH 16, LO 64, ST 1,024, LT 10,240 characters; PN 64 in
    each component group) is refused too. ``skip`` names top-level attributes to
    leave as they are (copied from the source).

    Raises
    ------
    EncodingError
        Names the attribute and its value.

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.SeriesDescription = "CT\AI"
    >>> check_single_values(ds)
    Traceback (most recent call last):
    ...
    radbridge.errors.EncodingError: SeriesDescription 'CT\AI' holds a backslash, ...
    """
    _walk_texts(ds, True, frozenset(skip))


def _single_valued(tag: int) -> bool:
    try:
        return dictionary_VM(tag) == "1"
    except KeyError:  # a private or unknown attribute: its VM is not known
        return False


def texts_of(ds: Dataset) -> list[str]:
    """Return the text values of ``ds`` and its items that the character set encodes.

    Raw elements (bytes already encoded, such as the bulk functional groups) are
    not decoded.

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.SeriesDescription, ds.Modality = "Leber", "SEG"
    >>> item = Dataset()
    >>> item.SegmentLabel = "肝臓"
    >>> ds.SegmentSequence = [item]
    >>> texts_of(ds)
    ['Leber', '肝臓']
    """
    return _walk_texts(ds, False, frozenset())


def _walk_texts(ds: Dataset, check: bool, skip: frozenset[str]) -> list[str]:
    """Return the texts of ``ds`` and its items; with ``check``, refuse several values in one.

    ``skip``: top-level attributes not checked (their texts are still returned).
    """
    found: list[str] = []
    for element in ds.elements():
        if isinstance(element, RawDataElement) or element.value is None:
            continue
        checked = check and element.keyword not in skip
        if element.VR == "SQ":
            for item in element.value:
                found += _walk_texts(item, checked, frozenset())
            continue
        if checked and isinstance(element.value, MultiValue) and _single_valued(element.tag):
            text = "\\".join(str(value) for value in element.value)
            raise EncodingError(
                f"{element.keyword} '{text}' holds a backslash, which DICOM reads as a value "
                "separator: it would be written as several values where one belongs",
                attribute=element.keyword,
                hint="use another character than a backslash (e.g. '/')",
            )
        if element.VR in _CHARSET_VRS:
            values = [str(v) for v in (element.value if element.VM > 1 else [element.value])]
            if checked:
                _check_lengths(element, values)
            found += values
    return found


#: Most characters a value of these VRs holds (PS3.5 Table 6.2-1).
_MAX_CHARACTERS = {"SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240}


def _check_lengths(element: DataElement, values: list[str]) -> None:
    limit = _MAX_CHARACTERS.get(element.VR)
    if limit is None:
        return
    for value in values:
        # a person name holds 64 characters in each of its three component groups
        for part in value.split("=") if element.VR == "PN" else [value]:
            if len(part) > limit:
                shown = part if len(part) <= 80 else part[:77] + "..."
                raise EncodingError(
                    f"{element.keyword} '{shown}' has {len(part)} characters; its value "
                    f"representation ({element.VR}) holds at most {limit}, and radbridge "
                    "does not cut a text silently",
                    attribute=element.keyword,
                    hint=f"shorten it to {limit} characters or fewer",
                )
