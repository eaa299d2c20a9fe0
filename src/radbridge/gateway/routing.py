"""Routing: which model runs on which series, how urgently, and where results go.

A :class:`Rule` matches series by modality, body part, descriptions (regular
expressions, case-insensitive), SOP class, slice count and thickness, and
orientation, and excludes localizers. Every matching rule makes one job. A
:class:`PriorityRule` raises the priority of matching studies (e.g. a study
description containing "STROKE"), so urgent studies run first.

Examples
--------
>>> rule = Rule("chest", model="reference-ct", match=Match(modality=("CT",), min_slices=10))
>>> facts = SeriesFacts(modality="CT", slice_count=120, orientation="axial")
>>> rule.matches(facts), rule.matches(SeriesFacts(modality="MR", slice_count=120))
(True, False)
>>> priority_of(facts, [PriorityRule(study_description="STROKE", priority=100)], base=5)
5
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset

from radbridge.attributes import number_or_none, text_value
from radbridge.errors import ConfigError
from radbridge.gateway.triage import Urgency

__all__ = ["Match", "PriorityRule", "Rule", "SeriesFacts", "orientation_of", "priority_of"]

_ORIENTATIONS = ("axial", "coronal", "sagittal", "oblique", "any")


@dataclass(frozen=True)
class SeriesFacts:
    """What routing looks at (from a series' headers; no patient identifiers)."""

    modality: str = ""
    body_part: str = ""
    series_description: str = ""
    study_description: str = ""
    sop_class_uid: str = ""
    slice_count: int = 0
    slice_thickness_mm: float | None = None
    orientation: str = "oblique"
    image_type: tuple[str, ...] = ()
    study_priority: str = ""

    @classmethod
    def from_headers(cls, headers: Sequence[Dataset]) -> SeriesFacts:
        """Summarise a series from its instance headers."""
        first = headers[0]

        text = partial(text_value, first)
        frames = sum(number_or_none(ds, "NumberOfFrames", int) or 1 for ds in headers)
        return cls(
            modality=text("Modality"),
            body_part=text("BodyPartExamined"),
            series_description=text("SeriesDescription"),
            study_description=text("StudyDescription"),
            sop_class_uid=text("SOPClassUID"),
            slice_count=frames,
            slice_thickness_mm=number_or_none(first, "SliceThickness"),
            orientation=orientation_of(first.get("ImageOrientationPatient")),
            image_type=tuple(str(v).upper() for v in (first.get("ImageType") or ())),
            study_priority=(text("StudyPriorityID") or text("RequestedProcedurePriority")).upper(),
        )


def orientation_of(iop: Any) -> str:
    """Classify ``ImageOrientationPatient`` as axial, coronal, sagittal or oblique.

    Examples
    --------
    >>> orientation_of([1, 0, 0, 0, 1, 0]), orientation_of([0, 1, 0, 0, 0, -1])
    ('axial', 'sagittal')
    """
    try:
        values = np.asarray([float(v) for v in iop], dtype=np.float64)
    except (TypeError, ValueError):
        return "oblique"
    if values.shape != (6,):
        return "oblique"
    normal = np.abs(np.cross(values[:3], values[3:]))
    axis = int(np.argmax(normal))
    if normal[axis] < 0.9:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _pattern(value: str | None, where: str) -> re.Pattern[str] | None:
    if not value:
        return None
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {value!r} ({exc})", attribute=where) from exc


@dataclass(frozen=True)
class Match:
    """Conditions a series must meet (all given ones); regexes are searched, case-insensitive."""

    modality: tuple[str, ...] = ()
    body_part: str | None = None
    series_description: str | None = None
    study_description: str | None = None
    sop_class_uid: tuple[str, ...] = ()
    min_slices: int = 1
    max_slices: int | None = None
    max_slice_thickness_mm: float | None = None
    orientation: str = "any"
    exclude_localizers: bool = True

    def __post_init__(self) -> None:
        if self.orientation not in _ORIENTATIONS:
            raise ConfigError(
                f"unknown orientation {self.orientation!r}",
                attribute="match.orientation",
                hint=f"use {', '.join(_ORIENTATIONS)}",
            )
        for name in ("body_part", "series_description", "study_description"):
            _pattern(getattr(self, name), f"match.{name}")

    def test(self, facts: SeriesFacts) -> bool:
        """Tell whether ``facts`` meet every condition."""
        if self.modality and facts.modality.upper() not in {m.upper() for m in self.modality}:
            return False
        for name in ("body_part", "series_description", "study_description"):
            pattern = _pattern(getattr(self, name), name)
            if pattern and not pattern.search(getattr(facts, name)):
                return False
        if self.sop_class_uid and facts.sop_class_uid not in self.sop_class_uid:
            return False
        if facts.slice_count < self.min_slices:
            return False
        if self.max_slices is not None and facts.slice_count > self.max_slices:
            return False
        if (
            self.max_slice_thickness_mm is not None
            and facts.slice_thickness_mm is not None
            and facts.slice_thickness_mm > self.max_slice_thickness_mm
        ):
            return False
        if self.orientation != "any" and facts.orientation != self.orientation:
            return False
        return not (self.exclude_localizers and "LOCALIZER" in facts.image_type)


@dataclass(frozen=True)
class Rule:
    """A routing rule: which series, which model, what to produce, where it goes."""

    name: str
    model: str
    match: Match = field(default_factory=Match)
    priority: int = 0
    outputs: tuple[str, ...] = ("seg", "sr", "ko")
    seg_type: str = "binary"
    destinations: tuple[str, ...] = ("archive",)
    profile: str = "interop"
    anatomy: str | None = None
    #: what a series held as incomplete gets after ``incomplete_after_s``: "hold" dead-letters
    #: its job with the reason "incomplete transfer" (retryable), "run" runs it anyway
    on_incomplete: Literal["hold", "run"] = "hold"
    #: what makes a result urgent ([rules.urgent], docs/triage.md): its KOS and SR say so
    urgent: Urgency = field(default_factory=Urgency)
    #: where an urgent result's alert goes: names of ``[alerts.KIND.NAME]`` tables
    alert: tuple[str, ...] = ()
    #: the model sees a pseudonymised copy (PS3.15 Basic Profile) and the results are
    #: re-identified before delivery; always so for a model marked external
    deidentify: bool = False
    #: compare the SR with the patient's prior study on the PACS and deliver the change
    #: (the output "compare", docs/longitudinal.md); the PACS is ``prior_from`` (a
    #: ``[peers.NAME]``), else the first PACS among the destinations
    compare_with_prior: bool = False
    prior_from: str | None = None

    def matches(self, facts: SeriesFacts) -> bool:
        """Tell whether this rule applies to a series."""
        return self.match.test(facts)


@dataclass(frozen=True)
class PriorityRule:
    """Raise the priority of matching studies by ``priority``."""

    priority: int
    study_description: str | None = None
    series_description: str | None = None
    study_priority: tuple[str, ...] = ()

    def test(self, facts: SeriesFacts) -> bool:
        """Tell whether the study is urgent by this rule."""
        for name in ("study_description", "series_description"):
            pattern = _pattern(getattr(self, name), name)
            if pattern and pattern.search(getattr(facts, name)):
                return True
        return bool(self.study_priority) and facts.study_priority in {
            p.upper() for p in self.study_priority
        }


def priority_of(facts: SeriesFacts, rules: Sequence[PriorityRule], *, base: int = 0) -> int:
    """Return the job priority: the rule's base plus every matching priority rule."""
    return base + sum(rule.priority for rule in rules if rule.test(facts))
