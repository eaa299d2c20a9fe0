"""DCMTK command-line tools from Debian (``dcmtk`` 3.6.7), always called as ``/usr/bin/<name>``.

pynetdicom installs its own ``storescu``/``storescp``/``echoscu`` into the virtualenv,
which would shadow DCMTK's on PATH, so nothing here looks programs up on PATH.
Network tools run with ``TCP_NODELAY=1`` (Debian's DCMTK leaves Nagle on: ~40 ms/file).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ._common import (
    Completed,
    PeerCommandError,
    free_port,
    log_tail,
    require_file,
    run,
    stop_process,
    wait_for_port,
)

__all__ = [
    "DCMTK_BIN",
    "StoreSCP",
    "dcmcjpeg",
    "dcmdrle",
    "dcmdump",
    "dcmp2pgm_dump",
    "dcmpschk",
    "dcmtk_program",
    "dsrdump",
    "echoscu",
    "running_storescp",
    "start_storescp",
    "storescu",
    "storescu_at_once",
]

DCMTK_BIN = Path("/usr/bin")
NODELAY_ENV = {"TCP_NODELAY": "1"}


def dcmtk_program(name: str) -> Path:
    """Return ``/usr/bin/<name>``; raise :class:`PeerMissingError` if DCMTK lacks it."""
    return require_file(DCMTK_BIN / name, what=f"DCMTK {name} (Debian package dcmtk)")


def echoscu(
    host: str,
    port: int,
    *,
    called_aet: str = "ANY-SCP",
    calling_aet: str = "ECHOSCU",
    timeout: float = 60.0,
) -> Completed:
    """Send a C-ECHO with DCMTK ``echoscu``; exit code 0 means the peer answered Success."""
    args = ["-aet", calling_aet, "-aec", called_aet, "-to", "20", "-ta", "20", host, str(port)]
    return run(dcmtk_program("echoscu"), args, timeout=timeout, env=NODELAY_ENV)


def storescu(
    files: Sequence[str | os.PathLike[str]],
    host: str,
    port: int,
    *,
    called_aet: str = "ANY-SCP",
    calling_aet: str = "STORESCU",
    extra_args: Sequence[str] = (),
    required_only: bool = True,
    timeout: float = 300.0,
) -> Completed:
    """Send files with DCMTK ``storescu`` (directories are scanned recursively).

    With ``required_only`` (default) storescu proposes exactly the SOP classes of the
    files (``-R``); its built-in list lacks newer classes such as Segmentation.

    ``storescu`` proposes each file's SOP class and transfer syntax. It stops at the first
    failed C-STORE unless ``extra_args`` contains ``-nh``; a non-zero exit code means
    at least one failure, but check what arrived at the receiving end too.
    """
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("storescu needs at least one file")
    args: list[str | os.PathLike[str]] = ["-aet", calling_aet, "-aec", called_aet]
    if required_only:
        args.append("-R")
    if any(p.is_dir() for p in paths):
        args += ["+sd", "+r"]
    args += [*extra_args, host, str(port), *paths]
    return run(dcmtk_program("storescu"), args, timeout=timeout, env=NODELAY_ENV)


def storescu_at_once(
    files: Sequence[str | os.PathLike[str]],
    host: str,
    port: int,
    associations: int,
    **options: object,
) -> list[Completed]:
    """Send ``files`` with ``associations`` ``storescu`` processes at once (every k-th file each).

    ``options`` are :func:`storescu`'s. Returns each process's result, in order.
    """
    parts = [list(files[k::associations]) for k in range(associations)]
    with ThreadPoolExecutor(associations) as pool:
        return list(pool.map(lambda part: storescu(part, host, port, **options), parts))


def dcmdump(path: str | os.PathLike[str], *args: str, timeout: float = 120.0) -> str:
    """Return ``dcmdump``'s text for a file (raises if dcmdump fails to read it)."""
    return run(dcmtk_program("dcmdump"), [*args, path], timeout=timeout).check().stdout


def dcmcjpeg(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *args: str,
    timeout: float = 120.0,
) -> Path:
    """Compress a file with DCMTK ``dcmcjpeg`` into ``out`` (default: JPEG Lossless SV1, .70)."""
    run(dcmtk_program("dcmcjpeg"), [*args, path, out], timeout=timeout).check()
    return Path(out)


def dcmdrle(
    path: str | os.PathLike[str], out: str | os.PathLike[str], *, timeout: float = 120.0
) -> Path:
    """Decode an RLE Lossless file with DCMTK ``dcmdrle`` into ``out`` (raises on failure)."""
    run(dcmtk_program("dcmdrle"), [path, out], timeout=timeout).check()
    return Path(out)


