"""SR content items: building them, and reading any SR into a generic content tree.

The builders return plain :class:`pydicom.Dataset` items (PS3.3 C.17.3, Table
C.17-5 onwards); :func:`content_tree` reads the content of *any* SR document into
:class:`ContentItem` nodes, so documents of templates radbridge does not know still
come out as data, never as a crash.

Examples
--------
>>> from radbridge.iods.sr.concepts import TRACKING_IDENTIFIER
>>> item = text_item("HAS OBS CONTEXT", TRACKING_IDENTIFIER, "nodule 1")
>>> node = ContentItem.from_dataset(item)
>>> node.value_type, node.concept.meaning, node.value
('TEXT', 'Tracking Identifier', 'nodule 1')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom import Dataset
from pydicom.valuerep import format_number_as_ds

from radbridge.coding import Code
from radbridge.dicom_tables import srt_to_sct
from radbridge.errors import EncodingError, InvalidAttributeError, MissingAttributeError
from radbridge.iods.source import sop_reference

__all__ = [
    "ContentItem",
    "as_sct",
    "code_item",
    "container_item",
    "content_tree",
    "image_item",
    "num_item",
    "scoord3d_item",
    "scoord_item",
    "text_item",
    "uidref_item",
]


def _base(relationship: str | None, value_type: str, concept: Code | None) -> Dataset:
    item = Dataset()
    if relationship:
        item.RelationshipType = relationship
    item.ValueType = value_type
    if concept is not None:
        item.ConceptNameCodeSequence = [concept.to_dataset()]
    return item


def container_item(
    relationship: str | None, concept: Code, children: Sequence[Dataset], *, template: str = ""
) -> Dataset:
    """Return a CONTAINER (SEPARATE continuity) holding ``children``."""
    item = _base(relationship, "CONTAINER", concept)
    item.ContinuityOfContent = "SEPARATE"
    if template:
        ref = Dataset()
        ref.MappingResource = "DCMR"
        ref.TemplateIdentifier = template
        item.ContentTemplateSequence = [ref]
    if children:
        item.ContentSequence = list(children)
    return item


#: The attribute holding the value of each value type with one plain value.
_VALUE_KEYWORDS = {"TEXT": "TextValue", "UIDREF": "UID", "PNAME": "PersonName"}


def _value_item(relationship: str, value_type: str, concept: Code, value: str) -> Dataset:
    item = _base(relationship, value_type, concept)
    setattr(item, _VALUE_KEYWORDS[value_type], value)
    return item


def text_item(relationship: str, concept: Code, value: str) -> Dataset:
    """Return a TEXT item."""
    return _value_item(relationship, "TEXT", concept, value)


def code_item(relationship: str, concept: Code, value: Code) -> Dataset:
    """Return a CODE item."""
    item = _base(relationship, "CODE", concept)
    item.ConceptCodeSequence = [value.to_dataset()]
    return item


def uidref_item(relationship: str, concept: Code, value: str) -> Dataset:
    """Return a UIDREF item."""
    return _value_item(relationship, "UIDREF", concept, value)


def pname_item(relationship: str, concept: Code, value: str) -> Dataset:
    """Return a PNAME item."""
    return _value_item(relationship, "PNAME", concept, value)


def num_item(
    relationship: str,
    concept: Code,
    value: float,
    unit: Code,
    children: Sequence[Dataset] = (),
) -> Dataset:
    """Return a NUM item; the value is kept exactly in Floating Point Value as well.

    Raises
    ------
    EncodingError
        ``value`` is NaN or infinite (a measurement must be a number).
    """
    if not math.isfinite(value):
        raise EncodingError(
            f"measurement {concept.meaning!r} is {value}",
            attribute="NumericValue",
            hint="leave the measurement out, or report why it is missing",
        )
    item = _base(relationship, "NUM", concept)
    measured = Dataset()
    measured.NumericValue = format_number_as_ds(float(value))
    if float(measured.NumericValue) != float(value):
        measured.FloatingPointValue = float(value)
    measured.MeasurementUnitsCodeSequence = [unit.to_dataset()]
    item.MeasuredValueSequence = [measured]
    if children:
        item.ContentSequence = list(children)
    return item


def image_item(
    relationship: str,
    concept: Code | None,
    sop_class_uid: str,
    sop_instance_uid: str,
    *,
    frames: Sequence[int] = (),
    segments: Sequence[int] = (),
) -> Dataset:
    """Return an IMAGE item referencing an instance (and frames or segments of it)."""
    item = _base(relationship, "IMAGE", concept)
    ref = sop_reference(sop_class_uid, sop_instance_uid)
    if frames:
        ref.ReferencedFrameNumber = list(frames) if len(frames) > 1 else frames[0]
    if segments:
        ref.ReferencedSegmentNumber = list(segments) if len(segments) > 1 else segments[0]
    item.ReferencedSOPSequence = [ref]
    return item


def _coordinates(
    relationship: str,
    concept: Code | None,
    value_type: str,
    graphic_type: str,
    points: Sequence[float],
) -> Dataset:
    item = _base(relationship, value_type, concept)
    item.GraphicType = graphic_type
    item.GraphicData = [float(p) for p in points]
    return item


def scoord_item(
    relationship: str,
    concept: Code | None,
    graphic_type: str,
    points: Sequence[float],
    source: Dataset,
) -> Dataset:
    """Return a SCOORD item (image coordinates) with its SELECTED FROM source image."""
    item = _coordinates(relationship, concept, "SCOORD", graphic_type, points)
    item.ContentSequence = [source]
    return item


def scoord3d_item(
    relationship: str,
    concept: Code | None,
    graphic_type: str,
    points: Sequence[float],
    frame_of_reference_uid: str,
) -> Dataset:
    """Return a SCOORD3D item (patient coordinates, mm)."""
    item = _coordinates(relationship, concept, "SCOORD3D", graphic_type, points)
    item.ReferencedFrameOfReferenceUID = frame_of_reference_uid
    return item


def as_sct(code: Code) -> Code:
    """Return an SRT code as its SCT equivalent (when there is one); other codes as they are."""
    if code.scheme != "SRT":
        return code
    value = srt_to_sct().get(code.value)
    return replace(code, value=value, scheme="SCT") if value else code


@dataclass
class ContentItem:
    """One node of an SR content tree, whatever the template.

    ``value`` depends on the value type: text for TEXT/DATE/TIME/DATETIME/UIDREF/PNAME,
    a :class:`~radbridge.coding.Code` for CODE, ``(number, unit Code)`` for NUM,
    a list of ``(SOP class, SOP instance, frames, segments)`` for IMAGE/COMPOSITE,
    the referenced item's position (a list of integers) for by-reference items
    (value type ``"REFERENCE"``),
    ``(graphic type, points)`` for SCOORD, ``(graphic type, points, frame of reference
    UID)`` for SCOORD3D, and ``None`` for CONTAINER.
    """

    value_type: str
    relationship: str | None
    concept: Code | None
    value: Any
    children: list[ContentItem] = field(default_factory=list)

    @classmethod
    def from_dataset(cls, item: Dataset, *, source: str | None = None) -> ContentItem:
        """Read an item and its descendants (tolerant: unknown value types keep ``None``)."""
        value_type = str(item.get("ValueType", "") or "")
        if not value_type and "ReferencedContentItemIdentifier" in item:
            value_type = "REFERENCE"  # a by-reference relationship to another item
        if not value_type:
            raise MissingAttributeError(
                "content item without a value type", path=source, attribute="ValueType"
            )
        names = item.get("ConceptNameCodeSequence") or []
        concept = Code.from_dataset(names[0], source=source) if names else None
        node = cls(
            value_type,
            str(item.get("RelationshipType", "") or "") or None,
            concept,
            _value(item, value_type, source),
        )
        node.children = [
            cls.from_dataset(child, source=source) for child in item.get("ContentSequence", [])
        ]
        return node

    def is_named(self, *concepts: Code) -> bool:
        """Tell whether the item's concept name is one of ``concepts``.

        A retired SNOMED-RT code (scheme ``SRT``, e.g. G-C0E3 "Finding Site", as dcmqi
        and older DCMTK write it) names the same concept as its SNOMED CT equivalent
        (SCT 363698007), by the SNOMED ID to Concept ID table pydicom ships; highdicom
        treats them as equal too.
        """
        if self.concept is None:
            return False
        name = as_sct(self.concept)
        return any(name == as_sct(concept) for concept in concepts)

    def find(self, concept: Code) -> list[ContentItem]:
        """Return the direct children whose concept name is ``concept`` (SRT = its SCT)."""
        return [c for c in self.children if c.is_named(concept)]

    def first(self, concept: Code) -> ContentItem | None:
        """Return the first direct child named ``concept``, if any."""
        found = self.find(concept)
        return found[0] if found else None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready form of the subtree."""
        value = self.value
        if isinstance(value, Code):
            value = value.to_json()
        elif self.value_type == "NUM" and value is not None:
            value = {"value": value[0], "unit": value[1].to_json() if value[1] else None}
        elif isinstance(value, tuple):
            value = list(value)
        out: dict[str, Any] = {"value_type": self.value_type, "value": value}
        if self.relationship:
            out["relationship"] = self.relationship
        if self.concept:
            out["concept"] = self.concept.to_json()
        if self.children:
            out["children"] = [c.to_json() for c in self.children]
        return out


