"""Group commit of folder fsyncs (io.storage): shared, and never before a rename is covered."""

from __future__ import annotations

import threading
import time

from radbridge.io import storage as durable


def test_each_rename_is_covered_by_an_fsync_that_started_after_it(tmp_path, monkeypatch):
    calls: list[tuple[float, float]] = []
    lock = threading.Lock()

    def slow_fsync(folder):
        started = time.monotonic()
        time.sleep(0.05)  # a disk that takes its time: renames pile up meanwhile
        with lock:
            calls.append((started, time.monotonic()))

    monkeypatch.setattr(durable, "_fsync_dir", slow_fsync)
    committer = durable._FolderCommit()
    seen: list[tuple[float, float]] = []

    def store(delay: float) -> None:
        time.sleep(delay)
        renamed = time.monotonic()
        committer.sync(tmp_path)
        with lock:
            seen.append((renamed, time.monotonic()))

    threads = [threading.Thread(target=store, args=(0.007 * k,)) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 16
    for renamed, returned in seen:  # a covering fsync: started after the rename, ended before
        assert any(start >= renamed and end <= returned for start, end in calls)
    assert len(calls) < 16  # shared: fewer fsyncs than renames
    assert committer._state == {}  # nothing left pending


def test_a_failed_fsync_is_retried_for_the_others_and_raised_for_its_caller(tmp_path, monkeypatch):
    attempts = []

    def failing_once(folder):
        attempts.append(folder)
        time.sleep(0.02)
        if len(attempts) == 1:
            raise OSError(5, "I/O error")

    monkeypatch.setattr(durable, "_fsync_dir", failing_once)
    committer = durable._FolderCommit()
    errors: list[BaseException] = []

    def store() -> None:
        try:
            committer.sync(tmp_path)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=store) for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    assert len(errors) == 1  # the caller whose fsync failed is told (its instance is refused)
    assert len(attempts) >= 2  # the others got an fsync that succeeded


def test_a_folder_another_thread_is_making_is_used_only_once_its_entry_is_durable(
    tmp_path, monkeypatch
):
    """Two receivers of one new series: the second must not write into the folder the first
    has just made before that folder's entry in its parent is fsynced (CI at 1e64d22: the
    four-association durability trace saw an answer before that fsync)."""
    events: list[str] = []
    made = threading.Event()

    def slow_fsync(folder):
        if folder.name == "study":  # "series" was just made; its entry is being synced
            made.set()
        time.sleep(0.2)
        events.append(f"fsync {folder.name}")

    monkeypatch.setattr(durable, "_fsync_dir", slow_fsync)
    folder = tmp_path / "study" / "series"

    def second() -> None:
        made.wait(5)
        durable.make_dirs(folder)
        events.append("second may write")

    other = threading.Thread(target=second)
    other.start()
    durable.make_dirs(folder)
    other.join()
    assert events.index("second may write") > events.index("fsync study")
    durable._forget_folder(folder)
