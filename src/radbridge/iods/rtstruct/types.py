"""What an RT Structure Set ROI is: name, colour, interpreted type, codes, algorithm.

A :class:`ROIDescription` gathers what one ROI carries in the three modules of
an RT Structure Set: the Structure Set ROI Sequence item (number, name,
generation algorithm), the ROI Contour Sequence item (display colour) and the
RT ROI Observations Sequence item (RT ROI Interpreted Type and, when known,
the same SNOMED CT / DCM codes a Segmentation's segment carries). It is built
from a :class:`~radbridge.iods.seg.SegmentDescription` with
:meth:`ROIDescription.from_segment`, so labels, colours and codes are shared
between SEG and RTSTRUCT.

Examples
--------
>>> roi = ROIDescription(1, "GTV primary", interpreted_type="gtv", display_rgb=(255, 0, 0))
>>> roi.interpreted_type, roi.generation_algorithm
(<RTROIInterpretedType.GTV: 'GTV'>, <ROIGenerationAlgorithm.MANUAL: 'MANUAL'>)
>>> RTROIInterpretedType("avoid")
<RTROIInterpretedType.AVOIDANCE: 'AVOIDANCE'>
>>> ROIDescription(2, "x", interpreted_type="TUMOUR")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
radbridge.errors.EncodingError: ROI 2 ('x'): unknown RT ROI Interpreted Type 'TUMOUR' ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from radbridge.coding import Code
from radbridge.errors import ConfigError, EncodingError, InvalidAttributeError
from radbridge.iods.common import CaseInsensitiveEnum, choice
from radbridge.iods.content import (
    DEFAULT_COLOURS,
    AlgorithmIdentification,
    AlgorithmType,
    SegmentDescription,
    describe_labels,
    label_number,
)

__all__ = [
    "DEFAULT_COLOURS",
    "RT_STRUCTURE_SET_STORAGE",
    "ContourGeometricType",
    "HoleStyle",
    "ROIDescription",
    "ROIGenerationAlgorithm",
    "RTROIInterpretedType",
    "describe_rois",
]


#: RT Structure Set Storage.
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


class RTROIInterpretedType(CaseInsensitiveEnum):
    """RT ROI Interpreted Type (3006,00A4), the Defined Terms of PS3.3 C.8.8.8.

    ``"AVOID"`` is accepted as a short form of ``AVOIDANCE``.
    """

    EXTERNAL = "EXTERNAL"
    PTV = "PTV"
    CTV = "CTV"
    GTV = "GTV"
    TREATED_VOLUME = "TREATED_VOLUME"
    IRRAD_VOLUME = "IRRAD_VOLUME"
    OAR = "OAR"
    BOLUS = "BOLUS"
    AVOIDANCE = "AVOIDANCE"
    ORGAN = "ORGAN"
    MARKER = "MARKER"
    REGISTRATION = "REGISTRATION"
    ISOCENTER = "ISOCENTER"
    CONTRAST_AGENT = "CONTRAST_AGENT"
    CAVITY = "CAVITY"
    BRACHY_CHANNEL = "BRACHY_CHANNEL"
    BRACHY_ACCESSORY = "BRACHY_ACCESSORY"
    BRACHY_SRC_APP = "BRACHY_SRC_APP"
    BRACHY_CHNL_SHLD = "BRACHY_CHNL_SHLD"
    SUPPORT = "SUPPORT"
    FIXATION = "FIXATION"
    DOSE_REGION = "DOSE_REGION"
    CONTROL = "CONTROL"
    DOSE_MEASUREMENT = "DOSE_MEASUREMENT"
    DEVICE = "DEVICE"

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str) and value.strip().upper() == "AVOID":
            return cls.AVOIDANCE
        return super()._missing_(value)


class ROIGenerationAlgorithm(CaseInsensitiveEnum):
    """ROI Generation Algorithm (3006,0036)."""

    AUTOMATIC = "AUTOMATIC"
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    MANUAL = "MANUAL"


class ContourGeometricType(CaseInsensitiveEnum):
    """Contour Geometric Type (3006,0042)."""

    POINT = "POINT"
    OPEN_PLANAR = "OPEN_PLANAR"
    OPEN_NONPLANAR = "OPEN_NONPLANAR"
    CLOSED_PLANAR = "CLOSED_PLANAR"
    CLOSEDPLANAR_XOR = "CLOSEDPLANAR_XOR"


class HoleStyle(CaseInsensitiveEnum):
    """How the writer encodes holes and separate islands of one ROI on one image.

    SEPARATE
        (default) one CLOSED_PLANAR contour per boundary: every island and
        every hole is its own contour; a reader combines the contours of one
        image with the even-odd rule (a point inside an odd number of
        contours is inside the ROI). Most planning systems read it so.
    KEYHOLE
        each island with its holes becomes one CLOSED_PLANAR contour, the
        holes joined to the outer boundary by zero-width channels (PS3.3
        C.8.8.6.3), for systems that do not combine contours.
    XOR
        like SEPARATE, but the contours say CLOSEDPLANAR_XOR, which makes
        the even-odd combination explicit (newer standard; older systems may
        not know the term).
    """

    SEPARATE = "SEPARATE"
    KEYHOLE = "KEYHOLE"
    XOR = "XOR"


_LABELS = {
    "RTROIInterpretedType": "RT ROI Interpreted Type",
    "ROIGenerationAlgorithm": "ROI Generation Algorithm",
}


def _enum_value(cls: type[CaseInsensitiveEnum], value: Any, what: str, attribute: str) -> Any:
    return choice(cls, value, attribute, where=what, what=_LABELS[attribute])


_ALGORITHM_TYPES = {
    AlgorithmType.AUTOMATIC: ROIGenerationAlgorithm.AUTOMATIC,
    AlgorithmType.SEMIAUTOMATIC: ROIGenerationAlgorithm.SEMIAUTOMATIC,
    AlgorithmType.MANUAL: ROIGenerationAlgorithm.MANUAL,
}


def _default_interpreted_type(segment: SegmentDescription) -> RTROIInterpretedType:
    if segment.category is not None and segment.category.value == "49755003":
        return RTROIInterpretedType.GTV  # morphologically altered structure
    if segment.property_type is not None and segment.property_type.value == "38266002":
        return RTROIInterpretedType.EXTERNAL  # entire body
    return RTROIInterpretedType.ORGAN


@dataclass(frozen=True)
class ROIDescription:
    """One ROI of an RT Structure Set.

    Parameters
    ----------
    roi_number
        ROI Number (3006,0022), unique within the structure set (1, 2, ...).
        When the ROI comes from a label map, it is also the label value.
    name
        ROI Name (3006,0026), at most 64 characters.
    interpreted_type
        RT ROI Interpreted Type (enum or its string, any case): ORGAN by
        default; GTV, CTV, PTV, AVOIDANCE, EXTERNAL, OAR, ...
    generation_algorithm
        ROI Generation Algorithm: AUTOMATIC, SEMIAUTOMATIC or MANUAL.
    algorithm
        The algorithm that made the ROI (ROI Derivation Algorithm
        Identification Sequence); required unless MANUAL.
    display_rgb
        ROI Display Color, sRGB 0-255.
    description
        ROI Description, optional.
    observation_label
        ROI Observation Label (e.g. ``"CTV1"``), optional.
    segment
        The segment description this ROI was made from (or is to become):
        its category, type, modifiers and anatomic region are written as the
        ROI's codes and read back.
    """

    roi_number: int
    name: str
    interpreted_type: RTROIInterpretedType | str = RTROIInterpretedType.ORGAN
    generation_algorithm: ROIGenerationAlgorithm | str = ROIGenerationAlgorithm.MANUAL
    algorithm: AlgorithmIdentification | None = None
    display_rgb: tuple[int, int, int] | None = None
    description: str | None = None
    observation_label: str | None = None
    segment: SegmentDescription | None = None

    def __post_init__(self) -> None:
        where = f"ROI {self.roi_number} ({self.name!r})"
        object.__setattr__(
            self,
            "interpreted_type",
            _enum_value(RTROIInterpretedType, self.interpreted_type, where, "RTROIInterpretedType"),
        )
        object.__setattr__(
            self,
            "generation_algorithm",
            _enum_value(
                ROIGenerationAlgorithm, self.generation_algorithm, where, "ROIGenerationAlgorithm"
            ),
        )
        if self.display_rgb is not None:
            object.__setattr__(self, "display_rgb", tuple(int(v) for v in self.display_rgb))

    def validate(self) -> None:
        """Raise :class:`~radbridge.errors.EncodingError` unless the ROI can be written."""
        where = f"ROI {self.roi_number} ({self.name!r})"
        if not 1 <= self.roi_number <= 2**31 - 1:
            raise EncodingError(f"{where}: ROI numbers must be positive", attribute="ROINumber")
        if not self.name.strip() or len(self.name) > 64 or "\\" in self.name:
            raise EncodingError(
                f"{where}: an ROI name needs 1 to 64 characters and no backslash",
                attribute="ROIName",
            )
        if self.generation_algorithm != ROIGenerationAlgorithm.MANUAL and self.algorithm is None:
            raise EncodingError(
                f"{where}: an {ROIGenerationAlgorithm(self.generation_algorithm).value} ROI "
                "needs its algorithm",
                attribute="ROIDerivationAlgorithmIdentificationSequence",
                hint="pass algorithm=AlgorithmIdentification(name, version)",
            )
        if self.algorithm is not None and not (
            self.algorithm.name.strip() and self.algorithm.version.strip()
        ):
            raise EncodingError(
                f"{where}: the algorithm needs a name and a version",
                attribute="AlgorithmVersion",
                hint="pass AlgorithmIdentification(name, version) with both filled in",
            )
        if self.display_rgb is not None and (
            len(self.display_rgb) != 3 or not all(0 <= v <= 255 for v in self.display_rgb)
        ):
            raise EncodingError(
                f"{where}: display colour must be three values 0-255", attribute="ROIDisplayColor"
            )
        if self.observation_label is not None and len(self.observation_label) > 16:
            raise EncodingError(
                f"{where}: ROI Observation Label holds at most 16 characters",
                attribute="ROIObservationLabel",
            )

    @property
    def category(self) -> Code | None:
        """Segmented Property Category of the ROI, when known."""
        return self.segment.category if self.segment is not None else None

    @property
    def property_type(self) -> Code | None:
        """The ROI's identification code (RT ROI Identification Code Sequence), when known."""
        return self.segment.property_type if self.segment is not None else None

    @classmethod
    def from_segment(
        cls,
        segment: SegmentDescription,
        *,
        interpreted_type: RTROIInterpretedType | str | None = None,
    ) -> ROIDescription:
        """Describe the ROI that carries a SEG segment (same number, label, colour, codes).

        The interpreted type defaults to GTV for morphologically altered
        structures (SCT 49755003: lesions, tumours, nodules), to EXTERNAL for the
        entire body (SCT 38266002: the external patient contour, as planning
        systems expect it) and to ORGAN for everything else; pass it to choose.
        """
        if interpreted_type is None:
            interpreted_type = _default_interpreted_type(segment)
        return cls(
            roi_number=segment.segment_number,
            name=segment.label,
            interpreted_type=interpreted_type,
            generation_algorithm=_ALGORITHM_TYPES[AlgorithmType(segment.algorithm_type)],
            algorithm=segment.algorithm,
            display_rgb=segment.display_rgb,
            description=segment.description,
            segment=segment,
        )

    def to_segment(self, segment_number: int | None = None) -> SegmentDescription | None:
        """Return the segment description for a SEG, or ``None`` when the ROI has no codes."""
        if self.segment is None:
            return None
        algorithm_type = AlgorithmType(ROIGenerationAlgorithm(self.generation_algorithm).value)
        return replace(
            self.segment,
            segment_number=segment_number or self.roi_number,
            label=self.name,
            algorithm_type=algorithm_type,
            algorithm=self.algorithm,
            display_rgb=self.display_rgb,
        )


