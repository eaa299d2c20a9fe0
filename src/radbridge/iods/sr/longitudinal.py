"""Longitudinal comparison: lesions of a prior TID 1500 report followed into a current one.

:func:`compare_reports` matches the lesions (measurement groups with a position) of two
reports of the same patient — by Tracking Unique Identifier, else by the distance of
their centres in the shared frame of reference (or after a rigid ``transform`` from the
prior's frame into the current one) — and computes per lesion and per measurement the
prior and current values, the absolute and relative change, and a status: new, grown,
shrunk, stable or resolved. :func:`encode_comparison` writes it as a TID 1500 report:
one group per lesion carrying the prior's tracking identifier and UID (so a third
visit continues the chain), the current values, the prior values and the changes as
the same measurement with a "Derivation" modifier, the days between the studies
(DCM 128740 "Longitudinal Temporal Offset from Event", from the prior study), the
status as a qualitative evaluation, and a TID 1502 time point (label and order); the
prior SR, its SEG and images go in the Pertinent Other Evidence. The codes are in
``docs/longitudinal.md``.

Examples
--------
>>> from radbridge.coding import Code, sct
>>> from radbridge.sr import ImageRegion, Measurement, MeasurementGroup, MeasurementReport
>>> from radbridge.sr import concepts
>>> volume = sct("118565006", "Volume")
>>> def report(ml, uid):
...     centre = ImageRegion("POINT", (0.0, 0.0, 0.0), frame_of_reference_uid="1.2.3",
...                          purpose=concepts.CENTER_OF_MASS)
...     m = Measurement(volume, ml, Code("ml", "UCUM", "ml"), region=centre)
...     return MeasurementReport(groups=(MeasurementGroup("nodule", tracking_uid=uid,
...                                                       measurements=(m,)),))
>>> comparison = compare_reports(report(2.0, "1.2.4"), report(3.0, "1.2.5"))
>>> lesion = comparison.lesions[0]
>>> lesion.status, lesion.matched_by, lesion.tracking_uid
('grown', 'position', '1.2.4')
>>> lesion.changes[0].absolute, lesion.changes[0].relative
(1.0, 0.5)
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom import Dataset
from pydicom.dataset import FileDataset

from radbridge.coding import Code, dcm, sct
from radbridge.errors import EncodingError, GeometryError
from radbridge.iods.common import SeriesOptions
from radbridge.iods.source import Series
from radbridge.iods.sr import concepts
from radbridge.iods.sr.reader import read_measurement_report, read_structured_report
from radbridge.iods.sr.report import (
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    QualitativeEvaluation,
    TimePoint,
)
from radbridge.iods.sr.writer import encode_measurement_report
from radbridge.uids import derived_uid

__all__ = [
    "ABSOLUTE_CHANGE",
    "INTERVAL",
    "NOT_COMPARED",
    "PRIOR_VALUE",
    "QUALITATIVE_DIFFERENCE",
    "RELATIVE_CHANGE",
    "STATUS_CODES",
    "Comparison",
    "LesionChange",
    "ValueChange",
    "compare_reports",
    "comparison_report",
    "encode_comparison",
    "has_lesions",
]

#: Private coding scheme of radbridge (PS3.16 8: a "99" prefix), for what PS3.16 has no code.
SCHEME = "99RADBRIDGE"
PRIOR_VALUE = Code("prior-value", SCHEME, "Value at prior time point")
ABSOLUTE_CHANGE = Code("change", SCHEME, "Change since prior time point")
RELATIVE_CHANGE = Code("relative-change", SCHEME, "Relative change since prior time point")
_DERIVED = (PRIOR_VALUE, ABSOLUTE_CHANGE, RELATIVE_CHANGE)
#: The status concept (as the CAD templates' temporal differencing uses it) and its values.
QUALITATIVE_DIFFERENCE = dcm("111049", "Qualitative Difference")
STATUS_CODES: dict[str, Code] = {
    "new": sct("129721008", "New finding"),  # CID 6002
    "grown": sct("15454001", "Increase in size"),  # CID 6002, 6134
    "shrunk": sct("19776001", "Decrease in size"),  # CID 6002, 6134
    "stable": sct("129723006", "No significant changes in the finding"),  # CID 6002, 6134
    "resolved": Code("resolved", SCHEME, "Resolved since prior time point"),  # none in PS3.16
}
#: Time between the two studies, a measurement of each group (in days).
INTERVAL = concepts.LONGITUDINAL_TEMPORAL_OFFSET
_DAYS = Code("d", "UCUM", "day")
_VOLUME = sct("118565006", "Volume")
_SIZES = {"118565006", "103339001", "81827009", "103340004", "42798000"}  # volume, axes, area
_PERCENT = Code("%", "UCUM", "%")
_VOLUME_MM3 = {"mm3": 1.0, "ml": 1000.0, "cm3": 1000.0, "ul": 1.0}
#: UCUM units one visit may write and another convert (volume, length, area).
_UNIT_FAMILIES = (_VOLUME_MM3, {"mm": 1.0, "cm": 10.0}, {"mm2": 1.0, "cm2": 100.0})

#: A rigid map of a prior patient position (LPS mm) into the current frame.
Transform = Callable[[tuple[float, float, float]], tuple[float, float, float]]


@dataclass(frozen=True)
class ValueChange:
    """One measurement of a lesion at both visits (``relative`` is a fraction, e.g. 0.5)."""

    concept: Code
    unit: Code
    prior: float | None
    current: float | None
    absolute: float | None = None
    relative: float | None = None


@dataclass(frozen=True)
class LesionChange:
    """A lesion followed from the prior report into the current one.

    ``matched_by`` is ``"tracking uid"``, ``"position"``, ``"registration"`` or
    ``None`` (a new or resolved lesion); ``distance_mm`` is how far apart the matched
    centres were (in the current frame).
    """

    tracking_id: str
    tracking_uid: str | None
    status: str
    prior: MeasurementGroup | None
    current: MeasurementGroup | None
    changes: tuple[ValueChange, ...] = ()
    matched_by: str | None = None
    distance_mm: float | None = None


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_reports`."""

    lesions: tuple[LesionChange, ...]
    time_point: TimePoint
    interval_days: float | None
    prior_reference: tuple[str, str, str, str] | None = None  # study, series, class, SOP
    prior_evidence: tuple[tuple[str, str, str, str], ...] = ()
    current: Dataset | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as plain JSON-ready data (``radbridge sr compare --json``)."""
        return {
            "interval_days": self.interval_days,
            "time_point": {"label": self.time_point.label, "order": self.time_point.order},
            "prior_sop_instance_uid": self.prior_reference[3] if self.prior_reference else None,
            "lesions": [_lesion_dict(lesion) for lesion in self.lesions],
        }


def _lesion_dict(lesion: LesionChange) -> dict[str, Any]:
    return {
        "tracking_id": lesion.tracking_id,
        "tracking_uid": lesion.tracking_uid,
        "status": lesion.status,
        "matched_by": lesion.matched_by,
        "distance_mm": lesion.distance_mm,
        "changes": [
            {
                "measurement": change.concept.meaning,
                "unit": change.unit.value,
                "prior": change.prior,
                "current": change.current,
                "absolute": change.absolute,
                "relative": change.relative,
            }
            for change in lesion.changes
        ],
    }


@dataclass(frozen=True)
class _Lesion:
    group: MeasurementGroup
    centre: tuple[float, float, float] | None
    frame_of_reference: str | None
    values: tuple[Measurement, ...]

    @property
    def radius_mm(self) -> float | None:
        """Radius of the sphere of the lesion's volume (or half its size), if measured."""
        for m in self.values:
            if m.concept.value == _VOLUME.value and m.unit.value in _VOLUME_MM3:
                mm3 = max(m.value, 0.0) * _VOLUME_MM3[m.unit.value]
                return float((3 * mm3 / (4 * math.pi)) ** (1 / 3))
        for m in self.values:
            if m.concept.value in _SIZES and m.unit.value == "mm":
                return m.value / 2
        return None


