"""What the GSPS writer puts in the file, what it refuses, and dciodvfy on every variant."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging

import numpy as np
import pytest
from highdicom.color import CIELabColor
from pydicom import dcmread

from radbridge import Series
from radbridge.errors import EncodingError, GridMismatchError, MissingAttributeError
from radbridge.geometry import SliceRef
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series
from radbridge.pr import (
    GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    GraphicAnnotation,
    GraphicGroup,
    GraphicLayer,
    GraphicObject,
    OutlineOptions,
    SeriesOptions,
    Window,
    encode_gsps,
    encode_presentation_state,
)
from tests.peers import dciodvfy

from .conftest import save


@pytest.mark.peer
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"outlines": OutlineOptions(labels=False)},
        {"outlines": OutlineOptions(areas=True), "measurements": {5: "volume 12.5 ml"}},
        {"window": (-600, 1500)},
        {"outlines": OutlineOptions(tolerance_mm=1.0)},
        {"names": {1: "Körper", 5: "Печень"}},
    ],
    ids=["labels", "outlines-only", "areas-measurements", "window", "simplified", "utf8"],
)
def test_dciodvfy_has_no_errors(study, tmp_path, kwargs):
    kwargs = dict(kwargs)
    names = kwargs.pop("names", None)
    segments = {**study.present, **(names or {})}
    ds = encode_gsps(study.labels, study.source, segments, **kwargs)
    result = dciodvfy(save(ds, tmp_path))
    assert result.errors == [], result.output
    if names:  # Latin-1 (the source's ISO_IR 100) cannot hold Cyrillic
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        labels = {g.GraphicGroupLabel for g in dcmread(tmp_path / "ps.dcm").GraphicGroupSequence}
        assert {"Körper", "Печень"} <= labels


@pytest.mark.peer
def test_stacked_probabilities_are_outlined_at_the_level_and_valid(study, tmp_path):
    probabilities = study.stacked().astype(np.float32) * 0.7
    ds = encode_gsps(probabilities, study.source, study.present)
    assert dciodvfy(save(ds, tmp_path)).errors == []
    low = encode_gsps(
        probabilities,
        study.source,
        study.present,
        allow_empty=True,
        outlines=OutlineOptions(level=0.8),
    )
    assert "GraphicAnnotationSequence" not in low  # nothing reaches 0.8


def test_header_modules(study):
    ds = encode_gsps(study.labels, study.source, study.present)
    first = study.datasets[0]
    assert ds.SOPClassUID == GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE
    assert ds.Modality == "PR"
    assert ds.StudyInstanceUID == first.StudyInstanceUID
    assert ds.PatientID == first.PatientID
    assert ds.SeriesInstanceUID != first.SeriesInstanceUID
    (series,) = ds.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == first.SeriesInstanceUID
    referenced = {item.ReferencedSOPInstanceUID for item in series.ReferencedImageSequence}
    assert referenced == {d.SOPInstanceUID for d in study.datasets}
    (area,) = ds.DisplayedAreaSelectionSequence
    assert list(area.DisplayedAreaTopLeftHandCorner) == [1, 1]
    assert list(area.DisplayedAreaBottomRightHandCorner) == [first.Columns, first.Rows]
    assert [float(v) for v in area.PresentationPixelSpacing] == [
        float(v) for v in first.PixelSpacing
    ]
    assert ds.PresentationLUTShape == "IDENTITY"
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept), ds.RescaleType) == (
        float(first.RescaleSlope),
        float(first.RescaleIntercept),
        "HU",
    )
    (voi,) = ds.SoftcopyVOILUTSequence  # every slice recommends the same window
    assert "ReferencedImageSequence" not in voi
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (
        float(first.WindowCenter),
        float(first.WindowWidth),
    )


def test_one_layer_and_group_per_segment_with_cielab_colours(study):
    segments = {
        n: {"label": name, "rgb": (20 * n, 255 - 20 * n, 90)} for n, name in study.present.items()
    }
    ds = encode_gsps(study.labels, study.source, segments)
    layers = {item.GraphicLayerOrder: item for item in ds.GraphicLayerSequence}
    assert sorted(layers) == sorted(segments)
    for number, spec in segments.items():
        layer = layers[number]
        assert layer.GraphicLayerDescription == spec["label"]
        expected = CIELabColor(*_lab(spec["rgb"])).value
        assert (
            np.abs(np.subtract(layer.GraphicLayerRecommendedDisplayCIELabValue, expected)).max()
            <= 2
        )
    groups = {g.GraphicGroupID: g.GraphicGroupLabel for g in ds.GraphicGroupSequence}
    assert groups == study.present


def _lab(rgb):
    """sRGB (0-255) -> CIE L*a*b* (D65), written out here as the oracle's input."""
    c = np.asarray(rgb, float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def test_an_annotation_per_non_empty_slice_and_segment(study):
    ds = encode_gsps(study.labels, study.source, study.present)
    uid_to_slice = {r.sop_instance_uid: k for k, r in enumerate(study.source.slice_refs)}
    layer_number = {i.GraphicLayer: i.GraphicLayerOrder for i in ds.GraphicLayerSequence}
    annotated = set()
    for item in ds.GraphicAnnotationSequence:
        (image,) = item.ReferencedImageSequence
        number = layer_number[item.GraphicLayer]
        annotated.add((uid_to_slice[image.ReferencedSOPInstanceUID], number))
        for graphic in item.GraphicObjectSequence:
            assert graphic.GraphicType == "POLYLINE"
            assert graphic.GraphicAnnotationUnits == "PIXEL"
            assert graphic.GraphicGroupID == number
            data = np.reshape(graphic.GraphicData, (-1, 2))
            assert graphic.NumberOfGraphicPoints == len(data)
            assert np.array_equal(data[0], data[-1]) and graphic.GraphicFilled == "N"
        (text,) = item.TextObjectSequence
        assert text.UnformattedTextValue == study.present[number]
    expected = {
        (k, n)
        for n in study.present
        for k in range(study.labels.shape[0])
        if (study.labels[k] == n).any()
    }
    assert annotated == expected


def test_areas_and_measurement_text(study):
    liver = np.where(study.labels == 5, 5, 0).astype(np.uint8)
    ds = encode_gsps(
        liver,
        study.source,
        {5: "Liver"},
        outlines=OutlineOptions(areas=True),
        measurements={5: "volume 1.2 ml"},
        options=SeriesOptions(content_label="OUTLINES"),
    )
    assert ds.ContentLabel == "OUTLINES"
    spacing = [float(v) for v in study.datasets[0].PixelSpacing]
    counts = (liver == 5).reshape(liver.shape[0], -1).sum(axis=1)
    largest = int(np.argmax(counts))
    uid_to_slice = {r.sop_instance_uid: k for k, r in enumerate(study.source.slice_refs)}
    texts = {}
    for item in ds.GraphicAnnotationSequence:
        k = uid_to_slice[item.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
        texts[k] = item.TextObjectSequence[0].UnformattedTextValue
    for k, text in texts.items():
        area = f"{counts[k] * spacing[0] * spacing[1]:.1f} mm2"
        tail = "; volume 1.2 ml" if k == largest else ""
        assert text == f"Liver; {area}{tail}"


def test_window_given_replaces_the_sources(study):
    ds = encode_gsps(study.labels, study.source, study.present, window=Window(-600, 1500, "LUNG"))
    (voi,) = ds.SoftcopyVOILUTSequence
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (-600, 1500)
    assert voi.WindowCenterWidthExplanation == "LUNG"


def test_slices_without_a_window_get_the_stored_range(study, caplog):
    datasets = [copy.deepcopy(d) for d in study.datasets]
    for d in datasets:
        del d.WindowCenter, d.WindowWidth
    source = Series.from_datasets(datasets)  # headers only: the stored range is used
    with caplog.at_level(logging.WARNING):
        ds = encode_gsps(study.labels, source, study.present)
    (voi,) = ds.SoftcopyVOILUTSequence
    slope, intercept = float(datasets[0].RescaleSlope), float(datasets[0].RescaleIntercept)
    bits, signed = int(datasets[0].BitsStored), int(datasets[0].PixelRepresentation) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    low, high = low * slope + intercept, high * slope + intercept
    assert float(voi.WindowCenter) == pytest.approx((low + high) / 2)
    assert float(voi.WindowWidth) == pytest.approx(high - low)
    assert "recommend no window" in caplog.text


def test_slopes_that_differ_give_windows_in_stored_values(study):
    datasets = [copy.deepcopy(d) for d in study.datasets]
    for k, d in enumerate(datasets):
        d.RescaleSlope = str(1 + k % 2)
        d.RescaleIntercept = "-1024"
    ds = encode_gsps(study.labels, Series.from_datasets(datasets), study.present)
    assert "RescaleSlope" not in ds
    by_uid = {d.SOPInstanceUID: d for d in datasets}
    seen = set()
    for item in ds.SoftcopyVOILUTSequence:
        for image in item.ReferencedImageSequence:
            d = by_uid[image.ReferencedSOPInstanceUID]
            slope = float(d.RescaleSlope)
            assert float(item.WindowCenter) == pytest.approx((40 + 1024) / slope)
            assert float(item.WindowWidth) == pytest.approx(400 / slope)
            seen.add(d.SOPInstanceUID)
    assert seen == set(by_uid)


def test_monochrome1_images_get_an_inverse_presentation_lut(study):
    datasets = [copy.deepcopy(d) for d in study.datasets]
    for d in datasets:
        d.PhotometricInterpretation = "MONOCHROME1"
    ds = encode_gsps(study.labels, Series.from_datasets(datasets), study.present)
    assert ds.PresentationLUTShape == "INVERSE"


def test_refuses_colour_images(study):
    datasets = [copy.deepcopy(d) for d in study.datasets]
    for d in datasets:
        d.PhotometricInterpretation = "RGB"
    with pytest.raises(EncodingError, match="monochrome") as info:
        encode_gsps(study.labels, Series.from_datasets(datasets), study.present)
    assert info.value.attribute == "PhotometricInterpretation"


def test_refuses_a_source_without_images(study):
    with pytest.raises(MissingAttributeError, match="names none"):
        encode_gsps(study.labels, Series.from_volume(study.source.volume()), study.present)


def test_refuses_a_mask_off_the_grid(study):
    with pytest.raises(GridMismatchError):
        encode_gsps(study.labels[:, :32], study.source, study.present)


def test_refuses_labels_nobody_described(study):
    with pytest.raises(EncodingError, match="no segment description"):
        encode_gsps(study.labels, study.source, {5: "Liver"})


def test_refuses_an_empty_segment_unless_allowed(study):
    segments = {**study.present, 9: "Spleen"}
    with pytest.raises(EncodingError, match="segment 9"):
        encode_gsps(study.labels, study.source, segments)
    ds = encode_gsps(study.labels, study.source, segments, allow_empty=True)
    assert "SPLEEN" in {item.GraphicLayer for item in ds.GraphicLayerSequence}


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ({}, "no segments"),
        ({0: "Zero"}, "positive"),
        ({5: ""}, "1 to 64"),
        ({5: {"label": "Liver", "rgb": (300, 0, 0)}}, "0-255"),
    ],
)
def test_refuses_bad_segment_descriptions(study, segments, message):
    with pytest.raises(EncodingError, match=message):
        encode_gsps(study.labels == 5, study.source, segments)


