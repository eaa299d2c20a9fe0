"""Alerts as signed JSON to an HTTP webhook.

The body is the alert's :meth:`~radbridge.net.alerts.AlertMessage.payload`
(compact JSON, keys sorted). ``X-Radbridge-Signature`` is
``sha256=`` and the hex HMAC-SHA256 of the exact body bytes under the
destination's secret; a receiver recomputes it and compares in constant time.
``Idempotency-Key`` repeats the alert's key: a re-send after a crash carries the
same key.

Examples
--------
>>> body = b'{"event":"critical_finding"}'
>>> signature(b"secret", body)[:15]
'sha256=58be3256'
>>> good = signature(b"secret", body)
>>> verify(b"secret", body, good), verify(b"other", body, good)
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import json

from radbridge.net.alerts.message import AlertMessage
from radbridge.net.alerts.posting import post_json
from radbridge.net.alerts.settings import WebhookTarget

__all__ = ["send_webhook", "signature", "verify"]

SIGNATURE_HEADER = "X-Radbridge-Signature"


def signature(secret: bytes, body: bytes) -> str:
    """Return the ``X-Radbridge-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Tell whether ``header`` is the signature of ``body`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def body_of(message: AlertMessage) -> bytes:
    """Return the exact bytes posted for ``message``."""
    return json.dumps(message.payload(), sort_keys=True, separators=(",", ":")).encode()


def send_webhook(target: WebhookTarget, message: AlertMessage) -> str:
    """POST the signed alert; return ``"HTTP <status>"``.

    Raises
    ------
    SendError
        No 2xx answer (``permanent`` for 4xx other than 408 and 429).
    """
    body = body_of(message)
    secret = (target.secret or "").encode()
    headers = {SIGNATURE_HEADER: signature(secret, body), "Idempotency-Key": message.key}
    response = post_json(target.url, body, headers=headers, timeout_s=target.timeout_s)
    return f"HTTP {response.status_code}"
