"""Reading presentation states: graphics per image, windows, masks back; hostile input."""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from radbridge.errors import (
    DecodingError,
    GridMismatchError,
    InvalidAttributeError,
    NotDicomError,
    UnsupportedObjectError,
)
from radbridge.pr import (
    COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    GraphicAnnotation,
    GraphicLayer,
    GraphicObject,
    OutlineOptions,
    encode_gsps,
    encode_presentation_state,
    read_gsps,
)
from tests.foundation.builders import deflated_cut

from .conftest import save


def test_label_map_round_trips_exactly(study, tmp_path):
    path = save(encode_gsps(study.labels, study.source, study.present), tmp_path)
    ps = read_gsps(path)
    assert ps.source == str(path)
    assert ps.segments == study.present
    assert np.array_equal(ps.label_volume(study.source).array, study.labels)
    stacked = ps.stacked_volume(study.source)
    assert stacked.segment_numbers == tuple(study.present)
    assert np.array_equal(stacked.array, study.stacked())


def test_layers_groups_windows_and_rescale_are_read(study):
    segments = {
        n: {"label": name, "rgb": (30 * n, 200, 255 - 30 * n)} for n, name in study.present.items()
    }
    ps = read_gsps(encode_gsps(study.labels, study.source, segments, window=(50, 350)))
    assert [layer.order for layer in ps.layers] == sorted(segments)
    for layer in ps.layers:
        assert layer.description == segments[layer.order]["label"]
        assert np.abs(np.subtract(layer.display_rgb, segments[layer.order]["rgb"])).max() <= 1
    assert {n: g.label for n, g in ps.groups.items()} == study.present
    ((window, images),) = ps.windows
    assert (window.center, window.width, images) == (50.0, 350.0, ())
    assert ps.rescale == (1.0, -1024.0, "HU")
    assert ps.presentation_lut_shape == "IDENTITY"
    assert ps.sop_class_name == "Grayscale Softcopy Presentation State"
    (series_uid,) = ps.images
    assert series_uid == study.source.series_instance_uid
    assert len(ps.images[series_uid]) == study.labels.shape[0]


def test_graphics_per_image(study):
    ps = read_gsps(encode_gsps(study.labels, study.source, study.present))
    for k, ref in enumerate(study.source.slice_refs):
        annotations = ps.by_image.get((ref.sop_instance_uid, None), ())
        drawn = {a.layer for a in annotations}
        expected = {
            name.upper() for n, name in study.present.items() if (study.labels[k] == n).any()
        }
        assert drawn == expected
        for annotation in annotations:
            assert all(g.closed and g.group_id for g in annotation.graphics)
            assert [t.text for t in annotation.texts] == [
                name for name in study.present.values() if name.upper() == annotation.layer
            ]


def test_holes_and_islands_come_back(study):
    mask = np.zeros(study.labels.shape, bool)
    mask[3, 10:50, 10:50] = True
    mask[3, 20:40, 20:40] = False  # a hole
    mask[3, 27:33, 27:33] = True  # an island in the hole
    mask[4, 5:8, 5:60] = True
    mask[4, 5:60, 5:8] = True  # an L: a concave outline
    ps = read_gsps(encode_gsps(mask, study.source, {1: "Ring"}))
    assert np.array_equal(ps.stacked_volume(study.source).array[0], mask)


def test_overlapping_segments(study):
    stacked = np.stack([study.labels > 0, study.labels == 5])
    ps = read_gsps(encode_gsps(stacked, study.source, {1: "Body", 2: "Liver"}))
    assert np.array_equal(ps.stacked_volume(study.source).array, stacked)
    with pytest.raises(DecodingError, match="overlap"):
        ps.label_volume(study.source)
    smallest = ps.label_volume(study.source, overlap="smallest").array
    assert np.array_equal(smallest, np.where(stacked[1], 2, np.where(stacked[0], 1, 0)))


def test_simplified_outlines_stay_close(study):
    ps = read_gsps(
        encode_gsps(
            study.labels == 1, study.source, {1: "Body"}, outlines=OutlineOptions(tolerance_mm=1.5)
        )
    )
    back = ps.stacked_volume(study.source).array[0]
    truth = study.labels == 1
    assert 2 * (back & truth).sum() / (back.sum() + truth.sum()) > 0.97


