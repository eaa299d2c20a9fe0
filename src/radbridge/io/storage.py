"""Durable storage: what is acknowledged has been written, fsynced and renamed.

The spool layout and the one way radbridge writes a file that must survive a
crash. A receiver answers Success only after :func:`write_durably` (or
:meth:`StreamedFile.commit`) has returned, so a crash (or power loss) right
after the answer loses nothing; renames into one folder at the same moment share
one fsync of it (group commit). Paths built from UIDs go through
:func:`instance_path` (``<study>/<series>/<sop>.dcm``), which refuses anything
that is not a valid UID (``../../etc/passwd`` sent as a SOP Instance UID stays
outside the file system).

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> path = instance_path(root, "1.2.3", "1.2.3.4", "1.2.3.4.5")
>>> write_durably(b"DICM", path)
>>> path.relative_to(root).as_posix(), path.read_bytes()
('1.2.3/1.2.3.4/1.2.3.4.5.dcm', b'DICM')
>>> instance_path(root, "1.2.3", "1.2.3.4", "../../etc/passwd")
Traceback (most recent call last):
...
radbridge.errors.InvalidAttributeError: ...: the SOP instance UID is not a valid UID, ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from radbridge.errors import InvalidAttributeError, StorageError
from radbridge.uids import is_valid_uid

__all__ = [
    "StreamedFile",
    "dir_mode_for",
    "instance_path",
    "is_temporary",
    "make_dirs",
    "remove_empty_folders",
    "remove_stale_temporaries",
    "remove_stale_temporary",
    "sync_folder",
    "write_durably",
]

_TEMP_PREFIX = ".rb-tmp-"
#: A temporary file younger than this is never taken for stale (it may be one another
#: process has just created and not yet locked).
TEMPORARY_GRACE_S = 10.0
_live: set[str] = set()  # temporary files of this process not yet renamed or discarded
_live_lock = threading.Lock()
_dirs_synced: set[Path] = set()
_dirs_lock = threading.Lock()
_making_dirs = threading.Lock()


def instance_path(
    root: Path, study: str, series: str, sop: str, *, digest: str | None = None
) -> Path:
    """Return ``root/<study>/<series>/<sop>.dcm`` (``<sop>.<digest>.dcm`` with a digest).

    Raises
    ------
    InvalidAttributeError
        A UID is not a valid UID (it would be unsafe as a path component).
    """
    for keyword, value in (
        ("StudyInstanceUID", study),
        ("SeriesInstanceUID", series),
        ("SOPInstanceUID", sop),
    ):
        if not is_valid_uid(value):
            what = {
                "StudyInstanceUID": "study",
                "SeriesInstanceUID": "series",
                "SOPInstanceUID": "SOP instance",
            }
            raise InvalidAttributeError(
                f"the {what[keyword]} UID is not a valid UID, refusing to use it as a file name",
                path=root,
                attribute=keyword,
                hint="the sender must send UIDs of digits and dots (PS3.5 9.1)",
            )
    if digest is not None:
        if not digest.isalnum():
            raise ValueError(f"digest {digest!r} is not alphanumeric")
        return root / study / series / f"{sop}.{digest}.dcm"
    return root / study / series / f"{sop}.dcm"


def _fsync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class _FolderCommit:
    """Group commit of folder fsyncs: one fsync makes every earlier rename into the folder durable.

    A thread that has renamed a file into ``folder`` calls :meth:`sync` and returns
    only after an fsync of the folder that *started after* its rename has finished.
    When several threads (associations, STOW-RS requests) store into the same series
    at once, the first to arrive runs the fsync and the others that renamed before it
    started are served by it; those that come during it wait for the next one, which
    one of them runs. No rename is acknowledged before a covering fsync completed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[Path, list[int]] = {}  # folder -> [requested, done, running]
        self._changed = threading.Condition(self._lock)

    def sync(self, folder: Path) -> None:
        """Return once ``folder`` was fsynced after the caller's rename (raises OSError)."""
        with self._lock:
            state = self._state.setdefault(folder, [0, 0, 0])
            state[0] += 1
            ticket = state[0]  # any fsync starting from now covers this rename
            while state[1] < ticket:
                if state[2]:
                    self._changed.wait()
                    continue
                state[2], covered = 1, state[0]
                self._lock.release()
                try:
                    _fsync_dir(folder)
                finally:
                    self._lock.acquire()
                    state[2] = 0
                    self._changed.notify_all()
                state[1] = max(state[1], covered)
            if state[0] == state[1] and not state[2] and self._state.get(folder) is state:
                del self._state[folder]  # nothing pending: forget the folder


