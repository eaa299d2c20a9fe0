"""The gateway's configuration: one TOML file (or the embedded default).

:class:`GatewayConfig` is the schema: the ``[gateway]`` keys, their types and
defaults are its fields (``[gateway.tls]``, ``[gateway.stow]`` and
``[gateway.stow_auth]`` are nested dataclasses; ``[[rules]]``, ``[[priorities]]``,
``[peers.NAME]`` and ``[alerts.KIND.NAME]`` are top-level tables). docs/gateway.md
and docs/triage.md show every key; a test loads those very blocks. Unknown keys fail
with the closest known name.

Examples
--------
>>> config = GatewayConfig.default("data")
>>> config.rules[0].model, config.port
('reference-ct', 11112)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radbridge.errors import ConfigError, RadbridgeError
from radbridge.gateway.routing import Match, PriorityRule, Rule
from radbridge.io.storage import dir_mode_for
from radbridge.iods.profiles import Profile
from radbridge.net import AlertTargets, Peer, StowAuth, StowLimits, TLSConfig
from radbridge.schema import convert, from_table, read_toml, unknown_key_error

__all__ = ["GatewayConfig", "load_gateway_config"]

_DOCUMENT = {"toml": None}  # a top-level table of the file, not a [gateway] key
_DOCUMENT_TABLES = ("gateway", "rules", "priorities", "peers", "alerts")


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to run (see the module docstring for the TOML form).

    The fields are the ``[gateway]`` keys (plus ``rules``, ``priorities``, ``peers``
    and ``alerts``, which are top-level tables of the file): the TOML schema is this class.
    """

    data_dir: Path = Path("radbridge-data")
    ae_title: str = "RADBRIDGE"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed_calling_aets: tuple[str, ...] = ()
    max_associations: int = 20
    network_timeout_s: float = 60.0
    tls_handshake_timeout_s: float = 10.0
    quiet_period_s: float = 5.0
    incomplete_after_s: float = 600.0
    verify_count_with: str = ""
    workers: int = 1
    max_attempts: int = 4
    retry_base_s: float = 2.0
    min_free_disk_mb: float = 200.0
    spool_retention_h: float = 72.0
    poll_s: float = 0.2
    delivery_attempts: int = 20
    alert_attempts: int = 20
    executor: str = "local"
    stow_port: int = 0
    file_mode: int = 0o600
    tls: TLSConfig | None = None
    stow: StowLimits = field(default_factory=StowLimits)
    stow_auth: StowAuth | None = None
    rules: tuple[Rule, ...] = field(default=(), metadata=_DOCUMENT)
    priorities: tuple[PriorityRule, ...] = field(default=(), metadata=_DOCUMENT)
    peers: Mapping[str, Peer] = field(default_factory=dict, metadata=_DOCUMENT)
    alerts: AlertTargets = field(default_factory=AlertTargets, metadata=_DOCUMENT)

    @property
    def dir_mode(self) -> int:
        """The mode of folders under ``data_dir``: ``file_mode`` plus search where readable."""
        return dir_mode_for(self.file_mode)

    @property
    def spool_dir(self) -> Path:
        """Where received instances are stored."""
        return self.data_dir / "spool"

    @property
    def outbox_dir(self) -> Path:
        """Where results are written before delivery."""
        return self.data_dir / "outbox"

    @property
    def archive_dir(self) -> Path:
        """The local ``archive`` destination."""
        return self.data_dir / "archive"

    @property
    def database(self) -> Path:
        """The SQLite state file."""
        return self.data_dir / "gateway.sqlite"

    @property
    def audit_log(self) -> Path:
        """The JSON-lines audit log."""
        return self.data_dir / "audit.jsonl"

    @classmethod
    def default(cls, data_dir: str | os.PathLike[str]) -> GatewayConfig:
        """Return the embedded default: every CT series, reference model, local archive."""
        rule = Rule(
            "ct-reference",
            model="reference-ct",
            match=Match(modality=("CT",), min_slices=5),
            destinations=("archive",),
        )
        return cls(data_dir=Path(data_dir), rules=(rule,))

    def check(self) -> None:
        """Raise :class:`~radbridge.errors.ConfigError` for inconsistent settings."""
        from radbridge.gateway.sources import check_rule_source
        from radbridge.results.registry import output_kinds

        if not self.rules:
            raise ConfigError("no [[rules]]: nothing would ever run", attribute="rules")
        for rule in self.rules:
            for destination in rule.destinations:
                if destination != "archive" and destination not in self.peers:
                    raise ConfigError(
                        f"rule {rule.name!r} sends to {destination!r}, which is not a "
                        "[peers.NAME] table",
                        attribute="destinations",
                        hint="describe the PACS under [peers.NAME] or use 'archive'",
                    )
            self._check_alerts(rule)
            self._check_prior(rule)
            unknown = set(rule.outputs) - set(output_kinds())
            if unknown:
                raise ConfigError(
                    f"rule {rule.name!r}: unknown outputs {sorted(unknown)}",
                    attribute="outputs",
                    hint="use " + ", ".join(output_kinds()),
                )
            check_rule_source(rule)
            if rule.profile not in {p.value for p in Profile}:
                raise ConfigError(
                    f"rule {rule.name!r}: unknown profile {rule.profile!r}",
                    attribute="profile",
                    hint="use " + ", ".join(p.value for p in Profile),
                )
        if any(rule.deidentify for rule in self.rules):
            self._check_deidentify()
        if self.verify_count_with and self.verify_count_with not in self.peers:
            raise ConfigError(
                f"verify_count_with names {self.verify_count_with!r}, which is not a "
                "[peers.NAME] table",
                attribute="verify_count_with",
                hint="describe the source PACS under [peers.NAME], or leave the key out",
            )
        if self.incomplete_after_s < self.quiet_period_s:
            raise ConfigError(
                "incomplete_after_s is shorter than quiet_period_s",
                attribute="incomplete_after_s",
                hint="a held series must wait at least as long as a complete one",
            )
        if not 0 <= self.spool_retention_h < float("inf"):
            raise ConfigError(
                f"spool_retention_h is {self.spool_retention_h:g}: it must be a number of hours "
                "of 0 or more",
                attribute="spool_retention_h",
                hint="e.g. spool_retention_h = 72 (a finished series' files go after 3 days); "
                "0 keeps every file",
            )
        if self.workers < 1 or self.max_attempts < 1:
            raise ConfigError(
                "workers and max_attempts must be at least 1", attribute="workers/max_attempts"
            )
        self._check_network()

    def _check_prior(self, rule: Rule) -> None:
        if rule.prior_from is not None and rule.prior_from not in self.peers:
            raise ConfigError(
                f"rule {rule.name!r} looks for priors on {rule.prior_from!r}, which is not a "
                "[peers.NAME] table",
                attribute="prior_from",
                hint="describe the PACS under [peers.NAME]",
            )
        if not rule.compare_with_prior:
            return
        if "sr" not in rule.outputs:
            raise ConfigError(
                f"rule {rule.name!r} compares with the prior study but has no sr output",
                attribute="compare_with_prior",
                hint='add "sr" to outputs: the comparison is made between two reports',
            )
        if rule.prior_from is None and not any(d in self.peers for d in rule.destinations):
            raise ConfigError(
                f"rule {rule.name!r} compares with the prior study but names no PACS",
                attribute="prior_from",
                hint="set prior_from to a [peers.NAME], or send results to a PACS",
            )

    def _check_alerts(self, rule: Rule) -> None:
        for name in rule.alert:
            if self.alerts.get(name) is None:
                known = ", ".join(self.alerts.names())
                raise ConfigError(
                    f"rule {rule.name!r} alerts {name!r}, which is not an [alerts.KIND.NAME] table",
                    attribute="alert",
                    hint="describe it under [alerts.webhook.NAME], [alerts.fhir.NAME] or "
                    "[alerts.hl7.NAME]" + (f" (known: {known})" if known else ""),
                )
        if rule.alert and not rule.urgent.declared:
            raise ConfigError(
                f"rule {rule.name!r} has alert destinations but no [rules.urgent] criteria: "
                "no alert would ever be sent",
                attribute="urgent",
                hint="declare findings, measurements or model_flag under [rules.urgent]",
            )
        if self.alert_attempts < 1:
            raise ConfigError("alert_attempts must be at least 1", attribute="alert_attempts")
        kinds = {target.kind for name in rule.alert if (target := self.alerts.get(name))}
        for kind, module in (("fhir", "fhir.resources"), ("hl7", "hl7apy")):
            if kind in kinds:  # refuse to start rather than dead-letter every alert
                purpose = f"send alerts to [alerts.{kind}] destinations"
                _require_for(module, extra="alerts", attribute="alert", purpose=purpose)

    def _check_deidentify(self) -> None:
        if self.file_mode & 0o077:
            raise ConfigError(
                f"a rule de-identifies, and the state database that keeps its pseudonym "
                f"mapping would be readable by others (file_mode {self.file_mode:#o})",
                attribute="file_mode",
                hint="use file_mode = 0o600 with deidentify = true",
            )
        purpose = "de-identify series (deidentify = true)"
        _require_for("dicognito", extra="deid", attribute="deidentify", purpose=purpose)

    def _check_network(self) -> None:
        if self.tls is not None and self.tls.check_hostname:
            raise ConfigError(
                "check_hostname is for connecting to a peer; a server does not check names",
                attribute="tls.check_hostname",
                hint="remove it from [gateway.tls]",
            )
        if self.tls is not None:
            self.tls.check(server=True, where="gateway.tls")
        if not 0 < self.port < 65536 or not 0 <= self.stow_port < 65536:
            raise ConfigError("a port is out of range", attribute="port/stow_port")
        if not self.host:
            raise ConfigError(
                "host is empty", attribute="host", hint='use "0.0.0.0" to listen everywhere'
            )
        for name in ("network_timeout_s", "tls_handshake_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive", attribute=name)
        if not 0 <= self.file_mode <= 0o777 or self.file_mode & 0o600 != 0o600:
            raise ConfigError(
                f"file_mode {self.file_mode:#o} is not a file mode the gateway can use",
                attribute="file_mode",
                hint="write it in octal with owner read/write, e.g. 0o600 or 0o640",
            )
        if not (self.executor in ("", "local") or self.executor.startswith(("dask://", "tcp://"))):
            raise ConfigError(
                f"unknown executor {self.executor!r}",
                attribute="executor",
                hint='use "local" or "dask://HOST:8786"',
            )


