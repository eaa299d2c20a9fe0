"""rt-utils (Qurit Lab), an independent RTSTRUCT reader and writer, against radbridge both ways.

rt-utils rasterises by rounding each vertex to the nearest pixel centre and filling with
OpenCV, boundary included; radbridge fills pixel centres inside the contour. On the same
contour the two masks therefore differ only in pixels next to the contour, by about half a
pixel on each side: large organs agree to Dice >= 0.99, thin or tiny ROIs less, and every
disagreement lies within one pixel of the contour.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from rt_utils import RTStructBuilder
from scipy import ndimage

from radbridge.io.series import read_series_datasets
from radbridge.iods.rtstruct import ROIDescription, encode_rtstruct, read_rtstruct
from radbridge.iods.source import SourceSeries

from .conftest import PHANTOM, dice, rois

pytestmark = pytest.mark.peer


def rtutils_mask(builder, name: str) -> np.ndarray:
    """Return rt-utils' mask as [slice, row, column] (it gives [row, column, slice])."""
    return np.moveaxis(builder.get_roi_mask_by_name(name), 2, 0)


def within_one_pixel_of(boundary_of: np.ndarray, pixels: np.ndarray) -> bool:
    """Whether every True pixel of ``pixels`` touches the in-plane boundary of ``boundary_of``."""
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 2)
    grown = ndimage.binary_dilation(boundary_of, structure)
    shrunk = ndimage.binary_erosion(boundary_of, structure, border_value=0)
    return not (pixels & ~(grown & ~shrunk)).any()


def test_rtutils_reads_our_file(big_study, tmp_path):
    external = big_study.labels > 0
    stacked = np.stack([external] + [big_study.labels == n for n in (2, 3, 5)])
    descriptions = [ROIDescription(1, "External", "EXTERNAL"), *rois((2, 3, 5))]
    path = tmp_path / "ours.dcm"
    encode_rtstruct(stacked, big_study.source, descriptions).save_as(path, enforce_file_format=True)
    builder = RTStructBuilder.create_from(str(big_study.folder), str(path))
    names = ["External", "Lung_L", "Lung_R", "Liver"]
    assert builder.get_roi_names() == names
    for name, truth in zip(names, stacked, strict=True):
        theirs = rtutils_mask(builder, name)
        assert dice(theirs, truth) >= 0.99, name
        assert within_one_pixel_of(truth, theirs ^ truth), name


def test_rtutils_reads_every_phantom_roi_up_to_the_boundary(big_study, tmp_path):
    path = tmp_path / "all.dcm"
    encode_rtstruct(big_study.labels, big_study.source, rois()).save_as(
        path, enforce_file_format=True
    )
    builder = RTStructBuilder.create_from(str(big_study.folder), str(path))
    for number, (name, _, _) in PHANTOM.items():
        theirs = rtutils_mask(builder, name)
        truth = big_study.labels == number
        assert within_one_pixel_of(truth, theirs ^ truth), name
        assert dice(theirs, truth) >= 0.9, name


@pytest.mark.filterwarnings("ignore:'FileDataset.is_:DeprecationWarning")  # inside rt-utils
def test_we_read_what_rtutils_writes(big_study, tmp_path):
    builder = RTStructBuilder.create_new(dicom_series_path=str(big_study.folder))
    for number, (name, _, _) in PHANTOM.items():
        builder.add_roi(mask=np.moveaxis(big_study.labels == number, 0, 2), name=name)
    path = tmp_path / "theirs.dcm"
    builder.save(str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        masks = read_rtstruct(path).stacked_volume(big_study.source)
    assert any("no Frame of Reference Module" in str(w.message) for w in caught)
    for i, number in enumerate(masks.segment_numbers):
        # their contours run through boundary pixel centres, which count as inside
        np.testing.assert_array_equal(masks.array[i], big_study.labels == number)


def test_rtutils_interop_file_agrees(interop):
    ct = interop / "images" / "rtutils_ct"
    rs_path = interop / "rtstruct" / "rt-utils" / "rt.dcm"
    source = SourceSeries.from_datasets(read_series_datasets(ct, headers_only=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rs = read_rtstruct(rs_path)
        ours = rs.mask("ROI-1", source).array
    messages = " | ".join(str(w.message) for w in caught)
    # the file has no Frame of Reference module and names a frame its CT does not have
    assert "no Frame of Reference Module" in messages
    assert "trusting the image references" in messages
    theirs = rtutils_mask(RTStructBuilder.create_from(str(ct), str(rs_path)), "ROI-1")
    assert ours[1].sum() == theirs[1].sum() == 0  # contours only on the first slice
    # the ROI is a 24 mm square with a 15 mm hole; at 0.49 mm pixels the two rasterisations
    # differ only along the four boundaries
    assert (ours & ~theirs).sum() == 0
    assert within_one_pixel_of(ours, theirs ^ ours)
    exact = _polygon_area_pixels(rs, source)
    assert abs(int(ours.sum()) - exact) <= 0.05 * exact
    assert dice(ours, theirs) >= 0.9


def _polygon_area_pixels(rs, source) -> float:
    """Exact area of the ROI (outer contour minus hole) in pixels, by the shoelace formula."""
    spacing = source.geometry.pixel_spacing
    areas = []
    for contour in rs.roi("ROI-1").contours:
        x, y = contour.points[:, 0], contour.points[:, 1]
        areas.append(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    outer, hole = sorted(areas, reverse=True)
    return (outer - hole) / (spacing[0] * spacing[1])