def _one(study, graphic=None, layer="A", group=None, images=None):
    refs = images if images is not None else (study.source.slice_refs[0],)
    return encode_presentation_state(
        [GraphicAnnotation(layer, refs, (graphic or GraphicObject("POINT", [[3, 3]]),))],
        study.source,
        [GraphicLayer("A", 1)],
        groups=[GraphicGroup(1, "one")] if group else [],
    )


def test_the_former_order_source_first_still_works_with_a_warning(study, tmp_path):
    fixed = SeriesOptions(series_instance_uid="2.25.71", sop_instance_uid="2.25.72")
    fixed = dataclasses.replace(fixed, timestamp=dt.datetime(2024, 1, 2, 3, 4, 5))
    layers = [GraphicLayer("A", 1)]
    notes = [
        GraphicAnnotation("A", study.source.slice_refs[:1], (GraphicObject("POINT", [[3, 3]]),))
    ]
    current = encode_presentation_state(notes, study.datasets, layers, options=fixed)
    expected = save(current, tmp_path)
    with pytest.warns(DeprecationWarning, match=r"encode_presentation_state\(source, \.\.\.\)"):
        former = encode_presentation_state(study.datasets, notes, layers, options=fixed)
    assert save(former, tmp_path, "former.dcm").read_bytes() == expected.read_bytes()


