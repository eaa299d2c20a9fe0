"""Small functions: at most 60 lines of code and no block above radon grade C.

Lines of code are the lines of a function's body that are neither blank, nor only a
comment, nor its docstring. Complexity is radon's cyclomatic complexity (grade C is
11-20). Functions above either limit today are listed in ``ALLOWED``, which may only
shrink: the test fails when a listed function is back within the limits, so the list
stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

from radon.complexity import cc_visit

SRC = Path(__file__).resolve().parents[1] / "src" / "radbridge"
MAX_LINES = 60
MAX_COMPLEXITY = 20  # radon grade C

#: (file relative to src/radbridge, function): exceptions, none today. Only ever remove lines.
ALLOWED: set[tuple[str, str]] = set()


def lines_of_code(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> int:
    body = node.body
    first = body[0]
    docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    if docstring and len(body) == 1:
        return 0
    start = body[1].lineno if docstring else first.lineno
    code = lines[start - 1 : node.end_lineno]
    return sum(1 for line in code if line.strip() and not line.strip().startswith("#"))


def too_long(text: str) -> dict[str, int]:
    lines = text.splitlines()
    return {
        node.name: n
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n := lines_of_code(node, lines)) > MAX_LINES
    }


def too_complex(text: str) -> dict[str, int]:
    found = {}
    for block in cc_visit(text):
        for item in [block, *getattr(block, "methods", [])]:
            if item.complexity > MAX_COMPLEXITY:
                found[item.name] = item.complexity
    return found


def test_functions_are_short_and_simple():
    found: dict[tuple[str, str], str] = {}
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        name = str(path.relative_to(SRC))
        for function, n in too_long(text).items():
            found[(name, function)] = f"{n} lines of code"
        for function, n in too_complex(text).items():
            found[(name, function)] = f"complexity {n}"
    new = {key: why for key, why in found.items() if key not in ALLOWED}
    assert not new, "split these functions:\n" + "\n".join(f"{k}: {v}" for k, v in new.items())
    gone = ALLOWED - set(found)
    assert not gone, f"within the limits now; remove them from ALLOWED: {sorted(gone)}"


def test_the_checks_see_a_long_and_a_complex_function():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES + 1))
    long = f'def f():\n    """Doc."""\n\n    # a comment\n{body}'
    assert too_long(long) == {"f": MAX_LINES + 1}
    assert too_long(long.replace(f"    x{MAX_LINES} = {MAX_LINES}\n", "")) == {}
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(MAX_COMPLEXITY))
    assert too_complex(f"def g(x):\n{branches}    return -1\n") == {"g": MAX_COMPLEXITY + 1}