def test_regions_by_layer_when_graphics_name_no_group(study):
    ref = study.source.slice_refs[2]
    square = GraphicObject("POLYLINE", [[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]])
    circle = GraphicObject("CIRCLE", [[40.5, 40.5], [40.5, 44.5]])
    line = GraphicObject("POLYLINE", [[1, 1], [5, 5]])
    ds = encode_presentation_state(
        [GraphicAnnotation("A", (ref,), (square, line)), GraphicAnnotation("B", (ref,), (circle,))],
        study.source,
        [GraphicLayer("A", 2, "first"), GraphicLayer("B", 1)],
    )
    ps = read_gsps(ds)
    assert ps.segments == {1: "B", 2: "first"}
    masks = ps.stacked_volume(study.source).array
    expected_square = np.zeros(study.labels.shape, bool)
    expected_square[2, 10:20, 10:20] = True
    rows, columns = np.mgrid[:64, :64] + 0.5
    expected_circle = np.zeros(study.labels.shape, bool)
    expected_circle[2] = (rows - 40.5) ** 2 + (columns - 40.5) ** 2 <= 16
    assert np.array_equal(masks[1], expected_square)
    assert np.array_equal(masks[0], expected_circle)


# -- hostile and damaged input ------------------------------------------------


def _damaged(study, change) -> bytes:
    liver = np.where(study.labels == 5, 5, 0).astype(np.uint8)
    ds = copy.deepcopy(encode_gsps(liver, study.source, {5: "Liver"}))
    change(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_not_dicom_is_refused(tmp_path):
    path = tmp_path / "x.dcm"
    path.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(NotDicomError) as info:
        read_gsps(path)
    assert str(path) in str(info.value)


def test_an_image_is_not_a_presentation_state(study):
    with pytest.raises(UnsupportedObjectError, match="not a softcopy presentation state"):
        read_gsps(study.folder / sorted(p.name for p in study.folder.iterdir())[0])


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8, 0.99])
def test_a_truncated_file_is_refused(study, tmp_path, fraction):
    data = _damaged(study, lambda ds: None)
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DecodingError, match="truncated") as info:
        read_gsps(path)
    assert str(path) in str(info.value)
    with pytest.raises(DecodingError, match="truncated"):
        read_gsps(path.read_bytes())
    read_gsps(data)  # the whole file reads


def test_a_deflated_file_reads_like_its_explicit_twin(study):
    ds = encode_gsps(np.where(study.labels == 5, 5, 0).astype(np.uint8), study.source, {5: "Liver"})
    explicit, packed = io.BytesIO(), io.BytesIO()
    ds.save_as(explicit, enforce_file_format=True)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(packed, enforce_file_format=True)
    deflated = packed.getvalue()
    assert len(deflated) < len(explicit.getvalue())  # the last value's offset lies past the end
    assert pydicom.dcmread(io.BytesIO(deflated)) == ds  # pydicom reads it whole
    expected = read_gsps(explicit.getvalue()).label_volume(study.source).array
    assert np.array_equal(read_gsps(deflated).label_volume(study.source).array, expected)
    with pytest.raises(DecodingError, match="truncated"):
        read_gsps(deflated_cut(deflated, 4))  # whole deflate stream, data set cut inside


def _first_graphic(ds):
    return ds.GraphicAnnotationSequence[0].GraphicObjectSequence[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: setattr(_first_graphic(ds), "GraphicData", [1.0, 2.0, 3.0]), "pairs"),
        (lambda ds: setattr(_first_graphic(ds), "GraphicData", [float("nan")] * 10), "finite"),
        (lambda ds: setattr(_first_graphic(ds), "GraphicDimensions", 3), "3-D"),
        (lambda ds: setattr(_first_graphic(ds), "GraphicType", "SPLINE"), "SPLINE"),
    ],
    ids=["odd-count", "nan", "3d", "unknown-type"],
)
def test_a_damaged_graphic_is_skipped_with_a_warning(study, change, message):
    data = _damaged(study, change)
    with pytest.warns(UserWarning, match="damaged graphic") as record:
        ps = read_gsps(data)
    (warning,) = [w for w in record if "damaged" in str(w.message)]
    assert "annotation 1 graphicobject 1" in str(warning.message)
    assert message in str(warning.message)
    back = ps.stacked_volume(study.source).array[0]
    truth = study.labels == 5
    assert back.sum() < truth.sum()  # the other outlines are still read
    assert not (back & ~truth).any()


def test_graphics_without_a_group_fall_back_to_layers(study):
    data = _damaged(study, lambda ds: delattr(_first_graphic(ds), "GraphicGroupID"))
    ps = read_gsps(data)
    assert ps.segments == {1: "Liver"}  # the layer's description
    assert np.array_equal(ps.stacked_volume(study.source).array[0], study.labels == 5)