#: Keys of a labels.json entry that only an RT Structure Set uses.
_RT_KEYS = ("interpreted_type", "observation_label")

ROISpec = str | ROIDescription | SegmentDescription | Mapping[str, Any]


def describe_rois(
    rois: Sequence[ROIDescription | SegmentDescription]
    | Mapping[int, ROISpec]
    | Mapping[str, ROISpec],
    *,
    algorithm: AlgorithmIdentification | None = None,
    interpreted_type: RTROIInterpretedType | str | None = None,
) -> list[ROIDescription]:
    """Build ROI descriptions from descriptions, segments, or ``{label: name or spec}``.

    Mapping values follow :func:`~radbridge.iods.seg.describe_labels` (a name
    from the curated code table, or an object with explicit codes), plus two
    RT keys: ``interpreted_type`` and ``observation_label``. A name that is
    not in the code table is used as a plain ROI name without codes (ROI names
    are free text in radiotherapy, e.g. ``"PTV_70"``).

    Parameters
    ----------
    rois
        The ROIs, in any of the forms above.
    algorithm
        The algorithm of ROIs given by name (without it they are MANUAL).
    interpreted_type
        RT ROI Interpreted Type for ROIs that do not say (default: GTV for
        morphologically altered structures, ORGAN for anything else).

    Raises
    ------
    EncodingError
        Two ROIs share a number or a name (:func:`roi_name_key`: without case and
        surrounding spaces), or a value cannot be used.
    ConfigError
        A mapping key is not an integer.

    Examples
    --------
    >>> [(r.roi_number, r.name, r.interpreted_type.value) for r in describe_rois(
    ...     {"1": "PTV_70", "2": {"label": "Cord", "interpreted_type": "OAR"}})]
    [(1, 'PTV_70', 'ORGAN'), (2, 'Cord', 'OAR')]
    """
    if interpreted_type is not None:
        interpreted_type = _enum_value(
            RTROIInterpretedType, interpreted_type, "default for all ROIs", "RTROIInterpretedType"
        )
    if isinstance(rois, Mapping):
        out = [
            _from_mapping_entry(key, value, algorithm, interpreted_type)
            for key, value in rois.items()
        ]
    else:
        out = [
            r
            if isinstance(r, ROIDescription)
            else ROIDescription.from_segment(r, interpreted_type=interpreted_type)
            for r in rois
        ]
    out.sort(key=lambda r: r.roi_number)
    numbers = [r.roi_number for r in out]
    if len(set(numbers)) != len(numbers):
        raise EncodingError(
            f"ROI numbers must be unique, got {numbers[:10]}", attribute="ROINumber"
        )
    if not out:
        raise EncodingError("no ROIs described", attribute="rois")
    for roi in out:
        roi.validate()
    _check_unique_names(out)
    return out