def _lesion(group: MeasurementGroup) -> _Lesion | None:
    """Return the group as a lesion: it has a centre or it carries a status already."""
    values = _values(group)
    status = [e for e in group.evaluations if e.concept == QUALITATIVE_DIFFERENCE]
    if status and status[0].value == STATUS_CODES["resolved"]:
        return None  # resolved before: the chain of this lesion ended
    for m in values:
        r = m.region
        if r is not None and r.is_3d and r.graphic_type == "POINT" and len(r.points) == 3:
            x, y, z = r.points
            return _Lesion(group, (x, y, z), r.frame_of_reference_uid, values)
    return None


def _values(group: MeasurementGroup) -> tuple[Measurement, ...]:
    """Return the group's own values (not what an earlier comparison derived)."""
    return tuple(
        m for m in group.measurements if m.derivation not in _DERIVED and m.concept != INTERVAL
    )


def _lesions(report: MeasurementReport) -> list[_Lesion]:
    return [lesion for group in report.groups if (lesion := _lesion(group)) is not None]


def has_lesions(report: MeasurementReport) -> bool:
    """Whether ``report`` has a lesion to follow: a group with a centre (a 3D POINT)."""
    return bool(_lesions(report))


def _read(file: Any) -> tuple[MeasurementReport, Dataset | None]:
    if isinstance(file, MeasurementReport):
        return file, None
    sr = read_structured_report(file)
    # not a TID 1500 report: the reader raises its clear error
    report = sr.report if sr.report is not None else read_measurement_report(sr.dataset)
    return report, sr.dataset