def test_a_non_positive_window_is_refused(study):
    data = _damaged(study, lambda ds: setattr(ds.SoftcopyVOILUTSequence[0], "WindowWidth", "0"))
    with pytest.raises(InvalidAttributeError, match="window width") as info:
        read_gsps(data)
    assert info.value.attribute == "WindowWidth"


def test_a_rescale_that_is_not_a_number_is_refused(study):
    def change(ds: Dataset) -> None:
        ds.add_new("RescaleSlope", "LO", "abc")  # not a number, whatever the VR

    with pytest.raises((InvalidAttributeError, DecodingError)) as info:
        read_gsps(_damaged(study, change))
    assert "RescaleSlope" in str(info.value) or info.value.attribute == "RescaleSlope"


def test_graphics_on_other_images_are_a_grid_mismatch(study):
    def change(ds: Dataset) -> None:
        for item in ds.GraphicAnnotationSequence:
            item.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3.4.5"

    ps = read_gsps(_damaged(study, change))
    with pytest.raises(GridMismatchError, match="not in the source"):
        ps.stacked_volume(study.source)


@pytest.mark.parametrize("keyword", ["DisplayedAreaSelectionSequence", "PresentationLUTShape"])
def test_a_mandatory_module_missing_is_refused(study, keyword):
    with pytest.raises(DecodingError, match=f"lacks {keyword}") as info:
        read_gsps(_damaged(study, lambda ds: delattr(ds, keyword)))
    assert info.value.attribute == keyword
    assert "truncated" in info.value.hint


def test_missing_optional_modules_are_tolerated(study):
    def change(ds: Dataset) -> None:
        del ds.GraphicGroupSequence, ds.SoftcopyVOILUTSequence, ds.RescaleSlope
        for layer in ds.GraphicLayerSequence:
            del layer.GraphicLayerRecommendedDisplayCIELabValue

    ps = read_gsps(_damaged(study, change))
    assert ps.segments == {5: "group 5"}
    assert ps.windows == () and ps.rescale is None
    assert ps.layers[0].display_rgb is None
    assert np.array_equal(ps.stacked_volume(study.source).array[0], study.labels == 5)


def test_unknown_region_number_is_refused(study):
    ps = read_gsps(encode_gsps(study.labels == 5, study.source, {1: "Liver"}))
    with pytest.raises(InvalidAttributeError, match="no region 6"):
        ps.stacked_volume(study.source, segments=[6])


@pytest.mark.parametrize(
    ("sop_class", "name"),
    [
        (GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE, "Grayscale Softcopy Presentation State"),
        (COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE, "Color Softcopy Presentation State"),
    ],
)
def test_reads_what_pydicom_wrote_from_scratch(study, sop_class, name):
    """A minimal foreign presentation state: one layer, one closed polyline, no groups."""
    first = study.datasets[0]
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = "1.2.3.4.6"
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    image = Dataset()
    image.ReferencedSOPClassUID = first.SOPClassUID
    image.ReferencedSOPInstanceUID = first.SOPInstanceUID
    series.ReferencedImageSequence = [image]
    ds.ReferencedSeriesSequence = [series]
    layer = Dataset()
    layer.GraphicLayer = "ROI"
    ds.GraphicLayerSequence = [layer]  # no order: taken from the sequence
    annotation = Dataset()
    annotation.GraphicLayer = "ROI"
    graphic = Dataset()
    graphic.GraphicAnnotationUnits = "PIXEL"
    graphic.GraphicType = "POLYLINE"
    graphic.GraphicData = [2.0, 2.0, 6.0, 2.0, 6.0, 5.0, 2.0, 5.0, 2.0, 2.0]
    annotation.GraphicObjectSequence = [graphic]  # no image named: all images of the PS
    ds.GraphicAnnotationSequence = [annotation]
    area = Dataset()
    area.DisplayedAreaTopLeftHandCorner = [1, 1]
    area.DisplayedAreaBottomRightHandCorner = [64, 64]
    area.PresentationSizeMode = "SCALE TO FIT"
    ds.DisplayedAreaSelectionSequence = [area]
    if sop_class == GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE:
        with pytest.raises(DecodingError, match="lacks PresentationLUTShape") as info:
            read_gsps(ds)
        assert info.value.attribute == "PresentationLUTShape"
        ds.PresentationLUTShape = "IDENTITY"
    ps = read_gsps(ds)
    assert ps.sop_class_name == name
    masks = ps.stacked_volume(study.source).array[0]
    k = [r.sop_instance_uid for r in study.source.slice_refs].index(first.SOPInstanceUID)
    expected = np.zeros(study.labels.shape, bool)
    expected[k, 2:5, 2:6] = True
    assert np.array_equal(masks, expected)
