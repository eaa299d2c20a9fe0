"""Label values with gaps (1, 5, 7) are written as segments 1..N, as dcmqi writes them.

Before, every output kind refused a result whose labels were not 1..N ("renumber the
label map"), so a model returning BraTS's 1, 2, 4, or a TotalSegmentator map cut down
to a few structures, failed in the gateway and the CLI. The oracle here is a result
renumbered by hand: every output of the result with gaps must say what that one says,
and highdicom must read the SEG's segments as the labels they came from.
"""

from __future__ import annotations

from dataclasses import replace

import highdicom as hd
import numpy as np
import pytest

from radbridge.color import dicom_lab_to_rgb
from radbridge.errors import EncodingError
from radbridge.io.phantom import write_phantom
from radbridge.io.series import load_datasets
from radbridge.iods.source import Series
from radbridge.models import Finding, ModelMeasurement, ModelResult, SeriesInfo, run_model
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.results import GspsOutput, RtstructOutput, SegOutput, encode_results
from radbridge.sr import read_measurement_report

KINDS = ["seg", "sr", "ko", "sc", RtstructOutput(allow_empty=True), GspsOutput(allow_empty=True)]
GAPS = {1: 1, 4: 2, 6: 3}  # label -> the segment number a reader sees


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    files = write_phantom(tmp_path_factory.mktemp("numbering"), slices=10, size=48, seed=3)
    datasets = load_datasets(sorted(files.dicom_dir.glob("*.dcm")))
    source = Series.from_datasets(datasets)
    volume = source.volume(rescale=True)
    result = run_model(ReferenceCTModel(), volume, SeriesInfo.from_dataset(datasets[0]))
    return source, result


def _with_gaps(result: ModelResult) -> ModelResult:
    """The reference result cut down to labels 1, 4 and 6 (body, bone, lung nodule)."""
    array = np.where(np.isin(result.labels.array, list(GAPS)), result.labels.array, 0)
    kept = tuple(m for m in result.measurements if m.label in GAPS)
    loose = ModelMeasurement("volume", 3.0, "mm3", label=3)  # label 3: no segment
    return replace(
        result,
        labels=result.labels.with_array(array.astype(np.uint8)),
        segments={k: v for k, v in result.segments.items() if k in GAPS},
        measurements=(*kept, loose),
        findings=(Finding("nodule", "present", 0.9, label=6),),
    )


def _by_hand(gaps: ModelResult) -> ModelResult:
    """The same result renumbered 1, 2, 3 by the caller (what was needed before)."""
    lookup = np.zeros(8, np.uint8)
    for label, number in GAPS.items():
        lookup[label] = number
    return replace(
        gaps,
        labels=gaps.labels.with_array(lookup[gaps.labels.array]),
        segments={GAPS[k]: v for k, v in gaps.segments.items()},
        measurements=tuple(
            replace(m, label=GAPS.get(m.label)) if m.label is not None else m
            for m in gaps.measurements
        ),
        findings=tuple(replace(f, label=GAPS[f.label]) for f in gaps.findings),
    )


def _seg_masks(seg) -> dict[str, np.ndarray]:
    """highdicom's reading: segment label -> its frames' pixels."""
    theirs = hd.seg.Segmentation.from_dataset(seg, copy=True)
    return {
        theirs.get_segment_description(n).segment_label: theirs.get_pixels_by_source_instance(
            [uid for _, _, uid in theirs.get_source_image_uids()],
            segment_numbers=[n],
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
        )
        for n in theirs.segment_numbers
    }


def _report(sr) -> list[tuple]:
    return [
        (
            g.tracking_id,
            g.segment.segment_number if g.segment else None,
            sorted((str(m.concept.meaning), round(m.value, 6)) for m in g.measurements),
            [str(e.value.meaning) for e in g.evaluations],
        )
        for g in read_measurement_report(sr).groups
    ]


def test_labels_with_gaps_give_the_seg_and_sr_of_the_renumbered_result(phantom):
    source, reference = phantom
    gaps = _with_gaps(reference)
    ours = encode_results(source, gaps, KINDS)
    expected = encode_results(source, _by_hand(gaps), ["seg", "sr"])
    assert list(ours) == ["seg", "sr", "ko", "sc", "rtstruct", "gsps"]
    # the SEG: segments 1, 2, 3 named as labels 1, 4, 6, each with its label's voxels
    masks = _seg_masks(ours["seg"])
    assert masks.keys() == _seg_masks(expected["seg"]).keys()
    assert [int(d.SegmentNumber) for d in ours["seg"].SegmentSequence] == [1, 2, 3]
    for label, number in GAPS.items():
        seg = next(d for d in ours["seg"].SegmentSequence if d.SegmentNumber == number)
        theirs = next(d for d in expected["seg"].SegmentSequence if d.SegmentNumber == number)
        assert seg.SegmentLabel == theirs.SegmentLabel
        assert int(masks[seg.SegmentLabel].sum()) == int((gaps.labels.array == label).sum()) > 0
    # the SR: measurements and the finding on the renumbered segments; label 3 image-level
    assert _report(ours["sr"]) == _report(expected["sr"])
    assert any(group[0] == "image" for group in _report(ours["sr"]))


