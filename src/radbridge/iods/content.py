"""What the content of a result is: algorithm, coded property descriptions, colours.

The shared layer of every family that describes labelled regions (SEG segments,
RT ROIs, SR tracking of segments) or names the algorithm that made them:

- :class:`AlgorithmIdentification` (Algorithm Identification Macro, PS3.3 Table
  10-19; SR documents write its name and version as TID 4019) and
  :class:`AlgorithmType`;
- :class:`SegmentDescription`, the Python form of one Segment Sequence item
  (Segment Description Macro, PS3.3 C.8.20-4): number, label, segmented property
  category and type (SNOMED CT), anatomic region, algorithm, tracking identifiers
  and display colour; RT ROIs carry the same codes. :func:`describe_labels` builds
  them from plain names such as ``{"1": "liver"}`` through the curated table in
  :mod:`radbridge.codes`;
- :data:`DEFAULT_COLOURS`, the display colours of segments that have none.

Examples
--------
>>> from radbridge.coding import sct
>>> liver = SegmentDescription(
...     1, "Liver", category=sct("123037004", "Anatomical Structure"),
...     property_type=sct("10200004", "Liver"),
...     algorithm=AlgorithmIdentification("radbridge-ref", "0.1"),
... )
>>> item = liver.to_dataset()
>>> item.SegmentAlgorithmType, item.SegmentedPropertyTypeCodeSequence[0].CodeValue
('AUTOMATIC', '10200004')
>>> SegmentDescription.from_dataset(item) == liver
True
"""

from __future__ import annotations

import enum
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from radbridge.coding import Code, dcm
from radbridge.errors import ConfigError, EncodingError, InvalidAttributeError
from radbridge.iods.common import choice
from radbridge.uids import is_valid_uid

__all__ = [
    "DEFAULT_COLOURS",
    "SEGMENTATION_FAMILY",
    "AlgorithmIdentification",
    "AlgorithmType",
    "LabelMapping",
    "SegmentDescription",
    "check_numbering",
    "default_colour",
    "describe_labels",
    "label_number",
    "load_labels",
    "suggest_codes",
]

#: DCM 113076 "Segmentation", the default algorithm family.
SEGMENTATION_FAMILY = dcm("113076", "Segmentation")


#: Colours for segments without a display colour (a colour-blind-safe cycle): the SEG
#: palette and the Secondary Capture overlays use them, segment k the (k-1)-th modulo 8.
DEFAULT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (128, 128, 128),
)


def default_colour(segment_number: int) -> tuple[int, int, int]:
    """Return the default display colour of a segment (or label) number.

    Examples
    --------
    >>> default_colour(1), default_colour(9)
    ((230, 159, 0), (230, 159, 0))
    """
    return DEFAULT_COLOURS[(segment_number - 1) % len(DEFAULT_COLOURS)]


class AlgorithmType(enum.StrEnum):
    """Segment Algorithm Type (0062,0008)."""

    AUTOMATIC = "AUTOMATIC"
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    MANUAL = "MANUAL"


