"""The STOW-RS receiver (PS3.18 Studies Store Transaction) on Hypercorn.

``POST {base}/studies`` or ``{base}/studies/{StudyInstanceUID}`` with a
``multipart/related; type="application/dicom"`` body, sent with a
Content-Length or chunked. Hypercorn (a maintained ASGI server: HTTP/1.1
keep-alive, chunked bodies, flow control, TLS) does the HTTP; this module's
ASGI application streams each part to the spool as it arrives
(:mod:`radbridge.net.dicomweb.parts`), so memory does not grow with the request.

One request is one *transfer* of the receiver contract
(:mod:`radbridge.net.receiver`): ``transfer_opened``; ``instance_refused`` for
each refused part as it ends; the parts that pass their checks are made
durable and recorded in batches (:mod:`~radbridge.net.dicomweb.batch`: every
64 parts or 64 MiB and at the end of the body, with their fsyncs, folder fsyncs
and one ``instances_stored`` call shared), all before the response, which
lists a part as stored only once its batch was recorded; ``transfer_ended``
with ``released`` when the body arrived whole and every part was answered,
``aborted`` when the client went away mid-body, ``failed`` on a timeout, a
malformed or oversized body. A request that ends without a response (aborted,
failed) refuses the parts of its unfinished batch and removes their files;
earlier batches stay recorded.

Before any body byte is read: authentication (401), the path (404), the
method (405), the content type (415), a declared length over
``max_request_mb`` (413), the disk low-water mark and the concurrent-request
cap (503 with ``Retry-After``). The answer is the Store Instances Response
Module in DICOM JSON: 200 when every part was stored, 202 when some were
refused, 409 when none was; each refused part is a Failed SOP Sequence item
with its UIDs (where readable) and a Failure Reason (see
:mod:`~radbridge.net.dicomweb.parts`). A body that is not well-formed multipart,
or holds no part at all, is a 400 (PS3.18's "bad syntax"; the transfer fails).

Hypercorn answers ``Expect: 100-continue`` with ``100 Continue`` as soon as it
has parsed the request head, before the application runs, and has no setting to
leave that to the application; a refusal from the head alone (a 401 included)
therefore comes after the 100, once the body up to 64 MiB has been read and
dropped (a larger declared body is answered at once and the connection closed).
Nothing of such a body is stored or reported to the sink.

Other paths can be served by a ``site``: an ASGI application given by whoever
starts the server (the gateway's status page and metrics), reached after the
same authentication, on the same port and TLS; without one they are 404.

Connection limits come from Hypercorn: a connection without a request in
progress (including one whose request head is not complete) is closed after
``keep_alive_s``, a TLS handshake must finish within
``tls_handshake_timeout_s``. A body that pauses for ``idle_timeout_s`` or
takes longer than ``request_timeout_s`` fails with 408.

Examples
--------
>>> import tempfile
>>> from radbridge.net import NullSink
>>> with StowServer(tempfile.mkdtemp(), NullSink()) as server:
...     server.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

from radbridge.errors import StorageError
from radbridge.io.storage import remove_stale_temporaries
from radbridge.net.dicomweb.batch import PartBatch
from radbridge.net.dicomweb.multipart import (
    BodyEnd,
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)
from radbridge.net.dicomweb.parts import (
    OUT_OF_RESOURCES,
    PartOutcome,
    PartRules,
    SpooledPart,
)
from radbridge.net.dicomweb.settings import StowAuth, StowLimits
from radbridge.net.peers import TLSConfig
from radbridge.net.receiver import NullSink, ReceiverSink, TransferOutcome

__all__ = ["StowServer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

_WRITE_BATCH = 1 << 20  # part content handed to a worker thread in pieces of this size
_DRAIN_LIMIT = 64 * 2**20  # a refused request's body read (and dropped) so the client sees why
_DRAIN_PATIENCE_S = 5.0  # ... unless it pauses this long
_GRACE_S = 3.0  # requests in flight when the server stops get this long to finish


@dataclass(frozen=True)
class _Settings:
    spool: Path
    sink: ReceiverSink
    base: str
    auth: StowAuth | None
    limits: StowLimits
    accepting: Callable[[], bool] | None
    unique_contents: bool
    file_mode: int | None
    site: ASGIApp | None = None
    transfer_syntaxes: Container[str] | None = None


def _unauthorised() -> _RefusedError:
    headers = {"www-authenticate": 'Basic realm="radbridge", Bearer realm="radbridge"'}
    return _RefusedError(HTTPStatus.UNAUTHORIZED, "credentials required", headers)


class _RefusedError(Exception):
    """A whole request refused with an HTTP status (before or while reading its body)."""

    def __init__(self, status: HTTPStatus, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    study_uid: str | None = None
    parts: list[PartOutcome] = field(default_factory=list)


class _StowApp:
    """The ASGI application (see the module docstring)."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.active = 0
        self.route = re.compile(rf"{re.escape(settings.base)}/studies(?:/([0-9.]+))?/?")
        self.dicomweb = re.compile(rf"{re.escape(settings.base)}(?:/.*)?")

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = _Request(scope["method"], scope["path"], headers)
        site = self.settings.site
        if site is not None and not self.dicomweb.fullmatch(request.path):
            if self._authorised(request):
                await site(scope, receive, send)
            else:
                await self._refuse(_unauthorised(), request, receive, send)
            return
        try:
            self._check(request)
        except _RefusedError as refusal:
            await self._refuse(refusal, request, receive, send)
            return
        self.active += 1
        try:
            await self._transfer(request, receive, send)
        finally:
            self.active -= 1

    def _authorised(self, request: _Request) -> bool:
        auth = self.settings.auth
        return auth is None or auth.check(request.headers.get("authorization"))

    def _check(self, request: _Request) -> None:
        """Refuse what can be refused from the request head alone."""
        settings, limits = self.settings, self.settings.limits
        if not self._authorised(request):
            raise _unauthorised()
        match = self.route.fullmatch(request.path)
        if match is None:
            raise _RefusedError(HTTPStatus.NOT_FOUND, f"only {settings.base}/studies is served")
        request.study_uid = match.group(1)
        if request.method != "POST":
            raise _RefusedError(HTTPStatus.METHOD_NOT_ALLOWED, "use POST", {"allow": "POST"})
        content_type = request.headers.get("content-type", "")
        kind = re.search(r'type="?([^";]+)', content_type.partition(";")[2], re.IGNORECASE)
        if not boundary_of(content_type) or (kind and kind.group(1).lower() != "application/dicom"):
            raise _RefusedError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                'send multipart/related; type="application/dicom" with a boundary',
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_request_mb * 2**20:
            raise _RefusedError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "larger than max_request_mb")
        if settings.accepting is not None and not settings.accepting():
            raise _RefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE, "low on disk space", {"retry-after": "60"}
            )
        if self.active >= limits.max_concurrent_requests:
            raise _RefusedError(
                HTTPStatus.SERVICE_UNAVAILABLE, "too many requests at once", {"retry-after": "5"}
            )

    async def _refuse(
        self, refusal: _RefusedError, request: _Request, receive: Receive, send: Send
    ) -> None:
        """Answer a refusal; read (and drop) a small body first, so the client sees the answer."""
        drained = 0
        declared = request.headers.get("content-length", "")
        complete = declared == "0"
        patience = min(self.settings.limits.idle_timeout_s, _DRAIN_PATIENCE_S)
        while not complete and drained <= _DRAIN_LIMIT:
            if declared.isdigit() and int(declared) > _DRAIN_LIMIT:
                break  # answer at once; the connection closes after the answer
            try:
                message = await asyncio.wait_for(receive(), patience)
            except TimeoutError:
                break
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body"):
                complete = True
                break
        log.info(
            "STOW-RS %s %s refused: %d %s",
            request.method,
            request.path,
            refusal.status,
            refusal.reason,
        )
        headers = dict(refusal.headers)
        if not complete:
            headers["connection"] = "close"
        body = json.dumps({"error": refusal.reason}).encode()
        await _respond(send, refusal.status, body, "application/json", headers)

    async def _transfer(self, request: _Request, receive: Receive, send: Send) -> None:
        settings = self.settings
        transfer_id = f"stow-{uuid.uuid4().hex}"
        rules = PartRules(
            spool=settings.spool,
            sink=settings.sink,
            transfer_id=transfer_id,
            max_part_bytes=int(settings.limits.max_part_mb * 2**20),
            study_uid=request.study_uid,
            unique_contents=settings.unique_contents,
            file_mode=settings.file_mode,
            transfer_syntaxes=settings.transfer_syntaxes,
        )
        await asyncio.to_thread(settings.sink.transfer_opened, transfer_id)
        outcome: TransferOutcome = "failed"
        reader = _BodyReader(rules, request, settings)
        try:
            async with asyncio.timeout(settings.limits.request_timeout_s):
                outcome = await reader.read(receive)
        except TimeoutError:
            reader.failure = _RefusedError(HTTPStatus.REQUEST_TIMEOUT, "the request took too long")
        finally:
            await reader.settle()  # a part's write or store still running in its thread
            await asyncio.to_thread(reader.abandon)
            await asyncio.to_thread(settings.sink.transfer_ended, transfer_id, outcome)
        framing = "chunked" if "content-length" not in request.headers else "with a length"
        log.info(
            "STOW-RS %s (%s, %d bytes): %d stored, %d refused, %s",
            transfer_id,
            framing,
            reader.received,
            sum(1 for p in request.parts if p.instance),
            sum(1 for p in request.parts if not p.instance),
            outcome,
        )
        if outcome == "aborted":
            return  # the client is gone
        if reader.failure is not None:
            headers = {"connection": "close"}
            body = json.dumps({"error": reader.failure.reason}).encode()
            await _respond(send, reader.failure.status, body, "application/json", headers)
            return
        status, body = store_response(request.parts, settings.base)
        await _respond(send, status, body, "application/dicom+json", {})


