"""`radbridge render SEG --source DIR -o OUT` through the real entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from radbridge.cli import main
from radbridge.iods.sc.render import BANNER_FOREGROUND
from radbridge.iods.seg import encode_segmentation, read_segmentation


@pytest.fixture
def seg_file(study, tmp_path):
    names = {1: "body", 2: "lung_left", 3: "lung_right", 4: "bone", 5: "liver"}
    ds = encode_segmentation(study.labels, study.source, names)
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.peer
def test_render_writes_a_montage_and_an_sc(study, seg_file, tmp_path, capsys):
    from tests.peers import dciodvfy

    out = tmp_path / "out"
    code = main(
        [
            "render",
            str(seg_file),
            "--source",
            str(study.folder),
            "-o",
            str(out),
            "--count",
            "3",
            "--sc",
        ]
    )
    assert code == 0, capsys.readouterr().err
    png = np.asarray(Image.open(out / "montage.png").convert("RGB"))
    colours = {
        d.display_rgb for d in read_segmentation(seg_file).segments.values() if d.display_rgb
    }
    assert colours
    seen = {tuple(int(v) for v in p) for p in png.reshape(-1, 3)}
    assert colours <= seen, "every segment colour appears in the montage"
    assert (png == BANNER_FOREGROUND).all(axis=-1).any()
    assert dciodvfy(out / "overlay.dcm").ok
    printed = capsys.readouterr().out
    shown = json.loads(printed.split("slices ")[1].splitlines()[0])
    area = (study.labels > 0).sum(axis=(1, 2))
    assert sorted(area[[k - 1 for k in shown]]) == sorted(area)[-3:]


def test_render_bad_window(study, seg_file, tmp_path, capsys):
    code = main(
        [
            "render",
            str(seg_file),
            "--source",
            str(study.folder),
            "-o",
            str(tmp_path),
            "--window",
            "wide",
        ]
    )
    assert code == 2  # a bad option value is a usage error
    assert "--window" in capsys.readouterr().err


def test_render_uses_the_window_the_images_recommend(study, seg_file, tmp_path):
    import pydicom

    from tests.render.window_oracle import assert_grey_follows_window

    first = pydicom.dcmread(next(study.folder.glob("*.dcm")), stop_before_pixels=True)
    window = (float(first.WindowCenter), float(first.WindowWidth))
    out = tmp_path / "out"
    argv = ["render", str(seg_file), "--source", str(study.folder), "-o", str(out), "--sc"]
    assert main(argv) == 0
    frames = pydicom.dcmread(out / "overlay.dcm").pixel_array
    assert_grey_follows_window(frames, study.volume, np.asarray(study.labels), window)