def test_the_other_kinds_keep_the_labels_in_the_segs_colours(phantom):
    """An RTSTRUCT's ROI Numbers need not be 1..N: they stay the label values, so a
    decoded structure set gives the labels back; every object colours a structure alike."""
    source, reference = phantom
    objects = encode_results(source, _with_gaps(reference), KINDS)
    rtstruct = objects["rtstruct"]
    assert [int(r.ROINumber) for r in rtstruct.StructureSetROISequence] == list(GAPS)
    seg_rgb = {
        str(item.SegmentLabel): dicom_lab_to_rgb(list(item.RecommendedDisplayCIELabValue))
        for item in objects["seg"].SegmentSequence
    }
    names = {int(r.ROINumber): str(r.ROIName) for r in rtstruct.StructureSetROISequence}
    for item in rtstruct.ROIContourSequence:
        name = names[int(item.ReferencedROINumber)]
        assert tuple(int(v) for v in item.ROIDisplayColor) == seg_rgb[name]
    sc_colours = {tuple(int(v) for v in p) for p in objects["sc"].pixel_array.reshape(-1, 3)}
    assert all(seg_rgb[name] in sc_colours for name in names.values())


def test_a_mask_given_to_the_output_is_renumbered_too(phantom):
    """The CLI gives the label map as the output's mask, the segments in the result."""
    source, reference = phantom
    gaps = _with_gaps(reference)
    bare = ModelResult(segments=gaps.segments, algorithm=gaps.algorithm)
    seg = encode_results(source, bare, [SegOutput(mask=gaps.labels, segmentation_type="labelmap")])
    pixels = (
        hd.seg.Segmentation.from_dataset(seg["seg"], copy=True)
        .get_volume(combine_segments=True)
        .array
    )
    assert sorted(np.unique(pixels).tolist()) == [0, 1, 2, 3]
    assert int((pixels == 3).sum()) == int((gaps.labels.array == 6).sum()) > 0


def test_probabilities_keep_the_channels_of_the_described_labels(phantom):
    source, reference = phantom
    shape = reference.labels.array.shape
    channels = np.zeros((7, *shape), np.float32)
    channels[4, 2:5] = 0.75  # label 5
    channels[6, 6:8] = 0.25  # label 7
    result = ModelResult(
        probabilities=channels,
        segments={5: "liver", 7: "liver_lesion"},
        algorithm=reference.algorithm,
    )
    seg = encode_results(source, result, ["seg"])["seg"]
    theirs = hd.seg.Segmentation.from_dataset(seg, copy=True)
    assert list(theirs.segment_numbers) == [1, 2]
    volume = theirs.get_volume(combine_segments=False).array  # [slice, row, column, segment]
    assert np.isclose(volume[..., 0].max(), 0.75, atol=0.01)
    assert np.isclose(volume[..., 1].max(), 0.25, atol=0.01)
    with pytest.raises(EncodingError, match="channel k is label k"):
        encode_results(source, replace(result, probabilities=channels[:5]), ["seg"])
    # one channel per described segment is taken in order (labels 5, 7 -> channels 0, 1)
    per_segment = replace(result, probabilities=channels[[4, 6]])
    again = encode_results(source, per_segment, ["seg"])["seg"]
    assert np.array_equal(again.pixel_array, seg.pixel_array)
    # beside a label map the probabilities are the PM's alone: their channels do not matter
    labels = np.zeros(shape, np.uint8)
    labels[2:5] = 5
    both = replace(result, labels=reference.labels.with_array(labels), probabilities=channels[:3])
    objects = encode_results(source, both, ["seg", "pm"])
    assert list(objects) == ["seg", "pm"] and objects["seg"].SegmentationType == "BINARY"


def test_a_label_value_no_segment_describes_is_refused_naming_it(phantom):
    source, reference = phantom
    gaps = _with_gaps(reference)
    extra = gaps.labels.array.copy()
    extra[0, 0, 0] = 5
    with pytest.raises(EncodingError, match=r"label values \[5\].*described: \[1, 4, 6\]"):
        encode_results(source, replace(gaps, labels=gaps.labels.with_array(extra)), ["seg"])
