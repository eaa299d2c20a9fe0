"""Triage: what makes a result urgent (``[rules.urgent]``) and the reasons a result is.

A rule declares any of three kinds of criteria; a result meeting one of them is
urgent, and every criterion it meets is a :class:`~radbridge.net.alerts.AlertReason`:

- ``findings = ["hemorrhage: present"]`` — a qualitative finding of the model,
  ``concept: value``, compared case-insensitively with the finding's text, its
  code's meaning or its code value;
- ``[[rules.urgent.measurements]]`` — a measurement over a threshold:
  ``measurement`` (its name, e.g. ``"volume"``, ``"long axis"``), optionally
  ``label`` (the segment's name or number), ``above`` (``>``) or ``at_least``
  (``>=``) and the threshold's UCUM ``unit``; lengths (um, mm, cm, m), areas
  (mm2, cm2) and volumes (uL, mm3, mL, cm3, L) convert, other units compare only
  with the same unit;
- ``model_flag = true`` — the model's own ``ModelResult.urgent``.

Examples
--------
>>> from radbridge.models import ModelMeasurement, ModelResult, Finding
>>> urgent = Urgency(findings=("lung nodule: present",),
...                  measurements=(Threshold("volume", label="liver_lesion", above=10, unit="mL"),))
>>> result = ModelResult(segments={7: "liver_lesion"},
...                      measurements=(ModelMeasurement("volume", 12500.0, "mm3", label=7),),
...                      findings=(Finding("lung nodule", "absent"),))
>>> [r.text for r in urgent.reasons(result)]
['volume of liver_lesion > 10 mL (12.5 mL)']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from radbridge.errors import ConfigError
from radbridge.models import Finding, ModelMeasurement, ModelResult
from radbridge.net import AlertReason

__all__ = ["Threshold", "Urgency", "convert_unit"]

#: UCUM unit -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "um": ("length", 1e-3),
    "mm": ("length", 1.0),
    "cm": ("length", 10.0),
    "m": ("length", 1e3),
    "mm2": ("area", 1.0),
    "cm2": ("area", 100.0),
    "uL": ("volume", 1.0),
    "mm3": ("volume", 1.0),
    "mL": ("volume", 1e3),
    "ml": ("volume", 1e3),
    "cm3": ("volume", 1e3),
    "L": ("volume", 1e6),
    "l": ("volume", 1e6),
}


def convert_unit(value: float, unit: str, to: str) -> float | None:
    """Return ``value`` in ``unit`` converted to ``to``, or ``None`` if they do not convert.

    Examples
    --------
    >>> convert_unit(12500.0, "mm3", "mL"), convert_unit(7.0, "mm", "cm")
    (12.5, 0.7)
    >>> convert_unit(1.0, "mm", "mL") is None
    True
    """
    if unit == to:
        return value
    source, target = _UNITS.get(unit), _UNITS.get(to)
    if source is None or target is None or source[0] != target[0]:
        return None
    return value * source[1] / target[1]


@dataclass(frozen=True)
class Threshold:
    """A measurement over a threshold (``above``: strictly greater; ``at_least``: ``>=``)."""

    measurement: str
    unit: str
    label: str = ""
    above: float | None = None
    at_least: float | None = None

    def __post_init__(self) -> None:
        if (self.above is None) == (self.at_least is None):
            raise ConfigError(
                f"threshold on {self.measurement!r} needs exactly one of above and at_least",
                attribute="urgent.measurements",
                hint='e.g. { measurement = "volume", label = "lesion", above = 10, unit = "mL" }',
            )
        if not self.unit:
            raise ConfigError("a threshold needs its UCUM unit", attribute="urgent.unit")

    @property
    def criterion(self) -> str:
        """The threshold in words, e.g. ``volume of lesion > 10 mL``."""
        of = f" of {self.label}" if self.label else ""
        limit = f"> {self.above:g}" if self.above is not None else f">= {self.at_least:g}"
        return f"{self.measurement}{of} {limit} {self.unit}"

    def met_by(self, value: float) -> bool:
        """Tell whether ``value`` (in this threshold's unit) is over it."""
        if self.above is not None:
            return value > self.above
        return self.at_least is not None and value >= self.at_least


def _split(criterion: str) -> tuple[str, str]:
    concept, sep, value = criterion.partition(":")
    if not sep or not concept.strip() or not value.strip():
        raise ConfigError(
            f"finding criterion {criterion!r} is not 'concept: value'",
            attribute="urgent.findings",
            hint='write e.g. "hemorrhage: present"',
        )
    return concept.strip().lower(), value.strip().lower()


def _names(text: str, code: Any) -> set[str]:
    names = {text.strip().lower()}
    if code is not None:
        names |= {str(code.value).lower(), str(code.meaning or "").lower()}
    return names


def _label_names(number: int | None, segments: Mapping[int, Any]) -> set[str]:
    if number is None:
        return set()
    described = segments.get(number)
    if isinstance(described, Mapping):  # a spec: {"label": ...} or {"name": "liver"}
        name = described.get("label") or described.get("name")
    else:  # a name, or a description with a label
        name = getattr(described, "label", described)
    return {str(number)} | ({str(name).lower()} if name is not None else set())


@dataclass(frozen=True)
class Urgency:
    """``[rules.urgent]``: what makes a rule's result urgent (any criterion met)."""

    findings: tuple[str, ...] = ()
    measurements: tuple[Threshold, ...] = ()
    model_flag: bool = False

    def __post_init__(self) -> None:
        for criterion in self.findings:
            _split(criterion)

    @property
    def declared(self) -> bool:
        """Whether the rule declares any criterion."""
        return bool(self.findings or self.measurements or self.model_flag)

    def reasons(self, result: ModelResult) -> tuple[AlertReason, ...]:
        """Return every criterion ``result`` meets (empty: not urgent)."""
        found = [r for f in result.findings for r in self._finding(f, result.segments)]
        found += [r for m in result.measurements for r in self._measurement(m, result.segments)]
        if self.model_flag and result.urgent:
            found.append(
                AlertReason("flag", "model urgency flag", "urgent", criterion="model flag")
            )
        return tuple(found)

    def _finding(self, finding: Finding, segments: Mapping[int, Any]) -> list[AlertReason]:
        concepts = _names(finding.concept, finding.concept_code)
        values = _names(finding.value, finding.value_code)
        label = sorted(_label_names(finding.label, segments) - {str(finding.label)})
        return [
            AlertReason(
                "finding",
                finding.concept,
                finding.value,
                label=label[0] if label else "",
                criterion=criterion,
                concept_code=finding.concept_code,
                value_code=finding.value_code,
            )
            for criterion in self.findings
            if _split(criterion)[0] in concepts and _split(criterion)[1] in values
        ]

    def _measurement(
        self, item: ModelMeasurement, segments: Mapping[int, Any]
    ) -> list[AlertReason]:
        labels = _label_names(item.label, segments)
        reasons = []
        for threshold in self.measurements:
            if threshold.measurement.lower() != item.name.lower():
                continue
            if threshold.label and threshold.label.lower() not in labels:
                continue
            value = convert_unit(item.value, item.unit, threshold.unit)
            if value is None or not math.isfinite(value) or not threshold.met_by(value):
                continue
            named = sorted(labels - {str(item.label)})
            reasons.append(
                AlertReason(
                    "measurement",
                    item.name,
                    round(value, 6),
                    unit=threshold.unit,
                    label=named[0] if named else "",
                    criterion=threshold.criterion,
                    concept_code=item.concept,
                )
            )
        return reasons