def _date(ds: Dataset | None) -> _dt.date | None:
    text = str(ds.get("StudyDate", "")) if ds is not None else ""
    try:
        return _dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _match(
    prior: list[_Lesion], current: list[_Lesion], transform: Transform | None
) -> dict[int, tuple[int, str, float | None]]:
    """Map current index -> (prior index, how, distance): by tracking UID, then by position."""
    matches: dict[int, tuple[int, str, float | None]] = {}
    by_uid = {p.group.tracking_uid: i for i, p in enumerate(prior) if p.group.tracking_uid}
    for j, lesion in enumerate(current):
        i = by_uid.get(lesion.group.tracking_uid) if lesion.group.tracking_uid else None
        if i is not None:
            matches[j] = (i, "tracking uid", None)
    taken = {i for i, _, _ in matches.values()}
    how = "registration" if transform is not None else "position"
    for distance, i, j in sorted(_close_pairs(prior, current, transform, taken, set(matches))):
        if i not in taken and j not in matches:
            matches[j] = (i, how, round(distance, 3))
            taken.add(i)
    return matches


def _close_pairs(
    prior: list[_Lesion],
    current: list[_Lesion],
    transform: Transform | None,
    taken: set[int],
    matched: set[int],
) -> list[tuple[float, int, int]]:
    """Return (distance, prior index, current index) of the lesions close enough to match."""
    pairs = []
    for i, p in enumerate(prior):
        centre = None if i in taken else _in_current_frame(p, current, transform)
        if centre is None:
            continue
        for j, q in enumerate(current):
            if j in matched or q.centre is None or not _same_finding(p.group, q.group):
                continue
            distance = math.dist(centre, q.centre)
            if distance <= max(p.radius_mm or 0.0, q.radius_mm or 0.0, 5.0):
                pairs.append((distance, i, j))
    return pairs


def _same_finding(a: MeasurementGroup, b: MeasurementGroup) -> bool:
    return a.finding is None or b.finding is None or a.finding == b.finding


def _in_current_frame(
    lesion: _Lesion, current: list[_Lesion], transform: Transform | None
) -> tuple[float, float, float] | None:
    if lesion.centre is None:
        return None
    if transform is not None:
        return transform(lesion.centre)
    frames = {q.frame_of_reference for q in current if q.centre is not None}
    if frames and lesion.frame_of_reference not in frames:
        raise GeometryError(
            f"the prior lesion {lesion.group.tracking_id!r} is in frame of reference "
            f"{lesion.frame_of_reference}, the current report in {', '.join(map(str, frames))}: "
            "positions cannot be compared",
            attribute="FrameOfReferenceUID",
            hint="register the two CT series (radbridge sr compare --prior-images/--current-"
            "images, or transform=) or give reports that share tracking UIDs",
        )
    return lesion.centre


def _changes(prior: _Lesion | None, current: _Lesion | None) -> tuple[ValueChange, ...]:
    out = []
    if prior is not None and current is not None:
        for m in current.values:
            before = next(
                (value for p in prior.values if (value := _prior_in_unit(p, m)) is not None),
                None,
            )
            if before is not None:
                out.append(_change(m.concept, m.unit, before, m.value))
    elif prior is not None:  # resolved: its sizes went to zero
        out = [
            _change(p.concept, p.unit, p.value, 0.0 if p.concept.value in _SIZES else None)
            for p in prior.values
        ]
    return tuple(out)


def _prior_in_unit(prior: Measurement, current: Measurement) -> float | None:
    """Return ``prior``'s value in ``current``'s unit (ml -> mm3, cm -> mm), if the same."""
    if (prior.concept, prior.derivation) != (current.concept, current.derivation):
        return None
    if prior.unit.value == current.unit.value:
        return prior.value
    for family in _UNIT_FAMILIES:
        if prior.unit.value in family and current.unit.value in family:
            return prior.value * family[prior.unit.value] / family[current.unit.value]
    return None


