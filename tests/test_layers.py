"""DESIGN.md's import rules, checked over src/radbridge.

Every ``import`` counts: at module level, inside functions (lazy imports), under
``if TYPE_CHECKING:`` and ``importlib.import_module("radbridge....")`` with a literal
name. The rules:

1. **Layers point down.** Each module belongs to one layer (``PLACES``; a module that
   is not placed fails the test, so a new top-level module is placed deliberately).
   A module imports its own layer or layers below it.
2. **Families side by side.** Inside ``radbridge.iods`` a family (``FAMILIES``) imports
   only itself and the shared layer (any ``radbridge.iods`` module of the iods layer
   outside a family); the shared layer imports no family. Conversions between two
   families (``radbridge.iods.convert``) form their own layer above the families.
3. **No private names across modules.** ``from radbridge.x import _y`` (and ``m._y``
   on an imported radbridge module) only inside ``radbridge.x`` itself.
4. **No private module from outside its package.** ``radbridge.a._b`` is imported only
   by modules under ``radbridge.a``.
5. **Families through their faces.** Above the faces (io, net, results, batch, gateway,
   cli) a module reaches an object family, or the conversions between two, only
   through its face (``radbridge.seg``, ...); the shared iods layer stays reachable.
   Likewise above the networking layer (results, batch, gateway, cli and the top
   level) a module reaches networking only through ``radbridge.net``, never a module
   behind it nor the old ``radbridge.config``.
6. **Readers without writers.** Inside ``radbridge.iods`` a reader module (its name
   has ``reader``) never imports a writer module (``writer``): the types both need
   live in the family's ``types`` module or the shared layer.

Violations that exist today are listed in ``ALLOWED`` with why; the list may only
shrink: the test also fails when a listed violation no longer exists, so the list
stays true. Whoever removes a violation removes its line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layers from the bottom up (DESIGN.md "Layers"); a module imports its layer or lower.
LAYERS = (
    "core",
    "pixels",
    "geometry",
    "models",
    "iods",
    "convert",
    "faces",
    "io",
    "net",
    "results",
    "batch",
    "gateway",
    "cli",
    "entry",
)

#: Module (or package prefix) -> layer; the longest matching prefix wins.
PLACES = {
    # entry points: the lazy top-level surface and `python -m radbridge`
    "radbridge": "entry",
    "radbridge.__main__": "entry",
    "radbridge.cli": "cli",
    "radbridge.gateway": "gateway",
    "radbridge.batch": "batch",
    "radbridge.results": "results",
    "radbridge.net": "net",
    # the old home of the peer table (now radbridge.net.peers): a deprecated alias
    "radbridge.config": "net",
    "radbridge.io": "io",
    "radbridge.iods": "iods",
    # conversions between two families (SEG <-> RTSTRUCT) sit above both: DESIGN.md has
    # no place for them, and a family may not import another
    "radbridge.iods.convert": "convert",
    # the old home of KOS, now in the SR family: a re-export kept for old imports
    "radbridge.iods.ko": "faces",
    # one public face per family: thin re-exports above the implementation in iods/
    # (a family cannot reach another through its face)
    "radbridge.ko": "faces",
    "radbridge.legacy": "faces",
    "radbridge.pm": "faces",
    "radbridge.pr": "faces",
    "radbridge.rtstruct": "faces",
    "radbridge.sc": "faces",
    "radbridge.seg": "faces",
    "radbridge.sr": "faces",
    "radbridge.wsi": "faces",
    "radbridge.ann": "faces",
    "radbridge.models": "models",
    "radbridge.geometry": "geometry",
    "radbridge.pixels": "pixels",
    # core: no radbridge imports but core ones
    "radbridge._lazy": "core",
    "radbridge._optional": "core",
    "radbridge._version": "core",
    "radbridge.attributes": "core",
    "radbridge.codes": "core",
    "radbridge.coding": "core",
    "radbridge.color": "core",
    "radbridge.data": "core",
    "radbridge.dicom_tables": "core",
    "radbridge.errors": "core",
    "radbridge.schema": "core",
    "radbridge.ucum": "core",
    "radbridge.uids": "core",
    "radbridge.readahead": "core",
}

#: Object families inside radbridge.iods (later: pr, ann, wsi, legacy); KOS is part of sr.
FAMILIES = ("seg", "pm", "sr", "rtstruct", "sc", "pr", "ann", "wsi", "legacy")

#: Today's violations: (rule, importer, imported). Only ever remove lines.
#: (iods: none left after part A of issue 16; gateway, batch, CLI: none after part C)
ALLOWED: set[tuple[str, str, str]] = set()


@dataclass(frozen=True, order=True)
class Import:
    """One import of a radbridge module (or of a name from one) by a radbridge module."""

    importer: str
    module: str
    name: str | None  # the imported name when it is not itself a module
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


class _Collector(ast.NodeVisitor):
    def __init__(self, importer: str, is_package: bool, root: Path) -> None:
        self.importer, self.is_package, self.root = importer, is_package, root
        self.imports: list[Import] = []
        self.module_aliases: dict[str, str] = {}  # local name -> radbridge module

    def _add(self, module: str, name: str | None, line: int) -> None:
        if module == "radbridge" or module.startswith("radbridge."):
            self.imports.append(Import(self.importer, module, name, line))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, None, node.lineno)
            if alias.asname and alias.name.startswith("radbridge"):
                self.module_aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = _absolute(node, self.importer, self.is_package)
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if _is_module(full, self.root):
                self._add(full, None, node.lineno)
                self.module_aliases[alias.asname or alias.name] = full
            else:
                self._add(module, alias.name, node.lineno)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
            value = node.args[0].value
            if isinstance(value, str):
                self._add(value, None, node.lineno)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.module_aliases:
            self._add(self.module_aliases[node.value.id], node.attr, node.lineno)
        self.generic_visit(node)


def collect(root: Path) -> list[Import]:
    """Every import of a radbridge module by a module under ``root``/radbridge."""
    found: list[Import] = []
    for path in sorted((root / "radbridge").rglob("*.py")):
        name = module_name(path, root)
        collector = _Collector(name, path.name == "__init__.py", root)
        collector.visit(ast.parse(path.read_text(), str(path)))
        found += collector.imports
    return found


def layer_of(module: str) -> str:
    if module == "radbridge":
        return PLACES[module]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):  # the root package places only itself
        place = PLACES.get(".".join(parts[:end]))
        if place is not None:
            return place
    raise KeyError(module)


def family_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["radbridge", "iods"] or layer_of(module) != "iods":
        return None
    if len(parts) > 2 and parts[2] in FAMILIES:
        return parts[2]
    return "shared"


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def _within(importer: str, package: str) -> bool:
    return importer == package or importer.startswith(package + ".")


def check(imports: list[Import]) -> set[tuple[str, str, str]]:
    """Return the violations: ``(rule, importer, imported module or module.name)``."""
    out: set[tuple[str, str, str]] = set()
    for imp in imports:
        low, high = LAYERS.index(layer_of(imp.module)), LAYERS.index(layer_of(imp.importer))
        if low > high:
            out.add(("layer", imp.importer, imp.module))
        mine, theirs = family_of(imp.importer), family_of(imp.module)
        if mine is not None and theirs not in (None, "shared", mine):
            out.add(("family", imp.importer, imp.module))
        if imp.name is not None and _private(imp.name) and imp.module != imp.importer:
            out.add(("private-name", imp.importer, f"{imp.module}.{imp.name}"))
        if high > LAYERS.index("faces") and (
            theirs not in (None, "shared") or layer_of(imp.module) == "convert"
        ):
            out.add(("face", imp.importer, imp.module))
        if high > LAYERS.index("net") and _behind_the_net_face(imp.module):
            out.add(("face", imp.importer, imp.module))
        if _reader_importing_a_writer(imp):
            out.add(("reader-writer", imp.importer, imp.module))
        parts = imp.module.split(".")
        for index, part in enumerate(parts):
            if _private(part) and not _within(imp.importer, ".".join(parts[:index])):
                out.add(("private-module", imp.importer, imp.module))
    return out


def _reader_importing_a_writer(imp: Import) -> bool:
    importer, imported = imp.importer.split("."), imp.module.split(".")
    return (
        imp.importer.startswith("radbridge.iods.")
        and "reader" in importer[-1]
        and "writer" in imported[-1]
    )


def _behind_the_net_face(module: str) -> bool:
    return module.startswith("radbridge.net.") or module == "radbridge.config"


def unplaced(root: Path) -> list[str]:
    """Modules under ``root`` that no entry of :data:`PLACES` covers."""
    missing = []
    for path in sorted((root / "radbridge").rglob("*.py")):
        name = module_name(path, root)
        try:
            layer_of(name)
        except KeyError:
            missing.append(name)
    return missing


def test_every_module_is_placed_in_a_layer():
    assert unplaced(SRC) == [], "add these modules to PLACES (deliberately)"


def test_imports_follow_the_layers():
    found = check(collect(SRC))
    new = sorted(found - ALLOWED)
    gone = sorted(ALLOWED - found)
    assert not new, "imports that break DESIGN.md's rules:\n" + "\n".join(map(str, new))
    assert not gone, (
        "these allowed violations no longer exist; remove them from ALLOWED:\n"
        + "\n".join(map(str, gone))
    )


# -- the checker itself, on synthetic sources ------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.parents:  # every folder a package
            if parent == tmp_path:
                break
            (parent / "__init__.py").touch()
    return tmp_path


_CLEAN = {
    "radbridge/errors.py": "class RadbridgeError(Exception): ...\n",
    "radbridge/geometry/volume.py": "from radbridge.errors import RadbridgeError\n",
    "radbridge/iods/multiframe/groups.py": "from radbridge.geometry import volume\n",
    "radbridge/iods/seg/writer.py": (
        "from radbridge.iods.multiframe import groups\n"
        "from radbridge.iods.seg.frames import plan\n"
        "def _local(): ...\n"
    ),
    "radbridge/iods/seg/frames.py": "def plan(): ...\n",
    "radbridge/iods/pm/writer.py": "from .. import multiframe\n",
    "radbridge/pixels/_pool.py": "def run(): ...\n",
    "radbridge/pixels/reader.py": "from radbridge.pixels._pool import run\n",
    "radbridge/cli/seg.py": "def main():\n    from radbridge.seg import encode\n",
    "radbridge/seg.py": "from radbridge.iods.seg.writer import encode\n",
    "radbridge/iods/convert.py": "from radbridge.iods.seg import frames\nfrom .pm import writer\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    root = _tree(tmp_path, _CLEAN)
    assert unplaced(root) == []
    assert check(collect(root)) == set()


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (  # upward, lazily inside a function
            "radbridge/geometry/volume.py",
            "def f():\n    from radbridge.iods.seg import writer\n",
            ("layer", "radbridge.geometry.volume", "radbridge.iods.seg.writer"),
        ),
        (  # upward, type-only
            "radbridge/pixels/reader.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import radbridge.cli.seg\n",
            ("layer", "radbridge.pixels.reader", "radbridge.cli.seg"),
        ),
        (  # upward, by importlib
            "radbridge/iods/seg/frames.py",
            "import importlib\nimportlib.import_module('radbridge.cli.seg')\n",
            ("layer", "radbridge.iods.seg.frames", "radbridge.cli.seg"),
        ),
        (  # one family importing another (relative import)
            "radbridge/iods/pm/writer.py",
            "from ..seg.frames import plan\n",
            ("family", "radbridge.iods.pm.writer", "radbridge.iods.seg.frames"),
        ),
        (  # a family importing the conversions above it
            "radbridge/iods/seg/frames.py",
            "from radbridge.iods.convert import seg_to_pm\n",
            ("layer", "radbridge.iods.seg.frames", "radbridge.iods.convert"),
        ),
        (  # the shared layer importing a family
            "radbridge/iods/multiframe/groups.py",
            "from radbridge.iods.seg import frames\n",
            ("family", "radbridge.iods.multiframe.groups", "radbridge.iods.seg.frames"),
        ),
        (  # a private name from another module
            "radbridge/iods/pm/writer.py",
            "from radbridge.iods.multiframe.groups import _shared\n",
            (
                "private-name",
                "radbridge.iods.pm.writer",
                "radbridge.iods.multiframe.groups._shared",
            ),
        ),
        (  # a private name through a module alias
            "radbridge/iods/seg/writer.py",
            "from radbridge.iods.seg import frames as f\nf._helper()\n",
            ("private-name", "radbridge.iods.seg.writer", "radbridge.iods.seg.frames._helper"),
        ),
        (  # a reader importing its writer (for a type it should find in types.py)
            "radbridge/iods/seg/reader.py",
            "from radbridge.iods.seg.writer import encode_segmentation\n",
            ("reader-writer", "radbridge.iods.seg.reader", "radbridge.iods.seg.writer"),
        ),
        (  # the gateway reaching behind the networking face
            "radbridge/gateway/service.py",
            "from radbridge.net.dimse.scp import StorageSCP\n",
            ("face", "radbridge.gateway.service", "radbridge.net.dimse.scp"),
        ),
        (  # the CLI reaching behind a face
            "radbridge/cli/seg.py",
            "from radbridge.iods.seg.frames import plan\n",
            ("face", "radbridge.cli.seg", "radbridge.iods.seg.frames"),
        ),
        (  # a private module from outside its package
            "radbridge/iods/seg/frames.py",
            "from radbridge.pixels._pool import run\n",
            ("private-module", "radbridge.iods.seg.frames", "radbridge.pixels._pool"),
        ),
    ],
)
def test_checker_finds_a_deliberate_violation(tmp_path, module, source, expected):
    root = _tree(tmp_path, {**_CLEAN, module: _CLEAN.get(module, "") + source})
    assert check(collect(root)) == {expected}


def test_checker_refuses_an_unplaced_module(tmp_path):
    root = _tree(tmp_path, {**_CLEAN, "radbridge/newthing.py": "x = 1\n"})
    assert unplaced(root) == ["radbridge.newthing"]
