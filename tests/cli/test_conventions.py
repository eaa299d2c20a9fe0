"""CLI conventions, checked over every registered command (new commands are covered too).

--version, help texts shown literally (square brackets kept), every option with help,
boolean options as flags, closed value sets listed as choices, usage errors (bad values
included) exit 2, --json on every command that reports something, shell completion.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from radbridge import __version__
from radbridge.cli import app, main

#: Commands that report nothing a script would parse: servers that run until stopped,
#: and the demo (a guided tour in prose). Every other command takes --json.
NO_JSON = {("listen",), ("gateway", "run"), ("demo",)}


def _commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, click command) of every leaf command of ``radbridge``."""

    def walk(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
        sub = getattr(command, "commands", None)
        if sub is None:
            yield path, command
            return
        for name, child in sorted(sub.items()):
            yield from walk((*path, name), child)

    yield from walk((), typer.main.get_command(app))


COMMANDS = dict(_commands())
IDS = [" ".join(p) for p in COMMANDS]


def _flat(text: str) -> str:
    """Undo the help formatter's wrapping (it may wrap after a hyphen: "--per-\n segment")."""
    return " ".join(re.sub(r"-\n\s+", "-", text).split())


def test_every_group_is_walked():
    names = {path[0] for path in COMMANDS}
    assert {"seg", "sr", "ko", "pm", "rtstruct", "phantom", "send", "gateway"} <= names
    assert ("seg", "encode") in COMMANDS and ("gateway", "run") in COMMANDS


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"radbridge {__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "radbridge", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"radbridge {__version__}")


@pytest.mark.parametrize("path", list(COMMANDS), ids=IDS)
def test_help_shows_every_text_literally(path, capsys):
    assert main([*path, "--help"]) == 0
    shown = _flat(capsys.readouterr().out)
    command = COMMANDS[path]
    texts = [command.help or ""] + [p.help or "" for p in command.params if hasattr(p, "help")]
    for text in texts:
        for bracketed in re.findall(r"\[[^\]]*\]", text):
            assert _flat(bracketed) in shown, (bracketed, shown)
        first = _flat(text.split("\n\n")[0])
        assert first in shown, (first, shown)


@pytest.mark.parametrize("path", list(COMMANDS), ids=IDS)
def test_help_has_no_docstring_markup(path, capsys):
    """--help is read in a terminal: no reST roles or double backquotes from a docstring."""
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    assert not re.search(r":(mod|func|class|meth|attr):`|``", shown), shown


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("send",), "TOML file with [peers.NAME] tables."),
        (("seg", "encode"), "NIfTI/NRRD mask, .npy [slice,row,column], or nnU-Net"),
    ],
)
def test_help_texts_the_issue_quoted(path, text, capsys):
    assert main([*path, "--help"]) == 0
    assert text in _flat(capsys.readouterr().out)


@pytest.mark.parametrize("path", list(COMMANDS), ids=IDS)
def test_options_have_help_and_booleans_are_flags(path):
    for param in COMMANDS[path].params:
        if param.param_type_name == "argument":  # named in capitals in the usage line
            assert (param.help or "").strip(), f"{' '.join(path)} {param.name} has no help"
            assert param.metavar and param.metavar.isupper(), f"{param.name}: metavar in capitals"
            continue
        if param.param_type_name != "option" or param.name == "help":
            continue
        assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"
        if param.is_flag and not param.count:
            assert not param.secondary_opts, f"{param.opts} shows --no-... as well"


@pytest.mark.parametrize("path", [p for p in COMMANDS if p not in NO_JSON], ids=str)
def test_json_on_every_reporting_command(path):
    options = {o for p in COMMANDS[path].params for o in getattr(p, "opts", ())}
    assert "--json" in options, f"radbridge {' '.join(path)} has no --json"


def _choices(path: tuple[str, ...], option: str, capsys: Any) -> set[str]:
    """The choices ``radbridge PATH --help`` lists for ``option`` (``--type <a|b|c>``)."""
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    listed = re.search(rf"{option} <([^>]*)>", shown)
    assert listed, f"{option} lists no choices: {shown}"
    return set(listed.group(1).split("|"))