@dataclass(frozen=True)
class AlgorithmIdentification:
    """Algorithm Identification Macro (PS3.3 Table 10-19).

    Parameters
    ----------
    name
        Algorithm Name.
    version
        Algorithm Version.
    family
        Algorithm Family Code (default DCM 113076 "Segmentation").
    source
        Algorithm Source (e.g. the organisation or URL), optional.
    parameters
        Algorithm Parameters as one string, optional.
    """

    name: str
    version: str
    family: Code = SEGMENTATION_FAMILY
    source: str | None = None
    parameters: str | None = None

    def to_dataset(self) -> Dataset:
        """Return the macro as an item of Segmentation Algorithm Identification Sequence.

        Raises
        ------
        EncodingError
            The name or the version is empty (both are Type 1).
        """
        for attribute, value in (("AlgorithmName", self.name), ("AlgorithmVersion", self.version)):
            if not value.strip():
                raise EncodingError(
                    f"the algorithm identification needs a {attribute} (Type 1)",
                    attribute=attribute,
                    hint="pass AlgorithmIdentification(name, version) with both filled in",
                )
        ds = Dataset()
        ds.AlgorithmFamilyCodeSequence = [self.family.to_dataset()]
        ds.AlgorithmName = self.name
        ds.AlgorithmVersion = self.version
        if self.parameters:
            ds.AlgorithmParameters = self.parameters
        if self.source:
            ds.AlgorithmSource = self.source
        return ds

    @classmethod
    def from_dataset(cls, ds: Dataset) -> AlgorithmIdentification:
        """Read the macro (tolerant: missing family becomes DCM 113076)."""
        family_seq = ds.get("AlgorithmFamilyCodeSequence")
        family = Code.from_dataset(family_seq[0]) if family_seq else SEGMENTATION_FAMILY
        return cls(
            str(ds.get("AlgorithmName", "") or ""),
            str(ds.get("AlgorithmVersion", "") or ""),
            family,
            str(ds.AlgorithmSource) if ds.get("AlgorithmSource") else None,
            str(ds.AlgorithmParameters) if ds.get("AlgorithmParameters") else None,
        )


