"""A real Orthanc (Debian ``orthanc`` 1.10.1 + ``orthanc-dicomweb``) as the PACS in tests.

Each instance runs from its own work directory (config, storage, index, log) on free
ports. Orthanc listens on all interfaces whatever the config says, so tests only ever
use 127.0.0.1 as the target. REST helpers use only ``urllib`` and ignore proxy settings.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._common import (
    PeerCommandError,
    free_port,
    log_tail,
    require_file,
    stop_process,
)

__all__ = [
    "DICOMWEB_PLUGIN",
    "ORTHANC_BIN",
    "Orthanc",
    "OrthancConfig",
    "OrthancHTTPError",
    "running_orthanc",
    "start_orthanc",
]

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Modality = tuple[str, str, int]


class OrthancHTTPError(RuntimeError):
    """Orthanc answered an HTTP error status; ``status`` and ``body`` say which."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


@dataclass(frozen=True, kw_only=True)
class OrthancConfig:
    """What a test may choose about its Orthanc.

    Parameters
    ----------
    aet
        Orthanc's own AE title (``DicomAet``).
    auth
        ``(user, password)`` to turn on HTTP basic authentication, or None.
    modalities
        ``{name: (aet, host, port)}``: peers Orthanc may C-STORE/C-ECHO to
        (``DicomModalities``), e.g. a test SCP or the gateway.
    stable_age
        Seconds without new instances before a study is "stable" (``StableAge``).
    dicomweb
        Load the DICOMweb plugin (root ``/dicom-web/``).
    sync_storage
        ``SyncStorageArea`` (fsync every stored file); off makes tests faster.
    extra
        Any other Orthanc configuration keys, applied last (they win).
    """

    aet: str = "ORTHANC"
    auth: tuple[str, str] | None = None
    modalities: Mapping[str, Modality] = field(default_factory=dict)
    stable_age: int = 2
    dicomweb: bool = True
    sync_storage: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, *, workdir: Path, http_port: int, dicom_port: int) -> dict[str, Any]:
        """Return the Orthanc configuration document for these ports and directory."""
        config: dict[str, Any] = {
            "Name": f"radbridge-test-{http_port}",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": self.aet,
            "DicomServerEnabled": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": self.auth is not None,
            "RegisteredUsers": {self.auth[0]: self.auth[1]} if self.auth else {},
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "DicomModalities": {
                name: [aet, host, port] for name, (aet, host, port) in self.modalities.items()
            },
            "StableAge": self.stable_age,
            "SyncStorageArea": self.sync_storage,
            "SaveJobs": False,
            "HttpTimeout": 60,
            "ConcurrentJobs": 2,
            "Plugins": [str(DICOMWEB_PLUGIN)] if self.dicomweb else [],
        }
        if self.dicomweb:
            config["DicomWeb"] = {
                "Enable": True,
                "Root": "/dicom-web/",
                "Host": f"127.0.0.1:{http_port}",
                "Ssl": False,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            }
        config.update(self.extra)
        return config


