"""radbridge.results: encode_results, the output-kind registry, one set of segment descriptions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom import Dataset

from radbridge.coding import sct
from radbridge.color import dicom_lab_to_rgb
from radbridge.errors import ConfigError, EncodingError, GridMismatchError, MissingAttributeError
from radbridge.geometry import Volume
from radbridge.io.phantom import write_phantom
from radbridge.io.series import load_datasets, read_series
from radbridge.iods.source import Series
from radbridge.models import AlgorithmInfo, ModelMeasurement, ModelResult, SeriesInfo, run_model
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.results import (
    GspsOutput,
    KoOutput,
    Output,
    OutputKind,
    ResultContext,
    ResultOptions,
    RtstructOutput,
    SegOutput,
    encode_results,
    output_kinds,
    register_output,
)
from radbridge.results import registry as registry_module
from radbridge.seg import AlgorithmIdentification, SegmentDescription
from radbridge.sr import read_measurement_report
from tests.peers.dicom3tools import dciodvfy
from tests.render.window_oracle import assert_grey_follows_window

ALL = ("seg", "sr", "ko", "sc", "pm", "rtstruct", "gsps")


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory):
    files = write_phantom(tmp_path_factory.mktemp("results"), slices=10, size=48, seed=3)
    return files.dicom_dir


@pytest.fixture(scope="module")
def phantom(phantom_folder):
    datasets = load_datasets(sorted(phantom_folder.glob("*.dcm")))
    source = Series.from_datasets(datasets)  # with pixels: encode_results may draw on them
    volume = source.volume(rescale=True)
    result = run_model(ReferenceCTModel(), volume, SeriesInfo.from_dataset(datasets[0]))
    probabilities = np.stack([(result.labels.array == 1).astype(np.float32)])
    return source, volume, result, probabilities


@pytest.fixture
def toy_kind():
    """A toy output kind, registered for one test: a one-line KOS naming its setting."""

    @dataclass(frozen=True)
    class NoteOutput(Output):
        kind: ClassVar[str] = "note"
        text: str = "seen"

    def encode(context: ResultContext, output: NoteOutput) -> Dataset | None:
        from radbridge.ko import encode_key_objects

        first = context.series.slice_refs[0].sop_instance_uid
        return encode_key_objects([first], context.series, description=output.text)

    register_output(OutputKind("note", NoteOutput, encode))
    yield NoteOutput
    registry_module._REGISTRY.pop("note")


def test_the_shipped_kinds_are_registered():
    # (the face's names are pinned in tests/test_faces.py)
    assert set(ALL) <= set(output_kinds())


def test_every_kind_from_one_result(phantom, tmp_path):
    source, _, result, _ = phantom
    # a described ROI or segment may be absent
    outputs = [*ALL[:-2], RtstructOutput(allow_empty=True), GspsOutput(allow_empty=True)]
    objects = encode_results(source, result, outputs)
    # no probabilities: no PM
    assert list(objects) == ["seg", "sr", "ko", "sc", "rtstruct", "gsps"]
    modalities = {kind: str(ds.Modality) for kind, ds in objects.items()}
    assert modalities == {
        "seg": "SEG",
        "sr": "SR",
        "ko": "KO",
        "sc": "OT",
        "rtstruct": "RTSTRUCT",
        "gsps": "PR",
    }
    for kind, ds in objects.items():
        path = tmp_path / f"{kind}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert not dciodvfy(path).errors, kind
    seg = hd.seg.segread(tmp_path / "seg.dcm")  # an outside reader agrees on the segments
    labels = {int(n): seg.get_segment_description(n).segment_label for n in seg.segment_numbers}
    assert labels == {n: str(name) for n, name in result.segments.items()}
    report = read_measurement_report(tmp_path / "sr.dcm")
    referenced = {g.segment.segment_number for g in report.groups if g.segment}
    assert referenced == set(labels)
    assert {g.segment.sop_instance_uid for g in report.groups if g.segment} == {
        objects["seg"].SOPInstanceUID
    }


def test_segments_are_described_once_for_all_outputs(phantom, monkeypatch):
    source, _, result, _ = phantom
    calls = []
    real = registry_module.describe_labels

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(registry_module, "describe_labels", counting)
    objects = encode_results(source, result, ["seg", "sr", "sc"])
    assert len(calls) == 1 and list(objects) == ["seg", "sr", "sc"]


def test_a_registered_kind_is_one_registration(phantom, toy_kind):
    source, _, result, _ = phantom
    assert "note" in output_kinds()
    objects = encode_results(source, result, ["seg", toy_kind(text="toy output")])
    assert list(objects) == ["seg", "note"]
    assert objects["note"].Modality == "KO"
    from radbridge.ko import read_key_objects

    assert read_key_objects(objects["note"]).description == "toy output"
    with pytest.raises(ConfigError, match="already registered"):
        register_output(OutputKind("note", toy_kind, lambda c, o: None))
    with pytest.raises(ConfigError, match="already registered"):
        register_output(OutputKind("seg", SegOutput, lambda c, o: None))


def test_a_gateway_rule_may_name_a_registered_kind(toy_kind, tmp_path):
    from dataclasses import replace

    from radbridge.gateway import GatewayConfig

    config = GatewayConfig.default(tmp_path)
    replace(config, rules=(replace(config.rules[0], outputs=("seg", "note")),)).check()
    with pytest.raises(ConfigError, match="unknown outputs"):
        replace(config, rules=(replace(config.rules[0], outputs=("seg", "nope")),)).check()


def test_unknown_repeated_and_misplaced_outputs(phantom, phantom_folder):
    source, _, result, _ = phantom
    with pytest.raises(ConfigError, match="unknown output kind 'nope'"):
        encode_results(source, result, ["nope"])
    with pytest.raises(ConfigError, match="requested twice"):
        encode_results(source, result, ["seg", SegOutput(segmentation_type="labelmap")])
    with pytest.raises(EncodingError, match='Request "seg" before "sr"'):
        encode_results(source, result, ["sr"])
    headers = load_datasets(sorted(phantom_folder.glob("*.dcm")), headers_only=True)
    with pytest.raises(MissingAttributeError, match="headers alone"):  # the SC draws on pixels
        encode_results(Series.from_datasets(headers), result, ["sc"])
    read = read_series(phantom_folder)  # a folder read once: its pixels when the SC asks
    assert list(encode_results(read, result, ["sc"])) == ["sc"]
    with pytest.raises(EncodingError, match="key images need source instances"):
        bare = Volume(np.ones((2, 8, 8), np.uint8), np.eye(4), "1.2.3")  # no instances
        labelled = ModelResult(labels=bare, segments={1: "liver"})
        encode_results(Series.from_volume(bare), labelled, ["ko"])


def test_probabilities_give_a_fractional_seg_and_a_map(phantom):
    source, _, result, probabilities = phantom
    only = ModelResult(
        probabilities=probabilities, segments={1: result.segments[1]}, algorithm=result.algorithm
    )
    objects = encode_results(source, only, ["seg", "pm", "sc"])  # no label map: no SC
    assert list(objects) == ["seg", "pm"]
    assert objects["seg"].SegmentationType == "FRACTIONAL"
    assert objects["pm"].Modality == source.modality


def test_kinds_without_a_label_map_are_skipped_and_the_rest_encoded(phantom, caplog):
    """A model that returns probabilities alone: ko, rtstruct and gsps raised (sc was
    skipped), so one of them in a gateway rule lost the SEG and SR of every job."""
    source, _, result, probabilities = phantom
    only = ModelResult(
        probabilities=probabilities, segments={1: result.segments[1]}, algorithm=result.algorithm
    )
    objects = encode_results(source, only, ALL)
    assert list(objects) == ["seg", "sr", "pm"]
    for kind in ("ko", "sc", "rtstruct", "gsps"):
        assert f"the {kind} output is skipped" in caplog.text
    keys = [source.slice_refs[0].sop_instance_uid]  # told what to flag, the KO needs no labels
    assert list(encode_results(source, only, [KoOutput(keys=keys)])) == ["ko"]


def test_series_options_and_profile_reach_every_object(phantom):
    from radbridge.seg import SeriesOptions

    source, _, result, _ = phantom
    options = ResultOptions(
        series={
            "seg": SeriesOptions(series_number=901, sop_instance_uid="2.25.11"),
            "ko": SeriesOptions(series_number=903, sop_instance_uid="2.25.13"),
        },
        profile="compact",
    )
    objects = encode_results(
        source,
        result,
        [SegOutput(segmentation_type="labelmap"), KoOutput(description="x")],
        options,
    )
    assert (objects["seg"].SeriesNumber, objects["seg"].SOPInstanceUID) == (901, "2.25.11")
    assert (objects["ko"].SeriesNumber, objects["ko"].SOPInstanceUID) == (903, "2.25.13")
    # the profile reaches the encoder: compact compresses a BINARY SEG, interop does not
    binary = encode_results(source, result, ["seg"], options)["seg"]
    plain = encode_results(source, result, ["seg"])["seg"]
    assert binary.file_meta.TransferSyntaxUID != plain.file_meta.TransferSyntaxUID


def test_per_object_groups_get_their_own_tracking_uid(phantom):
    """A segment with a Tracking UID: its per-lesion groups must not repeat it."""
    source, _, result, _ = phantom
    nodule = SegmentDescription(
        1,
        "nodule",
        category=sct("49755003", "Morphologically Altered Structure"),
        property_type=sct("27925004", "Nodule"),
        algorithm=AlgorithmIdentification("demo", "1"),
        tracking_id="nodule A",
        tracking_uid="2.25.4242",
    )
    labels = result.labels.with_array((result.labels.array == 6).astype(np.uint8))
    lesions = (
        ModelMeasurement("volume", 10.0, "mm3", label=1, instance=1),
        ModelMeasurement("volume", 12.0, "mm3", label=1, instance=2),
    )
    model = ModelResult(
        labels=labels,
        segments={1: nodule},
        measurements=lesions,
        algorithm=AlgorithmInfo("demo", "1"),
    )
    objects = encode_results(source, model, ["seg", "sr"])
    report = read_measurement_report(objects["sr"])
    uids = [g.tracking_uid for g in report.groups]
    assert [g.tracking_id for g in report.groups] == ["nodule A", "nodule A 1", "nodule A 2"]
    assert uids[0] == "2.25.4242" and len(set(uids)) == 3
    back = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_bytes(objects["sr"])))
    assert back.SOPInstanceUID == objects["sr"].SOPInstanceUID


def _bytes(ds: Dataset) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_gsps_outlines_the_result_with_the_segs_colours_and_measurements(phantom):
    source, _, result, _ = phantom
    measured = ModelResult(
        labels=result.labels,
        segments=result.segments,
        algorithm=result.algorithm,
        measurements=(ModelMeasurement("volume", 1234.5, "mm3", label=min(result.segments)),),
    )
    objects = encode_results(
        source, measured, ["seg", GspsOutput(allow_empty=True, window=(40, 400))]
    )
    seg, ps = objects["seg"], objects["gsps"]
    seg_lab = {
        int(s.SegmentNumber): list(s.RecommendedDisplayCIELabValue) for s in seg.SegmentSequence
    }
    layers = {
        int(item.GraphicLayerOrder): list(item.GraphicLayerRecommendedDisplayCIELabValue)
        for item in ps.GraphicLayerSequence
    }
    assert layers == seg_lab  # one description, one colour for both outputs
    texts = [
        t.UnformattedTextValue
        for a in ps.GraphicAnnotationSequence
        for t in a.get("TextObjectSequence", [])
    ]
    assert sum("volume 1234.5 mm3" in t for t in texts) == 1  # on the largest slice only
    from radbridge.pr import read_gsps

    back = read_gsps(ps).label_volume(source)
    assert np.array_equal(back.array, result.labels.array)
    # every described segment, drawn or not (allow_empty keeps those the model did not find)
    assert sorted(read_gsps(ps).segments) == sorted(result.segments)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_the_sc_shows_the_window_and_polarity_the_images_ask_for(
    phantom, phantom_folder, photometric
):
    """The phantom's images recommend 40/400, and the SC's grey follows it."""
    _, volume, result, _ = phantom
    datasets = load_datasets(sorted(phantom_folder.glob("*.dcm")))
    for ds in datasets:
        ds.PhotometricInterpretation = photometric
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40.0, 400.0)
    sc = encode_results(Series.from_datasets(datasets), result, ["sc"])["sc"]
    assert_grey_follows_window(
        sc.pixel_array,
        volume,
        result.labels.array,
        (40.0, 400.0),
        invert=photometric == "MONOCHROME1",
    )


def test_a_label_map_off_the_source_grid_is_refused_where_drawn_on_the_images(phantom):
    """sc and ko draw on / pick the source's own images: a shifted or resampled label
    map would land on the wrong pixels or slice, so they refuse it (the seg encodes it
    on its own grid); the sr leaves out the long axes it would draw on the images."""
    source, volume, result, _ = phantom
    shifted = volume.affine.copy()
    shifted[:3, 3] += shifted[:3, 2] * 5  # five columns to the side: same shape
    moved = replace(result, labels=Volume(result.labels.array, shifted))
    for kind in ("sc", "ko"):
        with pytest.raises(GridMismatchError, match=f"the {kind} output") as caught:
            encode_results(source, moved, [kind])
        assert caught.value.attribute == "labels"
    half = volume.affine.copy()
    half[:3, 1:3] *= 2  # resampled to half the in-plane resolution
    coarse = replace(result, labels=Volume(result.labels.array[:, ::2, ::2], half))
    objects = encode_results(source, coarse, ["seg", "sr"])
    assert hd.seg.Segmentation.from_dataset(objects["seg"]).number_of_segments >= 1
    assert "POLYLINE" not in str(objects["sr"])  # no long axis drawn on the wrong pixels
    on_grid = encode_results(source, result, ["seg", "sr"])["sr"]
    assert "POLYLINE" in str(on_grid)


def test_a_float_label_map_of_whole_numbers_is_one_label_map_for_every_kind(phantom, tmp_path):
    """A label map read as floats (nibabel's get_fdata()) is taken by every kind, as the
    seg takes it, and draws the same segments as the integer one."""
    source, _, result, _ = phantom
    floats = replace(result, labels=result.labels.with_array(result.labels.array.astype(float)))
    kinds = ["seg", "ko", "sc", RtstructOutput(allow_empty=True), GspsOutput(allow_empty=True)]
    as_floats = encode_results(source, floats, kinds)
    as_ints = encode_results(source, result, kinds)
    assert list(as_floats) == list(as_ints) == ["seg", "ko", "sc", "rtstruct", "gsps"]
    assert np.array_equal(as_floats["sc"].pixel_array, as_ints["sc"].pixel_array)
    rois = [
        [str(roi.ROIName) for roi in o["rtstruct"].StructureSetROISequence]
        for o in (as_floats, as_ints)
    ]
    assert rois[0] == rois[1]
    fractions = replace(floats, labels=floats.labels.with_array(floats.labels.array + 0.5))
    with pytest.raises(EncodingError, match="integers"):
        encode_results(source, fractions, ["sc"])


def test_a_measurement_without_unit_is_refused_naming_it(phantom):
    """An empty unit used to fail inside the code builder ("a code needs a value and a
    scheme, got '' / 'UCUM'"), naming neither the measurement nor what to give."""
    source, _, result, _ = phantom
    unitless = replace(result, measurements=(ModelMeasurement("mean", 50.0, "", label=1),))
    with pytest.raises(EncodingError, match="'mean' \\(label 1\\) has no unit") as caught:
        encode_results(source, unitless, ["seg", "sr"])
    assert caught.value.attribute == "MeasurementUnitsCodeSequence"
    assert '"1" for a value without unit' in str(caught.value)


def test_a_segment_without_a_colour_has_one_colour_in_every_object(phantom):
    """Segments described by codes alone: the overlays drew them in default colours while
    the SEG recommended none (each viewer then picks its own); now the SEG recommends the
    colour the SC, GSPS and RTSTRUCT show."""
    source, _, result, _ = phantom
    tumour = {
        "category": {
            "value": "49755003",
            "scheme": "SCT",
            "meaning": "Morphologically Altered Structure",
        },
        "type": {"value": "108369006", "scheme": "SCT", "meaning": "Tumor"},
    }
    numbers = sorted(int(v) for v in np.unique(result.labels.array) if v)
    coded = replace(result, segments={n: {"label": f"tumour {n}", **tumour} for n in numbers})
    kinds = ["seg", "sc", RtstructOutput(), GspsOutput()]
    objects = encode_results(source, coded, kinds)
    seg = objects["seg"]
    seg_rgb = {
        int(item.SegmentNumber): dicom_lab_to_rgb(list(item.RecommendedDisplayCIELabValue))
        for item in seg.SegmentSequence
    }
    assert sorted(seg_rgb) == numbers
    rt_rgb = {
        int(item.ReferencedROINumber): tuple(int(v) for v in item.ROIDisplayColor)
        for item in objects["rtstruct"].ROIContourSequence
    }
    gsps_rgb = {
        str(layer.GraphicLayer): dicom_lab_to_rgb(
            list(layer.GraphicLayerRecommendedDisplayCIELabValue)
        )
        for layer in objects["gsps"].GraphicLayerSequence
    }
    sc_colours = {tuple(int(v) for v in p) for p in objects["sc"].pixel_array.reshape(-1, 3)}
    for n in numbers:
        assert rt_rgb[n] == seg_rgb[n]
        assert gsps_rgb[f"TUMOUR {n}"] == seg_rgb[n]
        assert seg_rgb[n] in sc_colours


def test_the_sr_tells_the_left_kidney_from_the_right(phantom):
    """The sr output's groups come from the SEG's segments: "left kidney" and "right kidney"
    (laterality on the Segmented Property Type) used to be two groups Finding = Kidney that
    highdicom read alike. Now each has Finding Site Kidney with its Laterality, and the
    long axes drawn for its objects say so too."""
    source, _, result, _ = phantom
    present = [int(v) for v in np.unique(result.labels.array) if v][:2]
    array = np.zeros(result.labels.array.shape, np.uint8)
    for number, label in enumerate(present, start=1):
        array[result.labels.array == label] = number
    kidneys = ModelResult(
        labels=result.labels.with_array(array),
        segments={1: "left kidney", 2: "right kidney"},
        algorithm=AlgorithmInfo("demo", "1"),
        measurements=(
            ModelMeasurement("volume", 10.0, "mm3", label=1),
            ModelMeasurement("volume", 12.0, "mm3", label=2),
        ),
    )
    sr = encode_results(source, kidneys, ["seg", "sr"])["sr"]
    content = hd.sr.srread(pydicom.filebase.DicomBytesIO(_bytes(sr))).content
    theirs = content.get_volumetric_roi_measurement_groups()
    sites = [[(s.value.meaning, s.laterality.meaning) for s in g.finding_sites] for g in theirs]
    assert sites == [[("Kidney", "Left")], [("Kidney", "Right")]]
    assert [g.laterality for g in read_measurement_report(sr).groups] == [
        sct("7771000", "Left"),
        sct("24028007", "Right"),
    ]