def _references(item: Dataset) -> list[tuple[str, str, list[int], list[int]]]:
    refs = []
    for ref in item.get("ReferencedSOPSequence", []):
        frames = ref.get("ReferencedFrameNumber")
        segments = ref.get("ReferencedSegmentNumber")
        refs.append(
            (
                str(ref.get("ReferencedSOPClassUID", "")),
                str(ref.get("ReferencedSOPInstanceUID", "")),
                _ints(frames),
                _ints(segments),
            )
        )
    return refs


def _ints(value: Any) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, int | str):
        return [int(value)]
    return [int(v) for v in value]


def _code_value(item: Dataset, source: str | None) -> Code | None:
    codes = item.get("ConceptCodeSequence") or []
    return Code.from_dataset(codes[0], source=source) if codes else None


def _num_value(item: Dataset, source: str | None) -> tuple[float, Code | None] | None:
    measured = item.get("MeasuredValueSequence") or []
    if not measured:
        return None  # an empty NUM: the measurement is absent (TID 300 allows it)
    m = measured[0]
    number = (
        float(m.FloatingPointValue) if "FloatingPointValue" in m else float(m.get("NumericValue"))
    )
    units = m.get("MeasurementUnitsCodeSequence") or []
    return (number, Code.from_dataset(units[0], source=source) if units else None)


