"""A file the command cannot write or read is one `error:` line naming it, exit 1."""

from __future__ import annotations

import pytest

from radbridge.cli import main


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from radbridge.io.phantom import write_phantom

    root = tmp_path_factory.mktemp("study")
    write_phantom(root, slices=4, size=16, seed=0)
    return root


def test_output_that_is_a_folder(study, tmp_path, capsys):
    """`-o results/` where results is a folder: before, an IsADirectoryError traceback."""
    folder = tmp_path / "results"
    folder.mkdir()
    seg = [
        "seg",
        "encode",
        "--source",
        str(study / "dicom"),
        "--mask",
        str(study / "labels.npy"),
        "--labels",
        str(study / "labels.json"),
    ]
    assert main([*seg, "-o", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder}: Is a directory") and "Traceback" not in err
    assert main([*seg, "-o", str(tmp_path / "seg.dcm")]) == 0
    capsys.readouterr()
    decode = ["seg", "decode", str(tmp_path / "seg.dcm"), "-o", str(folder)]
    assert main([*decode]) == 1
    assert capsys.readouterr().err.startswith(f"error: {folder}")
