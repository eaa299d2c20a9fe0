"""Critical-finding alerts: what an alert says and the senders that deliver it.

The gateway decides that a result is urgent and queues an :class:`AlertMessage`
per destination; :func:`send_alert` delivers one to a destination of
:class:`AlertTargets`:

- :class:`WebhookTarget` — JSON over HTTP(S), signed with HMAC-SHA256
  (:mod:`radbridge.net.alerts.webhook`);
- :class:`FhirTarget` — a FHIR R4 transaction Bundle with a DiagnosticReport and
  Observations (:mod:`radbridge.net.alerts.fhir`, built with fhir.resources);
- :class:`Hl7Target` — an HL7 v2.5 ORU^R01 over MLLP, the ACK checked
  (:mod:`radbridge.net.alerts.hl7`, built with hl7apy).

A sender sends once and raises :class:`~radbridge.errors.SendError` (with
``permanent`` set when a retry cannot help); the gateway's alert queue retries.
"""

from __future__ import annotations

from radbridge.errors import ConfigError
from radbridge.net.alerts.message import AlertMessage, AlertPatient, AlertReason
from radbridge.net.alerts.settings import (
    AlertTarget,
    AlertTargets,
    FhirTarget,
    Hl7Target,
    WebhookTarget,
)

__all__ = [
    "AlertMessage",
    "AlertPatient",
    "AlertReason",
    "AlertTarget",
    "AlertTargets",
    "FhirTarget",
    "Hl7Target",
    "WebhookTarget",
    "send_alert",
]


def send_alert(target: AlertTarget, message: AlertMessage) -> str:
    """Send ``message`` to ``target`` once; return the destination's answer in a few words.

    Raises
    ------
    SendError
        The destination did not take the alert.
    OptionalDependencyError
        FHIR and HL7 need ``pip install 'radbridge[alerts]'``.
    """
    if isinstance(target, WebhookTarget):
        from radbridge.net.alerts.webhook import send_webhook

        return send_webhook(target, message)
    if isinstance(target, FhirTarget):
        from radbridge.net.alerts.fhir import send_fhir

        return send_fhir(target, message)
    if isinstance(target, Hl7Target):
        from radbridge.net.alerts.hl7 import send_hl7

        return send_hl7(target, message)
    raise ConfigError(f"unknown alert destination {target!r}", attribute="alerts")
