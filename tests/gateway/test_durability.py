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

import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.peers import free_port, wait_for_port
from tests.peers.dcmtk import storescu_at_once
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
T = TypeVar("T")
_TEMPORARY = re.compile(r"\.rb-tmp-[0-9a-f]+")
_STORED_NAME = re.compile(r"/(?P<sop>[0-9.]+)\.[0-9a-f]{16}\.dcm\"")  # <sop>.<digest>.dcm
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


def _commit_holding_row(calls: list[Call], renamed: Call, folder_synced: Call) -> Call:
    """The fdatasync of the WAL after the first WAL frame that holds the instance's row.

    Under group commit another thread (the leader) may write the row and commit
    it; the frame shows the SOP Instance UID (strace ``-s`` must cover a page).
    """
    named = _STORED_NAME.search(renamed.text)
    assert named is not None, f"no stored file name in {renamed.text}"
    sop = named["sop"]
    row = _first(
        calls,
        folder_synced.start,
        lambda c: c.name == "pwrite64" and "sqlite-wal>" in c.text and sop in c.text,
        f"the WAL frame holding {sop}",
    )
    assert row.start > folder_synced.end, f"{sop}: recorded before its folder was synced"
    return _first(
        calls,
        row.end,
        lambda c: c.name == "fdatasync" and c.pid == row.pid and "gateway.sqlite-wal>" in c.text,
        f"the commit of {sop} (fdatasync of gateway.sqlite-wal)",
    )


def instances_stored(
    calls: list[Call],
    *,
    database: bool,
    root: str = "/spool/",
    grouped: bool = False,
    response: Callable[[Call], bool] | None = None,
) -> list[Stored]:
    """Follow each instance stored under ``root`` from its temporary file to its response.

    ``grouped``: several associations at once; the folder fsync and the commit
    may run in another thread (the first fsync of the folder that started after
    the rename; the commit that holds the instance's row), the response is the
    first send of the thread that received the instance. ``response``: the
    response is instead the first call after the file was opened that it
    accepts, in any thread (a STOW-RS response; implies ``grouped``).
    """
    grouped = grouped or response is not None
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
        folder_synced = _first(  # grouped: the folder fsync may run in another thread
            calls,
            renamed.end,
            lambda c, f=folder, pid=renamed.pid: (
                _is_sync(c) and (c.pid == pid or grouped) and f in c.text
            ),
            f"fsync of the folder {folder}",
        )
        committed = None
        last = folder_synced
        if database and grouped:
            committed = last = _commit_holding_row(calls, renamed, folder_synced)
        elif database:
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
        answered = _first(
            calls,
            opened.start,
            response
            or (lambda c, pid=renamed.pid: _socket_send(c) and (c.pid == pid or not grouped)),
            "response",
        )
        out.append(Stored(written, synced, renamed, folder_synced, committed, answered))
        assert answered.start > last.end, f"{target}: Success sent before it was durable"
    return out


def _traced(tmp_path: Path, command: list[str], port: int, send: Callable[[], T]) -> tuple[str, T]:
    """Run ``command`` under strace, call ``send`` once it listens on ``port``; the trace."""
    trace = tmp_path / "strace.log"
    process = subprocess.Popen(
        [*strace_command(trace, SYSCALLS, string_limit=8192), *command],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, proc=process)
        result = send()
    finally:
        stop_traced(process)
    return trace.read_text(), result


def _trace_receiver(
    tmp_path: Path, command: list[str], port: int, files: list[Path], associations: int = 1
) -> str:
    def send() -> None:
        for sent in storescu_at_once(
            files, "127.0.0.1", port, associations, called_aet="RADBRIDGE"
        ):
            assert sent.returncode == 0, sent.output

    return _traced(tmp_path, command, port, send)[0]


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


@pytest.fixture(scope="module")
def twenty_four_slices(tmp_path_factory):
    from radbridge.io.phantom import write_phantom

    study = write_phantom(tmp_path_factory.mktemp("grouped"), slices=24, size=32, seed=4)
    return sorted(study.dicom_dir.glob("*.dcm"))


