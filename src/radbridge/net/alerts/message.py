"""What an alert says: the urgent result, why it is urgent, and (only if allowed) who it is.

An :class:`AlertMessage` is built by the gateway when a job's result meets its
rule's urgency criteria. Everything but :attr:`AlertMessage.patient` is UIDs,
codes, values and times, and is what the gateway stores (:meth:`AlertMessage.to_json`);
the patient block is read from the source headers at send time, and only for a
destination configured with ``patient_identifiers = true``.

Examples
--------
>>> reason = AlertReason("measurement", "volume", 12.5, unit="ml", label="liver_lesion",
...                 criterion="volume of liver_lesion > 10 ml")
>>> message = AlertMessage(key="2.25.1", rule="ct", model="m", version=1,
...                        study_instance_uid="1.2", series_instance_uid="1.2.3",
...                        reasons=(reason,), created="2026-01-01T00:00:00Z")
>>> AlertMessage.from_json(message.to_json()) == message
True
>>> message.summary
'urgent: volume of liver_lesion > 10 ml (12.5 ml)'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from radbridge.coding import Code

__all__ = ["AlertMessage", "AlertPatient", "AlertReason"]

ReasonKind = Literal["finding", "measurement", "flag"]


@dataclass(frozen=True)
class AlertReason:
    """One criterion of a rule that the result met, and what met it.

    Parameters
    ----------
    kind
        ``"finding"`` (a qualitative evaluation), ``"measurement"`` (a value over a
        threshold) or ``"flag"`` (the model said so).
    concept
        What was evaluated or measured, e.g. ``"hemorrhage"`` or ``"volume"``.
    value
        The finding's value (``"present"``) or the measured number.
    unit
        The UCUM unit of a measured value (as the criterion states it).
    label
        The segment the value belongs to, if any.
    criterion
        The rule's criterion in words, e.g. ``"volume of liver_lesion > 10 ml"``.
    concept_code, value_code
        Codes of the concept and value, when the model gave them.
    """

    kind: ReasonKind
    concept: str
    value: str | float
    unit: str = ""
    label: str = ""
    criterion: str = ""
    concept_code: Code | None = None
    value_code: Code | None = None

    @property
    def text(self) -> str:
        """The criterion and the value that met it, in words."""
        shown = f"{self.value:g} {self.unit}".strip() if self.kind == "measurement" else ""
        what = self.criterion or f"{self.concept}: {self.value}"
        return f"{what} ({shown})" if shown else what

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertReason:
        """Rebuild from :meth:`to_json`."""
        codes = {
            k: Code(**data[k]) if data.get(k) else None for k in ("concept_code", "value_code")
        }
        return cls(**(data | codes))


@dataclass(frozen=True)
class AlertPatient:
    """AlertPatient and order identifiers, for destinations that may receive them."""

    patient_id: str = ""
    issuer_of_patient_id: str = ""
    name: str = ""
    birth_date: str = ""
    sex: str = ""
    accession_number: str = ""


@dataclass(frozen=True)
class AlertMessage:
    """One critical-finding alert: one job version of one rule, sent once per destination.

    ``key`` is the idempotency key (a UID derived from the series, version and
    rule): a re-send after a crash carries the same key, so a receiver that
    keeps keys sees one alert.
    """

    key: str
    rule: str
    model: str
    version: int
    study_instance_uid: str
    series_instance_uid: str
    reasons: tuple[AlertReason, ...]
    created: str
    results: tuple[tuple[str, str], ...] = ()  # (output kind, SOP Instance UID)
    patient: AlertPatient | None = None

    @property
    def summary(self) -> str:
        """One line: every reason in words."""
        return "urgent: " + "; ".join(r.text for r in self.reasons)

    def with_patient(self, patient: AlertPatient | None) -> AlertMessage:
        """Return a copy with the patient block (or without one)."""
        return replace(self, patient=patient)

    def to_json(self) -> str:
        """Return the stored form: everything but the patient block."""
        data = asdict(self)
        data.pop("patient")
        data["reasons"] = [r.to_json() for r in self.reasons]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertMessage:
        """Rebuild from :meth:`to_json` (without a patient block)."""
        data = json.loads(text)
        data["reasons"] = tuple(AlertReason.from_json(r) for r in data["reasons"])
        data["results"] = tuple(tuple(pair) for pair in data["results"])
        return cls(**data)

    def payload(self) -> dict[str, Any]:
        """Return the webhook's JSON body (with ``patient`` only when the block is set)."""
        body: dict[str, Any] = {
            "event": "critical_finding",
            "idempotency_key": self.key,
            "rule": self.rule,
            "model": self.model,
            "version": self.version,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "created": self.created,
            "summary": self.summary,
            "reasons": [r.to_json() for r in self.reasons],
            "results": [{"kind": k, "sop_instance_uid": uid} for k, uid in self.results],
        }
        if self.patient is not None:
            body["patient"] = asdict(self.patient)
        return body
