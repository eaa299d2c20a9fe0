"""DICOMweb as a client: STOW-RS, QIDO-RS and WADO-RS over dicomweb-client.

A :class:`~radbridge.net.peers.Peer` with ``dicomweb_url`` gives the base URL,
basic (``username``/``password``) or bearer (``token``) authentication, the
timeout, and for HTTPS its ``tls`` files (``ca_file`` to verify the server,
``cert_file``/``key_file`` for mutual TLS). HTTP failures raise
:class:`~radbridge.errors.DicomWebError` with the status, the URL and what to try.

Examples
--------
>>> from radbridge.net import Peer
>>> from radbridge.errors import ConfigError
>>> try:
...     qido(Peer("PACS", "127.0.0.1", 4242), "STUDY")
... except ConfigError as err:
...     print(err.attribute)
dicomweb_url
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset

from radbridge.errors import (
    ConfigError,
    DicomWebError,
    NotDicomError,
    PeerTimeoutError,
    RadbridgeError,
)
from radbridge.io.part10 import read_uids
from radbridge.io.storage import instance_path, write_durably
from radbridge.net.dicomweb.multipart import part_bodies
from radbridge.net.dicomweb.paging import Page, additional_results, fetch_pages
from radbridge.net.peers import Peer
from radbridge.net.retrieved import RetrieveProgress, RetrieveReport, remove_stale_downloads
from radbridge.net.senders import failed

__all__ = [
    "DicomWebSender",
    "StowReport",
    "permanent_failure",
    "qido",
    "stow",
    "stow_batches",
    "wado",
]

log = logging.getLogger(__name__)

_HINTS = {
    400: "the peer refused the request; an instance may lack required UIDs (see its log)",
    401: "check the user name and password (or token) of the peer",
    403: "the account may not use this service",
    404: "check the DICOMweb URL and the UIDs",
    409: "the peer refused the instances (see the failed SOP list)",
    413: "send fewer instances per request",
    503: "the peer is busy or low on disk; retry later",
}


@dataclass(frozen=True)
class StowReport:
    """Instances a STOW-RS request stored (SOP Instance UIDs)."""

    peer: str
    stored: tuple[str, ...]
    seconds: float = 0.0


class _RedactQueries(logging.Filter):
    """Drop query strings (``?PatientID=...``) from the URLs HTTP libraries log."""

    _QUERY = re.compile(r"\?[^\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = self._QUERY.sub("?<query not logged>", message), None
        return True


#: Loggers that write request URLs, query string included (at DEBUG).
_URL_LOGGERS = ("dicomweb_client.web", "urllib3.connectionpool")


class _PagingHandled(logging.Filter):
    """Drop dicomweb-client's echo of a ``Warning: 299 ... additional results`` header.

    :func:`qido` asks for those results itself, and warns when it cannot have them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING or not additional_results(record.getMessage())[0]


def _redact_url_logs() -> None:
    """Keep QIDO-RS matching keys (patient names, IDs) out of HTTP debug logs."""
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactQueries) for f in logger.filters):
            logger.addFilter(_RedactQueries())
    web = logging.getLogger(_URL_LOGGERS[0])
    if not any(isinstance(f, _PagingHandled) for f in web.filters):
        web.addFilter(_PagingHandled())


def _session(peer: Peer) -> Any:
    """Return a ``requests.Session`` with the peer's authentication (no proxies)."""
    import requests

    _redact_url_logs()

    if not peer.dicomweb_url:
        raise ConfigError(
            f"peer {peer.name!r} has no DICOMweb URL",
            attribute="dicomweb_url",
            hint="add dicomweb_url to its [peers.NAME] table",
        )
    session = requests.Session()
    session.trust_env = False  # loopback and hospital networks: no proxy from the environment
    if peer.tls and peer.tls.ca_file:  # HTTPS: the peer's certificate authority ...
        session.verify = str(peer.tls.ca_file)
    if peer.tls and peer.tls.cert_file:  # ... and our certificate for mutual TLS
        key = str(peer.tls.key_file) if peer.tls.key_file else None
        session.cert = (str(peer.tls.cert_file), key) if key else str(peer.tls.cert_file)
    if peer.token:
        session.headers["Authorization"] = f"Bearer {peer.token}"
    elif peer.username:
        session.auth = (peer.username, peer.password or "")
    return session


