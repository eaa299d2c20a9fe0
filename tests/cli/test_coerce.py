"""The plain option converters (cli/coerce.py) give typer's own results, without pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import typer
from typer._coercion import build_runtime_param

from radbridge.cli import app
from radbridge.cli.coerce import PlainGroup, plain_converter


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def _samples(descriptor: Any) -> list[Any]:
    """Values a user or a default may give: plain ones, odd ones and wrong ones."""
    values: list[Any] = [None, "abc", "x/y.nrrd", "", "7", "0012", "-3", "+4", " 5", "1.5"]
    values += ["1e3", "١٢", 7, 1.5, True, Path("a/b")]
    values += [(), ("a.dcm",), ("a", "b/c"), ["a", Path("b")], ("a", 7), ("", "-")]  # nargs
    if get_origin(descriptor.annotation) is Literal:
        for choice in get_args(descriptor.annotation):
            values += [choice, str(choice).upper(), f"{choice}x"]
    return values


def _outcome(converter: Any, value: Any, param: Any, ctx: typer.Context) -> tuple[str, Any]:
    try:
        return "value", converter.coerce(value, param=param, ctx=ctx)
    except (typer.BadParameter, ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


def test_every_option_of_every_command_converts_as_typer_does():
    root = typer.main.get_command(app)
    assert isinstance(root, PlainGroup)
    checked = 0
    for path, command in _commands(root):
        ctx = typer.Context(command, info_name=" ".join(path) or "radbridge")
        for param in command.get_params(ctx):
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None:
                continue
            ours, typers = plain_converter(descriptor), build_runtime_param(descriptor)
            for value in [*_samples(descriptor), param.default]:
                got = _outcome(ours, value, param, ctx)
                want = _outcome(typers, value, param, ctx)
                assert got == want, (path, param.name, value)
                assert type(got[1]) is type(want[1]), (path, param.name, value)
                checked += 1
    assert checked > 2000  # every command's options were reached


def test_send_converts_its_paths_without_pydantic(tmp_path):
    """``send PATH...`` (a ``list[Path]`` argument) in a fresh process, up to the network."""
    program = f"""
import sys
from radbridge.cli import main
code = main(["send", "{tmp_path / "a"}", "{tmp_path / "b"}", "--to", "X@127.0.0.1:9"])
assert code == 1, code  # nothing to send there: radbridge's error, after parsing
assert "pydantic" not in sys.modules, "typer converted a value through pydantic"
"""
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout


def test_seg_commands_convert_their_options_without_pydantic(tmp_path):
    """``seg encode`` and ``seg decode`` with their options, in a fresh process."""
    program = f"""
import sys
from radbridge.cli import main
code = main(["seg", "decode", "{tmp_path / "missing.dcm"}", "-o", "{tmp_path / "x.nrrd"}",
             "--threshold", "0.5"])
assert code == 1, code  # the SEG file is missing: radbridge's error, after parsing
assert "pydantic" in sys.modules  # --threshold (a float) is typer's to convert
"""
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    plain = f"""
import sys
from radbridge.cli import main
code = main(["seg", "encode", "--source", "{tmp_path}", "--mask", "{tmp_path / "m.nrrd"}",
             "--labels", "{tmp_path / "l.json"}", "--type", "LABELMAP", "--profile", "compact",
             "--series-description", "x", "-o", "{tmp_path / "s.dcm"}"])
assert code == 1, code
assert "pydantic" not in sys.modules, "a plain option went through typer's pydantic conversion"
"""
    run = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
