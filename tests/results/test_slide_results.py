"""Slide results through the registry: ``slide-seg`` and ``ann`` on a whole-slide image.

Outside oracles: highdicom reads the tiled SEG (total pixel matrix, value for value)
and the annotations (points, measurement values); dciodvfy reports no error; wsidicom
opens the annotations with the slide and reads the same tissue pixels the model saw.
"""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.coding import sct, ucum
from radbridge.errors import ConfigError, EncodingError, ModelError
from radbridge.geometry import Volume
from radbridge.io.series import Series
from radbridge.io.slide_phantom import write_slide_phantom
from radbridge.models import (
    AlgorithmInfo,
    ModelAnnotations,
    ModelResult,
    SeriesInfo,
    load_model,
    run_slide_model,
)
from radbridge.models.reference_slide import TISSUE_SEGMENT
from radbridge.results import (
    AnnOutput,
    SlideSegOutput,
    encode_results,
    output_kind,
    output_kinds,
)
from radbridge.wsi import read_slide
from tests.peers import dciodvfy


@pytest.fixture(scope="module")
def slide_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slide")
    write_slide_phantom(folder, size=(600, 900), tile=128, levels=3, seed=3)
    return folder


@pytest.fixture(scope="module")
def tissue(slide_folder):
    """The reference model's result on level 1 (its limit set so that level is chosen)."""
    from radbridge.models.reference_slide import ReferenceSlideModel

    slide = read_slide(slide_folder)
    model = ReferenceSlideModel(max_pixels=300 * 450)
    return slide, run_slide_model(model, slide, SeriesInfo(modality="SM"))


