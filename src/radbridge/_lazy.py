"""Names a module loads on first use: a face's lazy names, and old homes of moved names.

A face (``radbridge``, ``radbridge.net``) lists each public name with the module
that defines it, and imports that module only when the name is first used, so
importing the face stays cheap (:func:`lazy`). A name that moved stays
importable from its old module for a while; each use says where it lives now
(:func:`moved`, a :class:`DeprecationWarning`).

Examples
--------
>>> import warnings
>>> getattr_ = moved("radbridge.old", {"RadbridgeError": "radbridge.errors"})
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     error = getattr_("RadbridgeError")
>>> error.__name__, str(caught[0].message)
('RadbridgeError', 'radbridge.old.RadbridgeError has moved: import it from radbridge.errors')
>>> namespace = {}
>>> getattr_, dir_ = lazy("face", {"RadbridgeError": "radbridge.errors"}, namespace)
>>> getattr_("RadbridgeError") is error, list(namespace), dir_()
(True, ['RadbridgeError'], ['RadbridgeError'])
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy", "moved"]


def _load(module: str, homes: Mapping[str, str], name: str) -> tuple[str, Any]:
    home = homes.get(name)
    if home is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return home, getattr(importlib.import_module(home), name)


def lazy(
    module: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for a face whose ``homes`` map name -> module.

    A name is imported on first use and kept in ``namespace`` (the face's globals).
    """
    table = dict(homes)

    def __getattr__(name: str) -> Any:  # noqa: N807 (a module's __getattr__)
        namespace[name] = _load(module, table, name)[1]
        return namespace[name]

    def __dir__() -> list[str]:  # noqa: N807 (a module's __dir__)
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__


def moved(old: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a ``__getattr__`` for module ``old``: each of ``homes`` (name -> module) forwards."""
    table = dict(homes)

    def __getattr__(name: str) -> Any:  # noqa: N807 (a module's __getattr__)
        home, value = _load(old, table, name)
        warnings.warn(
            f"{old}.{name} has moved: import it from {home}", DeprecationWarning, stacklevel=2
        )
        return value

    return __getattr__