_folder_commit = _FolderCommit()


def dir_mode_for(file_mode: int) -> int:
    """Return the folder mode that goes with ``file_mode``: search (x) wherever read (r).

    >>> oct(dir_mode_for(0o600)), oct(dir_mode_for(0o640))
    ('0o700', '0o750')
    """
    return file_mode | ((file_mode & 0o444) >> 2)


def make_dirs(folder: Path, mode: int | None = None) -> None:
    """Create ``folder`` and fsync each new entry's parent (so the path itself is durable).

    With ``mode``, folders created here get exactly that mode (not reduced by the umask).
    """
    with _dirs_lock:
        if folder in _dirs_synced:
            return
    # One maker at a time: a thread that finds a folder another thread has just made
    # waits until that folder's entry is fsynced, instead of writing into it at once.
    with _making_dirs:
        with _dirs_lock:
            if folder in _dirs_synced:
                return
        missing: list[Path] = []
        probe = folder
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        for created in reversed(missing):
            try:
                created.mkdir(mode=0o777 if mode is None else mode)
            except FileExistsError:  # another process made it meanwhile
                pass
            else:
                if mode is not None:
                    os.chmod(created, mode)
            _fsync_dir(created.parent)
        if not missing:  # made by another process, or before a crash: make its entry durable
            _fsync_dir(folder.parent)
        with _dirs_lock:
            _dirs_synced.add(folder)


