"""Every example in docs/*.md runs as written (README.md's tour: tests/test_readme_tour.py).

Each document's code blocks run in order in a fresh folder, like a reader pasting them:

- ```` ```python ```` blocks are executed in one namespace per document;
- ```` ```bash ```` blocks run each ``radbridge ...`` command through the CLI's
  ``main(argv)`` (``\\`` continues a line, ``#`` starts a comment) and must exit 0;
- a block after ``<!-- docs-test: file NAME -->`` is written to the file NAME (a JSON
  report, a manifest) for the blocks after it;
- a block after ``<!-- docs-test: skip REASON -->`` is not run (it starts a server,
  needs a PACS or a cluster, installs packages); the reason is required.

Blocks in other languages (plain ```` ``` ```` synopses with ``[options]``, JSON
schemas, TOML) are reference, not examples. A bash block holding anything but
``radbridge`` commands must say why it is skipped.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from radbridge.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted((ROOT / "docs").glob("*.md"))
_BLOCK = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<directive>\w+)\s*(?P<argument>[^>]*?)\s*-->\s*\n)?"
    r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$",
    re.S | re.M,
)


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    lang: str
    body: str
    directive: str | None
    argument: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line} ({self.lang or 'plain'})"


def blocks(document: Path) -> list[Block]:
    text = document.read_text()
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("lang")) + 1
        found.append(
            Block(
                document,
                line,
                match["lang"],
                match["body"],
                match["directive"],
                (match["argument"] or "").strip(),
            )
        )
    return found


def commands(body: str) -> Iterator[str]:
    """Shell lines of a block: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    for line in joined.splitlines():
        command = line.split(" #", 1)[0].strip()
        if command and not command.startswith("#"):
            yield command


def _run_shell(block: Block) -> None:
    for command in commands(block.body):
        argv = shlex.split(command)
        assert argv[0] == "radbridge", f"{block}: only radbridge commands run here: {command}"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv[1:])
        assert code == 0, f"{block}: `{command}` exited {code}: {err.getvalue()[-2000:]}"


def run_python(block: Block, namespace: dict[str, object]) -> None:
    """Execute a python block in ``namespace`` (shared by the blocks of one document)."""
    # dont_inherit: this module's `from __future__ import annotations` must not leak into
    # the examples (a reader pasting them has not imported it; dataclasses would break)
    code = compile(block.body, str(block), "exec", dont_inherit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(code, namespace)


def _run(document: Path, folder: Path) -> int:
    namespace: dict[str, object] = {"__name__": f"docs_{document.stem}"}
    ran = 0
    for block in blocks(document):
        if block.directive == "skip":
            continue
        if block.directive == "file":
            (folder / block.argument).write_text(block.body)
            continue
        if block.lang == "python":
            run_python(block, namespace)
            ran += 1
        elif block.lang in ("bash", "sh", "shell", "console"):
            _run_shell(block)
            ran += 1
    return ran


def test_every_block_is_run_or_says_why_not():
    problems = []
    for document in DOCUMENTS:
        for block in blocks(document):
            if block.directive is not None and block.directive not in ("skip", "file"):
                problems.append(f"{block}: unknown directive {block.directive!r}")
            elif block.directive == "skip" and len(block.argument) < 10:
                problems.append(f"{block}: a skipped block needs its reason")
            elif block.directive == "file" and not block.argument:
                problems.append(f"{block}: a file block needs its name")
            elif block.lang in ("bash", "sh", "shell") and block.directive is None:
                others = [c for c in commands(block.body) if not c.startswith("radbridge ")]
                if others:
                    problems.append(f"{block}: not a radbridge command: {others[0]!r}")
                if any(re.search(r"\[--|\w\|\w", c) for c in commands(block.body)):
                    problems.append(
                        f"{block}: a synopsis ([--option], a|b) belongs in a plain block"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_examples_run_as_written(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    ran = _run(document, tmp_path)
    expected = sum(
        1
        for b in blocks(document)
        if b.directive is None and b.lang in ("python", "bash", "sh", "shell", "console")
    )
    assert ran == expected
    assert os.getcwd() == str(tmp_path)
