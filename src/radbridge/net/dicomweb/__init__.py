"""DICOMweb: the client (STOW-RS, QIDO-RS, WADO-RS to a peer) and the STOW-RS receiver.

The client is :mod:`radbridge.net.dicomweb.client` (its names are available
here, imported on first use); the receiver is
:class:`radbridge.net.dicomweb.server.StowServer`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radbridge.net.dicomweb.client import StowReport, qido, stow, wado

__all__ = ["StowReport", "qido", "stow", "wado"]


def __getattr__(name: str) -> Any:
    if name in __all__:  # the client imports pynetdicom and requests: only when used
        return getattr(importlib.import_module("radbridge.net.dicomweb.client"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