class StreamedFile:
    """A file written in pieces, then made durable under its final name — or discarded.

    The pieces go to a temporary file in ``folder``; :meth:`commit` fsyncs it,
    renames it to its final path (on the same file system) and fsyncs that
    folder. While the file is open its writer holds an exclusive ``flock`` on
    it (released by the kernel when the writer dies, ``kill -9`` included), and
    until it is renamed or discarded it is listed as live in this process, so
    :func:`remove_stale_temporary` removes only what a dead writer left. Used
    where the final name is known only at the end, e.g. a STOW-RS part whose
    UIDs are read after it arrived.

    Parameters
    ----------
    folder
        Where the temporary file is made (created if missing).
    mode
        The file's exact mode (and :func:`dir_mode_for` it for folders made);
        ``None``: the process umask decides.

    Raises
    ------
    StorageError
        The file cannot be created or written; nothing is left behind.
    """

    def __init__(self, folder: Path, *, mode: int | None = None) -> None:
        self.mode = mode
        self.temporary = folder / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        self.size = 0
        try:
            try:
                descriptor = self._create()
            except FileNotFoundError:  # its folder was just removed (emptied): make it again
                _forget_folder(folder)
                descriptor = self._create()
        except OSError as exc:
            raise _storage_error(exc, self.temporary) from exc
        if mode is not None:
            os.fchmod(descriptor, mode)  # the umask may have removed bits
        self._handle = open(descriptor, "wb")  # noqa: SIM115 (closed by commit/discard)

    def _create(self) -> int:
        folder = self.temporary.parent
        make_dirs(folder, None if self.mode is None else dir_mode_for(self.mode))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        with _live_lock:
            _live.add(str(self.temporary))
        try:
            descriptor = os.open(self.temporary, flags, 0o666 if self.mode is None else self.mode)
        except OSError:
            _not_live(self.temporary)
            raise
        with contextlib.suppress(OSError):  # a file system without locks: the grace time decides
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return descriptor

    def flush(self) -> None:
        """Hand what was written to the operating system (readable at :attr:`temporary`)."""
        self._handle.flush()

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``."""
        try:
            self._handle.write(data)
        except OSError as exc:
            self.discard()
            raise _storage_error(exc, self.temporary) from exc
        self.size += len(data)

    def commit(self, path: Path) -> None:
        """Make the file durable as ``path`` (replacing what was there).

        The file stays open (locked) until it is renamed, so another process
        sweeping stale temporaries never takes it for one.
        """
        self.sync(close=False)
        self.place(path)
        sync_folder(path.parent)

    def sync(self, *, close: bool = True) -> None:
        """Flush and fsync the written content, and close the file (the first step of a commit).

        ``close=False`` keeps it open until :meth:`place` or :meth:`discard`.
        Raises :class:`~radbridge.errors.StorageError` (the temporary file is then removed).
        """
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            if close:
                self._handle.close()
        except OSError as exc:
            self.discard()
            raise _storage_error(exc, self.temporary) from exc

    def place(self, path: Path) -> None:
        """Rename the synced file to ``path``; durable only after :func:`sync_folder` of its folder.

        Raises :class:`~radbridge.errors.StorageError` (the temporary file is then removed).
        """
        try:
            try:
                self._replace(path)
            except FileNotFoundError:  # its folder was just removed (emptied): make it again
                _forget_folder(path.parent)
                self._replace(path)
        except OSError as exc:
            self.discard()
            _forget_folder(path.parent)
            raise _storage_error(exc, path) from exc
        self._handle.close()
        _not_live(self.temporary)

    def _replace(self, path: Path) -> None:
        make_dirs(path.parent, None if self.mode is None else dir_mode_for(self.mode))
        os.replace(self.temporary, path)

    def discard(self) -> None:
        """Remove the temporary file (nothing of it stays)."""
        self._handle.close()
        self.temporary.unlink(missing_ok=True)
        _not_live(self.temporary)


def _not_live(temporary: Path) -> None:
    with _live_lock:
        _live.discard(str(temporary))


def sync_folder(folder: Path) -> None:
    """Make every rename into ``folder`` so far durable (one fsync, shared with other threads).

    Raises
    ------
    StorageError
        The fsync failed: the renames into the folder may be lost in a crash.
    """
    try:
        _folder_commit.sync(folder)  # shared with renames into it at the same time
    except OSError as exc:
        _forget_folder(folder)
        raise _storage_error(exc, folder) from exc


def _forget_folder(folder: Path) -> None:
    with _dirs_lock:
        _dirs_synced.discard(folder)


def _storage_error(exc: OSError, path: Path) -> StorageError:
    return StorageError(
        f"cannot store the file ({exc.strerror or exc})",
        path=path,
        hint="free disk space or fix the folder's permissions",
    )


def write_durably(
    data: bytes | memoryview | Iterable[bytes | memoryview], path: Path, *, mode: int | None = None
) -> None:
    """Write ``data`` to ``path``: temporary file, fsync, rename, fsync of the folder.

    A reader never sees a partial file at ``path``: either the old content (or
    nothing) or all of ``data``. The temporary file is removed on failure.
    With ``mode`` (e.g. ``0o600``) the file gets exactly that mode, and folders
    created for it :func:`dir_mode_for` it; without, the process umask decides.

    Raises
    ------
    StorageError
        The file could not be written (disk full, permissions, ...); nothing
        is left behind.
    """
    streamed = StreamedFile(path.parent, mode=mode)
    for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
        streamed.write(chunk)
    streamed.commit(path)


def remove_empty_folders(folder: Path, root: Path) -> int:
    """Remove ``folder`` and its parents below ``root`` while they are empty; return how many.

    A folder that is not empty (a file was just written into it) stays. A writer
    that made a folder removed here makes it again (:class:`StreamedFile` retries
    once when its folder vanished), so an emptied spool folder can go at any time.
    """
    removed = 0
    while folder != root and root in folder.parents:
        with _dirs_lock:
            _dirs_synced.discard(folder)
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                return removed
        removed += 1
        folder = folder.parent
    return removed


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named as the temporary file of a durable write."""
    return path.name.startswith(_TEMP_PREFIX)


def remove_stale_temporary(
    path: Path, *, grace_s: float = TEMPORARY_GRACE_S, now: float | None = None
) -> int | None:
    """Remove a temporary file whose writer is gone; return its bytes (None: kept).

    A writer that is alive — in this process (not yet renamed or discarded), or
    in another one (it holds the file's ``flock`` while the file is open) — keeps
    its file, and so does a file written less than ``grace_s`` seconds before
    ``now`` (default: the clock). A file already gone is None too.
    """
    with _live_lock:
        if str(path) in _live:
            return None
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live writer in another process
            return None
        except OSError:  # no locks on this file system: the grace time alone decides
            pass
        info = os.fstat(handle)
        if info.st_mtime > (time.time() if now is None else now) - grace_s:
            return None
        path.unlink(missing_ok=True)
        return info.st_size
    finally:
        os.close(handle)


def remove_stale_temporaries(root: Path, *, grace_s: float = TEMPORARY_GRACE_S) -> int:
    """Delete the temporary files dead writers left under ``root``; return how many.

    Safe while other writers (threads, processes) write under ``root``: see
    :func:`remove_stale_temporary`. A missing ``root`` has none.
    """
    count = 0
    if not root.is_dir():
        return 0
    for stale in root.rglob(f"{_TEMP_PREFIX}*"):
        if remove_stale_temporary(stale, grace_s=grace_s) is not None:
            count += 1
    return count
