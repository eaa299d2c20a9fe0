"""A STOW-RS endpoint for the gateway (PS3.18 Store Transaction).

``POST {base}/studies`` (or ``/studies/{StudyInstanceUID}``) with
``multipart/related; type="application/dicom"``. Each part is checked (a DICOM
file whose UIDs are valid), written to the spool durably (temporary file, fsync,
rename) and recorded, *then* the response lists it as stored; parts that cannot
be stored are listed as failed with a reason code and never acknowledged. The
response is the DICOM JSON Store Instances Response Module: HTTP 200 when all
parts were stored, 202 when some failed, 409 when none was stored.

Optional HTTP basic or bearer authentication; optional TLS.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from radbridge.net.dicomweb.settings import StowAuth
from radbridge.net.durable import dataset_offset, read_uids
from radbridge.net.receiver import NullSink, ReceiverSink, StoredInstance, store_instance

__all__ = ["StowAuth", "StowServer"]

log = logging.getLogger(__name__)

#: Called with a raw part and the request's id; stores it durably, reports it to the
#: sink and returns what was stored, or raises (the part is then refused).
StoreCallback = Callable[[bytes, str], StoredInstance]

_FAILURE_PROCESSING = 0xC000  # Failure: cannot understand
_FAILURE_RESOURCES = 0xA700  # Out of resources
_MAX_BODY = 4 * 2**30
_MAX_DISCARD = 256 * 2**20


def parse_parts(content_type: str, body: bytes) -> list[bytes]:
    """Split a ``multipart/related`` body into its parts' payloads.

    Raises
    ------
    ValueError
        No boundary, or a part without a header block.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if not match:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        _, separator, payload = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a part has no header block")
        parts.append(payload[:-2] if payload.endswith(b"\r\n") else payload)
    return parts


