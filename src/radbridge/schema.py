"""TOML tables read into frozen dataclasses: the dataclass *is* the schema.

The keys a table may have, their types and their defaults come from the
dataclass's fields, so a new setting is one new field — nothing kept by hand.
:func:`from_table` checks and converts a TOML table: unknown keys fail with the
closest known name as a hint, wrong types name the key and the expected type,
and missing required keys name the key. Field metadata adjusts a field:

``{"toml": "password_env", "secret": True}``
    The TOML key differs from the field name and holds the *name of an
    environment variable*; the field gets that variable's value (unset: an error).
``{"toml": None}``
    Not a TOML key (filled by the caller, e.g. a peer's name from its table key).

Paths (``Path`` fields) are resolved against ``base`` (the TOML file's folder).
A ``tuple[str, ...]`` field accepts a single string too. ``Literal`` fields
accept only their values.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Server:
...     host: str = "127.0.0.1"
...     port: int = 11112
...     names: tuple[str, ...] = ()
>>> from_table(Server, {"port": 4242, "names": "A"}, where="server")
Server(host='127.0.0.1', port=4242, names=('A',))
>>> from_table(Server, {"prot": 4242}, where="server")
Traceback (most recent call last):
...
radbridge.errors.ConfigError: unknown key 'prot' in [server] [server.prot]. Did you mean 'port'? ...
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from radbridge.errors import ConfigError

__all__ = ["from_table", "read_toml", "table_keys", "unknown_key_error"]

T = TypeVar("T")


def read_toml(path: Path) -> dict[str, Any]:
    """Return the tables of the TOML file ``path``.

    Raises
    ------
    ConfigError
        The file cannot be read or is not TOML (the message says why, naming the file).
    """
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration ({exc})", path=path) from exc


def table_keys(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """Return the TOML keys of dataclass ``cls`` mapped to their fields."""
    keys: dict[str, dataclasses.Field[Any]] = {}
    for item in dataclasses.fields(cls):
        key = item.metadata.get("toml", item.name)
        if key is not None:
            keys[key] = item
    return keys


def unknown_key_error(key: str, known: typing.Iterable[str], where: str) -> ConfigError:
    """Return the error for an unknown key, with the closest known name as a hint."""
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(
        f"unknown key {key!r} in [{where}]",
        attribute=f"{where}.{key}",
        hint=hint + f"known keys: {', '.join(names)}",
    )


def from_table(
    cls: type[T],
    table: Any,
    *,
    where: str,
    base: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> T:
    """Build dataclass ``cls`` from a TOML table (see the module docstring).

    Parameters
    ----------
    cls
        A dataclass whose fields are the table's keys.
    table
        The parsed TOML table.
    where
        The table's name in messages, e.g. ``"gateway.tls"``.
    base
        Folder that relative paths are relative to.
    extra
        Field values given by the caller (fields marked ``{"toml": None}``).

    Raises
    ------
    ConfigError
        Unknown key, wrong type, missing key, unset environment variable, or a
        value the dataclass itself refuses.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"[{where}] must be a table, not {_kind(table)}",
            attribute=where,
            hint=f"write [{where}] with key = value lines",
        )
    keys = table_keys(cls)
    for key in table:
        if key not in keys:
            raise unknown_key_error(key, keys, where)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = dict(extra or {})
    for key, item in keys.items():
        if key not in table:
            if item.name in values:  # given by the caller
                continue
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise ConfigError(f"[{where}] has no {key}", attribute=f"{where}.{key}")
            continue
        value = table[key]
        if item.metadata.get("secret"):
            values[item.name] = _secret(value, f"{where}.{key}")
        else:
            values[item.name] = convert(value, hints[item.name], f"{where}.{key}", base)
    try:
        return cls(**values)
    except ConfigError as exc:
        attribute = exc.attribute or ""
        if attribute and not attribute.startswith(where):
            attribute = f"{where}.{attribute}"
        raise ConfigError(exc.message, attribute=attribute or where, hint=exc.hint) from None


def _secret(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        raise ConfigError(
            f"{where} must name an environment variable", attribute=where, hint="write a string"
        )
    if not value:
        return None
    secret = os.environ.get(value)
    if secret is None:
        raise ConfigError(
            f"environment variable {value} is not set",
            attribute=where,
            hint=f"export {value} before starting radbridge",
        )
    return secret


def _kind(value: Any) -> str:
    names = {str: "a string", bool: "true/false", int: "an integer", float: "a number"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def _wrong(value: Any, expected: str, where: str) -> ConfigError:
    return ConfigError(
        f"{where} must be {expected}, not {_kind(value)} ({value!r})",
        attribute=where,
        hint="see docs/gateway.md and docs/networking.md for every key",
    )


def convert(value: Any, tp: Any, where: str, base: Path | None = None) -> Any:
    """Check ``value`` against type ``tp`` and convert it (TOML arrays become tuples)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return convert(value, options[0], where, base)
        for option in options:  # e.g. int | str: the first that fits
            try:
                return convert(value, option, where, base)
            except ConfigError:
                continue
        raise _wrong(value, " or ".join(_name(o) for o in options), where)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"{where} is {value!r}",
                attribute=where,
                hint=f"use one of {', '.join(repr(a) for a in allowed)}",
            )
        return value
    if origin is tuple:
        return _sequence(value, tp, where, base)
    if origin in (dict, Mapping, typing.Mapping):
        return _mapping(value, tp, where, base)
    if dataclasses.is_dataclass(tp):
        return from_table(typing.cast(type[Any], tp), value, where=where, base=base)
    return _scalar(value, tp, where, base)


def _sequence(value: Any, tp: Any, where: str, base: Path | None) -> tuple[Any, ...]:
    (item_type, *_rest) = get_args(tp)
    if isinstance(value, str) and item_type is str:
        return (value,)
    if not isinstance(value, list):
        raise _wrong(value, f"an array of {_name(item_type)}", where)
    return tuple(convert(v, item_type, f"{where}[{i}]", base) for i, v in enumerate(value))


def _mapping(value: Any, tp: Any, where: str, base: Path | None) -> dict[str, Any]:
    _, item_type = get_args(tp)
    if not isinstance(value, Mapping):
        raise _wrong(value, "a table", where)
    if dataclasses.is_dataclass(item_type):
        names = [f.name for f in dataclasses.fields(item_type) if f.metadata.get("key_name")]
        return {
            str(k): from_table(
                typing.cast(type[Any], item_type),
                v,
                where=f"{where}.{k}",
                base=base,
                extra={names[0]: str(k)} if names else None,
            )
            for k, v in value.items()
        }
    return {str(k): convert(v, item_type, f"{where}.{k}", base) for k, v in value.items()}


def _scalar(value: Any, tp: Any, where: str, base: Path | None) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise _wrong(value, "true or false", where)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(value, "an integer", where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(value, "a number", where)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _wrong(value, "a string", where)
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise _wrong(value, "a file path", where)
        path = Path(value).expanduser()
        return path if path.is_absolute() or base is None else base / path
    raise TypeError(f"{where}: no TOML conversion for {tp!r}")  # a schema bug, not user input


def _name(tp: Any) -> str:
    if get_origin(tp) is tuple:
        return "an array"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )
