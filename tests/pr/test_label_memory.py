"""A presentation state's label_volume paints regions slice by slice: same output, not N volumes.

It used to fill one whole-volume mask per region (stacked_volume) and then combine
them: 40 regions on 100x256x256 held 262 MB for a 6.6 MB label map, a
TotalSegmentator-scale GSPS (117 outlined structures on 500 slices of 512x512)
about 15 GB.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from radbridge.errors import DecodingError, GridMismatchError, InvalidAttributeError
from radbridge.iods.common import label_map
from radbridge.iods.source import Series
from radbridge.pr import (
    GraphicAnnotation,
    GraphicLayer,
    GraphicObject,
    encode_gsps,
    encode_presentation_state,
    read_gsps,
    rtstruct_to_gsps,
    seg_to_gsps,
)
from radbridge.rtstruct import encode_rtstruct, read_rtstruct
from radbridge.seg import encode_segmentation, read_segmentation
from tests.foundation.builders import ct_slice
from tests.foundation.regions import overlapping_masks, peak_of, reference_label_map
from tests.seg.conftest import descriptions


def overlapping_regions(study):
    """Phantom organs plus regions over them and each other, ties, an empty region, 300."""
    masks = overlapping_masks(study.labels)
    numbers = (2, 5, 6, 9, 17, 40, 41, 300)  # stacked masks go in ascending number
    ds = encode_gsps(
        masks, study.source, {n: f"R{n}" for n in numbers}, window=(40, 400), allow_empty=True
    )
    return ds, masks, numbers


def said(call):
    """What ``call()`` returns, and its warnings: category, message, the file they blame."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [(w.category, str(w.message), w.filename) for w in caught]


def test_overlaps_and_ties_resolve_as_before(study):
    ds, masks, numbers = overlapping_regions(study)
    ps = read_gsps(ds)
    assert tuple(ps.segments) == numbers
    stacked = ps.stacked_volume(study.source)
    np.testing.assert_array_equal(stacked.array, masks)  # the writer's masks come back
    volume = ps.label_volume(study.source, overlap="smallest")
    got = volume.array
    assert got.dtype == np.uint16  # region 300 needs 16 bits
    np.testing.assert_array_equal(got, reference_label_map(masks, numbers))
    former = label_map(stacked, overlap="smallest", what="region")  # the former way
    np.testing.assert_array_equal(got, former.array)
    assert got.dtype == former.array.dtype
    assert volume.geometry.shape == former.geometry.shape
    np.testing.assert_array_equal(volume.affine, former.affine)
    assert {2, 6, 9, 17, 40, 41} <= set(np.unique(got).tolist())  # both twins and ties show
    assert 5 not in np.unique(got)  # the liver's twin, the later region, wins the tie
    with pytest.raises(DecodingError, match="regions overlap"):
        ps.label_volume(study.source)


def test_regions_by_layer_resolve_as_before(study):
    """Graphics without groups: regions are the layers; circles, ellipses, a hole, a tie."""
    refs = study.source.slice_refs
    square = GraphicObject("POLYLINE", [[10, 10], [40, 10], [40, 40], [10, 40], [10, 10]])
    hole = GraphicObject("POLYLINE", [[20, 20], [30, 20], [30, 30], [20, 30], [20, 20]])
    circle = GraphicObject("CIRCLE", [[30.5, 30.5], [30.5, 38.5]])
    same = GraphicObject("CIRCLE", [[33.5, 30.5], [33.5, 38.5]])  # as many pixels, shifted
    ellipse = GraphicObject("ELLIPSE", [[5, 25], [60, 25], [32.5, 20], [32.5, 30]])
    annotations = [
        GraphicAnnotation("SQUARE", (refs[2], refs[3]), (square, hole)),
        GraphicAnnotation("DISC", (refs[3],), (circle,)),
        GraphicAnnotation("TWIN", (refs[3],), (same,)),
        GraphicAnnotation("BAND", (refs[3], refs[4]), (ellipse,)),
    ]
    names = ("SQUARE", "DISC", "TWIN", "BAND")
    layers = [GraphicLayer(name, k + 1) for k, name in enumerate(names)]
    ps = read_gsps(encode_presentation_state(annotations, study.source, layers))
    assert ps.segments == {1: "SQUARE", 2: "DISC", 3: "TWIN", 4: "BAND"}
    stacked = ps.stacked_volume(study.source)
    assert (stacked.array.sum(axis=0) > 1).any()
    got = ps.label_volume(study.source, overlap="smallest").array
    np.testing.assert_array_equal(got, reference_label_map(stacked.array, (1, 2, 3, 4)))
    np.testing.assert_array_equal(got, label_map(stacked, overlap="smallest").array)
    assert {1, 2, 3, 4} <= set(np.unique(got).tolist())