def test_choices_are_listed_and_match_the_library(capsys):
    from radbridge.iods.profiles import Profile
    from radbridge.iods.rtstruct.types import HoleStyle
    from radbridge.iods.sc.render import OverlayStyle
    from radbridge.iods.seg.types import SEG_TRANSFER_SYNTAXES, SegmentationType
    from radbridge.pm import NanPolicy

    types = {t.value.lower() for t in SegmentationType}
    assert _choices(("seg", "encode"), "--type", capsys) == types
    assert _choices(("seg", "encode"), "--compression", capsys) == {
        "none" if s.value == "explicit" else s.value for s in SEG_TRANSFER_SYNTAXES
    }
    for path in [("seg", "encode"), ("pm", "encode"), ("render",)]:
        assert _choices(path, "--profile", capsys) == {p.value for p in Profile}
    assert _choices(("render",), "--style", capsys) == {s.value for s in OverlayStyle}
    assert _choices(("pm", "encode"), "--nan-policy", capsys) == {p.value for p in NanPolicy}
    for path in [("rtstruct", "encode"), ("convert",)]:
        assert _choices(path, "--hole-style", capsys) == {h.value.lower() for h in HoleStyle}
    assert _choices(("query",), "--level", capsys) == {"patient", "study", "series", "image"}
    for path in [("rtstruct", "decode"), ("gsps", "decode")]:
        assert _choices(path, "--overlap", capsys) == {"error", "smallest"}


ENCODE = ["--source", "s", "--mask", "m", "--labels", "l", "-o", "o"]
BAD = [
    (["seg", "encode", *ENCODE, "--type", "foo"], "--type"),
    (["seg", "encode", *ENCODE, "--compression", "zip"], "--compression"),
    (["phantom", "out", "--slices", "0"], "--slices"),
    (["phantom", "out", "--size", "8"], "--size"),
    (["seg", "decode", "x.dcm", "-o", "o.nii.gz", "--threshold", "0"], "--threshold"),
    (["seg", "decode", "x.dcm", "-o", "o", "--per-segment", "--format", "png"], "--format"),
    (["render", "x.dcm", "--source", "s", "-o", "o", "--style", "dotted"], "--style"),
    (["pm", "encode", "--source", "s", "--map", "m", "--units", "1", "-o", "o",
      "--nan-policy", "keep"], "--nan-policy"),
    (["convert", "x.dcm", "--to", "png", "--source", "s", "-o", "o"], "--to"),
    (["rtstruct", "encode", *ENCODE, "--hole-style", "zigzag"], "--hole-style"),
    (["rtstruct", "encode", *ENCODE, "--interpreted-type", "TUMOUR"], "--interpreted-type"),
    (["pm", "encode", "--source", "s", "--map", "m", "--units", "percent", "-o", "o"], "--units"),
    (["query", "A@127.0.0.1:1", "--level", "frame"], "--level"),
    (["gsps", "decode", "x.dcm", "--source", "s", "-o", "o.npy", "--overlap", "largest"],
     "--overlap"),
    (["send", "x", "--to", "A@127.0.0.1:1", "--associations", "0"], "--associations"),
    (["seg", "encode", "--profile", "viewer"], "--profile"),
    (["info", "--no-such-option"], "--no-such-option"),
    (["info"], "PATH"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "option"), BAD, ids=[" ".join(a[:4]) for a, _ in BAD])
def test_usage_errors_exit_2(argv, option, capsys):
    assert main(argv) == 2
    assert option.lower() in capsys.readouterr().err.lower()


def test_shell_completion_completes_commands_and_choices():
    env = {**os.environ, "_RADBRIDGE_COMPLETE": "complete_bash"}
    words = {"COMP_WORDS": "radbridge seg encode --type ", "COMP_CWORD": "4"}
    done = subprocess.run(
        [sys.executable, "-m", "radbridge"], env={**env, **words}, capture_output=True, text=True
    )
    assert set(done.stdout.split()) == {"binary", "fractional", "labelmap"}
    words = {"COMP_WORDS": "radbridge se", "COMP_CWORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "radbridge"], env={**env, **words}, capture_output=True, text=True
    )
    assert set(done.stdout.split()) == {"seg", "send"}


CLI = Path(__file__).resolve().parents[2] / "src" / "radbridge" / "cli"
#: typer.echo left in place: --version (before any option is parsed), the demo's indent,
#: and error lines (shown even with --quiet).
ECHO_ALLOWED = ("radbridge {__version__}", "nl=False", "err=True")


def test_commands_print_through_say_and_emit():
    """Reports go through say() (silenced by --quiet) and emit() (--json), never print."""
    found = []
    for module in sorted(CLI.glob("*.py")):
        if module.name == "output.py":
            continue
        for number, line in enumerate(module.read_text().splitlines(), 1):
            if "typer.echo(" in line and not any(a in line for a in ECHO_ALLOWED):
                found.append(f"{module.name}:{number}: {line.strip()}")
            if line.strip().startswith("print(") and "file=sys.stderr" not in line:
                found.append(f"{module.name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
