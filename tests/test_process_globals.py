"""No process-global change to other libraries from library code (STYLE.md "Avoid").

Settings that belong to the whole process — the level or handlers of a logger,
``pydicom.config``, pynetdicom's ``_config``, warning filters, signal handlers, NumPy's
error and print state — are the application's. radbridge's library code changes none
of them; the ``radbridge`` command (an application) sets logging once at its start
(``radbridge.cli``'s callback: ``radbridge.cli.output.configure`` — levels and one
handler, removed again when ``main()`` returns — and
``radbridge.net.quiet_pynetdicom``) and a long-running command handles SIGTERM and
puts the old handler back. ``ALLOWED`` lists those places; everything else in
``src/radbridge`` is checked by reading its syntax tree, so a new
``logging.getLogger("pynetdicom").setLevel(...)`` in an association (what radbridge
once did on every association) fails this test.

The behaviour is proved against a real peer in tests/net/test_qr.py
(``test_queries_leave_pynetdicom_settings_to_the_application``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Calls that change process-wide state, by the last part of their dotted name
#: (``logging.getLogger(...).setLevel`` -> ``setLevel``).
GLOBAL_CALLS = {
    "setLevel",
    "addHandler",
    "removeHandler",
    "basicConfig",
    "dictConfig",
    "fileConfig",
    "captureWarnings",
    "simplefilter",
    "filterwarnings",
    "resetwarnings",
    "seterr",
    "set_printoptions",
    "setrecursionlimit",
    "setswitchinterval",
    "setdefaulttimeout",
    "debug_logger",
    "quiet_pynetdicom",
    "signal",
}

#: Modules whose attributes are process-wide settings: assigning to one is a change.
SETTINGS_MODULES = {"pydicom.config", "pynetdicom._config", "logging", "numpy", "sys", "warnings"}

#: (module, call) that may change process state: the application's entry point.
ALLOWED = {
    # the radbridge command's logging, set by its root options and undone when main() returns
    ("radbridge.cli.output", "setLevel"),
    ("radbridge.cli.output", "addHandler"),
    ("radbridge.cli.output", "removeHandler"),
    # pydicom's invalid-value warnings quote the value (a name): hidden while the command
    # runs (its log line is redacted instead), the filters put back when main() returns
    ("radbridge.cli.output", "filterwarnings"),
    ("radbridge.cli", "quiet_pynetdicom"),  # likewise pynetdicom's level
    ("radbridge.net.dimse.quiet", "setLevel"),  # quiet_pynetdicom itself (called by the CLI)
    ("radbridge.cli.gateway", "signal"),  # SIGTERM while `radbridge gateway run` runs, restored
    ("radbridge.cli.net", "signal"),  # SIGTERM while `radbridge listen` runs, restored
    # the radbridge command's own process loads three optional modules lazily
    ("radbridge.cli.deferred", "sys.meta_path"),
}

#: Import machinery: a finder or hook added here changes how every later import works.
IMPORT_HOOKS = ("sys.meta_path", "sys.path_hooks")


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func) + "()"
    return "?"


def _scoped(node: ast.With) -> bool:
    """``with warnings.catch_warnings():`` restores the filters it changes."""
    return any(_dotted(item.context_expr).endswith("catch_warnings()") for item in node.items)


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name -> module it stands for
        self.found: set[str] = set()
        self._scoped = 0

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = (
                alias.name if alias.asname else alias.name.split(".")[0]
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_With(self, node: ast.With) -> None:
        self._scoped += _scoped(node)
        self.generic_visit(node)
        self._scoped -= _scoped(node)

    def visit_Call(self, node: ast.Call) -> None:
        dotted = _dotted(node.func)
        root, _, rest = dotted.partition(".")
        hook = f"{self.aliases.get(root, root)}.{rest}".rsplit(".", 1)[0]
        if hook in IMPORT_HOOKS:
            self.found.add(hook)
        name = dotted.rsplit(".", 1)[-1]
        if name in GLOBAL_CALLS and not (self._scoped and name.endswith("filter")):
            self.found.add(name)
        self.generic_visit(node)

    def _target(self, target: ast.expr) -> None:
        if not isinstance(target, ast.Attribute):
            return
        root, _, rest = _dotted(target).partition(".")
        module = f"{self.aliases.get(root, root)}.{rest}"
        if any(module.startswith(f"{settings}.") for settings in SETTINGS_MODULES):
            self.found.add(f"{module} =")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target)
        self.generic_visit(node)


def changes(source: str) -> set[str]:
    """The process-global changes ``source`` makes (call names, ``module.attr =``)."""
    finder = _Finder()
    finder.visit(ast.parse(source))
    return finder.found


def found(root: Path) -> set[tuple[str, str]]:
    out = set()
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        out |= {(module, change) for change in changes(path.read_text(encoding="utf-8"))}
    return out


def test_library_code_changes_no_process_wide_setting():
    assert found(SRC) - ALLOWED == set()


def test_every_allowed_change_still_exists():
    assert ALLOWED - found(SRC) == set()  # remove a line here when its change goes


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # what radbridge once did on every association
        ('import logging\nlogging.getLogger("pynetdicom").setLevel(logging.WARNING)\n', "setLevel"),
        (
            "from pynetdicom import _config\n_config.LOG_REQUEST_IDENTIFIERS = False\n",
            "pynetdicom._config.LOG_REQUEST_IDENTIFIERS =",
        ),
        (
            "import pynetdicom._config as c\nc.LOG_RESPONSE_IDENTIFIERS = False\n",
            "pynetdicom._config.LOG_RESPONSE_IDENTIFIERS =",
        ),
        (
            "from pydicom import config\nconfig.settings.reading_validation_mode = 0\n",
            "pydicom.config.settings.reading_validation_mode =",
        ),
        (
            "import pydicom\npydicom.config.convert_wrong_length_to_UN = True\n",
            "pydicom.config.convert_wrong_length_to_UN =",
        ),
        ("import numpy as np\nnp.seterr(all='ignore')\n", "seterr"),
        ("import warnings\nwarnings.simplefilter('ignore')\n", "simplefilter"),
        ("from radbridge.net import quiet_pynetdicom\nquiet_pynetdicom()\n", "quiet_pynetdicom"),
        ("import sys\nsys.meta_path.insert(0, object())\n", "sys.meta_path"),
        ("import sys as s\ns.path_hooks.append(object())\n", "sys.path_hooks"),
    ],
)
def test_checker_finds_a_deliberate_change(source, expected):
    assert changes(source) == {expected}


def test_checker_lets_scoped_and_local_settings_pass():
    source = (
        "import warnings\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        "options = object()\n"
        "options.level = 3\n"
        "from pydicom import config\n"
        "mode = config.IGNORE\n"
    )
    assert changes(source) == set()


def test_checker_reports_a_module_outside_the_entry_point(tmp_path):
    package = tmp_path / "radbridge" / "net" / "dimse"
    package.mkdir(parents=True)
    (package / "scu.py").write_text(
        'import logging\n\ndef send():\n    logging.getLogger("pynetdicom").setLevel(30)\n'
    )
    assert found(tmp_path) - ALLOWED == {("radbridge.net.dimse.scu", "setLevel")}
