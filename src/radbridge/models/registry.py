"""Find a model by name: built-in, ONNX model card, import path, or entry point.

Examples
--------
>>> load_model("reference-ct").name
'radbridge-reference-ct'
>>> load_model("no-such-model")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
radbridge.errors.ConfigError: unknown model 'no-such-model' ...
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from radbridge.errors import ConfigError
from radbridge.geometry import Volume
from radbridge.models.base import Model, ModelResult, SeriesInfo
from radbridge.models.slide import SlideModel

__all__ = ["ENTRY_POINT_GROUP", "FunctionModel", "load_model"]

#: Packages register models under this entry point group (name -> object).
ENTRY_POINT_GROUP = "radbridge.models"


class FunctionModel:
    """Wrap a plain function ``f(volume, series) -> ModelResult`` as a model."""

    def __init__(
        self,
        function: Callable[[Volume, SeriesInfo], ModelResult],
        *,
        name: str,
        version: str = "0",
    ) -> None:
        self.function = function
        self.name = name
        self.version = str(getattr(function, "__version__", version))

    def __call__(self, volume: Volume, series: SeriesInfo) -> ModelResult:
        """Call the wrapped function."""
        return self.function(volume, series)


def _builtin(name: str) -> Model | SlideModel | None:
    if name in ("reference-ct", "reference_ct", "radbridge-reference-ct"):
        from radbridge.models.reference_ct import ReferenceCTModel

        return ReferenceCTModel()
    if name in ("reference-slide", "reference_slide", "radbridge-reference-slide"):
        from radbridge.models.reference_slide import ReferenceSlideModel

        return ReferenceSlideModel()
    return None


def _as_model(target: Any, spec: str) -> Model | SlideModel:
    if inspect.isclass(target):
        target = target()
    if isinstance(target, Model | SlideModel):
        return target
    if callable(target):
        return FunctionModel(target, name=spec.rsplit(":", 1)[-1])
    raise ConfigError(
        f"{spec} is neither a model nor a callable",
        attribute="model",
        hint="point at a class with name/version/__call__ (or run_slide), or a "
        "function(volume, series)",
    )


def load_model(spec: str) -> Model | SlideModel:
    """Return the model ``spec`` names.

    ``spec`` is ``reference-ct`` or ``reference-slide`` (a :class:`SlideModel`); a
    path to an ONNX model card (``.json``); an import path ``package.module:object``;
    or an entry point name in the ``radbridge.models`` group.

    Raises
    ------
    ConfigError
        Nothing is found, or it does not import (the message says why), or its name
        or version is empty or longer than the 64 characters the result objects'
        Algorithm Name and Version hold.
    """
    model = _find_model(spec)
    for attribute in ("name", "version"):
        value = str(getattr(model, attribute, ""))
        if not value.strip() or len(value) > 64:
            raise ConfigError(
                f"model {spec!r}: its {attribute} {value[:80]!r} has {len(value)} characters; "
                "the result objects' Algorithm Name and Version need 1 to 64",
                attribute="model",
                hint=f"give the model a {attribute} of 1 to 64 characters",
            )
    return model


def _find_model(spec: str) -> Model | SlideModel:
    builtin = _builtin(spec)
    if builtin is not None:
        return builtin
    if spec.endswith(".json"):
        from radbridge.models.onnx import OnnxModel

        if not Path(spec).is_file():
            raise ConfigError("no such model card", path=spec, attribute="model")
        return OnnxModel.from_card(spec)
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            target = getattr(module, attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"model {spec!r} cannot be imported ({type(exc).__name__}: {exc})",
                attribute="model",
                hint="check the module is installed in this environment",
            ) from exc
        return _as_model(target, spec)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == spec:
            return _as_model(entry.load(), spec)
    raise ConfigError(
        f"unknown model {spec!r}",
        attribute="model",
        hint="use reference-ct, reference-slide, a model card path (.json), "
        f"package.module:object, or an entry point in the {ENTRY_POINT_GROUP!r} group",
    )