@dataclass(frozen=True)
class SegmentDescription:
    """One segment of a Segmentation.

    Parameters
    ----------
    segment_number
        Segment Number: 1 for the first segment, increasing by 1. In a LABELMAP
        it is also the pixel value.
    label
        Segment Label (at most 64 characters).
    category
        Segmented Property Category (e.g. SCT 123037004 "Anatomical Structure").
        ``None`` only when read from a file that lacks it: both codes are Type 1
        in a SEG, so such a description cannot be written again without codes.
    property_type
        Segmented Property Type (e.g. SCT 10200004 "Liver"); ``None`` as above.
    property_type_modifiers
        Segmented Property Type Modifiers (e.g. SCT 7771000 "Left").
    anatomic_region
        Anatomic Region, for findings that need a location (e.g. a nodule in a lung).
    anatomic_region_modifiers
        Anatomic Region Modifiers.
    algorithm_type
        AUTOMATIC (default), SEMIAUTOMATIC or MANUAL (enum or string).
    algorithm
        Required unless ``algorithm_type`` is MANUAL.
    tracking_id, tracking_uid
        Tracking Identifier and UID, to follow a finding across reports; give both
        or neither.
    display_rgb
        Recommended display colour as sRGB 0-255, written as CIELab.
    description
        Segment Description (free text), optional.
    """

    segment_number: int
    label: str
    category: Code | None
    property_type: Code | None
    property_type_modifiers: tuple[Code, ...] = ()
    anatomic_region: Code | None = None
    anatomic_region_modifiers: tuple[Code, ...] = ()
    algorithm_type: AlgorithmType | str = AlgorithmType.AUTOMATIC
    algorithm: AlgorithmIdentification | None = field(default=None)
    tracking_id: str | None = None
    tracking_uid: str | None = None
    display_rgb: tuple[int, int, int] | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        algorithm_type = choice(
            AlgorithmType,
            self.algorithm_type,
            "SegmentAlgorithmType",
            where=f"segment {self.segment_number}",
            what="algorithm type",
        )
        object.__setattr__(self, "algorithm_type", algorithm_type)
        object.__setattr__(self, "property_type_modifiers", tuple(self.property_type_modifiers))
        object.__setattr__(self, "anatomic_region_modifiers", tuple(self.anatomic_region_modifiers))

    def validate(self) -> None:
        """Raise :class:`~radbridge.errors.EncodingError` unless the description can be written."""
        where = f"segment {self.segment_number} ({self.label!r})"
        if not 1 <= self.segment_number <= 65535:
            raise EncodingError(
                f"{where}: segment numbers run from 1 to 65535",
                attribute="SegmentNumber",
            )
        if not self.label or len(self.label) > 64:
            raise EncodingError(
                f"{where}: a segment label needs 1 to 64 characters",
                attribute="SegmentLabel",
            )
        if self.category is None or self.property_type is None:
            raise EncodingError(
                f"{where}: a SEG segment needs a Segmented Property Category and Type "
                "(both Type 1, PS3.3 Table C.8.20-4), and radbridge does not invent them",
                attribute="SegmentedPropertyTypeCodeSequence",
                hint=suggest_codes(self.label),
            )
        if self.algorithm is not None and not self.algorithm.name.strip():
            raise EncodingError(
                f"{where}: the segment's algorithm has no name",
                attribute="SegmentAlgorithmName",
                hint="pass algorithm=AlgorithmIdentification(name, version)",
            )
        if self.algorithm_type != AlgorithmType.MANUAL and self.algorithm is None:
            raise EncodingError(
                f"{where}: an {AlgorithmType(self.algorithm_type).value} segment needs its "
                "algorithm",
                attribute="SegmentAlgorithmName",
                hint="pass algorithm=AlgorithmIdentification(name, version)",
            )
        if (self.tracking_id is None) != (self.tracking_uid is None):
            raise EncodingError(
                f"{where}: give both a tracking ID and a tracking UID, or neither",
                attribute="TrackingID/TrackingUID",
            )
        if self.tracking_uid is not None and not is_valid_uid(self.tracking_uid):
            raise EncodingError(f"{where}: invalid tracking UID", attribute="TrackingUID")
        if self.display_rgb is not None and (
            len(self.display_rgb) != 3 or not all(0 <= int(v) <= 255 for v in self.display_rgb)
        ):
            raise EncodingError(
                f"{where}: display colour must be three values 0-255",
                attribute="RecommendedDisplayCIELabValue",
            )

    def to_dataset(self) -> Dataset:
        """Return the Segment Sequence item."""
        self.validate()
        assert self.category is not None and self.property_type is not None  # validated
        ds = Dataset()
        ds.SegmentedPropertyCategoryCodeSequence = [self.category.to_dataset()]
        ds.SegmentNumber = self.segment_number
        ds.SegmentLabel = self.label
        if self.description:
            ds.SegmentDescription = self.description
        ds.SegmentAlgorithmType = AlgorithmType(self.algorithm_type).value
        if self.algorithm is not None:
            ds.SegmentAlgorithmName = self.algorithm.name
            if self.algorithm.version:  # a name read without its macro has no version
                ds.SegmentationAlgorithmIdentificationSequence = [self.algorithm.to_dataset()]
        if self.display_rgb is not None:
            from radbridge.color import rgb_to_dicom_lab

            ds.RecommendedDisplayCIELabValue = list(rgb_to_dicom_lab(self.display_rgb))
        type_item, region = self.type_item(), self.region_item()
        ds.SegmentedPropertyTypeCodeSequence = [type_item]
        if region is not None:
            ds.AnatomicRegionSequence = [region]
        if self.tracking_id is not None:
            ds.TrackingID = self.tracking_id
            ds.TrackingUID = self.tracking_uid
        return ds

    def type_item(self) -> Dataset | None:
        """Return the property type's code item with its modifiers (``None`` without codes)."""
        if self.property_type is None:
            return None
        return _with_modifiers(
            self.property_type,
            "SegmentedPropertyTypeModifierCodeSequence",
            self.property_type_modifiers,
        )

    def region_item(self) -> Dataset | None:
        """Return the anatomic region's code item with its modifiers (``None`` without one)."""
        if self.anatomic_region is None:
            return None
        return _with_modifiers(
            self.anatomic_region, "AnatomicRegionModifierSequence", self.anatomic_region_modifiers
        )

    @classmethod
    def from_dataset(cls, ds: Dataset, *, source: str | None = None) -> SegmentDescription:
        """Read a Segment Sequence item, tolerating what real files leave out.

        Missing or damaged codes are ``None`` (with a warning): the segment's pixels
        stay readable, and nothing is invented in their place.
        """
        from radbridge.attributes import int_value

        number = int_value(ds, "SegmentNumber", 0, source=source)
        label = str(ds.get("SegmentLabel", "") or f"Segment {number}")
        category = _code_or_none(ds, "SegmentedPropertyCategoryCodeSequence", number, source)
        property_type = _code_or_none(ds, "SegmentedPropertyTypeCodeSequence", number, source)
        type_seq = ds.get("SegmentedPropertyTypeCodeSequence") or [Dataset()]
        modifiers = tuple(
            Code.from_dataset(m, source=source)
            for m in type_seq[0].get("SegmentedPropertyTypeModifierCodeSequence", [])
        )
        region_seq = ds.get("AnatomicRegionSequence")
        region = Code.from_dataset(region_seq[0], source=source) if region_seq else None
        region_mods = tuple(
            Code.from_dataset(m, source=source)
            for m in (region_seq[0].get("AnatomicRegionModifierSequence", []) if region_seq else [])
        )
        algo_seq = ds.get("SegmentationAlgorithmIdentificationSequence")
        algorithm = AlgorithmIdentification.from_dataset(algo_seq[0]) if algo_seq else None
        if algorithm is None and ds.get("SegmentAlgorithmName"):
            algorithm = AlgorithmIdentification(str(ds.SegmentAlgorithmName), "")
        algo_type = str(ds.get("SegmentAlgorithmType", "") or "")
        if algo_type not in AlgorithmType.__members__:
            algo_type = "AUTOMATIC" if algorithm is not None else "MANUAL"
        rgb = _display_rgb(ds, number, source)
        return cls(
            segment_number=number,
            label=label,
            category=category,
            property_type=property_type,
            property_type_modifiers=modifiers,
            anatomic_region=region,
            anatomic_region_modifiers=region_mods,
            algorithm_type=algo_type,
            algorithm=algorithm,
            tracking_id=str(ds.TrackingID) if ds.get("TrackingID") else None,
            tracking_uid=str(ds.TrackingUID) if ds.get("TrackingUID") else None,
            display_rgb=rgb,
            description=str(ds.SegmentDescription) if ds.get("SegmentDescription") else None,
        )

    def to_json(self) -> dict[str, object]:
        """Return a JSON-ready dictionary (the form ``radbridge seg info --json`` prints)."""
        out: dict[str, object] = {
            "segment_number": self.segment_number,
            "label": self.label,
            "category": self.category.to_json() if self.category else None,
            "property_type": self.property_type.to_json() if self.property_type else None,
            "algorithm_type": AlgorithmType(self.algorithm_type).value,
        }
        if self.property_type_modifiers:
            out["property_type_modifiers"] = [c.to_json() for c in self.property_type_modifiers]
        if self.anatomic_region:
            out["anatomic_region"] = self.anatomic_region.to_json()
        if self.anatomic_region_modifiers:
            out["anatomic_region_modifiers"] = [c.to_json() for c in self.anatomic_region_modifiers]
        if self.algorithm:
            out["algorithm"] = {
                "name": self.algorithm.name,
                "version": self.algorithm.version,
                "family": self.algorithm.family.to_json(),
            }
        if self.tracking_id:
            out["tracking_id"] = self.tracking_id
            out["tracking_uid"] = self.tracking_uid
        if self.display_rgb:
            out["display_rgb"] = list(self.display_rgb)
        if self.description:
            out["description"] = self.description
        return out