def roi_name_key(name: str) -> str:
    """Return the form in which ROI names compare: without case and surrounding spaces.

    An LO value may be padded with leading and trailing spaces (PS3.5 6.2), which
    are no part of the name; names are looked up without case
    (``StructureSet.roi``), as planning system templates and scripts commonly
    match structure names.

    Examples
    --------
    >>> roi_name_key(" PTV_70 ") == roi_name_key("ptv_70")
    True
    """
    return name.strip().lower()


def same_names(numbers_and_names: Sequence[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Return the groups of ROIs ``(number, name)`` whose names are one by :func:`roi_name_key`."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for number, name in numbers_and_names:
        groups.setdefault(roi_name_key(name), []).append((number, name))
    return [group for group in groups.values() if len(group) > 1]


def describe_same_names(groups: Sequence[Sequence[tuple[int, str]]]) -> str:
    """Say which ROIs share a name: ``ROIs 2 ('Lung') and 3 ('lung')``."""
    parts = []
    for group in groups:
        named = [f"{number} ({name!r})" for number, name in group]
        parts.append(f"ROIs {', '.join(named[:-1])} and {named[-1]}")
    return "; ".join(parts)


def _check_unique_names(rois: Sequence[ROIDescription]) -> None:
    """Refuse ROIs that share a name: planning systems and rt-utils key structures by name."""
    groups = same_names([(roi.roi_number, roi.name) for roi in rois])
    if groups:
        raise EncodingError(
            f"{describe_same_names(groups)} have the same ROI Name (names are compared "
            "without case and surrounding spaces); planning systems and rt-utils find "
            "structures by name, so an import would fail or merge them",
            attribute="ROIName",
            hint="give each ROI its own name, e.g. 'GTV_1' and 'GTV_2' (from a SEG: its "
            "Segment Labels; CLI: the labels file)",
        )


def _from_mapping_entry(
    key: int | str,
    value: ROISpec,
    algorithm: AlgorithmIdentification | None,
    interpreted_type: RTROIInterpretedType | str | None,
) -> ROIDescription:
    number = label_number(key, example='{"1": "liver", "2": "PTV_70"}')
    if isinstance(value, ROIDescription):
        return replace(value, roi_number=number)
    if isinstance(value, SegmentDescription):
        return ROIDescription.from_segment(
            replace(value, segment_number=number), interpreted_type=interpreted_type
        )
    spec: dict[str, Any] = {"name": value} if isinstance(value, str) else dict(value)
    rt = {k: spec.pop(k) for k in _RT_KEYS if k in spec}
    algo_type = AlgorithmType.MANUAL if algorithm is None else AlgorithmType.AUTOMATIC
    try:
        (segment,) = describe_labels({number: spec}, algorithm=algorithm, algorithm_type=algo_type)
    except (InvalidAttributeError, ConfigError, ImportError):
        if "category" in spec or "type" in spec:
            raise  # explicit codes that do not work are an error, not a plain name
        name = str(spec.get("label") or spec.get("name") or "")
        rgb = spec.get("rgb")
        return ROIDescription(
            number,
            name,
            interpreted_type=rt.get("interpreted_type") or interpreted_type or "ORGAN",
            generation_algorithm=algo_type.value,
            algorithm=algorithm,
            display_rgb=tuple(int(v) for v in rgb) if rgb is not None else None,  # type: ignore[arg-type]
            description=spec.get("description"),
            observation_label=rt.get("observation_label"),
        )
    roi = ROIDescription.from_segment(
        segment, interpreted_type=rt.get("interpreted_type") or interpreted_type
    )
    if rt.get("observation_label"):
        roi = replace(roi, observation_label=str(rt["observation_label"]))
    return roi
