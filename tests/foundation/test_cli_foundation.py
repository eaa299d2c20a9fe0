"""`radbridge phantom`, `info` and `demo` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from radbridge.cli import main
from radbridge.io.phantom import generate_phantom


def test_phantom_then_info_json_contract(tmp_path, capsys):
    assert main(["phantom", str(tmp_path), "--slices", "6", "--size", "32", "--seed", "5"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "dicom"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["info_version"] == 1
    (study,) = info["studies"]
    (series,) = study["series"]
    assert (series["modality"], series["instance_count"]) == ("CT", 6)
    volume = series["volume"]
    assert volume["index_order"] == ["slice", "row", "column"] and volume["coordinates"] == "LPS"
    ph = generate_phantom(slices=6, size=32, seed=5)
    np.testing.assert_allclose(np.array(volume["affine"]), ph.hu.affine, atol=1e-4)
    truth = json.loads((tmp_path / "phantom.json").read_text())
    assert volume["sop_instance_uids"] == truth["sop_instance_uids"]
    assert "RB-PHANTOM" not in json.dumps(info)  # no patient identifiers


def test_info_human_output_and_errors(tmp_path, capsys, interop):
    assert main(["info", str(interop / "images" / "pydicom_CT2")]) == 0
    out = capsys.readouterr().out
    assert "no volume" in out and "not uniform" in out
    assert main(["info", str(interop / "images" / "pydicom_CT2"), "--allow-nonuniform"]) == 0
    assert "4x16x16" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "missing")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_usage_error_exit_code(capsys):
    assert main(["info"]) == 2


def test_console_script_and_module_entry_points(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "radbridge",
            "demo",
            "--workdir",
            str(tmp_path),
            "--slices",
            "12",
            "--size",
            "64",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "12x64x64" in result.stdout
    assert "12 instances acknowledged" in result.stdout
    assert "jobs: done 1" in result.stdout
    (seg_line,) = [line for line in result.stdout.splitlines() if line.strip().startswith("SEG")]
    assert Path(seg_line.split()[-1]).is_file()
    assert {"SEG", "SR", "KO"} <= {
        line.split()[0]
        for line in result.stdout.splitlines()
        if line.startswith("   ") and line.split()
    }
    assert (tmp_path / "snapshot" / "montage.png").is_file()