def test_the_same_warnings_and_errors_in_the_same_order(study):
    """Annotations on other images: said once, as before, also when the policy then refuses."""
    ds, _, numbers = overlapping_regions(study)
    for k in (0, 3):
        ds.GraphicAnnotationSequence[k].ReferencedImageSequence[
            0
        ].ReferencedSOPInstanceUID = f"2.25.{k + 1}"
    ps = read_gsps(ds)
    stacked, expected = said(lambda: ps.stacked_volume(study.source))
    ((category, message, blamed),) = expected
    assert category is UserWarning
    assert message.endswith(": 2 annotations lie on images outside the source series")
    assert blamed == __file__  # the caller's line, for label_volume too (it named reader.py)
    volume, messages = said(lambda: ps.label_volume(study.source, overlap="smallest"))
    assert messages == expected
    np.testing.assert_array_equal(volume.array, reference_label_map(stacked.array, numbers))
    for overlap, error in (("error", DecodingError), ("largest", InvalidAttributeError)):

        def refused(overlap=overlap, error=error):
            with pytest.raises(error, match="overlap"):
                ps.label_volume(study.source, overlap=overlap)

        assert said(refused)[1] == expected  # all regions are read before refusing
    # graphics on none of the images: refused before the policy is looked at, as before
    elsewhere = Series.from_datasets([ct_slice((0, 0, 0), rows=64, columns=64)])
    with pytest.raises(GridMismatchError, match="not in the source"):
        ps.label_volume(elsewhere, overlap="largest")


@pytest.fixture(scope="module")
def many_regions():
    """40 boxes with holes on a 100x256x256 grid: the source, the label map, the GSPS."""
    shape = (100, 256, 256)
    source = Series.from_datasets(
        [
            ct_slice((0, 0, 2.5 * k), spacing=(1, 1), rows=shape[1], columns=shape[2])
            for k in range(shape[0])
        ]
    )
    labels = np.zeros(shape, np.uint8)
    for i in range(40):
        r, c = divmod(i, 8)
        labels[10:90, 10 + r * 48 : 50 + r * 48, 5 + c * 31 : 33 + c * 31] = i + 1
    labels[40:60, 20:200, 20:200] = 0  # holes through every second row of boxes
    names = {n: f"R{n}" for n in range(1, 41)}
    state = read_gsps(encode_gsps(labels, source, names, window=(40, 400)))
    return source, labels, state


def test_peak_memory_does_not_grow_with_the_number_of_regions(many_regions):
    """40 regions: at most twice the label map (6.6 MB); one mask each was 262 MB."""
    source, labels, state = many_regions
    volume, peak = peak_of(lambda: state.label_volume(source, overlap="smallest"))
    np.testing.assert_array_equal(volume.array, labels)
    assert peak < 2 * labels.nbytes, f"peak {peak / 1e6:.1f} MB"


def test_rtstruct_to_gsps_does_not_hold_one_volume_per_roi(many_regions, caplog):
    """The same 40 boxes as ROIs, outlined: a peak of 43 MB; one mask per ROI was 299 MB.

    encode_gsps takes 37 MB of that on a label map alone (its data set and scratch).
    """
    caplog.set_level(logging.ERROR)
    source, labels, _ = many_regions
    structure_set = read_rtstruct(
        encode_rtstruct(labels, source, {n: f"R{n}" for n in range(1, 41)})
    )
    ds, peak = peak_of(lambda: rtstruct_to_gsps(structure_set, source, window=(40, 400)))
    np.testing.assert_array_equal(read_gsps(ds).label_volume(source).array, labels)
    assert peak < 10 * labels.nbytes, f"peak {peak / 1e6:.1f} MB"


def test_seg_to_gsps_does_not_hold_one_volume_per_segment(many_regions, caplog):
    """The same 40 boxes as segments of a BINARY and a LABELMAP SEG, outlined.

    Segments that do not overlap are read as one label map; one mask per segment
    (the former stacked path) held 40 volumes.
    """
    caplog.set_level(logging.ERROR)
    source, labels, _ = many_regions
    for kind in ("binary", "labelmap"):
        seg = read_segmentation(
            encode_segmentation(labels, source, descriptions(40), segmentation_type=kind)
        )
        ds, peak = peak_of(lambda seg=seg: seg_to_gsps(seg, source, window=(40, 400)))
        np.testing.assert_array_equal(read_gsps(ds).label_volume(source).array, labels)
        assert peak < 10 * labels.nbytes, f"{kind}: peak {peak / 1e6:.1f} MB"
