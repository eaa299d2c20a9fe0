"""Peer descriptions: a PACS or DICOM node described once, for the CLI and the gateway.

A peer is a ``[peers.NAME]`` table in a TOML file. The same file format serves
``radbridge send``/``query``/``retrieve`` (``--config``) and the gateway's
configuration, so a PACS is described in one place::

    [peers.pacs]
    ae_title = "ORTHANC"
    host = "127.0.0.1"
    port = 4242
    timeout_s = 30
    dicomweb_url = "http://127.0.0.1:8042/dicom-web"
    username = "radbridge"             # DICOMweb basic auth
    password_env = "PACS_PASSWORD"     # read from the environment, never stored
    token_env = ""                     # or a bearer token from the environment
    transport = "dimse"                # how the gateway delivers: "dimse", "dicomweb", or
                                       # a transport registered by name (radbridge.net.senders)

    [peers.pacs.tls]                   # optional: DIMSE over TLS
    ca_file = "ca.pem"
    cert_file = "client.pem"           # client certificate (mutual TLS)
    key_file = "client.key"

A peer can also be written inline as ``AE@HOST:PORT``.

Examples
--------
>>> peer = parse_peer("ORTHANC@127.0.0.1:4242")
>>> peer.ae_title, peer.host, peer.port
('ORTHANC', '127.0.0.1', 4242)
>>> print(peer)
ORTHANC@127.0.0.1:4242
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radbridge.errors import ConfigError
from radbridge.net.senders import transports
from radbridge.schema import from_table, read_toml

__all__ = [
    "Peer",
    "TLSConfig",
    "load_peers",
    "parse_peer",
    "peer_from_mapping",
    "resolve_peer",
    "tls_from_mapping",
]

_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # no backslash, no control characters
_INLINE = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:@]+):(?P<port>\d{1,5})$")


def check_ae_title(value: str, *, attribute: str = "ae_title") -> str:
    """Return ``value`` stripped if it is a valid AE title, else raise ConfigError."""
    stripped = value.strip()
    if not stripped or not _AE.match(value):
        raise ConfigError(
            f"{value!r} is not a valid AE title",
            attribute=attribute,
            hint="use 1 to 16 printable characters without a backslash",
        )
    return stripped


@dataclass(frozen=True)
class TLSConfig:
    """TLS files for a DIMSE association (PEM).

    ``ca_file`` verifies the other side's certificate; ``cert_file`` and
    ``key_file`` are our own certificate (the server's, or the client's for
    mutual TLS).
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = False

    def check(self, *, server: bool = False, where: str = "tls") -> None:
        """Read the files now, as a connection would, so a wrong one fails at start.

        ``where`` names the table in messages (``gateway.tls``).

        Raises
        ------
        ConfigError
            A file is missing, unreadable or not PEM, the key does not match the
            certificate, or (``server``) there is no certificate.
        """
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(
                    f"{key} {path} is not a file",
                    attribute=f"{where}.{key}",
                    hint="give a PEM file; a relative path is relative to the configuration file",
                )
        if server and not self.cert_file:
            raise _no_certificate(where)
        try:
            self.server_context() if server else self.client_context()
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the TLS files cannot be used ({type(exc).__name__}: {exc})",
                attribute=where,
                hint="give PEM files: ca_file, and cert_file with key_file for mutual TLS",
            ) from None

    def client_context(self) -> ssl.SSLContext:
        """Return an :class:`ssl.SSLContext` for connecting to a peer."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        context.check_hostname = self.check_hostname
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def server_context(self) -> ssl.SSLContext:
        """Return an :class:`ssl.SSLContext` for accepting associations.

        With ``ca_file`` set, clients must present a certificate signed by it.
        """
        if not self.cert_file:
            raise _no_certificate("tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.ca_file)
        context.load_cert_chain(self.cert_file, self.key_file)
        context.verify_mode = ssl.CERT_REQUIRED if self.ca_file else ssl.CERT_NONE
        return context


def _no_certificate(where: str) -> ConfigError:
    return ConfigError(
        "a TLS server needs its own certificate",
        attribute=f"{where}.cert_file",
        hint="give cert_file and key_file (PEM)",
    )


@dataclass(frozen=True)
class Peer:
    """A DICOM node: DIMSE address and, optionally, its DICOMweb service.

    Parameters
    ----------
    ae_title, host, port
        The DIMSE address.
    name
        The ``[peers.NAME]`` key (or the AE title for inline peers); used in messages.
    timeout_s
        Connection, ACSE, DIMSE and network timeout.
    dicomweb_url
        Base URL of the DICOMweb service (e.g. ``http://host:8042/dicom-web``).
    username, password, token
        DICOMweb basic or bearer authentication.
    tls
        DIMSE over TLS, if given.
    transport
        How results are delivered to this peer: ``"dimse"`` (C-STORE),
        ``"dicomweb"`` (STOW-RS to ``dicomweb_url``), or the name of a transport
        registered with :func:`radbridge.net.register_transport`.
    """

    ae_title: str
    host: str
    port: int
    name: str = field(default="", metadata={"toml": None, "key_name": True})
    timeout_s: float = 30.0
    dicomweb_url: str | None = None
    username: str | None = None
    password: str | None = field(
        default=None, repr=False, metadata={"toml": "password_env", "secret": True}
    )
    token: str | None = field(
        default=None, repr=False, metadata={"toml": "token_env", "secret": True}
    )
    tls: TLSConfig | None = None
    transport: str = "dimse"

    def __post_init__(self) -> None:
        check_ae_title(self.ae_title)
        if self.transport not in transports():
            raise ConfigError(
                f"unknown transport {self.transport!r}",
                attribute="transport",
                hint=f"use one of {', '.join(map(repr, transports()))}",
            )
        if self.transport == "dicomweb" and not self.dicomweb_url:
            raise ConfigError("transport 'dicomweb' needs a dicomweb_url", attribute="dicomweb_url")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range", attribute="port")
        if self.timeout_s <= 0:
            raise ConfigError("timeout_s must be positive", attribute="timeout_s")
        if self.tls is not None:
            self.tls.check()
        if not self.name:
            object.__setattr__(self, "name", self.ae_title)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_peer(text: str) -> Peer:
    """Parse ``AE@HOST:PORT`` into a :class:`Peer`."""
    match = _INLINE.match(text.strip())
    if not match:
        raise ConfigError(
            f"{text!r} is not a peer address",
            attribute="peer",
            hint="write AE@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242, or a [peers.NAME] name",
        )
    host = match["host"].strip("[]")
    return Peer(match["ae"], host, int(match["port"]))


def tls_from_mapping(
    table: Mapping[str, Any], *, base: Path | None = None, where: str = "tls"
) -> TLSConfig:
    """Build a :class:`TLSConfig` from a ``tls`` table (``base``: for relative paths)."""
    return from_table(TLSConfig, table, where=where, base=base)


def peer_from_mapping(name: str, table: Mapping[str, Any], *, base: Path | None = None) -> Peer:
    """Build a :class:`Peer` from a ``[peers.NAME]`` table (``base``: for relative paths)."""
    return from_table(Peer, table, where=f"peers.{name}", base=base, extra={"name": name})


def load_peers(path: str | os.PathLike[str]) -> dict[str, Peer]:
    """Read every ``[peers.NAME]`` table of a TOML file (e.g. the gateway's configuration)."""
    p = Path(path)
    document = read_toml(p)
    peers: dict[str, Peer] = {}
    for name, table in (document.get("peers") or {}).items():
        try:
            peers[name] = peer_from_mapping(name, table, base=p.parent)
        except ConfigError as exc:
            raise ConfigError(exc.message, path=p, attribute=exc.attribute, hint=exc.hint) from None
    return peers


def resolve_peer(text: str, config: str | os.PathLike[str] | None = None) -> Peer:
    """Return the peer named ``text`` in ``config``, or parse ``text`` as ``AE@HOST:PORT``."""
    if "@" in text:
        return parse_peer(text)
    if config is None:
        raise ConfigError(
            f"{text!r} is not AE@HOST:PORT and no --config was given",
            attribute="peer",
            hint="give AE@HOST:PORT or --config FILE with a [peers.NAME] table",
        )
    peers = load_peers(config)
    if text not in peers:
        raise ConfigError(
            f"no peer named {text!r}",
            path=config,
            attribute="peers",
            hint=f"known peers: {', '.join(sorted(peers)) or 'none'}",
        )
    return peers[text]
