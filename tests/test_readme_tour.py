"""README.md's tour runs top to bottom as written, in a real shell, with a real Orthanc.

Its blocks run in order in an empty folder, as a reader pasting them would: ``bash``
blocks through ``bash -e`` with the installed ``radbridge`` on PATH (a real process,
so pipes, here-documents and variables work as written), ``python`` blocks in one
namespace. The PACS is a real Orthanc started by the fixture; the tour reaches it
through ``PACS_PORT`` (the tour's default is 4242). The tour creates every file it
uses: the README holds no ``docs-test: file`` block, and a command reading a file the
tour never wrote fails the test. Skipped blocks are only the two set-up commands and
servers that run until stopped, each saying why.

Also: the README starts with exactly the two set-up commands, and links only to files
inside the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.test_docs_examples import blocks, run_python

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SETUP = [
    "bash scripts/dev.sh demo    # installs everything (system packages too), then runs the demo",
    "bash scripts/dev.sh test    # installs everything, then runs the full test suite "
    "(what CI runs)",
]


def test_readme_starts_with_exactly_the_two_setup_commands():
    text = README.read_text()
    first = blocks(README)[0]
    assert first.lang == "bash" and first.body.splitlines() == SETUP
    before = text[: text.index("```bash")]
    assert [line for line in before.splitlines() if line.strip()] == [
        "# radbridge",
        "<!-- docs-test: skip installs system packages and a virtual environment, then runs "
        "the suite -->",
    ]


def test_readme_links_only_to_files_inside_the_repository():
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    assert links, "the README links its guides"
    for link in links:
        assert "://" not in link and not link.startswith(("/", "mailto:")), link
        target = (ROOT / link.split("#", 1)[0]).resolve()
        assert target.is_relative_to(ROOT), f"{link} leaves the repository"
        assert target.exists(), f"{link}: no such file in the repository"


def test_the_tour_creates_every_file_it_uses():
    directives = [b.directive for b in blocks(README)]
    assert "file" not in directives  # no file the reader would have to write by hand
    skipped = [b for b in blocks(README) if b.directive == "skip"]
    for block in skipped[1:]:  # after the set-up: only servers that run until stopped
        assert "until" in block.argument and block.lang == "bash", block


def _bin() -> str:
    return str(Path(sys.executable).parent)


@pytest.mark.slow  # a full-size phantom (100 x 512 x 512) and a real Orthanc
@pytest.mark.peer
def test_readme_tour_runs_top_to_bottom(orthanc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        **os.environ,
        "PATH": _bin() + os.pathsep + os.environ.get("PATH", ""),
        "PACS_PORT": str(orthanc.dicom_port),
        "HOME": str(tmp_path),
    }
    namespace: dict[str, object] = {"__name__": "readme_tour"}
    ran = 0
    for block in blocks(README):
        if block.directive == "skip":
            continue
        if block.lang == "python":
            run_python(block, namespace)
        elif block.lang == "bash":
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block.body],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"{block}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        else:
            continue
        ran += 1
    assert ran >= 8
    # what the tour did is there: its files, and the study in the PACS
    for made in ["out/truth.seg.dcm", "out/sr.dcm", "out/ko.dcm", "ct.nii.gz", "report.json"]:
        assert (tmp_path / made).is_file(), made
    study = pydicom.dcmread(tmp_path / "out" / "sr.dcm").StudyInstanceUID
    assert orthanc.post("/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study}})