def _with_modifiers(code: Code, keyword: str, modifiers: Sequence[Code]) -> Dataset:
    item = code.to_dataset()
    if modifiers:
        setattr(item, keyword, [m.to_dataset() for m in modifiers])
    return item


def _display_rgb(ds: Dataset, number: int, source: str | None) -> tuple[int, int, int] | None:
    """Return the recommended display colour as sRGB (a damaged one is dropped, warned)."""
    from radbridge.attributes import floats_value
    from radbridge.color import dicom_lab_to_rgb

    try:
        lab = floats_value(ds, "RecommendedDisplayCIELabValue", 3, source=source)
    except InvalidAttributeError:
        lab = None
        warnings.warn(
            f"{source or 'SEG'}: segment {number} has a damaged display colour; it is ignored",
            stacklevel=4,
        )
    if lab is None or not all(0 <= v <= 65535 for v in lab):
        return None
    return dicom_lab_to_rgb(tuple(int(v) for v in lab))


def _code_or_none(ds: Dataset, keyword: str, number: int, source: str | None) -> Code | None:
    seq = ds.get(keyword)
    if seq:
        try:
            return Code.from_dataset(seq[0], source=source)
        except InvalidAttributeError:
            pass
        except Exception:  # any damage in a code item is recoverable here
            pass
    warnings.warn(
        f"{source or 'SEG'}: segment {number} has no usable {keyword}; it is left uncoded",
        stacklevel=3,
    )
    return None


