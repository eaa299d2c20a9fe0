"""Durable files: what is acknowledged has been written, fsynced and renamed.

A receiver answers Success only after :func:`write_durably` has returned, so a
crash (or power loss) right after the answer loses nothing. Paths built from
UIDs go through :func:`instance_path`, which refuses anything that is not a
valid UID (``../../etc/passwd`` sent as a SOP Instance UID stays outside the
file system).

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

import io
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from radbridge.errors import InvalidAttributeError, NotDicomError, StorageError
from radbridge.net.dataset_uids import scan_uids
from radbridge.uids import is_valid_uid

__all__ = [
    "StreamedFile",
    "dataset_offset",
    "dir_mode_for",
    "file_meta_bytes",
    "instance_path",
    "make_dirs",
    "read_dataset_uids",
    "read_uids",
    "remove_stale_temporaries",
    "write_durably",
]

_TEMP_PREFIX = ".rb-tmp-"
_dirs_synced: set[Path] = set()
_dirs_lock = threading.Lock()


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


def dataset_offset(data: bytes | memoryview) -> int:
    """Return where the data set starts in a Part 10 file (after its File Meta Information).

    ``0`` for bytes without the ``DICM`` preamble (a bare data set).

    Raises
    ------
    NotDicomError
        The File Meta Information group length is missing or points past the end.

    Examples
    --------
    >>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1")
    >>> dataset_offset(meta + b"rest") == len(meta), dataset_offset(b"rest")
    (True, 0)
    """
    view = memoryview(data)
    if len(view) < 144 or bytes(view[128:132]) != b"DICM":
        return 0
    tag, vr = struct.unpack("<I2s", view[132:138])
    if tag != 0x00000002 or vr != b"UL":  # group 2, element 0 read as one little-endian word
        raise NotDicomError(
            "the File Meta Information has no group length",
            hint="the sender must send a DICOM Part 10 file",
        )
    length: int = struct.unpack("<I", view[140:144])[0]
    end = 144 + length
    if end > len(view):
        raise NotDicomError(
            "the File Meta Information is longer than the file",
            hint="the sender sent a truncated file",
        )
    return end


def read_uids(data: bytes | BinaryIO) -> tuple[str, str, str, str]:
    """Return (study, series, SOP instance, SOP class) UIDs of an encoded instance.

    ``data`` is a DICOM file (with file meta) or a dataset in Explicit VR Little
    Endian, as bytes or an open binary file; only the header elements are parsed.

    Raises
    ------
    NotDicomError
        The bytes cannot be parsed as a data set.
    """
    try:
        from pydicom import dcmread

        ds = dcmread(
            io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data,
            force=True,
            stop_before_pixels=True,
            specific_tags=[
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "SOPClassUID",
            ],
        )
    except Exception as exc:  # pydicom raises many kinds for hostile bytes
        raise NotDicomError(
            f"the received data set cannot be parsed ({type(exc).__name__})",
            hint="the sender sent a malformed data set",
        ) from exc
    return tuple(  # type: ignore[return-value]
        str(ds.get(k, "") or "").strip()
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
    )


_UID_TAGS = (0x00080016, 0x00080018, 0x0020000D, 0x0020000E)  # class, instance, study, series
_IMPLEMENTATION_VERSION = b"RADBRIDGE"  # SH, even length


def _element(tag: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    if vr == b"OB":
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def file_meta_bytes(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae: str = ""
) -> bytes:
    r"""Return the preamble, ``DICM`` prefix and File Meta Information (PS3.10 7.1).

    Prepended to a data set exactly as it was received, this makes a DICOM
    file without decoding or re-encoding the data set.

    Examples
    --------
    >>> meta = file_meta_bytes("1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1")
    >>> from pydicom import dcmread
    >>> ds = dcmread(io.BytesIO(meta + b"\x08\x00\x18\x00UI\x06\x001.2.3\x00"))
    >>> str(ds.file_meta.TransferSyntaxUID), str(ds.SOPInstanceUID)
    ('1.2.840.10008.1.2.1', '1.2.3')
    """
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID  # pydicom is imported lazily

    body = b"".join(
        (
            _element(0x00020001, b"OB", b"\x00\x01", b"\x00"),
            _element(0x00020002, b"UI", sop_class_uid.encode(), b"\x00"),
            _element(0x00020003, b"UI", sop_instance_uid.encode(), b"\x00"),
            _element(0x00020010, b"UI", transfer_syntax_uid.encode(), b"\x00"),
            _element(0x00020012, b"UI", PYDICOM_IMPLEMENTATION_UID.encode(), b"\x00"),
            _element(0x00020013, b"SH", _IMPLEMENTATION_VERSION, b" "),
            _element(0x00020016, b"AE", source_ae.strip().encode(), b" ") if source_ae else b"",
        )
    )
    group_length = _element(0x00020000, b"UL", struct.pack("<I", len(body)), b"")
    return b"\x00" * 128 + b"DICM" + group_length + body


def read_dataset_uids(
    data: bytes, transfer_syntax_uid: str, *, last_tag: int = 0x0020000E
) -> tuple[str, str, str, str]:
    """Return (study, series, SOP instance, SOP class) UIDs of an encoded data set.

    ``data`` is the data set alone (no file meta), encoded in
    ``transfer_syntax_uid``. Parsing stops after Series Instance UID (or after
    ``last_tag``: ``0x00080018`` reads only the SOP Class and Instance UIDs).

    Raises
    ------
    NotDicomError
        The bytes cannot be parsed as a data set.
    """
    scanned = scan_uids(bytes(data), transfer_syntax_uid, last_tag=last_tag)
    if scanned is not None:
        return scanned
    from pydicom.filereader import read_dataset  # big endian, deflated or damaged
    from pydicom.uid import UID

    syntax = UID(transfer_syntax_uid)
    try:
        if syntax == "1.2.840.10008.1.2.1.99":  # deflated: inflate the start only
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, 1 << 20)
        ds = read_dataset(
            io.BytesIO(data),
            syntax.is_implicit_VR,
            syntax.is_little_endian,
            stop_when=lambda tag, vr, length: tag > last_tag,
            specific_tags=list(_UID_TAGS),
        )
        values = [str(ds.get(tag).value if tag in ds else "").strip("\x00 ") for tag in _UID_TAGS]
    except Exception as exc:  # pydicom raises many kinds for hostile bytes
        raise NotDicomError(
            f"the received data set cannot be parsed ({type(exc).__name__})",
            hint="the sender sent a malformed data set",
        ) from exc
    sop_class, sop, study, series = values
    return study, series, sop, sop_class


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
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o777 if mode is None else mode)
        except FileExistsError:  # another thread made it meanwhile
            pass
        else:
            if mode is not None:
                os.chmod(created, mode)
        _fsync_dir(created.parent)
    with _dirs_lock:
        _dirs_synced.add(folder)


class StreamedFile:
    """A file written in pieces, then made durable under its final name — or discarded.

    The pieces go to a temporary file in ``folder`` (removed at start by
    :func:`remove_stale_temporaries` if a crash leaves it); :meth:`commit`
    fsyncs it, renames it to its final path (on the same file system) and
    fsyncs that folder. Used where the final name is known only at the end,
    e.g. a STOW-RS part whose UIDs are read after it arrived.

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
            make_dirs(folder, None if mode is None else dir_mode_for(mode))
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            descriptor = os.open(self.temporary, flags, 0o666 if mode is None else mode)
        except OSError as exc:
            raise _storage_error(exc, self.temporary) from exc
        if mode is not None:
            os.fchmod(descriptor, mode)  # the umask may have removed bits
        self._handle = open(descriptor, "wb")  # noqa: SIM115 (closed by commit/discard)

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
        """Make the file durable as ``path`` (replacing what was there)."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            make_dirs(path.parent, None if self.mode is None else dir_mode_for(self.mode))
            os.replace(self.temporary, path)
            _folder_commit.sync(path.parent)  # shared with renames into it at the same time
        except OSError as exc:
            self.discard()
            with _dirs_lock:
                _dirs_synced.discard(path.parent)
            raise _storage_error(exc, path) from exc

    def discard(self) -> None:
        """Remove the temporary file (nothing of it stays)."""
        self._handle.close()
        self.temporary.unlink(missing_ok=True)


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


def remove_stale_temporaries(root: Path) -> int:
    """Delete temporary files a crash left under ``root``; return how many."""
    count = 0
    for stale in root.rglob(f"{_TEMP_PREFIX}*"):
        stale.unlink(missing_ok=True)
        count += 1
    return count
