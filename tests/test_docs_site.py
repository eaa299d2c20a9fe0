"""The documentation site builds in strict mode and documents every public name.

``mkdocs build --strict`` fails on a broken link, a page left out of the navigation or
a reference mkdocstrings cannot resolve; each face's API page must carry an anchor for
every class and function the face exports (pinned in ``tests/test_faces.py``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_faces import FACES

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_every_guide_is_in_the_site(site: Path) -> None:
    for page in (ROOT / "docs").glob("*.md"):
        name = "" if page.stem == "index" else page.stem
        assert (site / name / "index.html").is_file(), page.name


@pytest.mark.parametrize("face", sorted(FACES))
def test_api_page_documents_every_class_and_function(site: Path, face: str) -> None:
    page = site / "api" / face.split(".")[-1] / "index.html"
    assert page.is_file(), f"add docs/api/{face.split('.')[-1]}.md and list it in mkdocs.yml"
    html = page.read_text()
    module = importlib.import_module(face)
    documented = [
        name
        for name in FACES[face]
        if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
    ]
    assert documented
    missing = [name for name in documented if f'id="{face}.{name}"' not in html]
    assert not missing, f"{face}: no API entry for {missing}"