def suggest_codes(label: str) -> str:
    """Say how to give a segment its codes, with names from the code table close to ``label``.

    Examples
    --------
    >>> suggest_codes("livr").endswith('e.g. "liver"')
    True
    """
    from radbridge.codes import lookup
    from radbridge.errors import UnknownTermError

    try:
        names = [lookup(label).name]
    except UnknownTermError as exc:
        names = list(getattr(exc, "suggestions", ()) or ())
    except (ImportError, ValueError):
        names = []
    shown = ", ".join(f'"{n}"' for n in names[:5])
    return (
        'give its codes ({"label": ..., "category": {...}, "type": {...}}) or a name from the '
        "code table (radbridge.codes)" + (f", e.g. {shown}" if shown else "")
    )


LabelSpec = str | SegmentDescription | Mapping[str, Any]
#: ``{label value: spec}`` with integer or numeric-string keys.
LabelMapping = Mapping[int, LabelSpec] | Mapping[str, LabelSpec]


def describe_labels(
    labels: LabelMapping,
    *,
    algorithm: AlgorithmIdentification | None = None,
    algorithm_type: AlgorithmType | str = AlgorithmType.AUTOMATIC,
) -> list[SegmentDescription]:
    """Build segment descriptions from ``{label value: name or specification}``.

    A value is either a name looked up in the curated table of
    :mod:`radbridge.codes` (TotalSegmentator class names and more), a ready
    :class:`SegmentDescription` (its number is set to the key), or a mapping with
    explicit codes::

        {"label": "Tumour", "category": {"value": "49755003", "scheme": "SCT",
         "meaning": "Morphologically Altered Structure"},
         "type": {"value": "108369006", "scheme": "SCT", "meaning": "Tumor"},
         "rgb": [255, 0, 0]}

    (optional keys: ``type_modifier``, ``region``, ``region_modifier``,
    ``tracking_id``, ``tracking_uid``, ``description``; a mapping with ``name``
    starts from the table entry and overrides what it gives).

    Parameters
    ----------
    labels
        Mapping of label value (int or numeric string) to a name or specification.
    algorithm
        The algorithm for every segment (required unless MANUAL).
    algorithm_type
        AUTOMATIC, SEMIAUTOMATIC or MANUAL.

    Raises
    ------
    ConfigError
        A key is not a positive integer, or a specification lacks its codes.
    InvalidAttributeError
        A name is not in the table (the message lists close names).

    Examples
    --------
    >>> spec = {"label": "Tumour",
    ...         "category": {"value": "49755003", "scheme": "SCT",
    ...                      "meaning": "Morphologically Altered Structure"},
    ...         "type": {"value": "108369006", "scheme": "SCT", "meaning": "Tumor"}}
    >>> [d.label for d in describe_labels({"1": spec}, algorithm_type="MANUAL")]
    ['Tumour']
    """
    out = []
    for key, value in labels.items():
        number = label_number(key)
        if isinstance(value, SegmentDescription):
            out.append(replace(value, segment_number=number))
        elif isinstance(value, str):
            out.append(_from_spec(number, {"name": value}, algorithm, algorithm_type))
        else:
            out.append(_from_spec(number, value, algorithm, algorithm_type))
    return sorted(out, key=lambda d: d.segment_number)


