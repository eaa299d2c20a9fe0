"""What the writer puts in the file, what it refuses, and dciodvfy on every variant."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.pixels import apply_color_lut

from radbridge.errors import EncodingError, GridMismatchError, MissingAttributeError
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.common import SeriesOptions
from radbridge.iods.rtstruct import (
    ContourOptions,
    ROIDescription,
    RTROIInterpretedType,
    encode_rtstruct,
    read_rtstruct,
)
from radbridge.iods.seg import SegmentDescription, encode_segmentation
from radbridge.iods.source import SourceSeries
from tests.peers import dciodvfy

from .conftest import ALGORITHM, PHANTOM, rois, segment


def save(ds, tmp_path, name="rs.dcm"):
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.peer
@pytest.mark.parametrize(
    "options",
    [
        ContourOptions(),
        ContourOptions(hole_style="keyhole"),
        ContourOptions(hole_style="xor"),
        ContourOptions(tolerance_mm=1.0),
    ],
    ids=["separate", "keyhole", "xor", "simplified"],
)
def test_dciodvfy_has_no_errors(study, tmp_path, options):
    ds = encode_rtstruct(study.labels, study.source, rois(), contours=options)
    result = dciodvfy(save(ds, tmp_path))
    assert result.errors == [], result.output


def test_modules_and_references(study):
    ds = encode_rtstruct(
        study.labels,
        study.source,
        rois(),
        options=SeriesOptions(series_description="AI contours", series_number=77),
        structure_set_label="AI ORGANS",
    )
    assert ds.Modality == "RTSTRUCT" and ds.SeriesNumber == 77
    assert ds.StudyInstanceUID == study.source.study_instance_uid
    assert ds.FrameOfReferenceUID == study.source.frame_of_reference_uid
    assert ds.StructureSetLabel == "AI ORGANS" and ds.ApprovalStatus == "UNAPPROVED"
    assert "ContentLabel" not in ds and "ReferencedSeriesSequence" not in ds
    (frame,) = ds.ReferencedFrameOfReferenceSequence
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == study.source.series_instance_uid
    assert {i.ReferencedSOPInstanceUID for i in series.ContourImageSequence} == {
        r.sop_instance_uid for r in study.source.slice_refs
    }
    by_uid = {r.sop_instance_uid: k for k, r in enumerate(study.source.slice_refs)}
    positions = study.source.slice_positions()
    for roi_item in ds.ROIContourSequence:
        for contour in roi_item.ContourSequence:
            assert contour.ContourGeometricType == "CLOSED_PLANAR"
            (image,) = contour.ContourImageSequence
            k = by_uid[image.ReferencedSOPInstanceUID]
            z = np.asarray(contour.ContourData, float).reshape(-1, 3)[:, 2]
            assert np.allclose(z, positions[k][2], atol=1e-4)
            assert int(contour.NumberOfContourPoints) * 3 == len(contour.ContourData)


def test_roi_attributes_codes_and_colours(study):
    ds = encode_rtstruct(study.labels, study.source, rois())
    structure = {int(i.ROINumber): i for i in ds.StructureSetROISequence}
    observation = {int(i.ReferencedROINumber): i for i in ds.RTROIObservationsSequence}
    colour = {int(i.ReferencedROINumber): i.ROIDisplayColor for i in ds.ROIContourSequence}
    for number, (name, property_type, category) in PHANTOM.items():
        assert structure[number].ROIName == name
        assert structure[number].ROIGenerationAlgorithm == "AUTOMATIC"
        algo = structure[number].ROIDerivationAlgorithmIdentificationSequence[0]
        assert (algo.AlgorithmName, algo.AlgorithmVersion) == (ALGORITHM.name, ALGORITHM.version)
        item = observation[number]
        assert item.RTROIIdentificationCodeSequence[0].CodeValue == property_type.value
        assert item.SegmentedPropertyCategoryCodeSequence[0].CodeValue == category.value
        expected = "ORGAN" if category.value == "123037004" else "GTV"
        if property_type.value == "38266002":  # Entire body: the external contour
            expected = "EXTERNAL"
        assert item.RTROIInterpretedType == expected
        assert [int(v) for v in colour[number]] == list(segment(number).display_rgb)


def test_names_without_codes_and_defaults(study):
    mask = (study.labels == 5).astype(np.uint8) * 3
    ds = encode_rtstruct(mask, study.source, {3: {"label": "PTV_70", "interpreted_type": "ptv"}})
    (structure,) = ds.StructureSetROISequence
    (observation,) = ds.RTROIObservationsSequence
    assert (int(structure.ROINumber), structure.ROIName) == (3, "PTV_70")
    assert structure.ROIGenerationAlgorithm == "MANUAL"
    assert observation.RTROIInterpretedType == "PTV"
    assert "RTROIIdentificationCodeSequence" not in observation
    assert len(ds.ROIContourSequence[0].ROIDisplayColor) == 3


@pytest.mark.peer
@pytest.mark.parametrize(
    ("name", "charset"), [("Läsion", "ISO_IR 100"), ("肝臓 – left", "ISO_IR 192")]
)
def test_names_outside_the_source_repertoire_switch_to_utf8(study, tmp_path, name, charset):
    assert study.source.context.SpecificCharacterSet == "ISO_IR 100"
    ds = encode_rtstruct(study.labels == 5, study.source, {1: name})
    path = save(ds, tmp_path)
    back = read_rtstruct(path)
    assert back.rois[1].name == name
    assert back.dataset.SpecificCharacterSet == charset
    assert dciodvfy(path).errors == []


def test_interpreted_type_accepts_enum_and_strings():
    assert ROIDescription(1, "a", interpreted_type="avoidance").interpreted_type == "AVOIDANCE"
    assert ROIDescription(1, "a", interpreted_type="AVOID").interpreted_type == "AVOIDANCE"
    assert (
        ROIDescription(1, "a", interpreted_type=RTROIInterpretedType.CTV).interpreted_type == "CTV"
    )


def test_stacked_masks_may_overlap(study):
    body = study.labels > 0
    liver = study.labels == 5
    ds = encode_rtstruct(
        np.stack([body, liver]),
        study.source,
        [ROIDescription(1, "External", "EXTERNAL"), ROIDescription(2, "Liver")],
    )
    rs = read_rtstruct(ds)
    np.testing.assert_array_equal(rs.mask("External", study.source).array, body)
    np.testing.assert_array_equal(rs.mask(2, study.source).array, liver)
    labels = rs.label_volume(study.source, overlap="smallest").array
    assert (labels == 2).sum() == liver.sum() and (labels == 1).sum() == body.sum() - liver.sum()


def test_volume_on_the_source_grid_is_accepted(study):
    volume = Volume.from_geometry(study.labels, study.source.geometry)
    ds = encode_rtstruct(volume, study.source, rois())
    assert len(ds.StructureSetROISequence) == len(PHANTOM)


@pytest.mark.peer
def test_long_contours_switch_to_implicit_vr(tmp_path):
    size = 1024
    yy, xx = np.mgrid[:size, :size]
    radius = 480 + 4 * np.sin(np.arctan2(yy - 512, xx - 512) * 400)  # a wiggly disc
    mask = (np.hypot(yy - 512, xx - 512) < radius)[None].astype(np.uint8)
    affine = np.diag([1.0, 0.8, 0.8, 1.0])
    affine[:3, 3] = [-412.3457, -409.8765, 1000.25]
    geometry = VolumeGeometry(mask.shape, affine, "2.25.1")
    source = SourceSeries.from_volume(Volume.from_geometry(mask, geometry))
    ds = encode_rtstruct(mask, source, {1: "Blob"})
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    path = save(ds, tmp_path)
    back = dcmread(path)
    assert back.ROIContourSequence[0].ContourSequence[0]["ContourData"].VR == "DS"
    np.testing.assert_array_equal(read_rtstruct(path).mask(1, source).array, mask.astype(bool))
    assert dciodvfy(path).errors == []


# -- refused input --------------------------------------------------------------------------


def test_mask_off_the_source_grid_is_refused(study):
    with pytest.raises(GridMismatchError, match="source grid"):
        encode_rtstruct(study.labels[:, :-1], study.source, rois())
    shifted = study.source.geometry.affine.copy()
    shifted[:3, 3] += 5.0
    moved = Volume(study.labels, shifted, study.source.frame_of_reference_uid)
    with pytest.raises(GridMismatchError, match="different grid"):
        encode_rtstruct(moved, study.source, rois())
    other_frame = Volume(study.labels, study.source.geometry.affine, "2.25.99")
    with pytest.raises(GridMismatchError, match="frame of reference"):
        encode_rtstruct(other_frame, study.source, rois())


def test_empty_roi_is_refused_unless_allowed(study):
    mask = (study.labels == 5).astype(np.uint8)
    two = [ROIDescription(1, "Liver"), ROIDescription(2, "Spleen")]
    with pytest.raises(EncodingError, match=r"ROI 2 \('Spleen'\) has no voxels") as err:
        encode_rtstruct(mask, study.source, two)
    assert "allow_empty" in str(err.value)
    ds = encode_rtstruct(mask, study.source, two, allow_empty=True)
    assert "ContourSequence" not in ds.ROIContourSequence[1]


def test_unknown_interpreted_type_is_refused(study):
    with pytest.raises(EncodingError, match="unknown RT ROI Interpreted Type 'TUMOUR'") as err:
        encode_rtstruct(
            study.labels == 5, study.source, {1: {"label": "x", "interpreted_type": "TUMOUR"}}
        )
    assert "GTV" in str(err.value)  # the hint lists the Defined Terms


@pytest.mark.parametrize(
    ("mask", "rois_", "match"),
    [
        ("labels", {1: "Body"}, r"label values \[2, 3, 4, 5, 6, 7\] have no ROI description"),
        ("float", {1: "Body"}, "needs integers"),
        ("stacked3", {1: "a", 2: "b"}, "3 masks but 2 ROIs"),
        ("probability>1", {1: "a"}, r"\[0, 1\]"),
        ("labels", {}, "no ROIs described"),
        ("labels", [ROIDescription(1, "a"), ROIDescription(1, "b")], "unique"),
    ],
)
def test_bad_masks_and_descriptions_are_refused(study, mask, rois_, match):
    arrays = {
        "labels": study.labels,
        "float": study.labels.astype(float),
        "stacked3": np.stack([study.labels == k for k in (1, 2, 3)]),
        "probability>1": np.full((1, *study.labels.shape), 1.5),
    }
    with pytest.raises(EncodingError, match=match):
        encode_rtstruct(arrays[mask], study.source, rois_)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"contours": "x"}, None),
        ({"structure_set_label": "x" * 17}, "16 characters"),
    ],
)
def test_bad_options_are_refused(study, kwargs, match):
    if "contours" in kwargs:
        with pytest.raises(EncodingError, match="hole style"):
            ContourOptions(hole_style="zigzag")
        with pytest.raises(EncodingError, match="tolerance_mm"):
            ContourOptions(tolerance_mm=-1)
        return
    with pytest.raises(EncodingError, match=match):
        encode_rtstruct(study.labels == 5, study.source, {1: "Liver"}, **kwargs)


def test_automatic_roi_needs_its_algorithm():
    with pytest.raises(EncodingError, match="needs its algorithm"):
        ROIDescription(1, "Liver", generation_algorithm="AUTOMATIC").validate()
    with pytest.raises(EncodingError, match="1 to 64 characters"):
        ROIDescription(1, "", generation_algorithm="MANUAL").validate()


def test_source_without_frame_of_reference_is_refused(study):
    geometry = VolumeGeometry(study.labels.shape, study.source.geometry.affine, None)
    source = SourceSeries.from_volume(Volume.from_geometry(study.labels, geometry))
    with pytest.raises(MissingAttributeError, match="frame of reference"):
        encode_rtstruct(study.labels, source, rois())


def test_rois_without_a_colour_take_the_seg_palette_colour_of_their_number(study):
    # one mask as an RTSTRUCT and as a LABELMAP SEG with a palette: a viewer showing
    # both must colour each number alike (the RTSTRUCT had its own palette, by position)
    numbers = (1, 2, 3)
    labels = np.where(np.isin(study.labels, numbers), study.labels, 0).astype(np.uint8)
    plain = [ROIDescription(n, PHANTOM[n][0]) for n in numbers]
    rs = encode_rtstruct(labels, study.source, plain)
    colours = {int(i.ReferencedROINumber): list(i.ROIDisplayColor) for i in rs.ROIContourSequence}
    described = [
        SegmentDescription(n, PHANTOM[n][0], PHANTOM[n][2], PHANTOM[n][1], algorithm=ALGORITHM)
        for n in numbers
    ]
    seg = encode_segmentation(
        labels, study.source, described, segmentation_type="labelmap", palette=True
    )
    # pydicom applies the SEG's 16-bit Palette Color LUT (8-bit colour x 257)
    rgb = apply_color_lut(np.array(numbers, np.uint8), dcmread_bytes(seg)) // 257
    assert colours == {n: [int(v) for v in rgb[k]] for k, n in enumerate(numbers)}
    assert len({tuple(c) for c in colours.values()}) == 3


def dcmread_bytes(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return dcmread(io.BytesIO(buffer.getvalue()))