def dcmpschk(path: str | os.PathLike[str], *, timeout: float = 120.0) -> Completed:
    """Run DCMTK's presentation state checker; it always exits 0: look for ``Test passed.``

    It checks the presentation state IOD and reads it with DCMTK's presentation state
    model (dcmpstat), printing ``W:`` lines for what it finds wrong.
    """
    return run(dcmtk_program("dcmpschk"), [path], timeout=timeout)


def dcmp2pgm_dump(
    image: str | os.PathLike[str],
    pstate: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    timeout: float = 120.0,
) -> str:
    """Apply a presentation state to an image with DCMTK (``dcmp2pgm -v -p``) and return
    its dump of the state as applied to that image: window, displayed area, and each
    graphic layer's text and graphic objects with their coordinates (raises on failure).
    Of a multi-frame image, the dump shows what applies to frame 1 (dcmp2pgm 3.6.7's
    ``-f`` selects the frame it renders, not the one it dumps).
    """
    args = ["-v", "-p", pstate, image, out]
    return run(dcmtk_program("dcmp2pgm"), args, timeout=timeout).check().output


def dsrdump(path: str | os.PathLike[str], *args: str, timeout: float = 120.0) -> Completed:
    """Run ``dsrdump`` on an SR/KOS file; exit code 1 flags relationship-constraint violations.

    Typical use: ``dsrdump(p, "+Pt")`` and assert ``returncode == 0``.
    """
    return run(dcmtk_program("dsrdump"), [*args, path], timeout=timeout)


class StoreSCP:
    """A running DCMTK ``storescp`` that writes every received object into ``directory``.

    Attributes: ``aet``, ``host`` (always 127.0.0.1), ``port``, ``directory``, ``log``.
    Files are named ``<modality>.<SOP Instance UID>.dcm``.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        aet: str,
        port: int,
        directory: Path,
        log: Path,
    ) -> None:
        self.proc = proc
        self.aet = aet
        self.host = "127.0.0.1"
        self.port = port
        self.directory = directory
        self.log = log

    def __repr__(self) -> str:
        return f"StoreSCP(aet={self.aet!r}, port={self.port}, directory={self.directory})"

    def received(self) -> list[Path]:
        """Return the files received so far, sorted by name."""
        return sorted(p for p in self.directory.iterdir() if p.is_file())

    def wait_for_files(self, count: int, *, timeout: float = 60.0) -> list[Path]:
        """Wait until at least ``count`` files arrived; raise ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            files = self.received()
            if len(files) >= count:
                return files
            if self.proc.poll() is not None:
                raise PeerCommandError(
                    f"storescp exited ({self.proc.returncode}) after {len(files)} of {count} "
                    f"files\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"storescp got {len(files)} of {count} files in {timeout} s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of the storescp log."""
        return log_tail(self.log, lines)

    def stop(self) -> int | None:
        """Stop storescp (SIGTERM, then SIGKILL); safe to call twice."""
        return stop_process(self.proc, grace=5.0)


def start_storescp(
    directory: str | os.PathLike[str],
    *,
    aet: str = "STORESCP",
    port: int | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 30.0,
) -> StoreSCP:
    """Start DCMTK ``storescp`` on 127.0.0.1 writing into ``directory``; return when it listens.

    It accepts every transfer syntax DCMTK supports (``+xa``) and unknown SOP classes
    (``-pm``). Without ``port`` a free one is picked (and re-picked if the bind fails).
    The caller must call :meth:`StoreSCP.stop` (the ``storescp`` fixture does).
    """
    program = dcmtk_program("storescp")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    log = out.parent / f"storescp-{aet}.log"
    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        argv = [str(program), "-v", "-aet", aet, "-od", str(out), "+xa", "-pm"]
        argv += ["-fe", ".dcm", "-dhl", *extra_args, str(chosen)]
        with log.open("ab") as fh:
            proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "TCP_NODELAY": "1"},
            )
        try:
            wait_for_port("127.0.0.1", chosen, timeout=startup_timeout, proc=proc)
        except (PeerCommandError, TimeoutError) as exc:
            stop_process(proc, grace=2.0)
            last_error = f"{exc}\n{log_tail(log)}"
            continue
        return StoreSCP(proc, aet=aet, port=chosen, directory=out, log=log)
    raise PeerCommandError(f"storescp did not start: {last_error}")


@contextmanager
def running_storescp(directory: str | os.PathLike[str], **kwargs: object) -> Iterator[StoreSCP]:
    """Context manager around :func:`start_storescp` that always stops it."""
    scp = start_storescp(directory, **kwargs)
    try:
        yield scp
    finally:
        scp.stop()