def label_number(key: object, *, example: str = '{"1": "liver", "2": "spleen"}') -> int:
    """Return the label value a ``labels.json`` key names (an integer or its digits).

    Raises
    ------
    ConfigError
        The key is not an integer (the hint shows ``example``).

    Examples
    --------
    >>> label_number("7"), label_number(7)
    (7, 7)
    """
    try:
        return int(str(key))
    except (TypeError, ValueError):
        raise ConfigError(
            f"label key {key!r} is not an integer",
            attribute="labels",
            hint=f"write labels as {example}",
        ) from None


def _code(spec: Mapping[str, Any], key: str, number: int) -> Code | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"label {number}: {key!r} must be an object with value, scheme and meaning",
            attribute=key,
        )
    return Code.from_json(dict(value))


def _from_spec(
    number: int,
    spec: Mapping[str, Any],
    algorithm: AlgorithmIdentification | None,
    algorithm_type: AlgorithmType | str,
) -> SegmentDescription:
    fields: dict[str, Any] = {}
    if "name" in spec:
        from radbridge.codes import lookup

        term = lookup(str(spec["name"]))
        fields = {
            "label": str(spec["name"]),
            "category": term.category,
            "property_type": term.property_type,
            "property_type_modifiers": (term.type_modifier,) if term.type_modifier else (),
            "anatomic_region": term.anatomic_region,
            "anatomic_region_modifiers": (
                (term.anatomic_region_modifier,) if term.anatomic_region_modifier else ()
            ),
            "display_rgb": term.rgb,
        }
    explicit = {
        "category": _code(spec, "category", number),
        "property_type": _code(spec, "type", number),
        "anatomic_region": _code(spec, "region", number),
    }
    fields.update({k: v for k, v in explicit.items() if v is not None})
    for key, field_name in (
        ("type_modifier", "property_type_modifiers"),
        ("region_modifier", "anatomic_region_modifiers"),
    ):
        code = _code(spec, key, number)
        if code is not None:
            fields[field_name] = (code,)
    for key in ("label", "tracking_id", "tracking_uid", "description"):
        if spec.get(key) is not None:
            fields[key] = str(spec[key])
    if spec.get("rgb") is not None:
        fields["display_rgb"] = tuple(int(v) for v in spec["rgb"])
    if "category" not in fields or "property_type" not in fields or "label" not in fields:
        raise ConfigError(
            f"label {number}: give a known 'name', or 'label', 'category' and 'type' codes",
            attribute="labels",
            hint='e.g. {"1": "liver"} or {"1": {"label": ..., "category": {...}, "type": {...}}}',
        )
    return SegmentDescription(
        segment_number=number, algorithm_type=algorithm_type, algorithm=algorithm, **fields
    )


def load_labels(path: str | os.PathLike[str]) -> dict[int, LabelSpec]:
    """Read a ``labels.json`` file: ``{"1": "liver", "2": {"label": ..., ...}}``.

    Raises
    ------
    ConfigError
        The file is not such a JSON object.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # JSON, text encoding, nesting
        raise ConfigError(
            f"cannot read labels ({exc})", path=p, hint='write {"1": "liver", "2": "spleen"}'
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(v, str | dict) for v in data.values()):
        raise ConfigError(
            "labels must be a JSON object of label value to a name or an object",
            path=p,
            hint='write {"1": "liver", "2": "spleen"}',
        )
    try:
        return {int(k): v for k, v in data.items()}
    except ValueError:
        raise ConfigError(
            "label keys must be integers", path=p, hint='write {"1": "liver"}'
        ) from None


def check_numbering(descriptions: Sequence[SegmentDescription]) -> None:
    """Raise unless segment numbers are 1, 2, ... N without gaps or repeats."""
    numbers = [d.segment_number for d in descriptions]
    if numbers != list(range(1, len(numbers) + 1)):
        raise EncodingError(
            f"segment numbers must be 1..{len(numbers)} in order, got {numbers[:10]}"
            + ("..." if len(numbers) > 10 else ""),
            attribute="SegmentNumber",
            hint="renumber the label map so labels run 1, 2, 3, ... without gaps "
            "(radbridge.results.encode_results and the CLI renumber them)",
        )