class Orthanc:
    """A running Orthanc. Addresses: ``aet``, ``host``, ``dicom_port``, ``http_port``, ``url``,
    ``dicomweb_url``; ``auth`` is the (user, password) pair or None.

    REST helpers take paths such as ``"/studies"`` and return decoded JSON (or bytes for
    non-JSON answers); HTTP errors raise :class:`OrthancHTTPError`.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        config: OrthancConfig,
        workdir: Path,
        http_port: int,
        dicom_port: int,
    ) -> None:
        self.proc = proc
        self.config = config
        self.workdir = workdir
        self.aet = config.aet
        self.host = "127.0.0.1"
        self.http_port = http_port
        self.dicom_port = dicom_port
        self.auth = config.auth
        self.url = f"http://127.0.0.1:{http_port}"
        self.dicomweb_url = f"{self.url}/dicom-web"
        self.log = workdir / "orthanc.log"
        self.stdout_log = workdir / "stdout.log"

    def __repr__(self) -> str:
        return (
            f"Orthanc(aet={self.aet!r}, dicom_port={self.dicom_port}, "
            f"http_port={self.http_port}, workdir={self.workdir})"
        )

    # -- process -------------------------------------------------------------------------

    def stop(self) -> int | None:
        """Stop Orthanc (SIGTERM, SIGKILL after 15 s); safe to call twice."""
        return stop_process(self.proc, grace=15.0)

    def log_tail(self, lines: int = 60) -> str:
        """Return the end of Orthanc's log file and of its captured stdout/stderr."""
        return (
            f"--- {self.log} ---\n{log_tail(self.log, lines)}\n"
            f"--- {self.stdout_log} ---\n{log_tail(self.stdout_log, 10)}"
        )

    @property
    def running(self) -> bool:
        """Return True while the Orthanc process is alive."""
        return self.proc.poll() is None

    # -- HTTP ----------------------------------------------------------------------------

    def auth_header(self) -> dict[str, str]:
        """Return the ``Authorization`` header for the configured user (empty if none)."""
        if self.auth is None:
            return {}
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one HTTP request; return (status, headers, body) or raise on status >= 400."""
        url = path if path.startswith("http") else f"{self.url}{path}"
        req = urllib.request.Request(url, data=body, method=method)
        for key, value in {**self.auth_header(), **(headers or {})}.items():
            req.add_header(key, value)
        try:
            with _NO_PROXY.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            raise OrthancHTTPError(method, url, err.code, text) from None

    @staticmethod
    def _decode(headers: Mapping[str, str], data: bytes) -> Any:
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if "json" in ctype and data:
            return json.loads(data)
        return data

    def get(self, path: str, *, accept: str | None = None) -> Any:
        """GET ``path``; JSON answers are decoded, others returned as bytes."""
        _, headers, data = self.request("GET", path, headers={"Accept": accept} if accept else None)
        return self._decode(headers, data)

    def post(
        self,
        path: str,
        json_body: Any = None,
        *,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """POST JSON (``json_body``) or raw ``data`` to ``path``; return the decoded answer."""
        if data is None:
            data = json.dumps(json_body if json_body is not None else {}).encode()
            content_type = content_type or "application/json"
        headers = {"Content-Type": content_type} if content_type else None
        _, rheaders, answer = self.request("POST", path, body=data, headers=headers)
        return self._decode(rheaders, answer)

    def put(self, path: str, json_body: Any) -> Any:
        """PUT JSON to ``path``; return the decoded answer."""
        data = json.dumps(json_body).encode()
        _, headers, answer = self.request(
            "PUT", path, body=data, headers={"Content-Type": "application/json"}
        )
        return self._decode(headers, answer)

    def delete(self, path: str) -> None:
        """DELETE ``path``."""
        self.request("DELETE", path)

    # -- conveniences --------------------------------------------------------------------

    def system(self) -> dict[str, Any]:
        """Return ``GET /system`` (version, AET, ports)."""
        result: dict[str, Any] = self.get("/system")
        return result

    def patients(self) -> list[str]:
        """Return Orthanc IDs of all patients."""
        return list(self.get("/patients"))

    def studies(self) -> list[str]:
        """Return Orthanc IDs of all studies."""
        return list(self.get("/studies"))

    def series(self) -> list[str]:
        """Return Orthanc IDs of all series."""
        return list(self.get("/series"))

    def instances(self) -> list[str]:
        """Return Orthanc IDs of all instances."""
        return list(self.get("/instances"))

    def sop_instance_uids(self) -> set[str]:
        """Return the SOP Instance UIDs of everything stored."""
        uids: set[str] = set()
        for iid in self.instances():
            tags = self.get(f"/instances/{iid}/simplified-tags")
            uids.add(str(tags["SOPInstanceUID"]))
        return uids

    def upload(self, source: str | os.PathLike[str] | bytes) -> dict[str, Any]:
        """Store one DICOM file (path or bytes) over REST; return Orthanc's answer (ID, Status)."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        result: dict[str, Any] = self.post(
            "/instances", data=data, content_type="application/dicom"
        )
        return result

    def upload_many(self, paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
        """Store several files over REST, one request each."""
        return [self.upload(p) for p in paths]

    def instance_bytes(self, instance_id: str) -> bytes:
        """Return the stored file of an instance, byte for byte."""
        data: bytes = self.get(f"/instances/{instance_id}/file")
        return data

    def lookup(self, uid: str) -> list[dict[str, Any]]:
        """Return the resources whose DICOM UID (study, series or instance) is ``uid``."""
        return list(self.post("/tools/lookup", data=uid.encode(), content_type="text/plain"))

    def store_to(self, modality: str, resources: Sequence[str], *, timeout: float = 120.0) -> Any:
        """Make Orthanc C-STORE resources (Orthanc IDs) to a configured modality, synchronously."""
        body = json.dumps({"Resources": list(resources), "Synchronous": True}).encode()
        _, headers, answer = self.request(
            "POST",
            f"/modalities/{modality}/store",
            body=body,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        return self._decode(headers, answer)

    def delete_all(self) -> int:
        """Delete every patient (and so everything); return how many were deleted."""
        patients = self.patients()
        for pid in patients:
            self.delete(f"/patients/{pid}")
        return len(patients)


def _write_config(workdir: Path, config: OrthancConfig, http_port: int, dicom_port: int) -> Path:
    (workdir / "storage").mkdir(parents=True, exist_ok=True)
    (workdir / "index").mkdir(parents=True, exist_ok=True)
    path = workdir / "orthanc.json"
    doc = config.to_json(workdir=workdir, http_port=http_port, dicom_port=dicom_port)
    path.write_text(json.dumps(doc, indent=2))
    return path


def _wait_ready(orthanc: Orthanc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not orthanc.running:
            raise PeerCommandError(f"Orthanc exited with {orthanc.proc.returncode}")
        try:
            orthanc.request("GET", "/system", timeout=2.0)
            return
        except (OSError, OrthancHTTPError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise TimeoutError(f"Orthanc not ready after {timeout} s (last error: {last})")


def start_orthanc(
    workdir: str | os.PathLike[str],
    config: OrthancConfig | None = None,
    *,
    http_port: int | None = None,
    dicom_port: int | None = None,
    startup_timeout: float = 60.0,
) -> Orthanc:
    """Start Orthanc in ``workdir`` and return once ``GET /system`` answers.

    Ports default to free ones (re-picked up to three times if a bind fails). The caller
    must call :meth:`Orthanc.stop`; the ``orthanc`` fixtures do it even when a test fails.
    """
    require_file(ORTHANC_BIN, what="Orthanc (Debian package orthanc)")
    cfg = config or OrthancConfig()
    if cfg.dicomweb:
        require_file(DICOMWEB_PLUGIN, what="Orthanc DICOMweb plugin (Debian orthanc-dicomweb)")
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    fixed = http_port is not None or dicom_port is not None
    errors: list[str] = []
    for _ in range(1 if fixed else 3):
        hp = http_port if http_port is not None else free_port()
        dp = dicom_port if dicom_port is not None else free_port()
        while dp == hp:
            dp = free_port()
        conf = _write_config(wd, cfg, hp, dp)
        with (wd / "stdout.log").open("ab") as out:
            proc = subprocess.Popen(
                [str(ORTHANC_BIN), f"--logfile={wd / 'orthanc.log'}", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=wd,
                env={**os.environ, "TCP_NODELAY": "1"},
            )
        orthanc = Orthanc(proc, config=cfg, workdir=wd, http_port=hp, dicom_port=dp)
        try:
            _wait_ready(orthanc, startup_timeout)
        except (PeerCommandError, TimeoutError) as exc:
            orthanc.stop()
            errors.append(f"{exc}\n{orthanc.log_tail(30)}")
            continue
        return orthanc
    raise PeerCommandError("Orthanc did not start:\n" + "\n".join(errors))


@contextmanager
def running_orthanc(
    workdir: str | os.PathLike[str], config: OrthancConfig | None = None, **kwargs: Any
) -> Iterator[Orthanc]:
    """Context manager around :func:`start_orthanc` that always stops Orthanc."""
    orthanc = start_orthanc(workdir, config, **kwargs)
    try:
        yield orthanc
    finally:
        orthanc.stop()
