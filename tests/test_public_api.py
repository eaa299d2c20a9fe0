"""The public surface: every exported name resolves; importing stays light."""

from __future__ import annotations

import subprocess
import sys

import radbridge


def test_every_exported_name_resolves():
    for name in radbridge.__all__:
        assert getattr(radbridge, name) is not None, name


def test_exports_match_the_lazy_table():
    names = [n for n in radbridge.__all__ if n != "__version__"]
    assert sorted(names) == sorted(radbridge._EXPORTS)
    assert len(set(names)) == len(names)


def test_import_and_cli_help_do_not_load_heavy_modules():
    code = (
        "import sys, radbridge.cli\n"
        "heavy = [m for m in ('scipy', 'pynetdicom', 'highdicom', 'nibabel', 'SimpleITK')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert (
        subprocess.run(
            [sys.executable, "-m", "radbridge", "--help"], capture_output=True, check=False
        ).returncode
        == 0
    )
