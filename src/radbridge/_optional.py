"""Import optional packages lazily, failing with the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from radbridge.errors import OptionalDependencyError

__all__ = ["require"]


def require(module: str, extra: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`~radbridge.errors.OptionalDependencyError`.

    Parameters
    ----------
    module
        The importable module name, e.g. ``"nibabel"``.
    extra
        The radbridge extra that provides it, e.g. ``"nifti"``.
    purpose
        What the caller wanted to do, for the message.

    Examples
    --------
    >>> require("json", "none", purpose="parse JSON").__name__
    'json'
    >>> require("no_such_module_xyz", "nifti", purpose="read NIfTI")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    radbridge.errors.OptionalDependencyError: ... pip install 'radbridge[nifti]'.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptionalDependencyError(
            f"{module} is needed to {purpose}",
            attribute=module,
            hint=f"install it with: pip install 'radbridge[{extra}]'",
        ) from exc