def _client(peer: Peer, session: Any = None) -> Any:
    from dicomweb_client.api import DICOMwebClient

    session = session or _session(peer)
    client = DICOMwebClient(str(peer.dicomweb_url), session=session, timeout=peer.timeout_s)
    client.set_http_retry_params(retry=False)  # radbridge's callers decide about retries
    return client


def _call(peer: Peer, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    import requests

    try:
        return function(*args, **kwargs)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        err = DicomWebError(
            f"{what} on {peer.dicomweb_url} failed with HTTP {status}",
            path=peer.name,
            hint=_HINTS.get(status or 0, "see the peer's log"),
        )
        err.http_status = status
        raise err from exc
    except requests.Timeout as exc:
        raise PeerTimeoutError(
            f"{what} on {peer.dicomweb_url}: no answer within {peer.timeout_s:g} s",
            path=peer.name,
            hint="raise timeout_s or check the server",
        ) from exc
    except requests.exceptions.SSLError as exc:
        raise DicomWebError(
            f"{what}: TLS with {peer.dicomweb_url} failed",
            path=peer.name,
            hint="check [peers.NAME.tls]: ca_file must sign the server's certificate, and "
            "a server asking for a client certificate needs cert_file and key_file",
        ) from exc
    except requests.ConnectionError as exc:
        if _closed_after_connect(exc) and str(peer.dicomweb_url).startswith("https:"):
            # TLS 1.3 sends the server's refusal of our certificate (or of its absence)
            # after the client's handshake is done: depending on timing the client sees
            # the alert (SSLError above) or only a connection closed under it.
            raise DicomWebError(
                f"{what}: TLS with {peer.dicomweb_url} failed (the server closed the "
                "connection after the handshake)",
                path=peer.name,
                hint="check [peers.NAME.tls]: a server asking for a client certificate needs "
                "cert_file and key_file from a CA it trusts; ca_file must sign its certificate",
            ) from exc
        err = DicomWebError(
            f"{what}: cannot connect to {peer.dicomweb_url}",
            path=peer.name,
            hint="check that the server runs and the URL is right",
        )
        raise err from exc


def _closed_after_connect(exc: BaseException) -> bool:
    """Whether a connection error came after the TCP connection was made.

    urllib3 wraps a refused or unresolvable connection in ``NewConnectionError``;
    anything else (a reset, an EOF) came from a server that had accepted us.
    """
    from urllib3.exceptions import NewConnectionError

    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return False
        pending.extend([current.__cause__, current.__context__])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.append(getattr(current, "reason", None))
    return True


#: Instances per STOW-RS request are bounded by their total size (bytes).
STOW_BATCH_BYTES = 64 << 20


def stow(
    paths: Sequence[str | os.PathLike[str]],
    peer: Peer,
    *,
    study: str | None = None,
    batch_bytes: int = STOW_BATCH_BYTES,
) -> StowReport:
    """STOW-RS the files ``paths`` to ``peer``; raise unless every instance was stored.

    Each file is sent as it is stored (its bytes, not a re-encoded data set), in
    requests of at most ``batch_bytes`` (a bigger file goes alone).

    Parameters
    ----------
    paths
        DICOM files (Part 10).
    peer
        A peer with ``dicomweb_url``.
    study
        POST to ``/studies/{study}``: the server refuses instances of other studies.
    batch_bytes
        Upper bound of the files' total size in one request.

    Raises
    ------
    NotDicomError
        A file is not a DICOM Part 10 file (checked before anything is sent).
    DicomWebError
        An HTTP error, or the server refused some instances (their SOP Instance
        UIDs and failure reasons are named; ``http_status`` is the answer's).
    PeerTimeoutError
        No answer within ``peer.timeout_s``.
    """
    files = [Path(p) for p in paths]
    for path in files:
        _check_part10(path)
    session = _session(peer)
    url = f"{str(peer.dicomweb_url).rstrip('/')}/studies" + (f"/{study}" if study else "")
    started = time.monotonic()
    stored: list[str] = []
    failed: list[str] = []
    reasons: list[int] = []
    status = 200
    for batch in stow_batches(files, batch_bytes):
        answer, batch_status = _post_instances(peer, session, url, batch)
        status = batch_status if batch_status != 200 else status
        stored += [
            str(i.ReferencedSOPInstanceUID) for i in answer.get("ReferencedSOPSequence") or []
        ]
        failed += [
            f"{item.get('ReferencedSOPInstanceUID', '?')} "
            f"(reason 0x{int(item.get('FailureReason', 0)):04X})"
            for item in (answer.get("FailedSOPSequence") or [])
        ]
        reasons += [
            int(item.get("FailureReason", 0)) for item in (answer.get("FailedSOPSequence") or [])
        ]
    seconds = time.monotonic() - started
    log.info(
        "STOW-RS to %s: %d stored, %d failed in %.2f s", peer, len(stored), len(failed), seconds
    )
    if failed or len(stored) < len(files):
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        err = DicomWebError(
            f"STOW-RS on {peer.dicomweb_url}: {len(files) - len(stored)} of {len(files)} "
            f"instances were not stored{': ' + shown if shown else ''}",
            path=peer.name,
            hint="instances of another study than the one posted to are refused; "
            "see the peer's log for the other reasons",
        )
        err.http_status = status
        err.failure_reasons = tuple(reasons)
        raise err
    return StowReport(str(peer), tuple(stored), seconds)


class DicomWebSender:
    """The ``dicomweb`` transport: STOW-RS one file to the peer's ``dicomweb_url``, once.

    A :class:`~radbridge.net.senders.Sender`: returns 0 when the server stored
    the instance and raises :class:`~radbridge.errors.SendError` for every
    failure, permanent as :func:`permanent_failure` says.
    """

    def send(self, path: Path, peer: Peer, *, ae_title: str = "") -> int:
        """STOW-RS ``path`` to ``peer`` (``ae_title`` is not used: HTTP has none)."""
        try:
            stow([path], peer)
        except (RadbridgeError, OSError) as exc:
            raise failed(exc, permanent=permanent_failure(exc)) from exc
        return 0


#: HTTP 4xx statuses that a later try may pass: Request Timeout, Too Many Requests.
_TEMPORARY_HTTP = (408, 429)


def permanent_failure(exc: BaseException) -> bool:
    """Tell whether a STOW-RS failure is final: sending the same file again cannot help.

    HTTP 4xx but 408 and 429 is (the server refused the request for what it is),
    unless every refused instance's reason is out of resources (``0xA7xx``); 5xx,
    408, 429 and failures without an answer are not.

    >>> err = DicomWebError("refused"); err.http_status = 409; err.failure_reasons = (0xC000,)
    >>> permanent_failure(err)
    True
    >>> err.failure_reasons = (0xA700,)
    >>> permanent_failure(err)
    False
    """
    if not isinstance(exc, DicomWebError):
        return False
    reasons = exc.failure_reasons
    if reasons and all(0xA700 <= r <= 0xA7FF for r in reasons):
        return False
    status = exc.http_status
    return status is not None and 400 <= status < 500 and status not in _TEMPORARY_HTTP


def _check_part10(path: Path) -> None:
    try:
        with path.open("rb") as file:
            header = file.read(132)
    except OSError as exc:
        raise NotDicomError(f"cannot read the file ({exc.strerror})", path=path) from exc
    if header[128:132] != b"DICM":
        raise NotDicomError(
            "not a DICOM Part 10 file (no DICM prefix)",
            path=path,
            hint="STOW-RS sends files with their File Meta Information; "
            "rewrite it with pydicom's dcmwrite(..., enforce_file_format=True)",
        )


def stow_batches(files: Sequence[Path], limit: int) -> Iterator[list[Path]]:
    """Group ``files`` in order into lists whose total size stays within ``limit``."""
    batch: list[Path] = []
    size = 0
    for path in files:
        length = path.stat().st_size
        if batch and size + length > limit:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += length
    if batch:
        yield batch


def _post_instances(peer: Peer, session: Any, url: str, files: list[Path]) -> tuple[Dataset, int]:
    """POST ``files`` as one multipart/related request; return the answer and its status."""
    boundary = f"radbridge-{uuid.uuid4().hex}"
    head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    body = b"".join(head + path.read_bytes() + b"\r\n" for path in files)
    body += f"--{boundary}--\r\n".encode()
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }

    def post() -> Any:
        response = session.post(url, data=body, headers=headers, timeout=peer.timeout_s)
        response.raise_for_status()
        return response

    try:
        response = _call(peer, "STOW-RS", post)
    except DicomWebError as http_error:  # 409 and the like come with the per-instance answer
        answer = _stow_body(http_error.__cause__)
        if answer is None:
            raise
        return answer, http_error.http_status or 0
    return _stow_body(response) or Dataset(), response.status_code