def _saved(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def test_slide_kinds_are_registered_for_slides():
    assert output_kinds(source="slide") == ("slide-seg", "ann")
    assert "seg" in output_kinds(source="series")
    assert output_kind("slide-seg").source == "slide"
    assert output_kind("seg").source == "series"


@pytest.mark.peer
def test_the_reference_model_finds_what_wsidicom_shows_as_tissue(slide_folder, tissue):
    from wsidicom import WsiDicom

    slide, result = tissue
    assert result.level == 1 and result.slide_labels.shape == slide.level(1).shape == (300, 450)
    with WsiDicom.open(slide_folder) as theirs:
        level = theirs.levels[1]
        pixels = np.asarray(theirs.read_region((0, 0), level.level, level.size.to_tuple()))
    expected = pixels[..., :3].mean(axis=-1) < 220
    assert 0.02 < expected.mean() < 0.9  # the phantom has tissue and glass
    np.testing.assert_array_equal(result.slide_labels.astype(bool), expected)


@pytest.mark.peer
def test_slide_seg_and_ann_read_by_highdicom_with_exact_values(tissue, tmp_path):
    import highdicom as hd

    slide, result = tissue
    objects = encode_results(slide, result, ["slide-seg", "ann"])
    assert list(objects) == ["slide-seg", "ann"]
    seg = _saved(objects["slide-seg"], tmp_path / "seg.dcm")
    ann = _saved(objects["ann"], tmp_path / "ann.dcm")
    assert dciodvfy(seg).errors == []
    assert dciodvfy(ann).errors == []
    theirs = hd.seg.segread(seg)
    assert theirs.get_segment_description(1).segment_label == "Tissue"
    assert int(theirs.TotalPixelMatrixRows) == 300 and theirs.DimensionOrganizationType == (
        "TILED_FULL"
    )
    matrix = theirs.get_total_pixel_matrix(combine_segments=True)
    np.testing.assert_array_equal(matrix, result.slide_labels)
    (group,) = hd.ann.annread(ann).get_annotation_groups()
    (made,) = result.annotations
    assert group.label == "Tissue regions" and group.graphic_type.value == "POINT"
    points = np.array([p for p, _ in made.annotations])[:, 0]
    np.testing.assert_array_equal(np.array(group.get_graphic_data("2D"))[:, 0], points)
    names, values, units = group.get_measurements()
    assert [n.value for n in names] == ["42798000"] and [u.value for u in units] == ["um2"]
    areas = np.array([v for _, (v,) in made.annotations], np.float32)
    np.testing.assert_array_equal(values[:, 0], areas)
    # the areas add up to the tissue (µm², 0.5 µm pixels on level 1)
    assert areas.sum() == pytest.approx(result.slide_labels.sum() * 0.25, rel=1e-5)
    # both name the model (Contributing Equipment) and reference level 1's image
    for path in (seg, ann):
        ds = hd.seg.segread(seg) if path == seg else hd.ann.annread(ann)
        assert ds.ContributingEquipmentSequence[0].ManufacturerModelName == (
            "radbridge-reference-slide"
        )
    level_uid = slide.level(1).datasets[0].SOPInstanceUID
    assert hd.ann.annread(ann).ReferencedImageSequence[0].ReferencedSOPInstanceUID == level_uid


@pytest.mark.peer
def test_probabilities_give_a_fractional_sparse_seg(slide_folder, tmp_path):
    import highdicom as hd

    slide = read_slide(slide_folder)
    shape = slide.level(2).shape
    probabilities = np.zeros((1, *shape), np.float32)
    probabilities[0, 10:60, 20:90] = np.linspace(0.1, 1.0, 70, dtype=np.float32)
    result = ModelResult(
        level=2,
        slide_probabilities=probabilities,
        segments={1: TISSUE_SEGMENT},
        algorithm=AlgorithmInfo("heat", "1"),
    )
    (ds,) = encode_results(slide, result, [SlideSegOutput(omit_empty_tiles=True)]).values()
    assert ds.SegmentationType == "FRACTIONAL" and ds.DimensionOrganizationType == "TILED_SPARSE"
    assert int(ds.NumberOfFrames) == 1  # the only tile with a value (tiles of 128)
    path = _saved(ds, tmp_path / "fractional.dcm")
    assert dciodvfy(path).errors == []
    theirs = hd.seg.segread(path).get_total_pixel_matrix(rescale_fractional=False)
    np.testing.assert_array_equal(theirs[..., 0], np.rint(probabilities[0] * 255))


@pytest.mark.peer
def test_wsidicom_opens_the_annotations_with_the_slide(slide_folder, tissue, tmp_path):
    from wsidicom import WsiDicom

    slide, result = tissue
    folder = tmp_path / "slide"
    folder.mkdir()
    for file in slide_folder.glob("*.dcm"):
        (folder / file.name).write_bytes(file.read_bytes())
    (ds,) = encode_results(slide, result, [AnnOutput()]).values()
    _saved(ds, folder / "ann.dcm")
    (made,) = result.annotations
    with WsiDicom.open(folder) as theirs:
        (instance,) = theirs.annotations
        (group,) = list(instance)
        got = [np.array(a.geometry.to_coords()) for a in group.annotations]
    np.testing.assert_array_equal(np.vstack(got), np.vstack([p for p, _ in made.annotations]))


def test_radiology_kinds_on_a_slide_are_refused_before_anything_is_encoded(tissue):
    slide, result = tissue
    with pytest.raises(ConfigError, match=r"\['seg', 'sr'\] do not encode on a whole-slide"):
        encode_results(slide, result, ["slide-seg", "seg", "sr"])


def test_slide_kinds_on_a_series_are_refused():
    series = Series.from_volume(Volume(np.zeros((2, 8, 8)), np.eye(4), "1.2.3"))
    labels = np.zeros((2, 8, 8), np.uint8)
    result = ModelResult(labels=Volume(labels, np.eye(4)), segments={1: "liver"})
    with pytest.raises(ConfigError, match=r"\['ann'\] do not encode on a radiology series"):
        encode_results(series, result, ["seg", "ann"])


def test_a_kind_reading_the_other_source_is_told_so(tissue):
    from radbridge.results import ResultContext

    slide, result = tissue
    with pytest.raises(ConfigError, match="the source is a slide"):
        ResultContext(slide, result).series  # noqa: B018 - the property raises


def test_a_kind_reading_a_slide_from_a_series_is_told_so_and_what_to_use():
    from radbridge.results import ResultContext

    series = Series.from_volume(Volume(np.zeros((2, 8, 8)), np.eye(4), "1.2.3"))
    with pytest.raises(ConfigError, match="encodes on a slide, but the source is a radiology") as e:
        ResultContext(series, ModelResult()).slide  # noqa: B018 - the property raises
    assert e.value.hint and "seg" in e.value.hint and "ann" not in e.value.hint


def test_annotation_groups_given_as_descriptions_and_no_mask(tissue, tmp_path):
    """A result with annotations only: ``ann`` works, ``slide-seg`` says what is missing."""
    import highdicom as hd

    from radbridge.ann import AnnotationGroupDescription, read_annotations

    slide, _ = tissue
    cells = AnnotationGroupDescription(
        1,
        "Cells",
        category=sct("91723000", "Anatomical Structure"),
        property_type=sct("4421005", "Cell"),
        graphic_type="polygon",
        algorithm_type="manual",
    )
    triangles = [np.array([[x, 5.0], [x + 4, 5.0], [x + 2, 9.0]]) for x in range(0, 40, 10)]
    result = ModelResult(level=0, annotations=((cells, iter(triangles)),))
    (ds,) = encode_results(slide, result, ["ann"]).values()
    path = _saved(ds, tmp_path / "cells.dcm")
    (group,) = hd.ann.annread(path).get_annotation_groups()
    assert len(group.get_graphic_data("2D")) == 4
    assert read_annotations(path).groups[0].description.label == "Cells"
    with pytest.raises(EncodingError, match="no slide label map"):
        encode_results(slide, result, ["slide-seg"])


def test_ann_is_skipped_without_annotations(tissue, caplog):
    slide, result = tissue
    bare = ModelResult(level=1, slide_labels=result.slide_labels, segments=result.segments)
    objects = encode_results(slide, bare, ["slide-seg", "ann"])
    assert list(objects) == ["slide-seg"]
    assert "no annotations: ANN skipped" in caplog.text


class _VolumeModel:
    name, version = "volume-only", "1"

    def __call__(self, volume, series):
        return ModelResult()


def _labels(shape: tuple[int, int], extra: int) -> np.ndarray:
    """Labels 0 and 1, and one pixel of ``extra`` (uint8 for a bincount, int16 otherwise)."""
    labels = np.zeros(shape, np.uint8 if extra >= 0 else np.int16)
    labels[10:20, 10:20] = 1
    labels[-1, -1] = extra
    return labels


class _Returns:
    name, version = "returns", "1"

    def __init__(self, result):
        self.result = result

    def run_slide(self, slide, series):
        return self.result


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_VolumeModel(), "takes volumes, not slides"),
        (_Returns(ModelResult(level=5)), r"level 5; the slide has levels 0\.\.2"),
        (_Returns(ModelResult(slide_labels=np.zeros((2, 2)))), "without their level"),
        (
            _Returns(ModelResult(level=1, slide_labels=np.zeros((300, 449), np.uint8))),
            r"shape \(300, 449\), but level 1 is 300 x 450",
        ),
        (
            _Returns(ModelResult(level=2, slide_probabilities=np.zeros((1, 150, 225)))),
            r"expected \[segment, row, column\] = \[0, 150, 225\]",
        ),
        (
            _Returns(ModelResult(level=2, slide_labels=_labels((150, 225), 3), segments={1: "a"})),
            r"slide labels \[3\] it did not describe",
        ),
        (
            _Returns(ModelResult(level=2, slide_labels=_labels((150, 225), -2), segments={1: "a"})),
            r"slide labels \[-2\] it did not describe",
        ),
        (_Returns(ModelResult(level=0, annotations=("cells",))), "annotation group 1 as str"),
        (_Returns(ModelResult(labels=Volume(np.zeros((1, 2, 2)), np.eye(4)))), "volume masks"),
        (_Returns("nothing"), "returned str, not a ModelResult"),
    ],
)
def test_run_slide_model_refuses_what_does_not_fit(tissue, model, message):
    slide, _ = tissue
    with pytest.raises(ModelError, match=message):
        run_slide_model(model, slide, SeriesInfo(modality="SM"))


def test_the_reference_model_loads_by_name_and_refuses_monochrome(tmp_path):
    from tests.wsi.slides import write_slide

    model = load_model("reference-slide")
    assert model.name == "radbridge-reference-slide"
    fluorescence = write_slide(tmp_path / "fluo", samples=1, levels=1, size=(128, 128))
    slide = read_slide(fluorescence.folder)
    with pytest.raises(ModelError, match=r"needs a colour .* 1 sample"):
        run_slide_model(model, slide, SeriesInfo(modality="SM"))


def test_model_annotations_need_values_when_they_have_measurements(tissue):
    slide, _ = tissue
    group = ModelAnnotations(
        "Spots",
        [np.array([[1.0, 2.0]])],  # points only, but one measurement declared
        category=sct("91723000", "Anatomical Structure"),
        property_type=sct("4421005", "Cell"),
        graphic_type="point",
        measurements=((sct("42798000", "Area"), ucum("um2", "square micrometer")),),
    )
    result = ModelResult(level=0, annotations=(group,), algorithm=AlgorithmInfo("a", "1"))
    with pytest.raises(EncodingError, match=r"annotation 1 of group 'Spots' is not \(points"):
        encode_results(slide, result, ["ann"])