def _scoord_value(item: Dataset, source: str | None) -> tuple[str, list[float]]:
    return (str(item.get("GraphicType", "")), [float(v) for v in item.GraphicData])


def _scoord3d_value(item: Dataset, source: str | None) -> tuple[str, list[float], str]:
    return (*_scoord_value(item, source), str(item.get("ReferencedFrameOfReferenceUID", "")))


def _text_of(keyword: str) -> Callable[[Dataset, str | None], str]:
    return lambda item, source: str(item.get(keyword, ""))


#: How each value type's value is read from its content item.
_VALUES: dict[str, Callable[[Dataset, str | None], Any]] = {
    "TEXT": _text_of("TextValue"),
    "CODE": _code_value,
    "NUM": _num_value,
    "IMAGE": lambda item, source: _references(item),
    "COMPOSITE": lambda item, source: _references(item),
    "WAVEFORM": lambda item, source: _references(item),
    "SCOORD": _scoord_value,
    "SCOORD3D": _scoord3d_value,
    "UIDREF": _text_of("UID"),
    "PNAME": _text_of("PersonName"),
    "REFERENCE": lambda item, source: [int(v) for v in item.ReferencedContentItemIdentifier],
    "DATE": _text_of("Date"),
    "TIME": _text_of("Time"),
    "DATETIME": _text_of("DateTime"),
}


def _value(item: Dataset, value_type: str, source: str | None) -> Any:
    read = _VALUES.get(value_type)
    if read is None:
        return None
    try:
        return read(item, source)
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidAttributeError(
            f"{value_type} content item cannot be read ({exc})",
            path=source,
            attribute=value_type,
            hint="the SR content is malformed",
        ) from exc


def content_tree(ds: Dataset, *, source: str | None = None) -> ContentItem:
    """Return the whole content tree of an SR document (the root is its CONTAINER)."""
    if ds.get("ValueType") != "CONTAINER" or "ConceptNameCodeSequence" not in ds:
        raise MissingAttributeError(
            "not an SR document: no root CONTAINER with a concept name",
            path=source,
            attribute="ValueType",
            hint="give a Structured Report or Key Object Selection document",
        )
    return ContentItem.from_dataset(ds, source=source)