def spool_part(data: bytes, spool: Path) -> StoredInstance:
    """Check a part and write it durably to ``spool/<study>/<series>/<sop>.<digest>.dcm``.

    Raises :class:`~radbridge.errors.DicomReadError` for a part that is not a DICOM
    instance with valid UIDs, :class:`~radbridge.errors.StorageError` when it
    cannot be written.
    """
    study, series, sop, sop_class = read_uids(data)
    view = memoryview(data)
    offset = dataset_offset(view)
    return store_instance(
        spool,
        view[:offset],
        view[offset:],
        study=study,
        series=series,
        sop=sop,
        sop_class=sop_class,
        unique_contents=True,
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("stow: " + format, *args)

    def do_POST(self) -> None:
        settings = self.server.settings
        if settings.auth is not None and not settings.auth.check(self.headers.get("Authorization")):
            self._discard_body()
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", 'Basic realm="radbridge"')
            self.end_headers()
            return
        if not re.fullmatch(rf"{re.escape(settings.base)}/studies(/[0-9.]+)?/?", self.path):
            self._discard_body()
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length <= 0 or length > _MAX_BODY:
            self.send_error(
                HTTPStatus.LENGTH_REQUIRED if length <= 0 else HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            )
            return
        if settings.accepting is not None and not settings.accepting():
            # nothing is stored; the client may try again later
            self._discard_body()
            self.send_response(HTTPStatus.SERVICE_UNAVAILABLE, "low on disk space")
            self.send_header("Retry-After", "60")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        body = self.rfile.read(length)
        request = f"stow-{uuid.uuid4().hex}"
        sink = settings.sink
        sink.transfer_opened(request)
        if len(body) < length:  # the client went away mid-body: store nothing, hold its series
            self._refuse_cut_request(body, request)
            sink.transfer_ended(request, "aborted")
            self.close_connection = True
            return
        try:
            parts = parse_parts(self.headers.get("Content-Type", ""), body)
        except ValueError as exc:
            sink.transfer_ended(request, "failed")
            self.send_error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        outcome: Literal["released", "failed"] = "failed"
        try:
            stored, failed = self._store_all(parts, request)
            outcome = "released"
        finally:
            sink.transfer_ended(request, outcome)
        self._respond(stored, failed)

    def _refuse_cut_request(self, body: bytes, request: str) -> None:
        """Report the parts of a cut request as refused (with their series where readable)."""
        try:
            parts = parse_parts(self.headers.get("Content-Type", ""), body)
        except ValueError:
            parts = []
        for data in parts or [b""]:
            try:
                series: str | None = read_uids(data)[1] or None
            except Exception:  # a truncated part: its series stays unknown
                series = None
            self.server.settings.sink.instance_refused(request, series, "request cut short")

    def _discard_body(self) -> None:
        """Read and drop a refused request's body (up to 256 MiB), so the client gets the answer.

        Closing while the client still sends would look like a dropped connection to it
        (on TLS in particular) instead of the 401/404/503 it should see.
        """
        remaining = int(self.headers.get("Content-Length", "0") or 0)
        if remaining > _MAX_DISCARD:
            self.close_connection = True
            return
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _store_all(
        self, parts: list[bytes], request: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        settings = self.server.settings
        stored, failed = [], []
        for data in parts:
            try:
                instance = settings.store(data, request)
            except Exception as exc:  # a bad part fails alone; the others are still stored
                code = _FAILURE_RESOURCES if isinstance(exc, OSError) else _FAILURE_PROCESSING
                reason = str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
                failed.append(_item(None, code, reason))
                settings.sink.instance_refused(request, _series_of(data), reason)
            else:
                study, series = instance.study_instance_uid, instance.series_instance_uid
                sop = instance.sop_instance_uid
                stored.append(
                    _item(
                        sop,
                        None,
                        None,
                        f"{settings.base}/studies/{study}/series/{series}/instances/{sop}",
                    )
                )
        return stored, failed

    def _respond(self, stored: list[dict[str, Any]], failed: list[dict[str, Any]]) -> None:
        status = (
            HTTPStatus.OK
            if not failed
            else (HTTPStatus.ACCEPTED if stored else HTTPStatus.CONFLICT)
        )
        response: dict[str, Any] = {}
        if stored:
            response["00081199"] = {"vr": "SQ", "Value": stored}
        if failed:
            response["00081198"] = {"vr": "SQ", "Value": failed}
        payload = json.dumps(response).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _series_of(data: bytes) -> str | None:
    try:
        return read_uids(data)[1] or None
    except Exception:  # unreadable: the refusal is reported without a series
        return None


def _item(
    sop: str | None, failure: int | None, reason: str | None, url: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if sop:
        item["00081155"] = {"vr": "UI", "Value": [sop]}
    if url:
        item["00081190"] = {"vr": "UR", "Value": [url]}
    if failure is not None:
        item["00081197"] = {"vr": "US", "Value": [failure]}
        log.warning("stow part failed: %s", (reason or "")[:200])
    return item


@dataclass(frozen=True)
class _Settings:
    base: str
    store: StoreCallback
    auth: StowAuth | None
    accepting: Callable[[], bool] | None
    sink: ReceiverSink


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], settings: _Settings, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(address, _Handler)
        self.settings = settings
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the request's own thread, so one bad client blocks none."""
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.warning("stow: TLS handshake failed (%s)", type(exc).__name__)
                return
        super().finish_request(request, client_address)


class StowServer:
    """Serve STOW-RS on ``host:port`` in a background thread.

    Parameters
    ----------
    store
        Stores one part durably and returns its (study, series, SOP) UIDs; it must
        raise for anything it did not store.
    host, port
        Where to listen (port 0 picks a free one; see :attr:`port`).
    base
        URL prefix of the DICOMweb root, e.g. ``/dicom-web``.
    auth
        Credentials to require, or ``None``.
    accepting
        Returns False to refuse new requests (disk low-water mark).
    sink
        Told when a request (a transfer of the receiver contract,
        :mod:`radbridge.net.receiver`) starts and ends, and about refused parts;
        ``store`` reports the stored ones.
    tls
        An SSL context to serve HTTPS.
    """

    def __init__(
        self,
        store: StoreCallback,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base: str = "/dicom-web",
        auth: StowAuth | None = None,
        accepting: Callable[[], bool] | None = None,
        sink: ReceiverSink | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        settings = _Settings(base.rstrip("/"), store, auth, accepting, sink or NullSink())
        self._server = _Server((host, port), settings, tls)
        self.host, self.port = self._server.server_address[0], self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}{base.rstrip('/')}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="radbridge-stow", daemon=True
        )

    def start(self) -> StowServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (requests in flight finish)."""
        self._server.shutdown()
        self._server.server_close()
