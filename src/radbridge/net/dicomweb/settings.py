"""Settings of the STOW-RS receiver: credentials and limits (plain dataclasses, no server).

They are tables of the gateway's TOML file (``[gateway.stow_auth]``,
``[gateway.stow]``), read by :func:`radbridge.schema.from_table`.

Examples
--------
>>> auth = StowAuth(username="pacs", password="s3cret")
>>> auth.check("Basic cGFjczpzM2NyZXQ="), auth.check("Basic cGFjczpOb25l"), auth.check(None)
(True, False, False)
>>> StowAuth(username="pacs")
Traceback (most recent call last):
...
radbridge.errors.ConfigError: a user name without a password [password_env]. ...
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field

from radbridge.errors import ConfigError

__all__ = ["StowAuth", "StowLimits"]


@dataclass(frozen=True)
class StowAuth:
    """Credentials the receiver accepts: HTTP basic (user and password) and/or a bearer token.

    In TOML the secrets are named by environment variables (``password_env``,
    ``token_env``), never written in the file. A user name without a password, a
    password without a user name, or no credential at all is refused.
    """

    username: str | None = None
    password: str | None = field(
        default=None, repr=False, metadata={"toml": "password_env", "secret": True}
    )
    token: str | None = field(
        default=None, repr=False, metadata={"toml": "token_env", "secret": True}
    )

    def __post_init__(self) -> None:
        if self.username and not self.password:
            raise ConfigError(
                "a user name without a password",
                attribute="password_env",
                hint="name the environment variable holding the password (password_env)",
            )
        if self.password and not self.username:
            raise ConfigError(
                "a password without a user name",
                attribute="username",
                hint="give username too, or use token_env alone",
            )
        if not self.username and not self.token:
            raise ConfigError(
                "no credentials",
                attribute="username",
                hint="give username + password_env and/or token_env, or remove the table",
            )

    def check(self, header: str | None) -> bool:
        """Tell whether an ``Authorization`` header carries these credentials."""
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme.lower() == "basic" and self.username and self.password:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode())
            return hmac.compare_digest(value.strip().encode(), expected)
        return False


@dataclass(frozen=True)
class StowLimits:
    """Limits of the STOW-RS receiver (``[gateway.stow]``).

    Parameters
    ----------
    max_request_mb
        Largest request body; a larger one is refused (413) as soon as that is known.
    max_part_mb
        Largest single instance (multipart part).
    request_timeout_s
        Longest a request may take from its headers to its last byte.
    idle_timeout_s
        Longest a request body may pause (no byte received) before it is dropped.
    keep_alive_s
        Longest a connection may stay open without a request in progress — between
        requests, and before a request's headers are complete (half-sent requests
        cannot pile up).
    max_concurrent_requests
        Requests stored at once; more are answered 503 with ``Retry-After``.
    """

    max_request_mb: float = 4096.0
    max_part_mb: float = 2048.0
    request_timeout_s: float = 3600.0
    idle_timeout_s: float = 60.0
    keep_alive_s: float = 10.0
    max_concurrent_requests: int = 16

    def __post_init__(self) -> None:
        for name in ("max_request_mb", "max_part_mb", "request_timeout_s", "idle_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive", attribute=name)
        if self.keep_alive_s <= 0:
            raise ConfigError("keep_alive_s must be positive", attribute="keep_alive_s")
        if self.max_concurrent_requests < 1:
            raise ConfigError(
                "max_concurrent_requests must be at least 1", attribute="max_concurrent_requests"
            )
