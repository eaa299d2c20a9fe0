"""--allow-nonuniform on every command that reads a source series.

An unevenly spaced series (a slice missing, or a planning CT with finer slices in the
target region) is refused by default, and the error says to pass --allow-nonuniform.
Only `radbridge info` had that option, so following the hint was a usage error.
Oracle for the SEG written with it: highdicom finds each source slice's frame.
"""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pytest

from radbridge.cli import main
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series_datasets
from tests.cli.test_conventions import COMMANDS

#: Commands whose --source is a slide (no slice spacing), or that accept any spacing.
_SLIDES_OR_ANY = {("ann", "encode"), ("wsi", "seg", "encode"), ("legacy", "encode")}


def test_every_command_reading_a_series_takes_the_option():
    reading = {
        path
        for path, command in COMMANDS.items()
        if "--source" in {o for p in command.params for o in getattr(p, "opts", [])}
    }
    assert {("seg", "encode"), ("rtstruct", "decode"), ("render",)} <= reading
    lacking = [
        " ".join(path)
        for path in sorted(reading - _SLIDES_OR_ANY)
        if "--allow-nonuniform"
        not in {o for p in COMMANDS[path].params for o in getattr(p, "opts", [])}
    ]
    assert lacking == []


@pytest.fixture
def uneven(tmp_path):
    """A CT series of 8 slices with the 4th removed."""
    study = write_phantom(tmp_path / "ct", slices=8, size=32, nifti=False)
    files = sorted(study.dicom_dir.glob("*.dcm"))
    ordered = sorted(files, key=lambda f: float(_header(f).ImagePositionPatient[2]))
    ordered[3].unlink()
    return study.dicom_dir


def _header(path):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def test_seg_encode_follows_the_hint_and_keeps_each_slice(uneven, tmp_path, capsys):
    mask = np.zeros((7, 32, 32), np.uint8)
    mask[:, 10:20, 10:20] = 1
    mask[2, 12:14, 12:14] = 0  # each slice its own pattern, to see frames land right
    mask[5, 18:20, 18:20] = 0
    np.save(tmp_path / "m.npy", mask)
    labels = tmp_path / "l.json"
    labels.write_text(json.dumps({"1": "liver"}))
    argv = ["seg", "encode", "--source", str(uneven), "--mask", str(tmp_path / "m.npy")]
    argv += ["--labels", str(labels), "-o", str(tmp_path / "seg.dcm")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "slice spacing is not uniform" in err and "--allow-nonuniform" in err
    assert main([*argv, "--allow-nonuniform"]) == 0
    images = read_series_datasets(uneven)
    images.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    for k, ds in enumerate(images):
        (frame,) = seg.get_pixels_by_source_instance([ds.SOPInstanceUID], segment_numbers=[1])
        np.testing.assert_array_equal(frame[..., 0], mask[k])