def _stow_body(source: Any) -> Dataset | None:
    """Return the STOW-RS answer in an HTTP response or error (409, 202 ...) if it has one."""
    response = getattr(source, "response", source)
    if response is None or not hasattr(response, "json"):
        return None
    try:
        body = response.json()
        ds = Dataset.from_json(body[0] if isinstance(body, list) else body)
    except Exception:  # no JSON body, or not a DICOM JSON object
        return None
    return ds if "FailedSOPSequence" in ds or "ReferencedSOPSequence" in ds else None


#: Each level's unique key (DICOM JSON tag): a page sent twice is spotted by it.
_UNIQUE = {"STUDY": "0020000D", "SERIES": "0020000E", "IMAGE": "00080018"}


def qido(
    peer: Peer,
    level: str = "STUDY",
    *,
    study: str | None = None,
    series: str | None = None,
    keys: Mapping[str, str] | None = None,
    fields: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
) -> list[Dataset]:
    """QIDO-RS search at ``level``; return the matches as Datasets (like :func:`find`).

    All matches by default: a server may send at most so many per answer (its
    ``maxResults``, PS3.18 8.3.4.4), so the rest are asked for with ``offset`` until
    an answer is empty (one request more than the pages). The list is short, and a
    ``UserWarning`` names the numbers, when the server said more matches can be
    requested (``Warning: 299``) but sent none of them, or when the series or
    instances of a study or series (no other keys, no ``limit``) are fewer than the
    server's own count of them (one request more: Orthanc 1.10.1 cuts a search at its
    ``LimitFindResults`` without a word, and sends nothing past it at any offset).

    Parameters
    ----------
    peer
        A peer with ``dicomweb_url``.
    level
        ``STUDY`` (``/studies``), ``SERIES`` (``/studies/{study}/series``, or
        ``/series`` without ``study``) or ``IMAGE`` (``.../instances``).
    study, series
        Limit the search to this study (any level) or series (``IMAGE``; at
        ``SERIES`` level it is a matching key).
    keys
        Other matching keys by keyword, e.g. ``{"Modality": "CT"}``.
    fields
        Attributes to return besides the default ones, by keyword (one
        ``includefield`` parameter each: Orthanc ignores a comma-separated list).
    limit
        Return at most this many matches (None: all).
    offset
        Skip this many matches first (in the server's order).

    Raises
    ------
    DicomWebError
        An HTTP error (401: credentials, 404: URL ...).
    PeerTimeoutError
        No answer within ``peer.timeout_s``.
    """
    level = _qido_level(level, study, series, limit, offset)
    started = time.monotonic()
    search = _QidoSearch(peer, level, study, series, keys or {}, list(fields))
    paged = fetch_pages(search.page, _UNIQUE[level], limit=limit, offset=offset)
    where = f"QIDO-RS {level} on {peer.dicomweb_url}"
    if paged.unfetched:
        said = f"{paged.said} more" if paged.said is not None else "more"
        how = "sent the same matches again" if paged.repeated else "sent none of them"
        _short(
            f"{where}: the server said {said} matches can be requested (Warning 299) but "
            f"{how} at offset {offset + len(paged.matches)}: {len(paged.matches)} returned"
        )
    elif limit is None and not keys:
        search.check_count(len(paged.matches), offset, where)
    log.info(
        "QIDO-RS %s on %s: %d matches in %d requests, %.2f s",
        level,
        peer,
        len(paged.matches),
        paged.requests,
        time.monotonic() - started,
    )
    return [Dataset.from_json(item) for item in paged.matches]


