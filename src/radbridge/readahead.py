"""A file read in a background thread while the program does something else.

The ``radbridge`` command starts reading its input file before it imports NumPy and
pydicom (~0.2 s): reading a 90 MB SEG from the page cache takes ~0.04 s of system
time, which the second core does meanwhile. :class:`ReadAhead` is a path (it
passes wherever a path does); the readers that read a whole file into memory
(:func:`radbridge.iods.multiframe.fast_read.open_read`) take its bytes instead of
reading the file again. Standard library only, so it costs nothing to import.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "data.bin"
>>> _ = path.write_bytes(b"DICM")
>>> ahead = ReadAhead(path)
>>> os.fspath(ahead) == str(path)
True
>>> ahead.take()
b'DICM'
"""

from __future__ import annotations

import os
import threading

__all__ = ["ReadAhead", "read_bytes"]


class ReadAhead(os.PathLike[str]):
    """A path whose file is being read by a daemon thread.

    Parameters
    ----------
    path
        The file. Errors (a missing file, a folder) are not raised here but by
        :meth:`take`, as reading the file then would raise them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._data: bytes | None = None
        self._error: OSError | None = None
        self._taken = False
        self._thread = threading.Thread(target=self._read, name="radbridge-read-ahead", daemon=True)
        self._thread.start()

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"ReadAhead({self.path!r})"

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                self._data = handle.read()
        except OSError as exc:
            self._error = exc

    def take(self) -> bytes:
        """Wait for the read and return the file's bytes, or raise its :class:`OSError`.

        The bytes are handed over once (the object keeps no reference to them);
        a second call reads the file again.
        """
        self._thread.join()
        if self._taken:
            with open(self.path, "rb") as handle:
                return handle.read()
        self._taken = True
        data, error, self._data, self._error = self._data, self._error, None, None
        if error is not None:
            raise error
        assert data is not None
        return data


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return a file's bytes: read ahead when ``path`` is a :class:`ReadAhead`.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    if isinstance(path, ReadAhead):
        return path.take()
    with open(path, "rb") as handle:
        return handle.read()
