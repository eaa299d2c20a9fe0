"""Parametric Maps a new user writes with the CLI open elsewhere, with the values they meant.

Outside oracles: highdicom reads the stored values and applies the Real World Value
Mapping itself; dcmqi's ``paramap2itkimage`` (3D Slicer) reads the default output.
"""

from __future__ import annotations

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radbridge.cli import main
from radbridge.io.nifti import volume_from_sitk
from radbridge.iods.pm import encode_parametric_map
from tests.peers import dciodvfy, paramap2itkimage
from tests.seg.test_seg_peers import onto

from .conftest import ADC

pytestmark = pytest.mark.peer


def _adc(shape, seed=4):
    """An ADC-like map, 0-0.004 mm2/s, float32 (what a diffusion model writes)."""
    return (np.random.default_rng(seed).random(shape) * 0.004).astype(np.float32)


def _encode(study, tmp_path, map_path, *extra):
    out = tmp_path / "pm.dcm"
    args = ["pm", "encode", "--source", str(study.folder), "--map", str(map_path)]
    code = main([*args, "--units", "mm2/s", "-o", str(out), *extra])
    return code, out


def _highdicom_values(study, path):
    volume = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path)).get_volume()
    return onto(study.source.geometry, np.asarray(volume.array), volume.affine)


def test_float_map_as_uint16_gets_a_faithful_slope(study, tmp_path, capsys):
    values = _adc(study.source.geometry.shape)
    np.save(tmp_path / "adc.npy", values)
    code, out = _encode(study, tmp_path, tmp_path / "adc.npy", "--dtype", "uint16")
    assert code == 0, capsys.readouterr().err
    ds = pydicom.dcmread(out)
    assert int(ds.BitsAllocated) == 16 and "PixelData" in ds
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    step = float(mapping.RealWorldValueSlope)
    low, high = float(values.min()), float(values.max())
    assert step == pytest.approx((high - low) / 65535, rel=1e-12)
    assert f"{step!r}" in capsys.readouterr().out  # the mapping is stated
    theirs = _highdicom_values(study, out)
    assert np.abs(theirs - values.astype(np.float64)).max() <= step / 2 * (1 + 1e-6)
    assert len(np.unique(theirs)) > 1000  # not a map of zeros
    assert dciodvfy(out).errors == []


def test_float_map_as_int16_reads_back_within_one_step(study, tmp_path, capsys):
    values = _adc(study.source.geometry.shape, seed=9) - 0.002
    np.save(tmp_path / "adc.npy", values)
    code, out = _encode(study, tmp_path, tmp_path / "adc.npy", "--dtype", "int16")
    assert code == 0, capsys.readouterr().err
    ds = pydicom.dcmread(out)
    assert int(ds.PixelRepresentation) == 1
    step = float(
        ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0].RealWorldValueSlope
    )
    theirs = _highdicom_values(study, out)
    assert np.abs(theirs - values.astype(np.float64)).max() <= step / 2 * (1 + 1e-6)


def test_nan_cannot_become_an_integer_silently(study, tmp_path, capsys):
    values = _adc(study.source.geometry.shape)
    values[2, 3, 4] = np.nan
    np.save(tmp_path / "adc.npy", values)
    args = ("--dtype", "uint16", "--nan-policy", "padding")
    code, out = _encode(study, tmp_path, tmp_path / "adc.npy", *args)
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "NaN cannot be stored in an integer map" in err and "nan_policy='zero'" in err


@pytest.mark.parametrize("syntax", ["explicit", "rle", "jpegls", "jpeg2000"])
def test_highdicom_reads_compressed_integer_maps_exactly(study, tmp_path, syntax):
    stored = np.random.default_rng(2).integers(0, 4000, study.source.geometry.shape)
    ds = encode_parametric_map(
        stored.astype(np.uint16),
        study.source,
        quantity=ADC,
        units="um2/s",
        slope=0.25,
        intercept=-3.0,
        transfer_syntax=syntax,
    )
    path = tmp_path / "pm.dcm"
    ds.save_as(path, enforce_file_format=True)
    theirs = _highdicom_values(study, path)
    np.testing.assert_array_equal(theirs, stored * 0.25 - 3.0)


