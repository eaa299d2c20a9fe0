"""rtstruct_to_gsps: each ROI is outlined under its own number, label and colour.

A structure set may list its ROIs in any order (PS3.3 C.8.8.5 asks only for unique
ROI Numbers). The outlines used to be paired with the ROIs by position in the file
and with the labels by ascending number, so a file listing ROI 3 before ROI 1 gave
ROI 1's label and group to ROI 3's outlines.
"""

from __future__ import annotations

import datetime
import io
import warnings

import numpy as np
import pydicom
import pytest

from radbridge.iods.common import SeriesOptions
from radbridge.pr import read_gsps, rtstruct_to_gsps
from radbridge.rtstruct import ROIDescription, StructureSet, encode_rtstruct, read_rtstruct

#: ROI number -> (name, box [slice, row, column]); boxes of different sizes.
BOXES = {
    1: ("Alpha", (slice(2, 5), slice(5, 15), slice(5, 15))),
    2: ("Beta", (slice(3, 7), slice(30, 50), slice(8, 20))),
    3: ("Gamma", (slice(1, 9), slice(40, 60), slice(35, 61))),
    4: ("Delta", (slice(2, 6), slice(10, 34), slice(10, 40))),  # over Alpha and Beta
}


def out_of_order_structure_set(study, numbers):
    """ROIs ``numbers`` written in ascending number, then listed in the file in reverse."""
    masks = np.zeros((len(numbers), *study.labels.shape), bool)
    for i, n in enumerate(numbers):
        masks[i][BOXES[n][1]] = True
    ds = encode_rtstruct(masks, study.source, {n: BOXES[n][0] for n in numbers})
    for keyword in ("StructureSetROISequence", "ROIContourSequence", "RTROIObservationsSequence"):
        setattr(ds, keyword, list(reversed(ds[keyword].value)))
    return ds, masks


@pytest.mark.parametrize("numbers", [(1, 2, 3), (1, 2, 3, 4)], ids=["apart", "overlapping"])
def test_rois_listed_out_of_number_order_keep_their_outlines(study, numbers):
    ds, masks = out_of_order_structure_set(study, numbers)
    rs = read_rtstruct(ds)
    assert list(rs.rois) == list(reversed(numbers))
    ps = rtstruct_to_gsps(rs, study.source, window=(40, 400))
    # pydicom alone: every outline of group n is ROI n's box, every text its name
    drawn = set()
    for item in pydicom.dcmread(io.BytesIO(_saved(ps))).GraphicAnnotationSequence:
        (text,) = item.TextObjectSequence
        group = int(text.GraphicGroupID)
        assert text.UnformattedTextValue == BOXES[group][0]
        for graphic in item.GraphicObjectSequence:
            assert int(graphic.GraphicGroupID) == group
            points = np.reshape(np.asarray(graphic.GraphicData, float), (-1, 2))
            _, rows, columns = BOXES[group][1]
            assert (points[:, 0].min(), points[:, 0].max()) == (columns.start, columns.stop)
            assert (points[:, 1].min(), points[:, 1].max()) == (rows.start, rows.stop)
            drawn.add(group)
    assert drawn == set(numbers)
    back = read_gsps(ps)
    assert back.segments == {n: BOXES[n][0] for n in numbers}
    np.testing.assert_array_equal(back.stacked_volume(study.source).array, masks)


def _saved(ds) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


FIXED = SeriesOptions(
    sop_instance_uid="2.25.1001",
    series_instance_uid="2.25.1002",
    timestamp=datetime.datetime(2026, 1, 2, 3, 4, 5),
)


def organ_structure_set(study, overlapping):
    """Liver, lungs, an empty ROI and ROI 300, listed out of number order; maybe a body too.

    Every contour references an image the source does not hold, so each ROI is
    placed by its coordinates with a warning.
    """
    labels = study.labels
    masks = [labels == 5, labels == 2, labels == 3, np.zeros(labels.shape, bool)]
    numbers = [300, 4, 17, 9]
    if overlapping:
        masks.append(labels > 0)  # a body outline around the organs
        numbers.append(2)
    order = np.argsort(numbers)
    ds = encode_rtstruct(
        np.stack(masks)[order],
        study.source,
        [ROIDescription(numbers[i], f"R{numbers[i]}") for i in order],
        allow_empty=True,
    )
    for keyword in ("StructureSetROISequence", "ROIContourSequence", "RTROIObservationsSequence"):
        setattr(ds, keyword, list(reversed(ds[keyword].value)))
    for item in ds.ROIContourSequence:
        for contour in item.get("ContourSequence", []):
            contour.ContourImageSequence[0].ReferencedSOPInstanceUID = "2.25.1"
    return read_rtstruct(ds)


@pytest.mark.parametrize("overlapping", [False, True], ids=["apart", "overlapping"])
def test_the_same_gsps_and_warnings_as_from_stacked_masks(study, monkeypatch, overlapping):
    """ROIs that do not overlap go to the encoder as one label map: the same file, said the same."""
    structure_set = organ_structure_set(study, overlapping)

    def convert():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = rtstruct_to_gsps(
                structure_set, study.source, window=(40, 400), allow_empty=True, options=FIXED
            )
        return _saved(ds), [(w.category, str(w.message)) for w in caught]

    now, said = convert()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said above
        array, _ = structure_set.compact_masks(study.source)
    assert array.ndim == (4 if overlapping else 3)  # apart: one label map, not 5 volumes
    with monkeypatch.context() as patched:
        patched.setattr(  # the former way: one mask per ROI, whatever they are
            StructureSet,
            "compact_masks",
            lambda self, target, tolerance_mm=None: (
                self.stacked_volume(target, tolerance_mm=tolerance_mm).array,
                tuple(self.rois),
            ),
        )
        before, said_before = convert()
    assert now == before
    assert said == said_before
    assert len(said) == len(structure_set.rois) - 1  # one per ROI with contours, in file order
    state = read_gsps(now)
    assert list(state.segments) == sorted(structure_set.rois)
    for n in structure_set.rois:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = structure_set.mask(n, study.source).array
        got = state.stacked_volume(study.source, segments=[n]).array[0]
        np.testing.assert_array_equal(got, expected)
