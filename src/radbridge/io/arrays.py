"""Load ``.npy`` arrays given as masks, refusing damaged files by name.

NumPy's loader raises what its parsers meet on a damaged file (``ValueError``,
``EOFError``, ``OSError``, ``tokenize.TokenError``, ``zipfile.BadZipFile``, ...); every
reader of a user's array goes through :func:`load_array`, so each of them gives one
:class:`~radbridge.errors.DicomReadError` that names the file instead.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "mask.npy"
>>> np.save(path, np.ones((2, 3, 4), np.uint8))
>>> load_array(path).shape
(2, 3, 4)
>>> _ = path.write_bytes(path.read_bytes()[:60])
>>> load_array(path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
radbridge.errors.DicomReadError: ...mask.npy: cannot be read as a NumPy array (...)...
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import DicomReadError

__all__ = ["load_array"]


def load_array(
    path: str | os.PathLike[str], *, mmap_mode: Literal["r"] | None = None
) -> NDArray[Any]:
    """Load a ``.npy`` file (no pickled objects; memory-mapped with ``mmap_mode="r"``).

    Raises
    ------
    DicomReadError
        The file cannot be read as a NumPy array (truncated, damaged, or another
        format), named with NumPy's reason.
    """
    p = Path(path)
    try:
        array: NDArray[Any] = np.load(p, mmap_mode=mmap_mode, allow_pickle=False)
    except Exception as exc:  # NumPy's parsers raise many types on damaged files
        raise DicomReadError(
            f"cannot be read as a NumPy array ({type(exc).__name__}: {str(exc)[:120]})",
            path=p,
            hint="write it again with numpy.save; it may be truncated or damaged",
        ) from exc
    if not isinstance(array, np.ndarray):  # an .npz archive given where .npy is expected
        array.close()
        raise DicomReadError(
            "holds an .npz archive, not one array", path=p, hint="save one array with numpy.save"
        )
    return array