@pytest.mark.peer
def test_gateway_on_four_associations_answers_only_after_the_commit_holding_the_row(
    tmp_path, twenty_four_slices
):
    """Group commit: fewer commits than instances, none answered before its row's commit."""
    port = free_port()
    (tmp_path / "gateway.toml").write_text(
        f'[gateway]\ndata_dir = "data"\nport = {port}\nquiet_period_s = 60\n'
    )
    command = [sys.executable, "-m", "radbridge", "gateway", "run", "--config", "gateway.toml"]
    for _attempt in range(2):
        # every answer after its row's commit, in every run (instances_stored checks it)
        trace = _trace_receiver(tmp_path, command, port, twenty_four_slices, associations=4)
        stored = instances_stored(parse_trace(trace), database=True, grouped=True)
        assert len(stored) == 24
        if len({item.committed for item in stored}) < len(stored):
            break
        # a loaded machine can serialise the four senders (CI at 1e64d22 with two other
        # jobs running): sharing is asked of one of two runs, durability of both
        shutil.rmtree(tmp_path / "data")
    else:
        raise AssertionError("no commit was shared in two runs")
    # some receiver threads were answered after a commit another thread ran for them
    assert any(item.committed.pid != item.renamed.pid for item in stored if item.committed)


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


def test_the_trace_reader_sees_a_grouped_answer_before_its_commit():
    """The grouped checker: the row's commit is the one after the frame holding it."""
    good = "\n".join(
        [
            '1 openat(AT_FDCWD</w>, "d/spool/s/r/.rb-tmp-ab", O_CREAT) = 8',
            '1 write(8</w/d/spool/s/r/.rb-tmp-ab>, "DICM", 4) = 4',
            "1 fsync(8</w/d/spool/s/r/.rb-tmp-ab>) = 0",
            '1 rename("d/spool/s/r/.rb-tmp-ab", "d/spool/s/r/1.2.99.0123456789abcdef.dcm") = 0',
            "1 fsync(8</w/d/spool/s/r>) = 0",
            '3 pwrite64(4</w/d/gateway.sqlite-wal>, "\\0s1.2.5", 4096, 32) = 4096',
            "3 fdatasync(4</w/d/gateway.sqlite-wal>) = 0",
            '3 pwrite64(4</w/d/gateway.sqlite-wal>, "\\0s1.2.99", 4096, 4152) = 4096',
            "3 fdatasync(4</w/d/gateway.sqlite-wal>) = 0",
            '3 sendto(9<TCP:[127.0.0.1:1->127.0.0.1:3]>, "\\4\\0", 150, 0, NULL, 0) = 150',
            '1 sendto(7<TCP:[127.0.0.1:1->127.0.0.1:2]>, "\\4\\0", 150, 0, NULL, 0) = 150',
        ]
    )
    (item,) = instances_stored(parse_trace(good), database=True, grouped=True)
    assert item.committed is not None and item.committed.start == 8 and item.answered.pid == 1
    early = good.splitlines()
    early.insert(7, early.pop())  # answered after the other row's commit, before its own
    with pytest.raises(AssertionError, match="before it was durable"):
        instances_stored(parse_trace("\n".join(early)), database=True, grouped=True)


def _http_response(call: Call) -> bool:
    return _socket_send(call) and "HTTP/1.1 " in call.text


@pytest.fixture(scope="module")
def ct_slices(tmp_path_factory):
    """150 CT slices of 512x512 (0.5 MB each): three batches of a STOW-RS request."""
    from radbridge.io.phantom import write_phantom

    study = write_phantom(tmp_path_factory.mktemp("stow"), slices=150, size=512, seed=6)
    return sorted(study.dicom_dir.glob("*.dcm"))


