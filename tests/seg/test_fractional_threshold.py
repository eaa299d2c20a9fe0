"""One threshold rule for FRACTIONAL → binary, checked against highdicom's reading.

A FRACTIONAL SEG is made with the CLI from a 3-D probability NIfTI. highdicom reads
its fractions; the test thresholds them itself (``fraction >= t``) and expects the
same voxels from ``seg decode``, the Python API, ``convert --to rtstruct``
(rasterised here with OpenCV's point-in-polygon test, not radbridge's reader) and
``render``.
"""

from __future__ import annotations

import json

import cv2
import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from radbridge.cli import main
from radbridge.geometry import Volume
from radbridge.io.nifti import write_image
from radbridge.io.series import read_volume
from radbridge.iods.sc import render_frames
from radbridge.iods.seg import read_segmentation

pytestmark = pytest.mark.peer

LIVER = {"value": "10200004", "scheme": "SCT", "meaning": "Liver"}
ANATOMY = {"value": "123037004", "scheme": "SCT", "meaning": "Anatomical Structure"}


def blob(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float):
    """Probabilities falling smoothly from 1 at the centre: many values between 0 and 1."""
    k, r, c = np.indices(shape, dtype=np.float64)
    distance = np.sqrt(((k - centre[0]) * 3) ** 2 + (r - centre[1]) ** 2 + (c - centre[2]) ** 2)
    return np.clip(1.0 - distance / radius, 0.0, 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def fractional(study, tmp_path_factory):
    """A FRACTIONAL SEG written by the CLI from a 3-D NIfTI, and highdicom's fractions."""
    folder = tmp_path_factory.mktemp("fractional")
    shape = study.source.geometry.shape
    probabilities = blob(shape, (shape[0] / 2, 20, 26), 14.0)
    write_image(Volume.from_geometry(probabilities, study.source.geometry), folder / "p.nii.gz")
    labels = folder / "labels.json"
    labels.write_text(json.dumps({"1": {"label": "lesion", "category": ANATOMY, "type": LIVER}}))
    path = folder / "fractional.dcm"
    argv = ["seg", "encode", "--source", str(study.folder), "--mask", str(folder / "p.nii.gz")]
    argv += ["--labels", str(labels), "--type", "fractional", "-o", str(path)]
    assert main(argv) == 0
    uids = [ref.sop_instance_uid for ref in study.source.slice_refs]
    theirs = hd.seg.segread(path).get_pixels_by_source_instance(uids, rescale_fractional=True)
    fractions = np.asarray(theirs[..., 0], np.float64)
    np.testing.assert_allclose(fractions, probabilities, atol=0.5 / 255 + 1e-6)
    assert ((fractions > 0) & (fractions < 0.5)).sum() > 100, "the test needs values below 0.5"
    return path, fractions


@pytest.mark.parametrize("threshold", [None, 0.3, 0.8])
def test_decode_and_python_api_use_the_threshold(study, fractional, tmp_path, threshold):
    path, fractions = fractional
    expected = fractions >= (0.5 if threshold is None else threshold)
    out = tmp_path / "labels.nii.gz"
    argv = ["seg", "decode", str(path), "-o", str(out), "--source", str(study.folder)]
    assert main(argv + ([] if threshold is None else ["--threshold", str(threshold)])) == 0
    decoded = np.transpose(np.asarray(nib.load(out).dataobj), (2, 1, 0))
    np.testing.assert_array_equal(decoded == 1, expected)
    seg = read_segmentation(path)
    kwargs = {} if threshold is None else {"threshold": threshold}
    np.testing.assert_array_equal(seg.label_volume(study.source, **kwargs).array == 1, expected)
    stacked = seg.stacked_volume(study.source, threshold=threshold or 0.5)
    np.testing.assert_array_equal(stacked.array[0], expected)
    k = int(np.argmax(expected.sum(axis=(1, 2))))
    uid = study.source.slice_refs[k].sop_instance_uid
    masks = seg.masks_for_source(uid, threshold=threshold or 0.5)
    np.testing.assert_array_equal(masks[1], expected[k])


def _rasterise(rtstruct, study) -> np.ndarray:
    """Voxel centres inside the contours (even-odd), by OpenCV on the contour points."""
    geometry = study.source.geometry
    out = np.zeros(geometry.shape, bool)
    positions = study.source.slice_positions()
    for contour in rtstruct.ROIContourSequence[0].ContourSequence:
        lps = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
        index = geometry.lps_to_index(lps)
        k = int(np.argmin(np.linalg.norm(positions - lps[0], axis=1)))
        polygon = index[:, [2, 1]].astype(np.float32)  # (x = column, y = row)
        rows, cols = np.indices(geometry.shape[1:])
        inside = np.array(
            [
                cv2.pointPolygonTest(polygon, (float(x), float(y)), False) > 0
                for y, x in zip(rows.ravel(), cols.ravel(), strict=True)
            ]
        ).reshape(geometry.shape[1:])
        out[k] ^= inside
    return out


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_convert_to_rtstruct_contours_the_same_voxels(study, fractional, tmp_path, threshold):
    path, fractions = fractional
    expected = fractions >= (0.5 if threshold is None else threshold)
    out = tmp_path / "rs.dcm"
    argv = ["convert", str(path), "--to", "rtstruct", "--source", str(study.folder)]
    argv += ["-o", str(out)] + ([] if threshold is None else ["--threshold", str(threshold)])
    assert main(argv) == 0
    np.testing.assert_array_equal(_rasterise(pydicom.dcmread(out), study), expected)


def test_render_draws_the_thresholded_voxels(study, fractional, tmp_path):
    path, fractions = fractional
    out = tmp_path / "render"
    argv = ["render", str(path), "--source", str(study.folder), "-o", str(out)]
    assert main([*argv, "--sc", "--style", "filled"]) == 0
    sc = pydicom.dcmread(out / "overlay.dcm").pixel_array
    seg = read_segmentation(path)
    colours = {1: seg.segments[1].display_rgb} if seg.segments[1].display_rgb else {}
    first = pydicom.dcmread(next(study.folder.glob("*.dcm")), stop_before_pixels=True)
    expected = render_frames(
        read_volume(study.folder, rescale=True),
        (fractions >= 0.5).astype(np.uint8),
        colours,
        {1: "lesion"},
        style="filled",
        window=(float(first.WindowCenter), float(first.WindowWidth)),  # the images' own
    )
    np.testing.assert_array_equal(sc, expected.frames)


def test_thresholds_outside_zero_one_are_refused(study, fractional, tmp_path, capsys):
    path, _ = fractional
    argv = ["seg", "decode", str(path), "-o", str(tmp_path / "x.nii.gz"), "--threshold", "1.5"]
    assert main(argv) == 2  # a bad option value is a usage error
    assert "threshold" in capsys.readouterr().err
