"""Old import paths kept working: a module ``__getattr__`` that forwards and warns.

A name that moved stays importable from its old module for a while; each use
says where it lives now (a :class:`DeprecationWarning`).

Examples
--------
>>> import warnings
>>> getattr_ = moved("radbridge.old", {"RadbridgeError": "radbridge.errors"})
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     error = getattr_("RadbridgeError")
>>> error.__name__, str(caught[0].message)
('RadbridgeError', 'radbridge.old.RadbridgeError has moved: import it from radbridge.errors')
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["moved"]


def moved(old: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a ``__getattr__`` for module ``old``: each of ``homes`` (name -> module) forwards."""
    table = dict(homes)

    def __getattr__(name: str) -> Any:  # noqa: N807 (a module's __getattr__)
        home = table.get(name)
        if home is None:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old}.{name} has moved: import it from {home}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(home), name)

    return __getattr__
