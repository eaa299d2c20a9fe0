"""The fixes radbridge applies to every pynetdicom association it opens (issue 15).

TCP_NODELAY on the socket, and a guard against pynetdicom's reactor taking a
C-STORE response that ``send_c_store`` is waiting for. DCMTK ``storescp``
answers fast enough to lose the race for real.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pynetdicom import build_context

from radbridge.net import Peer
from radbridge.net.dimse.qr_association import associate, guard_responses
from tests.net.helpers import sources_by_uid


class _LateReactor(threading.Event):
    """A reactor checkpoint that lets the reactor take a response off the queue.

    pynetdicom's pause is check-then-act: ``send_c_store`` sees the reactor as
    paused a moment before it really stops. This checkpoint makes the losing
    side of that race happen on every message: while the send is under way the
    reactor waits for the response to arrive and then takes its turn at the queue.
    """

    def __init__(self, assoc) -> None:
        super().__init__()
        self.queue = assoc.dimse.msg_queue

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        deadline = time.monotonic() + 2.0
        while self.queue.empty() and time.monotonic() < deadline:
            time.sleep(0.001)
        return True


def _peer(storescp, timeout: float = 3.0) -> Peer:
    return Peer(
        name="dcmtk",
        ae_title=storescp.aet,
        host="127.0.0.1",
        port=storescp.port,
        timeout_s=timeout,
    )


def _contexts(files):
    import pydicom

    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    return [build_context(first.SOPClassUID, [first.file_meta.TransferSyntaxUID])]


def _store_losing_the_race(assoc, files) -> list[int | None]:
    get_msg = assoc.dimse.get_msg

    def slow_to_look(block: bool = False):
        if block:  # the send looks at the queue after the reactor did
            time.sleep(0.2)
        return get_msg(block)

    assoc.dimse.get_msg = slow_to_look
    checkpoint = _LateReactor(assoc)
    checkpoint.set()
    assoc._reactor_checkpoint = checkpoint
    statuses = []
    for path in files:
        status = assoc.send_c_store(path)
        statuses.append(int(status.Status) if "Status" in status else None)
        if not assoc.is_established:
            break
    return statuses


@pytest.mark.peer
def test_association_sockets_send_without_delay(storescp, small_study):
    files = sorted(small_study.dicom_dir.glob("*.dcm"))
    with associate(_peer(storescp), _contexts(files)) as assoc:
        sock = assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


@pytest.mark.peer
def test_responses_the_reactor_takes_reach_the_waiting_send(storescp, small_study):
    files = sorted(small_study.dicom_dir.glob("*.dcm"))
    with associate(_peer(storescp), _contexts(files)) as assoc:
        statuses = _store_losing_the_race(assoc, files)
    assert statuses == [0] * len(files)  # none waited for the DIMSE timeout
    assert len(storescp.wait_for_files(len(files))) == len(sources_by_uid(small_study.dicom_dir))


@pytest.mark.peer
def test_without_the_guard_the_race_loses_responses(storescp, small_study, monkeypatch):
    """The check above can fail: unguarded, the reactor drops the response it took."""
    files = sorted(small_study.dicom_dir.glob("*.dcm"))
    monkeypatch.setattr("radbridge.net.dimse.qr_association.guard_responses", lambda assoc: None)
    with associate(_peer(storescp, timeout=1.0), _contexts(files)) as assoc:
        statuses = _store_losing_the_race(assoc, files)
    assert None in statuses  # a response was dropped: the send timed out and aborted
    assert guard_responses is not None