def test_frame_anatomy_from_the_source_a_name_or_a_code(study, tmp_path, capsys):
    np.save(tmp_path / "adc.npy", _adc(study.source.geometry.shape))
    expected = {
        (): ("43799004", "U"),  # the phantom's Body Part Examined is CHEST
        ("--anatomy", "kidney_left"): ("64033007", "L"),
        ("--anatomy", "SCT:10200004:Liver"): ("10200004", "U"),
    }
    for extra, (code_value, side) in expected.items():
        code, out = _encode(study, tmp_path, tmp_path / "adc.npy", *extra)
        assert code == 0, capsys.readouterr().err
        anatomy = pydicom.dcmread(out).SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0]
        assert anatomy.AnatomicRegionSequence[0].CodeValue == code_value
        assert anatomy.FrameLaterality == side
    code, _ = _encode(study, tmp_path, tmp_path / "adc.npy", "--anatomy", "kidny")
    err = capsys.readouterr().err
    assert code == 1 and "close: kidney" in err and "docs/codes.md" in err


def test_a_source_without_body_part_needs_anatomy(study, tmp_path, capsys):
    folder = tmp_path / "ct"
    shutil.copytree(study.folder, folder)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.BodyPartExamined
        ds.save_as(path)
    np.save(tmp_path / "adc.npy", _adc(study.source.geometry.shape))
    args = ["pm", "encode", "--source", str(folder), "--map", str(tmp_path / "adc.npy")]
    code = main([*args, "--units", "mm2/s", "-o", str(tmp_path / "pm.dcm")])
    err = capsys.readouterr().err
    assert code == 1 and "FrameAnatomySequence" in err and "--anatomy" in err
    assert not (tmp_path / "pm.dcm").exists()


def test_the_documented_cli_example_runs(study, tmp_path, capsys):
    """docs/pm.md's command line, with every optional part it shows."""
    np.save(tmp_path / "adc.npy", _adc(study.source.geometry.shape))
    code, out = _encode(
        study,
        tmp_path,
        tmp_path / "adc.npy",
        "--quantity",
        "DCM:113041:Apparent Diffusion Coefficient",
        "--nan-policy",
        "padding",
        "--anatomy",
        "kidney_left",
        "--dtype",
        "uint16",
        "--profile",
        "compact",
    )
    assert code == 0, capsys.readouterr().err
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"  # compact: JPEG-LS


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dcmqi_reads_the_cli_default_output(study, tmp_path, capsys, dtype):
    values = _adc(study.source.geometry.shape).astype(dtype)
    np.save(tmp_path / "adc.npy", values)
    code, out = _encode(study, tmp_path, tmp_path / "adc.npy")
    assert code == 0, capsys.readouterr().err
    image = paramap2itkimage(out, tmp_path / "dcmqi")
    volume = volume_from_sitk(sitk.ReadImage(str(image)))
    placed = onto(study.source.geometry, volume.array, volume.affine)
    np.testing.assert_array_equal(placed, values.astype(np.float32))


def _cropped_adc_nifti(study, tmp_path, crop):
    """An ADC map of ``crop`` of the series, saved as NIfTI on the crop's own box."""
    import nibabel as nib

    from radbridge.geometry import Volume
    from radbridge.io.nifti import volume_to_nifti

    geometry = study.source.geometry
    values = _adc(geometry.shape)[crop] + np.float32(0.001)  # no 0 anywhere in the map
    affine = geometry.affine.copy()
    affine[:, 3] = geometry.affine @ np.array([c.start for c in crop] + [1.0])
    nib.save(volume_to_nifti(Volume(values, affine)), tmp_path / "adc.nii.gz")
    return values, affine


_CROP = (slice(2, 6), slice(5, 25), slice(8, 20))  # slices 2-5, a box in-plane