def _short(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


def _qido_level(level: str, study: str | None, series: str | None, limit: Any, offset: Any) -> str:
    """Check a QIDO-RS search's arguments; return its level in capitals."""
    level = level.upper()
    if level not in ("STUDY", "SERIES", "IMAGE"):
        raise ConfigError(
            f"QIDO-RS has no level {level!r}", attribute="level", hint="use STUDY, SERIES or IMAGE"
        )
    if series and level == "STUDY":
        raise ConfigError(
            "a STUDY-level search cannot be limited to one series",
            attribute="series",
            hint="search at SERIES or IMAGE level, or leave the series out",
        )
    if series and not study and level == "IMAGE":
        raise ConfigError(
            "QIDO-RS needs the study of a series to search its instances",
            attribute="study",
            hint="give the Study Instance UID too (radbridge query --level series finds it)",
        )
    for name, value, least in (("limit", limit, 1), ("offset", offset, 0)):
        wrong = not isinstance(value, int) or value < least
        if wrong and (value is not None or name == "offset"):
            raise ConfigError(
                f"QIDO-RS {name} must be a whole number of at least {least}, not {value!r}",
                attribute=name,
                hint="leave limit out (None) for all matches" if name == "limit" else "",
            )
    return level


_LIMIT_INSTANCES = "LimitFindInstances"
#: The count a parent gives of a search's matches: (parent level, attribute, what they are).
_COUNTS = {
    ("SERIES", False): ("STUDY", "NumberOfStudyRelatedSeries", "series", "LimitFindResults"),
    ("IMAGE", False): ("STUDY", "NumberOfStudyRelatedInstances", "instances", _LIMIT_INSTANCES),
    ("IMAGE", True): ("SERIES", "NumberOfSeriesRelatedInstances", "instances", _LIMIT_INSTANCES),
}


class _QidoSearch:
    """One QIDO-RS search on dicomweb-client: a page at a time, with its Warning header."""

    def __init__(
        self,
        peer: Peer,
        level: str,
        study: str | None,
        series: str | None,
        keys: Mapping[str, str],
        fields: list[str],
    ) -> None:
        self.peer, self.level, self.study, self.series = peer, level, study, series
        session = _session(peer)
        session.hooks["response"].append(self._heard)
        self.client = _client(peer, session)
        self.warnings: list[str] = []
        self.asked = 0
        self.filters = dict(keys)
        self.fields = fields or None
        if level == "STUDY" and study:
            self.filters["StudyInstanceUID"] = study
        if level == "SERIES" and series:
            self.filters["SeriesInstanceUID"] = series

    def _heard(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.warnings.append(response.headers.get("Warning", ""))  # several come joined by ", "
        return response

    def page(self, limit: int | None, offset: int) -> Page:
        """Ask for one page of the matches.

        A page after the first that the server refuses with 400 or 404 (an offset
        past the end, for a server that does not answer 204 No Content) ends the list.
        """
        self.warnings.clear()
        self.asked += 1
        try:
            return self._page(limit, offset)
        except DicomWebError as err:
            if self.asked == 1 or err.http_status not in (400, 404):
                raise
            log.info("QIDO-RS: HTTP %s at offset %d taken as the end", err.http_status, offset)
            return Page([])

    def _page(self, limit: int | None, offset: int) -> Page:
        common = {
            "search_filters": self.filters,
            "fields": self.fields,
            "limit": limit,
            "offset": offset,
        }
        if self.level == "STUDY":
            found = _call(self.peer, "QIDO-RS", self.client.search_for_studies, **common)
        elif self.level == "SERIES":
            search = self.client.search_for_series
            found = _call(self.peer, "QIDO-RS", search, study_instance_uid=self.study, **common)
        else:
            search = self.client.search_for_instances
            uids = {"study_instance_uid": self.study, "series_instance_uid": self.series}
            found = _call(self.peer, "QIDO-RS", search, **uids, **common)
        return Page(list(found), " ".join(w for w in self.warnings if w))

    def check_count(self, count: int, offset: int, where: str) -> None:
        """Warn when a study's series (or instances) are fewer than the server's count of them."""
        known = _COUNTS.get((self.level, bool(self.series)))
        if known is None or not self.study:
            return
        parent, attribute, what, orthanc = known
        series = self.series if parent == "SERIES" else None
        try:
            (found,) = qido(
                self.peer, parent, study=self.study, series=series, fields=[attribute], limit=1
            )
            expected = int(found.get(attribute))
        except (RadbridgeError, TypeError, ValueError):
            return  # no such parent, or no count: nothing to compare with
        if expected - offset > count:
            after = f" after the first {offset}" if offset else ""
            _short(
                f"{where}: {count} {what} returned{after}, but the server counts {expected} "
                f"({attribute}): it cut the list short (Orthanc: {orthanc})"
            )


def wado(
    peer: Peer,
    out_dir: str | os.PathLike[str],
    *,
    study: str,
    series: str | None = None,
    progress: RetrieveProgress | None = None,
) -> RetrieveReport:
    """WADO-RS a study (or series) into ``out_dir/<study>/<series>/<sop>.dcm``, durably.

    Instances are asked for in the transfer syntax the server stores them in
    (``transfer-syntax=*``) and written exactly as they arrive: no decode, no
    re-encode, no transcoding by the server. The answer is streamed: each
    instance is written (temporary file, fsync, rename) as soon as its part has
    arrived, so memory holds one instance at a time, and an answer cut short
    leaves only complete files behind. ``progress`` is called with (instances
    written, None) as they arrive.

    Raises
    ------
    DicomWebError
        An HTTP error (e.g. 404 for an unknown study), an answer cut short, or no
        instances came back.
    PeerTimeoutError
        The server did not answer (or stopped sending) within ``peer.timeout_s``.
    """
    session = _session(peer)
    started = time.monotonic()
    remove_stale_downloads(out_dir, study, series)
    report = RetrieveReport(str(peer), progress=progress)
    url = f"{str(peer.dicomweb_url).rstrip('/')}/studies/{study}"
    if series:
        url += f"/series/{series}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'

    def fetch() -> Any:
        response = session.get(url, headers={"Accept": accept}, timeout=peer.timeout_s, stream=True)
        if not response.ok:
            response.close()
        response.raise_for_status()
        return response

    response = _call(peer, "WADO-RS", fetch)
    with response:
        chunks = _arriving(response.raw)
        for data in _received(
            peer, url, part_bodies(response.headers.get("Content-Type", ""), chunks), report
        ):
            try:
                study_uid, series_uid, sop, _ = read_uids(data)
            except NotDicomError as exc:
                raise DicomWebError(
                    f"WADO-RS on {url}: a part is not a DICOM instance",
                    path=peer.name,
                    hint="the server sent something else than application/dicom",
                ) from exc
            path = instance_path(Path(out_dir), study_uid, series_uid, sop)
            write_durably(data, path)
            report.add(path)
    if not report.files:
        raise DicomWebError(
            f"{peer.name} returned no instances for {series or study}",
            path=peer.name,
            hint="check the UIDs (radbridge query --web)",
        )
    report.seconds = time.monotonic() - started
    log.info("WADO-RS from %s: %d instances in %.2f s", peer, len(report.files), report.seconds)
    return report


def _received(
    peer: Peer, url: str, parts: Generator[bytes, None, bool], report: RetrieveReport
) -> Iterator[bytes]:
    """Yield ``parts``; an answer cut short or silent mid-way raises a typed error."""
    from urllib3.exceptions import HTTPError, ReadTimeoutError

    def written() -> str:
        return f"{len(report.files)} complete instances written"

    try:
        complete = yield from parts
    except (HTTPError, OSError) as exc:
        if isinstance(exc, ReadTimeoutError | TimeoutError):
            raise PeerTimeoutError(
                f"WADO-RS on {url}: the server stopped sending for {peer.timeout_s:g} s "
                f"({written()})",
                path=peer.name,
                hint="raise timeout_s or check the server; files already written are complete",
            ) from exc
        raise DicomWebError(
            f"WADO-RS on {url}: the connection was lost mid-answer ({written()})",
            path=peer.name,
            hint="retry; files already written are complete",
        ) from exc
    if not complete:
        raise DicomWebError(
            f"WADO-RS on {url}: the answer ended before its last part ({written()})",
            path=peer.name,
            hint="the server or the connection failed mid-transfer; retry "
            "(files already written are complete)",
        )


def _arriving(raw: Any) -> Iterator[bytes]:
    """Yield an HTTP body (a urllib3 response) in pieces as they arrive, up to 1 MiB each."""
    while chunk := raw.read1(1 << 20, decode_content=True):
        yield chunk