@pytest.mark.peer
@pytest.mark.slow
def test_stow_answers_only_after_every_part_is_durable_and_committed(tmp_path, ct_slices):
    """One STOW-RS request: no response before every part's file, folder and row are on
    disk; its rows share a few commits (one per batch), not one each."""
    import requests

    from radbridge.net.dicomweb.batch import BATCH_PARTS
    from tests.gateway.stow_bodies import CONTENT_TYPE, parts_of

    port, stow_port = free_port(), free_port()
    (tmp_path / "gateway.toml").write_text(
        f'[gateway]\ndata_dir = "data"\nport = {port}\nstow_port = {stow_port}\n'
        "quiet_period_s = 60\n"
    )
    command = [sys.executable, "-m", "radbridge", "gateway", "run", "--config", "gateway.toml"]
    trace, answer = _traced(
        tmp_path,
        command,
        stow_port,
        lambda: requests.post(  # a generator body: sent chunked
            f"http://127.0.0.1:{stow_port}/dicom-web/studies",
            data=parts_of(ct_slices),
            headers={"Content-Type": CONTENT_TYPE},
            timeout=300,
        ),
    )
    assert answer.status_code == 200, answer.text[:300]
    assert len(answer.json()["00081199"]["Value"]) == len(ct_slices)
    calls = parse_trace(trace)
    stored = instances_stored(calls, database=True, response=_http_response)
    assert len(stored) == len(ct_slices)
    for item in stored:
        assert item.written.end < item.synced.start <= item.synced.end < item.renamed.start
        assert item.renamed.end < item.folder_synced.start
        assert item.committed is not None and item.folder_synced.end < item.committed.start
    assert len({item.answered for item in stored}) == 1  # one response for the request
    commits = {item.committed for item in stored}
    assert len(commits) <= math.ceil(len(ct_slices) / BATCH_PARTS), len(commits)
    # one fsync per folder per batch, not one per part
    folder_syncs = {item.folder_synced for item in stored}
    assert len(folder_syncs) <= math.ceil(len(ct_slices) / BATCH_PARTS), len(folder_syncs)


def test_the_trace_reader_sees_a_stow_response_before_a_commit():
    """The STOW-RS checker: the response must follow the commit of every part's row."""
    good = "\n".join(
        [
            '5 openat(AT_FDCWD</w>, "d/spool/.rb-tmp-ab", O_CREAT) = 8',
            '5 write(8</w/d/spool/.rb-tmp-ab>, "DICM", 4) = 4',
            "6 fsync(8</w/d/spool/.rb-tmp-ab>) = 0",
            '5 openat(AT_FDCWD</w>, "d/spool/.rb-tmp-cd", O_CREAT) = 9',
            '5 write(9</w/d/spool/.rb-tmp-cd>, "DICM", 4) = 4',
            "7 fsync(9</w/d/spool/.rb-tmp-cd>) = 0",
            '5 rename("d/spool/.rb-tmp-ab", "d/spool/s/r/1.2.98.0123456789abcdef.dcm") = 0',
            '5 rename("d/spool/.rb-tmp-cd", "d/spool/s/r/1.2.99.0123456789abcdef.dcm") = 0',
            "5 fsync(10</w/d/spool/s/r>) = 0",
            '5 pwrite64(4</w/d/gateway.sqlite-wal>, "\\0s1.2.98\\0s1.2.99", 4096, 32) = 4096',
            "5 fdatasync(4</w/d/gateway.sqlite-wal>) = 0",
            '1 sendto(7<TCP:[127.0.0.1:1->127.0.0.1:2]>, "HTTP/1.1 200 ", 150, 0, NULL, 0) = 150',
        ]
    )
    stored = instances_stored(parse_trace(good), database=True, response=_http_response)
    assert len(stored) == 2 and {item.committed.start for item in stored} == {10}
    for early_line in (8, 9, 10):  # the response before the folder fsync, the row, the commit
        early = good.splitlines()
        early.insert(early_line, early.pop())
        with pytest.raises(AssertionError):
            instances_stored(parse_trace("\n".join(early)), database=True, response=_http_response)