def test_a_map_of_part_of_the_grid_keeps_its_extent(study, tmp_path, capsys):
    """An ADC map computed on a crop of the series (slices 2-5, a box in-plane) was padded
    onto the whole grid with 0, which a reader takes for ADC 0 mm2/s; now the Parametric
    Map holds the crop alone, on the source's lattice, and dcmqi and highdicom read the
    crop's values at the crop's place."""
    from radbridge.geometry import VolumeGeometry

    values, affine = _cropped_adc_nifti(study, tmp_path, _CROP)
    code, out = _encode(study, tmp_path, tmp_path / "adc.nii.gz")
    assert code == 0, capsys.readouterr().err
    ds = pydicom.dcmread(out)
    assert (int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)) == (4, 20, 12)
    assert not dciodvfy(out).errors
    crop_grid = VolumeGeometry(values.shape, affine)  # every voxel they read lands on it
    theirs = hd.pm.ParametricMap.from_dataset(ds).get_volume()
    assert theirs.spatial_shape == values.shape
    placed = onto(crop_grid, np.asarray(theirs.array), theirs.affine)
    np.testing.assert_allclose(placed, values)
    image = paramap2itkimage(out, tmp_path / "dcmqi")
    read = volume_from_sitk(sitk.ReadImage(str(image)))
    assert read.array.shape == values.shape
    np.testing.assert_allclose(onto(crop_grid, read.array, read.affine), values)


def test_a_map_of_part_of_the_grid_decodes_onto_the_source_grid(study, tmp_path, capsys):
    """`pm decode --source` of such a map refused it ("map frames are 20x12 but the target
    grid is 32x32"); it now places the crop's values at their voxels of the source grid and
    leaves every other voxel without a value (NaN), where highdicom's volume of the map,
    placed by its LPS positions, puts them too."""
    from radbridge.io.nifti import read_image
    from radbridge.pm import open_parametric_map

    geometry = study.source.geometry
    values, _ = _cropped_adc_nifti(study, tmp_path, _CROP)
    code, out = _encode(study, tmp_path, tmp_path / "adc.nii.gz")
    assert code == 0, capsys.readouterr().err
    decoded = tmp_path / "back.nii.gz"
    code = main(["pm", "decode", str(out), "--source", str(study.folder), "-o", str(decoded)])
    assert code == 0, capsys.readouterr().err
    back = read_image(decoded)
    assert back.shape == geometry.shape and np.allclose(back.affine, geometry.affine, atol=1e-4)
    assert back.array.dtype == np.float32
    expected = np.full(geometry.shape, np.nan, np.float32)  # index arithmetic: the crop's box
    expected[2:6, 5:25, 8:20] = values
    np.testing.assert_array_equal(back.array, expected)  # NaN where expected has NaN
    np.testing.assert_array_equal(open_parametric_map(out).volume(study.source).array, expected)
    # highdicom's own volume of the map (its extent), placed on the grid by LPS positions
    theirs = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(out)).get_volume()
    covered = onto(geometry, np.ones(theirs.spatial_shape, bool), theirs.affine)
    assert np.array_equal(covered, ~np.isnan(back.array))
    placed = onto(geometry, np.asarray(theirs.array), theirs.affine)
    np.testing.assert_allclose(back.array[covered], placed[covered], rtol=1e-6)


def test_a_map_off_the_source_lattice_is_still_refused(study, tmp_path, capsys):
    """Frames half a voxel off the source's columns are not placed (that would resample);
    the error says where and what to do, and the map still reads on its own grid."""
    from radbridge.errors import GridMismatchError
    from radbridge.geometry import Volume
    from radbridge.pm import open_parametric_map

    geometry = study.source.geometry
    values = _adc(geometry.shape)[_CROP] + np.float32(0.001)
    affine = geometry.affine.copy()
    affine[:, 3] = geometry.affine @ np.array([2.0, 5.0, 8.5, 1.0])  # half a column off
    own = Volume(values, affine, geometry.frame_of_reference_uid)
    ds = encode_parametric_map(own, study.source, quantity=ADC, units="mm2/s")
    path = tmp_path / "shifted.pm.dcm"
    ds.save_as(path, enforce_file_format=True)
    pm = open_parametric_map(path)
    with pytest.raises(GridMismatchError, match=r"between the target's voxels \(off by 0.5") as e:
        pm.volume(study.source)
    assert e.value.attribute == "ImagePositionPatient" and "own grid" in (e.value.hint or "")
    assert np.array_equal(pm.volume().array, values)
    code = main(
        ["pm", "decode", str(path), "--source", str(study.folder), "-o", str(tmp_path / "x.nii.gz")]
    )
    err = capsys.readouterr().err
    assert code == 1 and "between the target's voxels" in err and "own grid" in err
