"""Small helpers shared by the networking tests."""

from __future__ import annotations

import contextlib
import struct
import subprocess
from pathlib import Path
from types import ModuleType

from pydicom import dcmread


def dataset_bytes(path: Path) -> bytes:
    """Return a DICOM file's bytes after its file meta (the encoded data set itself)."""
    data = Path(path).read_bytes()
    assert data[128:132] == b"DICM", path
    assert data[132:136] == b"\x02\x00\x00\x00", "file meta must start with its group length"
    (length,) = struct.unpack("<I", data[140:144])
    return data[144 + length :]


def received_tree(root: Path) -> dict[str, Path]:
    """Map SOP Instance UID -> path for every stored file, checking the folder layout."""
    found = {}
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        assert not path.name.startswith("."), f"temporary file left behind: {path}"
        ds = dcmread(path, stop_before_pixels=True)
        rel = path.relative_to(root).parts
        assert rel == (ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
        found[str(ds.SOPInstanceUID)] = path
    return found


def sources_by_uid(folder: Path) -> dict[str, Path]:
    """Map SOP Instance UID -> path for the DICOM files in ``folder``."""
    return {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
        for p in sorted(Path(folder).rglob("*.dcm"))
    }


class DroppingProxy:
    """A TCP proxy that cuts its first ``drops`` connections after ``limit`` bytes upstream.

    The one fake in these tests: a real peer cannot drop a connection mid-association on
    demand. Later connections pass through untouched.
    """

    def __init__(self, target_port: int, *, limit: int, drops: int = 1) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.limit = limit
        self.drops = drops
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threading = threading
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            cut = self.connections <= self.drops
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for src, dst, limit in (
                (client, upstream, self.limit if cut else None),
                (upstream, client, None),
            ):
                self._threading.Thread(
                    target=self._pump, args=(src, dst, limit), daemon=True
                ).start()

    @staticmethod
    def _pump(src, dst, limit) -> None:
        import socket

        passed = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and passed + len(data) >= limit:
                    dst.sendall(data[: limit - passed])
                    break
                dst.sendall(data)
                passed += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._listener.close()


def make_certificates(folder: Path) -> Path:
    """Write test certificates (openssl) into ``folder`` and return it.

    ``ca.pem`` signs ``server.pem`` and ``client.pem`` (keys ``*.key``); for refusals,
    ``stranger.pem`` is signed by another CA (``other-ca.pem``) and ``expired.pem`` by
    ``ca.pem`` but expired yesterday.
    """

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    # the server is reached as 127.0.0.1: HTTPS clients check the name
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca in ("ca", "other-ca"):
        run(
            *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN=test-{ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem"),
        )
    for name, ca, days in (
        ("server", "ca", "2"),
        ("client", "ca", "2"),
        ("stranger", "other-ca", "2"),
        ("expired", "ca", "-1"),  # notAfter a day before notBefore (now)
    ):
        run(
            *("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}"),
            *("-keyout", f"{name}.key", "-out", f"{name}.csr"),
        )
        run(
            *("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key"),
            *("-CAcreateserial", "-days", days, "-extfile", "san.cnf", "-out", f"{name}.pem"),
        )
    return folder


class StatusSCP:
    """A Storage SCP answering the given statuses in turn (then Success); keeps what it stores.

    pynetdicom's SCP stands in for a PACS: no real peer answers 0xA700, 0xA900, 0xC000
    or a warning on demand.
    """

    def __init__(self, statuses, *, contexts=None):
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        contexts = AllStoragePresentationContexts if contexts is None else contexts
        self.statuses = list(statuses)
        self.received: list[bytes] = []
        ae = AE(ae_title="PACS")
        ae.add_supported_context(Verification)
        for context in contexts:
            ae.add_supported_context(context.abstract_syntax)
        self.server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.port = self.server.server_address[1]

    def _store(self, event):
        status = self.statuses.pop(0) if self.statuses else 0x0000
        if status in (0x0000,) or 0xB000 <= status <= 0xBFFF:
            self.received.append(event.request.DataSet.getvalue())
        return status

    def stop(self):
        self.server.shutdown()


def pynetdicom_config() -> ModuleType:
    """Return pynetdicom's settings module: the one place tests reach into it.

    pynetdicom documents ``from pynetdicom import _config`` as the way to change its
    settings; it has no public name for them.
    """
    from pynetdicom import _config

    return _config


def send_claiming(
    port: int, path: Path, folder: Path, *, sop_class: str = "", sop_instance: str = ""
) -> int:
    """C-STORE ``path`` with pynetdicom, claiming other Affected SOP Class/Instance UIDs.

    The fault injector: no real sender puts a UID in the command that differs from
    the data set's on demand. pynetdicom, sending a file as it is, takes the
    command's UIDs from the file meta, so a copy with another meta (in ``folder``)
    is sent.
    """
    from pynetdicom import AE

    from radbridge.io.part10 import file_meta_bytes

    ds = dcmread(path, stop_before_pixels=True)
    sop_class = sop_class or str(ds.SOPClassUID)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    claimed = folder / f"claiming-{path.name}"
    meta = file_meta_bytes(sop_class, sop_instance or str(ds.SOPInstanceUID), syntax)
    claimed.write_bytes(meta + dataset_bytes(path))
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="RADBRIDGE")
    assert assoc.is_established
    config = pynetdicom_config()
    chunked, config.STORE_SEND_CHUNKED_DATASET = config.STORE_SEND_CHUNKED_DATASET, True
    try:
        return int(assoc.send_c_store(claimed).Status)
    finally:
        config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()