def _change(concept: Code, unit: Code, prior: float, current: float | None) -> ValueChange:
    if current is None:
        return ValueChange(concept, unit, prior, None)
    absolute = current - prior
    relative = absolute / prior if prior else None
    return ValueChange(concept, unit, prior, current, absolute, relative)


#: The status of a matched lesion none of whose measurements the prior report has (no
#: Qualitative Difference is written for it: nothing says it is stable).
NOT_COMPARED = "not compared"


def _status(changes: tuple[ValueChange, ...], stable_within: float) -> str:
    """Grown/shrunk/stable from the volume's relative change (else the first size's).

    A size that was 0 and is not now has grown; a lesion with no measurement in common
    with the prior's is :data:`NOT_COMPARED`.
    """
    compared = [c for c in changes if c.absolute is not None]
    sizes = [c for c in compared if c.concept.value in _SIZES]
    volume = [c for c in sizes if c.concept.value == _VOLUME.value]
    candidates = volume or sizes or compared
    if not candidates:
        return NOT_COMPARED
    change = candidates[0]
    if change.relative is None:  # the prior value was 0
        assert change.absolute is not None
        return "grown" if change.absolute > 0 else "shrunk" if change.absolute < 0 else "stable"
    if change.relative > stable_within:
        return "grown"
    if change.relative < -stable_within:
        return "shrunk"
    return "stable"


def compare_reports(
    prior: Any,
    current: Any,
    *,
    transform: Transform | None = None,
    stable_within: float = 0.25,
) -> Comparison:
    """Follow the lesions of ``prior`` into ``current`` (two TID 1500 reports).

    Parameters
    ----------
    prior, current
        TID 1500 SR documents (a path, bytes or data set) or
        :class:`MeasurementReport` objects. A lesion is a measurement group with a
        centre: a 3D POINT its measurements were made at (radbridge's ``sr`` output
        writes one per object, "Center of Mass"). Other groups are not compared.
    transform
        Maps a prior position (LPS mm) into the current frame (e.g. from a rigid
        registration of the two CT series); without it the reports must share the
        frame of reference, or match by tracking UID.
    stable_within
        A relative change of the volume (else the first size measured) within
        ± this fraction is "stable".

    Raises
    ------
    GeometryError
        The lesions are in different frames of reference and no transform is given.
    """
    prior_report, prior_ds = _read(prior)
    current_report, current_ds = _read(current)
    before, after = _lesions(prior_report), _lesions(current_report)
    matches = _match(before, after, transform)
    lesions = []
    for j, lesion in enumerate(after):
        if j in matches:
            i, how, distance = matches[j]
            changes = _changes(before[i], lesion)
            group = before[i].group
            lesions.append(
                LesionChange(
                    group.tracking_id,
                    group.tracking_uid,
                    _status(changes, stable_within),
                    group,
                    lesion.group,
                    changes,
                    how,
                    distance,
                )
            )
        else:
            g = lesion.group
            lesions.append(LesionChange(g.tracking_id, g.tracking_uid, "new", None, g))
    matched = {i for i, _, _ in matches.values()}
    for i, lesion in enumerate(before):
        if i not in matched:
            g = lesion.group
            changes = _changes(lesion, None)
            lesions.append(
                LesionChange(g.tracking_id, g.tracking_uid, "resolved", g, None, changes)
            )
    return _comparison(tuple(lesions), prior_report, prior_ds, current_ds)


def _comparison(
    lesions: tuple[LesionChange, ...],
    prior_report: MeasurementReport,
    prior_ds: Dataset | None,
    current_ds: Dataset | None,
) -> Comparison:
    orders = [
        g.time_point.order for g in prior_report.groups if g.time_point and g.time_point.order
    ]
    order = max(orders, default=1) + 1
    before, after = _date(prior_ds), _date(current_ds)
    interval = float((after - before).days) if before and after else None
    label = after.isoformat() if after else f"visit {order}"
    point = TimePoint(label, order)
    reference = None
    evidence: list[tuple[str, str, str, str]] = []
    if prior_ds is not None:
        study = str(prior_ds.get("StudyInstanceUID", ""))
        reference = (
            study,
            str(prior_ds.get("SeriesInstanceUID", "")),
            str(prior_ds.SOPClassUID),
            str(prior_ds.SOPInstanceUID),
        )
        evidence = [reference, *_evidence(prior_ds)]
    return Comparison(lesions, point, interval, reference, tuple(evidence), current_ds)


