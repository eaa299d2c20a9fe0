"""The gateway's configuration: one TOML file (or the embedded default).

::

    [gateway]
    data_dir = "radbridge-data"      # spool/, outbox/, archive/, gateway.sqlite, audit.jsonl
    ae_title = "RADBRIDGE"
    host = "127.0.0.1"
    port = 11112
    allowed_calling_aets = []        # empty: any
    quiet_period_s = 5.0             # series complete this long after its last association ends
    workers = 1
    max_attempts = 4                 # then the job is dead-lettered with its reason
    retry_base_s = 2.0               # backoff: base * 2**(attempt-1)
    min_free_disk_mb = 200           # refuse new instances below this (0xA700 / HTTP 503)
    stow_port = 0                    # > 0: also receive STOW-RS on this port

    [gateway.tls]                    # optional: TLS for C-STORE and STOW-RS (PEM)
    cert_file = "gateway.pem"
    key_file = "gateway.key"
    ca_file = "hospital-ca.pem"      # given: senders must present a certificate from it

    [gateway.stow_auth]              # optional: STOW-RS credentials (from the environment)
    username = "pacs"
    password_env = "RADBRIDGE_STOW_PASSWORD"
    token_env = "RADBRIDGE_STOW_TOKEN"
    executor = "local"               # or "dask://HOST:8786" to run jobs on a Dask cluster

    [[rules]]
    name = "ct"
    model = "reference-ct"
    outputs = ["seg", "sr", "ko"]    # also "sc" (overlay picture), "pm" (probability map)
    seg_type = "binary"               # or "labelmap" (smaller; newer readers only)
    destinations = ["archive"]       # "archive" is the local folder; others are [peers.NAME]
    [rules.match]
    modality = ["CT"]
    min_slices = 10

    [[priorities]]
    study_description = "STROKE"
    priority = 100

    [peers.pacs]                     # the peer format shared with `radbridge send`
    ae_title = "ORTHANC"             # (see radbridge.config for every key)
    host = "127.0.0.1"
    port = 4242
    transport = "dimse"              # or "dicomweb" (STOW-RS to dicomweb_url)

Examples
--------
>>> config = GatewayConfig.default("data")
>>> config.rules[0].model, config.port
('reference-ct', 11112)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radbridge.config import (
    Peer,
    TLSConfig,
    peer_from_mapping,
    secret_from_env,
    tls_from_mapping,
)
from radbridge.errors import ConfigError
from radbridge.gateway.routing import Match, PriorityRule, Rule, rule_from_mapping
from radbridge.gateway.stow import StowAuth

__all__ = ["GatewayConfig", "load_gateway_config"]

_GATEWAY_KEYS = {
    "data_dir",
    "ae_title",
    "host",
    "port",
    "allowed_calling_aets",
    "quiet_period_s",
    "workers",
    "max_attempts",
    "retry_base_s",
    "min_free_disk_mb",
    "poll_s",
    "delivery_attempts",
    "stow_port",
    "tls",
    "stow_auth",
}


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs to run (see the module docstring for the TOML form)."""

    data_dir: Path
    ae_title: str = "RADBRIDGE"
    host: str = "127.0.0.1"
    port: int = 11112
    allowed_calling_aets: tuple[str, ...] = ()
    quiet_period_s: float = 5.0
    workers: int = 1
    max_attempts: int = 4
    retry_base_s: float = 2.0
    min_free_disk_mb: float = 200.0
    poll_s: float = 0.2
    delivery_attempts: int = 20
    executor: str = "local"
    stow_port: int = 0
    tls: TLSConfig | None = None
    stow_auth: StowAuth | None = None
    rules: tuple[Rule, ...] = ()
    priorities: tuple[PriorityRule, ...] = ()
    peers: Mapping[str, Peer] = field(default_factory=dict)

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
            unknown = set(rule.outputs) - {"seg", "sr", "ko", "sc", "pm"}
            if unknown:
                raise ConfigError(
                    f"rule {rule.name!r}: unknown outputs {sorted(unknown)}",
                    attribute="outputs",
                    hint="use seg, sr, ko, sc and/or pm",
                )
        if self.workers < 1 or self.max_attempts < 1:
            raise ConfigError(
                "workers and max_attempts must be at least 1", attribute="workers/max_attempts"
            )


def _stow_auth(table: Mapping[str, Any]) -> StowAuth:
    unknown = set(table) - {"username", "password_env", "token_env"}
    if unknown:
        raise ConfigError(
            f"unknown [gateway.stow_auth] keys {sorted(unknown)}",
            attribute="gateway.stow_auth",
            hint="use username, password_env, token_env",
        )
    return StowAuth(
        username=str(table["username"]) if table.get("username") else None,
        password=secret_from_env(table, "password_env", "gateway.stow_auth"),
        token=secret_from_env(table, "token_env", "gateway.stow_auth"),
    )


def _tuples(table: Mapping[str, Any]) -> dict[str, Any]:
    """TOML arrays become tuples (the dataclasses are frozen and hashable)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def load_gateway_config(
    path: str | os.PathLike[str] | None, *, data_dir: str | os.PathLike[str] | None = None
) -> GatewayConfig:
    """Read the TOML file at ``path`` (or the embedded default when ``None``).

    ``data_dir`` overrides the file's ``gateway.data_dir``. Relative data
    directories are resolved against the configuration file's folder.
    """
    if path is None:
        config = GatewayConfig.default(data_dir or "radbridge-data")
        config.check()
        return config
    p = Path(path)
    try:
        document = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration ({exc})", path=p) from exc
    gateway = dict(document.get("gateway", {}) or {})
    unknown = set(gateway) - _GATEWAY_KEYS
    if unknown:
        raise ConfigError(
            f"unknown [gateway] keys {sorted(unknown)}",
            path=p,
            attribute="gateway",
            hint=f"known keys: {', '.join(sorted(_GATEWAY_KEYS))}",
        )
    folder = (
        Path(data_dir) if data_dir else p.parent / str(gateway.pop("data_dir", "radbridge-data"))
    )
    gateway.pop("data_dir", None)
    tls_table = gateway.pop("tls", None)
    auth_table = gateway.pop("stow_auth", None)
    try:
        tls = tls_from_mapping(tls_table, base=p.parent, where="gateway") if tls_table else None
        auth = _stow_auth(auth_table) if auth_table else None
        rules = tuple(rule_from_mapping(r, i) for i, r in enumerate(document.get("rules", [])))
        priorities = tuple(PriorityRule(**_tuples(item)) for item in document.get("priorities", []))
        config = GatewayConfig(
            data_dir=folder,
            rules=rules,
            priorities=priorities,
            peers={
                name: peer_from_mapping(name, table, base=p.parent)
                for name, table in (document.get("peers", {}) or {}).items()
            },
            tls=tls,
            stow_auth=auth,
            **_tuples(gateway),
        )
    except ConfigError as exc:
        raise ConfigError(exc.message, path=p, attribute=exc.attribute, hint=exc.hint) from None
    except TypeError as exc:
        raise ConfigError(f"invalid configuration ({exc})", path=p) from exc
    if not rules:
        config = replace(config, rules=GatewayConfig.default(folder).rules)
    try:
        config.check()
    except ConfigError as exc:
        raise ConfigError(exc.message, path=p, attribute=exc.attribute, hint=exc.hint) from None
    return config