def _require_for(module: str, *, extra: str, attribute: str, purpose: str) -> None:
    """Raise ConfigError (naming ``attribute`` and the extra) when a package is missing."""
    from radbridge._optional import require

    try:
        require(module, extra, purpose=purpose)
    except RadbridgeError as exc:
        raise ConfigError(exc.message, attribute=attribute, hint=exc.hint) from None


def _from_document(document: Mapping[str, Any], base: Path, data_dir: Path | None) -> GatewayConfig:
    for key in document:
        if key not in _DOCUMENT_TABLES:
            raise unknown_key_error(key, _DOCUMENT_TABLES, "the file's top level")
    rules = document.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError("rules must be [[rules]] tables", attribute="rules")
    extra: dict[str, Any] = {
        "rules": tuple(
            from_table(Rule, table, where=f"rules[{i}]", extra={"name": f"rule{i + 1}"})
            for i, table in enumerate(rules)
        ),
        "priorities": convert(
            document.get("priorities", []), tuple[PriorityRule, ...], "priorities"
        ),
        "peers": convert(document.get("peers", {}), Mapping[str, Peer], "peers", base),
        "alerts": convert(document.get("alerts", {}), AlertTargets, "alerts", base),
    }
    gateway = dict(document.get("gateway", {}))
    folder = data_dir or convert(
        gateway.pop("data_dir", "radbridge-data"), Path, "gateway.data_dir", base
    )
    extra["data_dir"] = folder
    gateway.pop("data_dir", None)
    config = from_table(GatewayConfig, gateway, where="gateway", base=base, extra=extra)
    if not config.rules:
        config = replace(config, rules=GatewayConfig.default(folder).rules)
    return config


def load_gateway_config(
    path: str | os.PathLike[str] | None, *, data_dir: str | os.PathLike[str] | None = None
) -> GatewayConfig:
    """Read the TOML file at ``path`` (or the embedded default when ``None``).

    ``data_dir`` overrides the file's ``gateway.data_dir``. Relative paths
    (data directory, TLS files) are resolved against the configuration file's folder.

    Raises
    ------
    ConfigError
        The file cannot be read, has an unknown key (the closest known name is
        suggested), a value of the wrong type, or inconsistent settings.
    """
    if path is None:
        config = GatewayConfig.default(data_dir or "radbridge-data")
        config.check()
        return config
    p = Path(path)
    document = read_toml(p)
    try:
        config = _from_document(document, p.parent, Path(data_dir) if data_dir else None)
        config.check()
    except ConfigError as exc:
        raise ConfigError(exc.message, path=p, attribute=exc.attribute, hint=exc.hint) from None
    return config
