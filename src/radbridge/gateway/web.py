"""The gateway's web site: the status page, its retry action and ``/metrics`` (ASGI).

The STOW-RS server serves it on the same port (``stow_port``) for every path
outside the DICOMweb root, after the same authentication and over the same TLS:
:meth:`radbridge.gateway.Gateway.stow_server` hands a :class:`StatusSite` down
as the server's ``site`` (the networking layer knows nothing of the gateway).

=============================  ==============================================
``GET /``                      the status page (HTML rendered by
                               :mod:`radbridge.gateway.page`, no script)
``GET /metrics``               Prometheus text format
                               (:mod:`radbridge.gateway.metrics`)
``POST /jobs/{id}/retry``      a dead-lettered job again, then ``303`` to ``/``
=============================  ==============================================

The page is read-only but for the retry button. A retry changes state, so it
needs credentials (``[gateway.stow_auth]``: without them the button is not shown
and the action answers 403) and a CSRF token: the form carries an HMAC of the
request's ``Authorization`` header under a secret made when the site starts,
which another site cannot read; a request whose ``Origin`` is not this site's is
refused as well. Every answer forbids caching, framing and scripts.

Examples
--------
>>> import tempfile, urllib.request
>>> from radbridge.gateway import Gateway, GatewayConfig
>>> gateway = Gateway(GatewayConfig.default(tempfile.mkdtemp()))
>>> direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
>>> with gateway.stow_server() as server:
...     site = server.url.removesuffix("dicom-web")
...     page = direct.open(site).read().decode()
...     metrics = direct.open(site + "metrics").read().decode()
>>> "<h1>radbridge gateway RADBRIDGE</h1>" in page, "radbridge_queue_depth 0.0" in metrics
(True, True)
>>> gateway.close()
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from radbridge.errors import GatewayError
from radbridge.gateway.page import Disk, ModelCard, StatusView, render_message, render_status
from radbridge.gateway.routing import Rule
from radbridge.gateway.status import status

if TYPE_CHECKING:
    from radbridge.gateway.service import Gateway

__all__ = ["StatusSite"]

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_RETRY = re.compile(r"/jobs/([0-9]{1,18})/retry")
_MAX_FORM = 4096
_RECENT = 50
_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # no-referrer would make form posts say Origin: null
}


def _made(rule: Rule) -> tuple[str, ...]:
    """Return the outputs a rule's jobs make: the SEG always on radiology, then the rule's."""
    from radbridge.gateway.sources import rule_source

    return rule.outputs if rule_source(rule) == "slide" else ("seg", *rule.outputs)


class StatusSite:
    """The ASGI application of the status page and ``/metrics`` (see the module docstring).

    Parameters
    ----------
    gateway
        The gateway whose state it shows (its store, configuration, models and metrics).
    credentials
        Whether the server in front asks for credentials (the retry action needs them).
    """

    def __init__(self, gateway: Gateway, *, credentials: bool) -> None:
        self.gateway = gateway
        self.credentials = credentials
        self._secret = secrets.token_bytes(32)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Answer one HTTP request (the STOW-RS server has checked its credentials)."""
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        retry = _RETRY.fullmatch(path)
        if path in ("/", "/metrics") and method not in ("GET", "HEAD"):
            await _answer(send, HTTPStatus.METHOD_NOT_ALLOWED, "use GET", {"allow": "GET, HEAD"})
        elif path == "/":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            page = await asyncio.to_thread(self._page, headers, query)
            await _answer(send, HTTPStatus.OK, page, head=method == "HEAD")
        elif path == "/metrics":
            body, content_type = await asyncio.to_thread(self.gateway.metrics.exposition)
            await _respond(send, HTTPStatus.OK, body, content_type, head=method == "HEAD")
        elif retry is not None and method != "POST":
            await _answer(send, HTTPStatus.METHOD_NOT_ALLOWED, "use POST", {"allow": "POST"})
        elif retry is not None:
            await self._retry(int(retry.group(1)), scope, headers, receive, send)
        else:
            await _answer(send, HTTPStatus.NOT_FOUND, "no such page")

    def csrf_token(self, authorization: str) -> str:
        """Return the token the retry forms carry for a request with these credentials."""
        return hmac.new(self._secret, authorization.encode(), hashlib.sha256).hexdigest()

    def _page(self, headers: dict[str, str], query: dict[str, list[str]]) -> str:
        retried = query.get("retried", [""])[0]
        notice = f"Job {int(retried)} is queued again." if retried.isdigit() else None
        authorization = headers.get("authorization", "")
        view = self.view()
        csrf = self.csrf_token(authorization) if view.retry_allowed and authorization else None
        return render_status(view, csrf=csrf, notice=notice)

    def view(self) -> StatusView:
        """Gather what the page shows (blocking: reads the store)."""
        gateway, config = self.gateway, self.gateway.config
        try:
            usage = shutil.disk_usage(config.spool_dir)
            free, total = float(usage.free), float(usage.total)
        except OSError:
            free = total = float("nan")
        loaded = gateway.models.loaded()
        specs = dict.fromkeys(rule.model for rule in config.rules)
        cards = []
        for spec in specs:
            rules = [r for r in config.rules if r.model == spec]
            model = loaded.get(spec)
            card = getattr(model, "card", None)
            cards.append(
                ModelCard(
                    spec=spec,
                    rules=tuple(r.name for r in rules),
                    outputs=tuple(dict.fromkeys(o for r in rules for o in _made(r))),
                    destinations=tuple(dict.fromkeys(d for r in rules for d in r.destinations)),
                    name=getattr(model, "name", None),
                    version=getattr(model, "version", None),
                    labels=dict(getattr(card, "labels", {}) or {}),
                )
            )
        return StatusView(
            report=status(gateway.store, recent=_RECENT),
            deliveries=gateway.store.recent_deliveries(_RECENT),
            disk=Disk(free, total, config.min_free_disk_mb * 2**20),
            models=cards,
            ae_title=config.ae_title,
            retry_allowed=self.credentials,
        )

    async def _retry(
        self,
        job_id: int,
        scope: dict[str, Any],
        headers: dict[str, str],
        receive: Receive,
        send: Send,
    ) -> None:
        form = await _form(receive, headers)
        problem = self._refusal(scope, headers, form)
        if problem is not None:
            log.warning("status page: retry of job %d refused: %s", job_id, problem)
            await _answer(send, HTTPStatus.FORBIDDEN, problem)
            return
        try:
            job = await asyncio.to_thread(self.gateway.retry, job_id)
        except KeyError:
            await _answer(send, HTTPStatus.NOT_FOUND, f"there is no job {job_id}")
            return
        except GatewayError as exc:
            await _answer(send, HTTPStatus.CONFLICT, exc.message)
            return
        await _respond(
            send, HTTPStatus.SEE_OTHER, b"", "text/plain", {"location": f"/?retried={job.id}"}
        )

    def _refusal(
        self, scope: dict[str, Any], headers: dict[str, str], form: dict[str, list[str]] | None
    ) -> str | None:
        """Say why a retry request is refused, or ``None`` when it may go ahead."""
        if not self.credentials:
            return "retrying from the page needs credentials: configure [gateway.stow_auth]"
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != headers.get("host", ""):
            return "the request comes from another site"
        token = (form or {}).get("csrf", [""])[0]
        expected = self.csrf_token(headers.get("authorization", ""))
        if not token or not hmac.compare_digest(token, expected):
            return "the form's token is missing or wrong: reload the status page and retry there"
        return None


async def _form(receive: Receive, headers: dict[str, str]) -> dict[str, list[str]] | None:
    """Read a small ``application/x-www-form-urlencoded`` body (``None`` for any other)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > _MAX_FORM:
            return None
        if not message.get("more_body"):
            break
    content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    return parse_qs(body.decode("latin-1"))


async def _answer(
    send: Send,
    status_code: HTTPStatus,
    content: str,
    headers: dict[str, str] | None = None,
    *,
    head: bool = False,
) -> None:
    """Answer with a page: ``content`` itself when it is one, else a message page."""
    page = content if status_code == HTTPStatus.OK else render_message(status_code.phrase, content)
    await _respond(
        send, status_code, page.encode(), "text/html; charset=utf-8", headers or {}, head=head
    )


async def _respond(
    send: Send,
    status_code: HTTPStatus,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    *,
    head: bool = False,
) -> None:
    raw = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in (_HEADERS | (headers or {})).items()),
    ]
    await send({"type": "http.response.start", "status": int(status_code), "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})