def test_presentation_state_of_own_graphics_is_valid(study, tmp_path):
    ellipse = GraphicObject("ELLIPSE", [[10, 20], [30, 20], [20, 15], [20, 25]], filled=True)
    ds = _one(study, ellipse)
    assert dciodvfy(save(ds, tmp_path)).errors == []
    assert ds.GraphicAnnotationSequence[0].GraphicObjectSequence[0].GraphicFilled == "Y"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "B"}, "unknown graphic layer"),
        ({"graphic": GraphicObject("POINT", [[3, 3]], group_id=2)}, "unknown graphic group"),
        ({"graphic": GraphicObject("POINT", [[300, 3]])}, "outside the image"),
        ({"images": (SliceRef("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"),)}, "not in the source"),
    ],
    ids=["layer", "group", "outside", "image"],
)
def test_encode_presentation_state_refuses_what_does_not_fit(study, kwargs, message):
    with pytest.raises(EncodingError, match=message):
        _one(study, **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("POLYLINE", [[1, 1]]), "takes 2 or more"),
        (("CIRCLE", [[1, 1], [2, 2], [3, 3]]), "takes 2 points"),
        (("POINT", [[1, np.nan]]), "finite"),
        (("SPLINE", [[1, 1]]), "graphic type"),
    ],
)
def test_graphic_objects_are_checked(args, message):
    with pytest.raises(EncodingError, match=message):
        GraphicObject(*args)


