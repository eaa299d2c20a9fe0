"""`radbridge pm encode|decode` through the real entry point."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from radbridge.cli import main
from radbridge.geometry import Volume
from radbridge.io.nifti import read_image, volume_to_nifti
from tests.peers import dciodvfy

from .conftest import probability


@pytest.mark.peer
def test_encode_nifti_then_decode(study, tmp_path, capsys):
    values = probability(study.source.geometry.shape, seed=8)
    geometry = study.source.geometry
    nib.save(volume_to_nifti(Volume(values, geometry.affine)), tmp_path / "map.nii.gz")
    out = tmp_path / "pm.dcm"
    code = main(
        [
            "pm",
            "encode",
            "--source",
            str(study.folder),
            "--map",
            str(tmp_path / "map.nii.gz"),
            "--units",
            "{probability}",
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "Parametric Map" in capsys.readouterr().out
    assert dciodvfy(out).ok
    ds = pydicom.dcmread(out)
    item = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert item.MeasurementUnitsCodeSequence[0].CodeValue == "{probability}"
    for name in ("back.npy", "back.nii.gz"):
        code = main(
            ["pm", "decode", str(out), "--source", str(study.folder), "-o", str(tmp_path / name)]
        )
        assert code == 0, capsys.readouterr().err
    assert np.array_equal(np.load(tmp_path / "back.npy"), values)
    back = read_image(tmp_path / "back.nii.gz")
    assert np.allclose(back.affine, geometry.affine, atol=1e-4)
    assert np.array_equal(back.array, values)


def test_bad_units_and_nan_give_clear_errors(study, tmp_path, capsys):
    values = probability(study.source.geometry.shape)
    np.save(tmp_path / "map.npy", values)
    args = ["pm", "encode", "--source", str(study.folder), "--map", str(tmp_path / "map.npy")]
    assert main([*args, "--units", "percent", "-o", str(tmp_path / "a.dcm")]) == 2  # a bad value
    err = capsys.readouterr().err
    assert "--units" in err and "UCUM" in err
    values[0, 0, 0] = np.nan
    np.save(tmp_path / "map.npy", values)
    assert main([*args, "--units", "1", "-o", str(tmp_path / "b.dcm")]) == 1
    assert "nan_policy" in capsys.readouterr().err
    assert (
        main([*args, "--units", "1", "--nan-policy", "padding", "-o", str(tmp_path / "c.dcm")]) == 0
    )
    assert (
        main([*args, "--units", "1", "--quantity", "nonsense", "-o", str(tmp_path / "d.dcm")]) == 2
    )
    assert "SCHEME:VALUE:MEANING" in capsys.readouterr().err
    assert not (tmp_path / "a.dcm").exists() and not (tmp_path / "b.dcm").exists()
