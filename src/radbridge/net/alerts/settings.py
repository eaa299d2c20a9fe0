"""Where alerts go: ``[alerts.webhook.NAME]``, ``[alerts.fhir.NAME]``, ``[alerts.hl7.NAME]``.

Plain dataclasses read by :func:`radbridge.schema.from_table` (the fields are the
TOML keys); a rule names destinations by ``NAME`` in its ``alert`` list. Secrets
(the webhook's HMAC key, a FHIR bearer token) are named by environment variables,
never written in the file. ``patient_identifiers`` (default false) lets a
destination receive the patient's ID, name, birth date, sex and accession number;
without it an alert names the study by its UIDs only.

Examples
--------
>>> hook = WebhookTarget(url="https://example.org/hook", secret="k")
>>> targets = AlertTargets(webhook={"oncall": hook})
>>> targets.names(), targets.get("oncall").kind
(['oncall'], 'webhook')
>>> WebhookTarget(url="https://example.org/hook")
Traceback (most recent call last):
...
radbridge.errors.ConfigError: a webhook without a signing secret [secret_env]. ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from radbridge.errors import ConfigError
from radbridge.net.peers import TLSConfig

__all__ = ["AlertTarget", "AlertTargets", "FhirTarget", "Hl7Target", "WebhookTarget"]


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{url!r} is not an http(s) URL", attribute="url", hint="write e.g. https://host/path"
        )


def _check_timeout(timeout_s: float) -> None:
    if timeout_s <= 0:
        raise ConfigError("timeout_s must be positive", attribute="timeout_s")


@dataclass(frozen=True, kw_only=True)
class WebhookTarget:
    """An HTTP endpoint that receives the alert as JSON, signed with HMAC-SHA256.

    The body is signed with the secret from the environment variable
    ``secret_env``; the signature is sent as ``X-Radbridge-Signature: sha256=HEX``
    and the idempotency key as ``Idempotency-Key``.
    """

    kind: ClassVar[str] = "webhook"
    url: str
    secret: str | None = field(
        default=None, repr=False, metadata={"toml": "secret_env", "secret": True}
    )
    timeout_s: float = 10.0
    patient_identifiers: bool = False
    name: str = field(default="", metadata={"toml": None, "key_name": True})

    def __post_init__(self) -> None:
        _check_url(self.url)
        _check_timeout(self.timeout_s)
        if not self.secret:
            raise ConfigError(
                "a webhook without a signing secret",
                attribute="secret_env",
                hint="name the environment variable holding the HMAC key (secret_env)",
            )


@dataclass(frozen=True, kw_only=True)
class FhirTarget:
    """A FHIR R4 server: a transaction Bundle with a DiagnosticReport and its Observations.

    ``url`` is the server's base (``https://host/fhir``); ``token_env`` names an
    environment variable holding a bearer token. ``patient_system`` is the
    identifier system of the hospital's patient IDs (used with
    ``patient_identifiers``).
    """

    kind: ClassVar[str] = "fhir"
    url: str
    token: str | None = field(
        default=None, repr=False, metadata={"toml": "token_env", "secret": True}
    )
    timeout_s: float = 10.0
    patient_identifiers: bool = False
    patient_system: str = "urn:radbridge:patient-id"
    name: str = field(default="", metadata={"toml": None, "key_name": True})

    def __post_init__(self) -> None:
        _check_url(self.url)
        _check_timeout(self.timeout_s)


@dataclass(frozen=True, kw_only=True)
class Hl7Target:
    """An HL7 v2 receiver (a RIS or interface engine) taking ORU^R01 over MLLP.

    ``tls`` (a ``[alerts.hl7.NAME.tls]`` table) sends over TLS: ``ca_file``
    verifies the receiver's certificate, ``cert_file`` and ``key_file`` are
    radbridge's own for mutual TLS, ``check_hostname`` also checks its name.
    """

    kind: ClassVar[str] = "hl7"
    host: str
    port: int
    timeout_s: float = 10.0
    patient_identifiers: bool = False
    sending_application: str = "RADBRIDGE"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    processing_id: str = "P"
    tls: TLSConfig | None = None
    name: str = field(default="", metadata={"toml": None, "key_name": True})

    def __post_init__(self) -> None:
        _check_timeout(self.timeout_s)
        if not self.host or not 0 < self.port < 65536:
            raise ConfigError("an HL7 destination needs a host and a port", attribute="host/port")
        if self.tls is not None:  # read now, so a wrong path fails at start, not per alert
            self.tls.check()
        if self.processing_id not in ("P", "D", "T"):
            raise ConfigError(
                f"processing_id {self.processing_id!r}",
                attribute="processing_id",
                hint="use P (production), D (debugging) or T (training)",
            )


AlertTarget = WebhookTarget | FhirTarget | Hl7Target


@dataclass(frozen=True)
class AlertTargets:
    """Every alert destination by name (``[alerts.KIND.NAME]``); names are unique across kinds."""

    webhook: Mapping[str, WebhookTarget] = field(default_factory=dict)
    fhir: Mapping[str, FhirTarget] = field(default_factory=dict)
    hl7: Mapping[str, Hl7Target] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for table in (self.webhook, self.fhir, self.hl7):
            twice = seen & set(table)
            if twice:
                raise ConfigError(
                    f"alert destination {sorted(twice)[0]!r} is defined twice",
                    attribute="alerts",
                    hint="give every [alerts.KIND.NAME] its own NAME",
                )
            seen |= set(table)

    def names(self) -> list[str]:
        """Return every destination name, sorted."""
        return sorted([*self.webhook, *self.fhir, *self.hl7])

    def get(self, name: str) -> AlertTarget | None:
        """Return the destination called ``name``, or ``None``."""
        found: AlertTarget | None = (
            self.webhook.get(name) or self.fhir.get(name) or self.hl7.get(name)
        )
        return found