def test_only_closed_graphics_are_filled():
    with pytest.raises(EncodingError, match="closed"):
        GraphicObject("POLYLINE", [[1, 1], [3, 1], [3, 3]], filled=True)


def test_file_reads_back_with_pydicom(study, tmp_path):
    path = save(encode_gsps(study.labels, study.source, study.present), tmp_path)
    ds = dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.file_meta.MediaStorageSOPClassUID == GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE


@pytest.mark.peer
def test_an_outline_too_long_for_explicit_vr_switches_to_implicit(tmp_path, caplog):
    """Graphic Data over 0xFFFE bytes has no Explicit VR length: Implicit VR is written."""
    files = write_phantom(tmp_path / "big", slices=2, size=1024, seed=2, nifti=False)
    source = read_series(files.dicom_dir)
    yy, xx = np.mgrid[:1024, :1024]
    radius = 470 + 8 * np.sin(np.arctan2(yy - 512, xx - 512) * 1200)  # a disc with teeth
    mask = np.zeros((2, 1024, 1024), bool)
    mask[0] = np.hypot(yy - 512, xx - 512) < radius
    with caplog.at_level(logging.INFO, logger="radbridge.iods"):
        ds = encode_gsps(mask, source, {1: "Blob"}, outlines=OutlineOptions(labels=False))
    objects = ds.GraphicAnnotationSequence[0].GraphicObjectSequence
    longest = max(range(len(objects)), key=lambda i: len(objects[i].GraphicData))
    outline = objects[longest]
    assert len(outline.GraphicData) * 4 > 0xFFFE, len(objects)  # FL: 4 bytes a value
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert "Implicit VR Little Endian" in caplog.text
    path = save(ds, tmp_path)
    back = dcmread(path)
    points = back.GraphicAnnotationSequence[0].GraphicObjectSequence[longest].GraphicData
    np.testing.assert_array_equal(np.asarray(points), np.asarray(outline.GraphicData))
    assert dciodvfy(path).errors == []
