"""One JSON POST to an alert destination, failures sorted into temporary and permanent.

HTTP 2xx is success. 408, 429 and 5xx, a refused connection and a timeout are
temporary (the gateway backs off and retries); any other 4xx is permanent (the
same request would be refused again). Error messages carry the status code and
the destination, never the request body (it may hold patient identifiers).
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from radbridge.errors import SendError

__all__ = ["post_json"]

_TEMPORARY = (408, 429)


def alert_error(message: str, *, url: str, permanent: bool, hint: str | None = None) -> SendError:
    """Return an :class:`~radbridge.errors.SendError` about ``url``."""
    error = SendError(message, path=url, hint=hint)
    error.permanent = permanent
    return error


def post_json(
    url: str, body: bytes, *, headers: Mapping[str, str], timeout_s: float
) -> requests.Response:
    """POST ``body`` (JSON bytes) and return the 2xx response; raise SendError otherwise."""
    try:
        response = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout_s,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise alert_error(f"no answer ({type(exc).__name__})", url=url, permanent=False) from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    permanent = 300 <= status < 500 and status not in _TEMPORARY
    raise alert_error(
        f"HTTP {status} {response.reason or ''}".strip(),
        url=url,
        permanent=permanent,
        hint="check the destination's URL and credentials" if permanent else None,
    )
