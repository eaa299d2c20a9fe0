"""Imports the ``radbridge`` command defers: optional modules pydicom loads eagerly.

``import pydicom`` imports ``requests`` (and with it urllib3, idna, certifi and
charset-normalizer) and :mod:`urllib.request`, to download its test data, and
Pillow's colour management (``PIL.ImageCms``), to apply ICC profiles; it only
records whether they are there. Together they are ~0.05 s of every command's
start on this project's machines, and a command that reads and writes files uses
none of them. The CLI's own process therefore loads them lazily
(:class:`importlib.util.LazyLoader`): ``import requests`` still succeeds (pydicom
sees the package), and the module runs on the first use of one of its
attributes. Nothing changes for library users, who never run this.

Examples
--------
>>> defers(["gateway", "run", "--config", "g.toml"])
False
>>> defers(["seg", "decode", "seg.dcm", "-o", "labels.nrrd"])
True
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["DEFERRED", "NETWORK_COMMANDS", "defer_optional_imports", "defers"]

#: Modules pydicom imports at its own import for features the file commands never use.
DEFERRED = frozenset({"requests", "urllib.request", "PIL.ImageCms"})
#: Commands that talk to peers, run models or run for long (threads): they import as
#: usual (the standard library's lazy loading is not thread-safe before Python 3.12).
NETWORK_COMMANDS = frozenset(
    {"gateway", "batch", "demo", "listen", "send", "echo", "query", "retrieve"}
)


class _Deferring(importlib.abc.MetaPathFinder):
    """Find the modules :data:`DEFERRED` as the other finders do, with a lazy loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in DEFERRED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None  # not installed: the import fails as it would have


def defers(args: Sequence[str]) -> bool:
    """Whether the command ``args`` would defer the :data:`DEFERRED` imports."""
    return not NETWORK_COMMANDS.intersection(args)


def defer_optional_imports(args: Sequence[str]) -> bool:
    """Load :data:`DEFERRED` lazily in this process, for a command that does not need them.

    Only for commands outside :data:`NETWORK_COMMANDS`, and only when none of the
    modules (nor pydicom) is imported yet: then the process is the CLI's own.
    Returns whether the lazy loading was set up.
    """
    if not defers(args) or "pydicom" in sys.modules or DEFERRED.intersection(sys.modules):
        return False
    if not any(isinstance(finder, _Deferring) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Deferring())
    return True
