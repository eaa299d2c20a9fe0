"""Convert the plain option values of radbridge's commands without importing pydantic.

typer 0.29 converts every option's value (given or not) through a pydantic
``TypeAdapter``: the first command option it meets imports pydantic and each
builds an adapter, ~0.05-0.06 s of every ``radbridge`` command before its work
starts. Most values need no such machinery: an option left out (``None``), a
``str`` option's text, a plain ``Path`` option's path (or a ``list[Path]``
argument's paths), one of a ``Literal``'s choices, a whole number for an ``int``
option inside its bounds, a flag's bool, a default that already has its type.
:class:`PlainGroup` (the class of radbridge's command groups) gives each option
of its commands a converter that returns these exactly as typer would and hands
anything else -- and every value typer would refuse -- to typer's own conversion,
built on first use, so that results, errors and messages stay typer's.
tests/cli/test_coerce.py checks the results against typer's conversion for every
option of every command.

This uses typer's internal converter interface (``typer._coercion``, present
since typer 0.29); when it is missing, the groups leave typer's conversion alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from typer.core import TyperGroup

try:
    from typer._coercion import RuntimeParam, build_runtime_param
except ImportError:  # pragma: no cover (another typer: keep its conversion)
    RuntimeParam = None  # type: ignore[assignment,misc]

__all__ = ["PlainGroup", "plain_converter"]

_WHOLE = re.compile(r"-?[0-9]+")


class PlainGroup(TyperGroup):
    """A typer group whose commands convert plain option values without pydantic."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Install the plain converters on this group's options (help included), then parse."""
        for param in self.get_params(ctx):
            _install(param)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Find the command ``args`` name; install the plain converters on its options."""
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, PlainGroup):
            for param in command.get_params(ctx):
                _install(param)
        return name, command, rest


def _install(param: Any) -> None:
    """Give ``param`` the plain converter when it is a typer parameter not yet converted."""
    if RuntimeParam is None or getattr(param, "_runtime_param", False) is not None:
        return
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        param._runtime_param = plain_converter(descriptor)


def plain_converter(descriptor: Any) -> Any:
    """Return the converter of one option (``descriptor`` is typer's ``TypeDescriptor``)."""
    return _Plain(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        descriptor=descriptor,
    )


if RuntimeParam is not None:

    class _Plain(RuntimeParam):
        """The plain cases here; typer's converter for everything else."""

        descriptor: Any

        def __init__(self, *, parameter_info: Any, annotation: Any, descriptor: Any) -> None:
            object.__setattr__(self, "parameter_info", parameter_info)
            object.__setattr__(self, "annotation", annotation)
            object.__setattr__(self, "descriptor", descriptor)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            done, result = _plain_value(self.annotation, self.parameter_info, value)
            if done:
                return result
            typer_own = build_runtime_param(self.descriptor)
            param._runtime_param = typer_own  # later values go straight to typer
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def _plain_value(annotation: Any, info: Any, value: Any) -> tuple[bool, Any]:
    """Return ``(True, converted)`` when the value is plain here, else ``(False, None)``."""
    if info.parser is not None:
        return False, None
    if isinstance(value, list | tuple):
        return _plain_paths(annotation, info, value)
    if annotation is str and isinstance(value, str):
        return True, value
    if annotation is Path and isinstance(value, str | Path) and _plain_path(info):
        return True, Path(value)
    if get_origin(annotation) is Literal and isinstance(value, str):
        return _choice(get_args(annotation), value, info.case_sensitive)
    if annotation is bool and type(value) is bool:
        return True, value
    if annotation in (int, float):
        return _plain_number(annotation, info, value)
    return False, None


def _plain_number(annotation: Any, info: Any, value: Any) -> tuple[bool, Any]:
    """Convert a number of its type, or a whole number for an ``int``, inside its bounds."""
    if type(value) is annotation:
        number = value
    elif annotation is int and isinstance(value, str) and _WHOLE.fullmatch(value):
        number = int(value)
    else:
        return False, None
    if info.min is None and info.max is None:
        return True, number
    inside = (info.min is None or number >= info.min) and (info.max is None or number <= info.max)
    return (True, number) if inside and not info.clamp else (False, None)


def _plain_paths(annotation: Any, info: Any, value: Sequence[Any]) -> tuple[bool, Any]:
    """Convert a ``list[Path]`` argument's values (``radbridge send PATH...``), unchecked."""
    if get_origin(annotation) is not list or get_args(annotation) != (Path,):
        return False, None
    if not value or not _plain_path(info) or not all(isinstance(v, str | Path) for v in value):
        return False, None
    return True, [Path(v) for v in value]


def _plain_path(info: Any) -> bool:
    """Whether a path option asks typer for no checks (existence, kind, access, dash)."""
    return not (
        info.exists
        or info.resolve_path
        or info.allow_dash
        or info.readable is False
        or info.writable
        or not info.file_okay
        or not info.dir_okay
        or info.path_type not in (None, Path)
    )


def _choice(choices: tuple[Any, ...], value: str, case_sensitive: bool) -> tuple[bool, Any]:
    """Return the choice ``value`` names (typer folds case unless ``case_sensitive``)."""
    for choice in choices:
        if not isinstance(choice, str):
            return False, None
        if choice == value or (not case_sensitive and choice.casefold() == value.casefold()):
            return True, choice
    return False, None