class _BodyReader:
    """Read a request body, parse it as multipart, and stream its parts to the spool."""

    def __init__(self, rules: PartRules, request: _Request, settings: _Settings) -> None:
        self.rules = rules
        self.request = request
        self.settings = settings
        self.parser = MultipartParser(boundary_of(request.headers.get("content-type", "")))
        self.part: SpooledPart | None = None
        self.pending = bytearray()
        self.failure: _RefusedError | None = None
        self.received = 0
        self.busy: asyncio.Future[Any] | None = None
        self.batch = PartBatch(rules.sink, rules.transfer_id)

    async def read(self, receive: Receive) -> TransferOutcome:
        limits = self.settings.limits
        while True:
            try:
                message = await asyncio.wait_for(receive(), limits.idle_timeout_s)
            except TimeoutError:
                self.failure = _RefusedError(HTTPStatus.REQUEST_TIMEOUT, "the body paused too long")
                return "failed"
            if message["type"] == "http.disconnect":
                return "aborted"
            body = message.get("body", b"")
            self.received += len(body)
            if self.received > limits.max_request_mb * 2**20:
                self.failure = _RefusedError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "over max_request_mb"
                )
                return "failed"
            try:
                for event in self.parser.feed(body):
                    await self._handle(event)
            except MultipartError as exc:
                self.failure = _RefusedError(HTTPStatus.BAD_REQUEST, str(exc))
                return "failed"
            if not message.get("more_body"):
                break
        if not self.parser.complete:
            self.failure = _RefusedError(
                HTTPStatus.BAD_REQUEST, "the body ended before its last part"
            )
            return "failed"
        await self._in_thread(self._store_batch)  # durable and recorded before the response
        if not self.request.parts:  # PS3.18: a Store request holds one or more instances
            self.failure = _RefusedError(HTTPStatus.BAD_REQUEST, "the body holds no part")
            return "failed"
        return "released"

    async def _handle(self, event: PartStart | PartData | PartEnd | BodyEnd) -> None:
        if isinstance(event, PartStart):
            self.part = await self._in_thread(SpooledPart, self.rules, event.headers)
            accepting = self.settings.accepting
            if accepting is not None and not await self._in_thread(accepting):
                self.part.refuse_now(OUT_OF_RESOURCES, "low on disk space")
        elif isinstance(event, PartData) and self.part is not None:
            self.pending += event.data
            if len(self.pending) >= _WRITE_BATCH:
                await self._flush()
        elif isinstance(event, PartEnd) and self.part is not None:
            await self._flush()
            await self._in_thread(self._finish)
            if self.batch.due:
                await self._in_thread(self._store_batch)

    def _finish(self) -> None:
        """Check the part that ended; refuse it or add it to the batch (in a worker thread)."""
        part, self.part = self.part, None
        assert part is not None
        finished = part.finish()
        if isinstance(finished, PartOutcome):
            self.request.parts.append(finished)
        else:
            self.batch.add(finished)

    def _store_batch(self) -> None:
        """Make the batch durable and record it (in a worker thread)."""
        self.request.parts.extend(self.batch.flush())

    async def _flush(self) -> None:
        if self.pending and self.part is not None:
            data, self.pending = bytes(self.pending), bytearray()
            await self._in_thread(self.part.write, data)

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking work in a thread; a cancelled request does not cut it short."""
        self.busy = asyncio.ensure_future(asyncio.to_thread(function, *args))
        return await asyncio.shield(self.busy)

    async def settle(self) -> None:
        """Wait for the work :meth:`_in_thread` started, if the request was cut meanwhile."""
        if self.busy is not None and not self.busy.done():
            await asyncio.wait([self.busy])

    def abandon(self) -> None:
        """Drop a part the request ended inside, and the parts not yet stored (blocking)."""
        if self.part is not None:
            self.part.abandon("the request ended inside this part")
            self.part = None
        self.request.parts.extend(self.batch.discard("the request ended before its response"))


def store_response(parts: list[PartOutcome], base: str) -> tuple[HTTPStatus, bytes]:
    """Return the HTTP status and the Store Instances Response (DICOM JSON) for ``parts``.

    Examples
    --------
    >>> status, body = store_response([PartOutcome(failure=0xC000, reason="bad")], "/dicom-web")
    >>> int(status), json.loads(body)["00081198"]["Value"][0]["00081197"]["Value"]
    (409, [49152])
    """
    stored, failed = [], []
    for part in parts:
        item: dict[str, Any] = {}
        if part.sop_class_uid:
            item["00081150"] = {"vr": "UI", "Value": [part.sop_class_uid]}
        if part.sop_instance_uid:
            item["00081155"] = {"vr": "UI", "Value": [part.sop_instance_uid]}
        if part.instance is not None:
            i = part.instance
            url = (
                f"{base}/studies/{i.study_instance_uid}/series/{i.series_instance_uid}"
                f"/instances/{i.sop_instance_uid}"
            )
            item["00081190"] = {"vr": "UR", "Value": [url]}
            stored.append(item)
        else:
            item["00081197"] = {"vr": "US", "Value": [part.failure]}
            failed.append(item)
    response: dict[str, Any] = {}
    if stored:
        response["00081199"] = {"vr": "SQ", "Value": stored}
    if failed:
        response["00081198"] = {"vr": "SQ", "Value": failed}
    status = (
        HTTPStatus.OK if not failed else (HTTPStatus.ACCEPTED if stored else HTTPStatus.CONFLICT)
    )
    return status, json.dumps(response).encode()


async def _respond(
    send: Send, status: HTTPStatus, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    raw = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": int(status), "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class StowServer:
    """Serve STOW-RS on ``host:port`` in a background thread (see the module docstring).

    Parameters
    ----------
    spool
        Root of the ``<study>/<series>/<sop>.dcm`` tree.
    sink
        Told about every request and part (the receiver contract); default: none.
    host, port
        Where to listen (port 0 picks a free one; see :attr:`port`).
    base
        URL prefix of the DICOMweb root, e.g. ``/dicom-web``.
    auth
        Credentials to require, or ``None``.
    limits
        Sizes, timeouts and the concurrent-request cap.
    tls
        Serve HTTPS with these files (with ``ca_file``: clients must present a
        certificate from that CA).
    tls_handshake_timeout_s
        A TLS client must finish its handshake within this.
    accepting
        Returns False to refuse new requests and parts (disk low-water mark).
    unique_contents
        Name files ``<sop>.<digest>.dcm`` (see :func:`radbridge.net.receiver.store_instance`).
    file_mode
        Mode of the stored files (folders get search bits where readable).
    site
        An ASGI application serving the paths outside ``base`` (after the same
        authentication); without one they are 404.
    transfer_syntaxes
        The transfer syntaxes a part may be in; a part in another is refused
        with Failure Reason ``0xC122`` (Referenced Transfer Syntax not
        supported, PS3.18 Table I.2-2). ``None``: any.
    """

    def __init__(
        self,
        spool: str | Path,
        sink: ReceiverSink | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base: str = "/dicom-web",
        auth: StowAuth | None = None,
        limits: StowLimits | None = None,
        tls: TLSConfig | None = None,
        tls_handshake_timeout_s: float = 10.0,
        accepting: Callable[[], bool] | None = None,
        unique_contents: bool = False,
        file_mode: int | None = None,
        site: ASGIApp | None = None,
        transfer_syntaxes: Container[str] | None = None,
    ) -> None:
        self.settings = _Settings(
            Path(spool),
            sink or NullSink(),
            "/" + base.strip("/") if base.strip("/") else "",
            auth,
            limits or StowLimits(),
            accepting,
            unique_contents,
            file_mode,
            site,
            transfer_syntaxes,
        )
        self.host = host
        self.tls = tls
        self.tls_handshake_timeout_s = tls_handshake_timeout_s
        try:
            self._socket = socket.create_server((host, port), backlog=128)
        except OSError as exc:
            raise StorageError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                attribute="stow_port",
                hint="choose a free port (or stop the program using it)",
            ) from exc
        self.port: int = self._socket.getsockname()[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}{self.settings.base}"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._task: asyncio.Future[None] | None = None
        self._app = _StowApp(self.settings)
        self._ready = threading.Event()

    def start(self) -> StowServer:
        """Start serving; return ``self``."""
        spool = self.settings.spool
        if spool.exists():
            remove_stale_temporaries(spool, grace_s=0.0)  # live writers (C-STORE) kept
        config = _hypercorn_config(self)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(config),), name="radbridge-stow", daemon=True
        )
        self._thread.start()
        self._ready.wait(30)
        log.info("STOW-RS on %s", self.url)
        return self

    async def _serve(self, config: Any) -> None:
        from hypercorn.asyncio import serve

        self._loop = asyncio.get_running_loop()
        self._shutdown = asyncio.Event()
        app: Any = self._app
        self._task = asyncio.ensure_future(serve(app, config, shutdown_trigger=self._shutdown.wait))
        self._loop.set_exception_handler(self._loop_error)
        self._ready.set()
        # stop() cancels the server after the grace period (see there)
        with contextlib.suppress(asyncio.CancelledError, asyncio.InvalidStateError):
            await self._task

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if self._shutdown is not None and self._shutdown.is_set():
            return  # connections cut at shutdown: nothing to report
        loop.default_exception_handler(context)

    def stop(self) -> None:
        """Stop serving (requests in flight get a few seconds to finish)."""
        if self._thread is None:
            self._socket.close()
            return
        if self._loop is not None and self._shutdown is not None:
            self._loop.call_soon_threadsafe(self._shutdown.set)
            self._thread.join(_GRACE_S + 1)
            if self._thread.is_alive() and self._task is not None:
                # a TLS connection whose client does not answer the close waits 30 s:
                # give up on it
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)
        self._thread = None
        self._socket.close()

    def __enter__(self) -> StowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _hypercorn_config(server: StowServer) -> Any:
    """Hypercorn's settings for ``server``, serving its already-bound socket."""
    from hypercorn.config import Config, Sockets

    context = server.tls.server_context() if server.tls else None
    sockets = Sockets(
        secure_sockets=[server._socket] if context else [],
        insecure_sockets=[] if context else [server._socket],
        quic_sockets=[],
    )

    class _Config(Config):
        def create_sockets(self) -> Sockets:
            return sockets

        def create_ssl_context(self) -> Any:
            return context

        @property
        def ssl_enabled(self) -> bool:
            return context is not None

    limits = server.settings.limits
    config = _Config()
    config.keep_alive_timeout = limits.keep_alive_s
    config.read_timeout = math.ceil(limits.idle_timeout_s) + 5  # the app times out first
    config.ssl_handshake_timeout = server.tls_handshake_timeout_s
    config.graceful_timeout = _GRACE_S
    config.accesslog = None
    config.errorlog = logging.getLogger("radbridge.net.dicomweb.hypercorn")
    config.alpn_protocols = ["http/1.1"]
    return config
