"""Success is sent only after the data is on disk: the order of a real receiver's system calls.

`kill -9` cannot show a missing fsync (the page cache survives a killed process), so
these tests trace a real `radbridge gateway run` (and `radbridge listen`) receiving from
DCMTK `storescu` with strace and check, for every instance, that

    write(temporary) -> fsync(temporary) -> rename -> fsync(folder)
    -> fdatasync(gateway.sqlite-wal)  [the commit, synchronous=FULL]
    -> the C-STORE response is sent

and that the association's release is committed before the A-RELEASE response goes out.
Removing either fsync, or setting SQLite's synchronous below FULL, makes them fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers._common import free_port, wait_for_port
from tests.peers.dcmtk import storescu
from tests.peers.strace import Call, parse_trace, stop_traced, strace_command

SYSCALLS = (
    "openat",
    "write",
    "pwrite64",
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
    "renameat2",
    "sendto",
    "sendmsg",
)
_TEMPORARY = re.compile(r"\.rb-tmp-[0-9a-f]+")
_RELEASE_RP = '"\\6\\0\\0\\0\\0\\4'  # A-RELEASE-RP PDU: type 06, length 4


@dataclass(frozen=True)
class Stored:
    """The calls that made one instance durable and answered it."""

    written: Call
    synced: Call
    renamed: Call
    folder_synced: Call
    committed: Call | None
    answered: Call


def _is_sync(call: Call) -> bool:
    return call.name in ("fsync", "fdatasync")


def _socket_send(call: Call) -> bool:
    return call.name in ("sendto", "sendmsg", "write") and "<TCP:" in call.text.split(",")[0]


def _first(calls: list[Call], after: int, test, what: str) -> Call:
    found = next((c for c in calls if c.start > after and test(c)), None)
    assert found is not None, f"no {what} after trace position {after}"
    return found


def instances_stored(calls: list[Call], *, database: bool, root: str = "/spool/") -> list[Stored]:
    """Follow each instance stored under ``root`` from its temporary file to its response."""
    temporaries = sorted(
        {
            found.group()
            for c in calls
            if c.name == "openat" and root in c.text
            for found in [_TEMPORARY.search(c.text)]
            if found
        }
    )
    assert temporaries, "no spool file was written"
    out = []
    for name in temporaries:
        mine = [c for c in calls if name in c.text]
        opened = next(c for c in mine if c.name == "openat")
        written = [c for c in mine if c.name == "write"][-1]
        synced = _first(mine, written.end, _is_sync, f"fsync of {name}")
        renamed = _first(mine, synced.end, lambda c: c.name.startswith("rename"), "rename")
        target = renamed.text.split(", ")[1].strip('"')
        folder = "/" + str(Path(target).parent) + ">"
        folder_synced = _first(
            calls,
            renamed.end,
            lambda c, f=folder, pid=renamed.pid: _is_sync(c) and c.pid == pid and f in c.text,
            f"fsync of the folder {folder}",
        )
        committed = None
        last = folder_synced
        if database:
            committed = _first(
                calls,
                folder_synced.end,
                lambda c, pid=renamed.pid: (
                    c.name == "fdatasync" and c.pid == pid and "gateway.sqlite-wal>" in c.text
                ),
                "commit (fdatasync of gateway.sqlite-wal)",
            )
            last = committed
        # the first send after the open: the C-STORE response (storescu waits for it)
        answered = _first(calls, opened.start, _socket_send, "C-STORE response")
        out.append(Stored(written, synced, renamed, folder_synced, committed, answered))
        assert answered.start > last.end, f"{target}: Success sent before it was durable"
    return out


def _trace_receiver(tmp_path: Path, command: list[str], port: int, files: list[Path]) -> str:
    trace = tmp_path / "strace.log"
    process = subprocess.Popen(
        [*strace_command(trace, SYSCALLS), *command],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, proc=process)
        sent = storescu(files, "127.0.0.1", port, called_aet="RADBRIDGE")
        assert sent.returncode == 0, sent.output
    finally:
        stop_traced(process)
    return trace.read_text()


@pytest.fixture(scope="module")
def four_slices(tmp_path_factory):
    from radbridge.io.phantom import write_phantom

    study = write_phantom(tmp_path_factory.mktemp("durable"), slices=4, size=32, seed=3)
    return sorted(study.dicom_dir.glob("*.dcm"))


@pytest.mark.peer
def test_gateway_answers_only_after_file_folder_and_commit_are_on_disk(tmp_path, four_slices):
    port = free_port()
    (tmp_path / "gateway.toml").write_text(
        f'[gateway]\ndata_dir = "data"\nport = {port}\nquiet_period_s = 60\n'
    )
    command = [sys.executable, "-m", "radbridge", "gateway", "run", "--config", "gateway.toml"]
    calls = parse_trace(_trace_receiver(tmp_path, command, port, four_slices))
    stored = instances_stored(calls, database=True)
    assert len(stored) == 4
    for item in stored:
        assert item.written.end < item.synced.start <= item.synced.end < item.renamed.start
        assert item.renamed.end < item.folder_synced.start
        assert item.committed is not None and item.folder_synced.end < item.committed.start
    # the release is committed (the series may now complete) before the peer hears it is done
    release = next(c for c in calls if _socket_send(c) and _RELEASE_RP in c.text)
    commit = max(
        (
            c
            for c in calls
            if c.name == "fdatasync" and "sqlite-wal>" in c.text and c.end < release.start
        ),
        key=lambda c: c.end,
    )
    assert commit.start > stored[-1].answered.end


@pytest.mark.peer
def test_listen_answers_only_after_file_and_folder_are_on_disk(tmp_path, four_slices):
    port = free_port()
    command = [sys.executable, "-m", "radbridge", "listen", "--out", "in", "--port", str(port)]
    calls = parse_trace(_trace_receiver(tmp_path, command, port, four_slices))
    assert len(instances_stored(calls, database=False, root="/in/")) == 4


def test_the_trace_reader_sees_a_missing_fsync():
    """The checker itself: a trace without the file's fsync does not pass."""
    good = "\n".join(
        [
            '1 openat(AT_FDCWD</w>, "d/spool/s/r/.rb-tmp-ab", O_CREAT) = 8',
            '1 write(8</w/d/spool/s/r/.rb-tmp-ab>, "DICM", 4) = 4',
            "1 fsync(8</w/d/spool/s/r/.rb-tmp-ab>) = 0",
            '1 rename("d/spool/s/r/.rb-tmp-ab", "d/spool/s/r/1.2.dcm") = 0',
            "1 fsync(8</w/d/spool/s/r>) = 0",
            "1 fdatasync(4</w/d/gateway.sqlite-wal>) = 0",
            '2 sendto(7<TCP:[127.0.0.1:1->127.0.0.1:2]>, "\\4\\0", 150, 0, NULL, 0) = 150',
        ]
    )
    assert len(instances_stored(parse_trace(good), database=True)) == 1
    for missing in ("fsync(8</w/d/spool/s/r/.rb", "fsync(8</w/d/spool/s/r>", "fdatasync"):
        broken = "\n".join(line for line in good.splitlines() if missing not in line)
        with pytest.raises(AssertionError):
            instances_stored(parse_trace(broken), database=True)
    late = good.splitlines()
    late.insert(2, late.pop())  # Success sent right after the write
    with pytest.raises(AssertionError, match="before it was durable"):
        instances_stored(parse_trace("\n".join(late)), database=True)