def _evidence(ds: Dataset) -> Iterable[tuple[str, str, str, str]]:
    """Yield what ``ds`` references (its SEG and images) as (study, series, class, SOP)."""
    for item in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        for series in item.get("ReferencedSeriesSequence", []):
            for ref in series.get("ReferencedSOPSequence", []):
                yield (
                    str(item.StudyInstanceUID),
                    str(series.SeriesInstanceUID),
                    str(ref.ReferencedSOPClassUID),
                    str(ref.ReferencedSOPInstanceUID),
                )


def _derived(change: ValueChange) -> tuple[Measurement, ...]:
    out = []
    if change.prior is not None:
        out.append(Measurement(change.concept, change.prior, change.unit, derivation=PRIOR_VALUE))
    if change.absolute is not None:
        out.append(
            Measurement(change.concept, change.absolute, change.unit, derivation=ABSOLUTE_CHANGE)
        )
    if change.relative is not None:
        out.append(
            Measurement(
                change.concept, 100.0 * change.relative, _PERCENT, derivation=RELATIVE_CHANGE
            )
        )
    return tuple(out)


def _group(
    lesion: LesionChange, point: TimePoint, tracking_id: str, interval: float | None
) -> MeasurementGroup:
    code = STATUS_CODES.get(lesion.status)  # none for a lesion NOT_COMPARED
    status = (QualitativeEvaluation(QUALITATIVE_DIFFERENCE, code),) if code else ()
    derived = tuple(m for change in lesion.changes for m in _derived(change))
    if interval is not None and lesion.prior is not None:
        derived += (Measurement(INTERVAL, interval, _DAYS),)
    if lesion.current is not None:
        current = lesion.current
        values = _values(current)
        evaluations = tuple(e for e in current.evaluations if e.concept != QUALITATIVE_DIFFERENCE)
        return replace(
            current,
            tracking_id=tracking_id,
            tracking_uid=lesion.tracking_uid,
            measurements=values + derived,
            evaluations=(*evaluations, *status),
            time_point=point,
        )
    prior = lesion.prior
    assert prior is not None
    current_sizes = tuple(
        Measurement(c.concept, c.current, c.unit) for c in lesion.changes if c.current is not None
    )
    # resolved: the group refers to the prior's segment (or region), where the lesion was
    return replace(
        prior,
        tracking_id=tracking_id,
        measurements=current_sizes + derived,
        evaluations=status,
        time_point=point,
    )


def comparison_report(comparison: Comparison) -> MeasurementReport:
    """Return the TID 1500 report of ``comparison``: one group per lesion (see module doc)."""
    # a followed lesion keeps the prior's identifier: a new one that has it is renamed
    groups, seen = [], {x.tracking_id for x in comparison.lesions if x.prior is not None}
    for lesion in comparison.lesions:
        tracking_id = lesion.tracking_id
        if lesion.prior is None and tracking_id in seen:
            tracking_id = f"{tracking_id} (new at time point {comparison.time_point.order})"
        seen.add(tracking_id)
        groups.append(_group(lesion, comparison.time_point, tracking_id, comparison.interval_days))
    return MeasurementReport(groups=tuple(groups))


def encode_comparison(
    comparison: Comparison,
    source: Series | Dataset | None = None,
    *,
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Encode ``comparison`` as a TID 1500 SR in the current study.

    Parameters
    ----------
    comparison
        From :func:`compare_reports`.
    source
        The current series, or the current SR (default: the one compared).
    options
        Series and UIDs; by default the SR's UIDs are derived from the two reports
        compared (the same comparison gets the same UIDs).

    Raises
    ------
    EncodingError
        Neither report has a lesion, or the report cannot be written.
    """
    if not comparison.lesions:
        raise EncodingError(
            "neither report has a lesion to compare (a group with a Center of Mass point)",
            attribute="lesions",
            hint="compare reports of radbridge's sr output of a model that reports objects "
            "with centroids (docs/longitudinal.md)",
        )
    source = source if source is not None else comparison.current
    if source is None:
        raise EncodingError(
            "the comparison has no current SR to take the patient and study from",
            attribute="source",
            hint="pass the current series or SR as source",
        )
    if options is None:
        key = [comparison.prior_reference[3] if comparison.prior_reference else "none"]
        key.append(str(getattr(source, "SOPInstanceUID", "")) or "series")
        options = SeriesOptions(
            series_description="radbridge longitudinal comparison",
            series_number=302,
            series_instance_uid=derived_uid("radbridge-compare", *key, "series"),
            sop_instance_uid=derived_uid("radbridge-compare", *key, "sop"),
        )
    return encode_measurement_report(
        comparison_report(comparison),
        source,
        options=options,
        pertinent_evidence=comparison.prior_evidence,
    )
