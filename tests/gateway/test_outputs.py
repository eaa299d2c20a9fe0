"""What the gateway delivers passes the independent validators and says what the model found."""

from __future__ import annotations

import pydicom
import pytest

from radbridge.io.phantom import generate_phantom
from radbridge.iods.ko import read_key_objects
from radbridge.iods.sr import read_measurement_report
from radbridge.models import SeriesInfo, run_model
from radbridge.models.reference_ct import ReferenceCTModel
from tests.gateway.conftest import query, receive
from tests.gateway.test_core import by_modality, files_of, run_until_idle
from tests.peers.dicom3tools import dciodvfy
from tests.peers.pixelmed import validate_sr


@pytest.fixture
def delivered(gateway, phantom_study):
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    return by_modality(gateway.config.archive_dir)


@pytest.mark.peer
@pytest.mark.slow
def test_seg_sr_and_ko_pass_dciodvfy_and_pixelmed(delivered):
    for modality, path in delivered.items():
        result = dciodvfy(path)
        assert not result.errors, (modality, result.summary())
    results = validate_sr([delivered["SR"], delivered["KO"]])
    for path, result in results.items():
        assert "Root Template Validation Complete" in result.output, result.output[-2000:]
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert not errors, (path.name, errors[:5])


def test_sr_reports_the_model_measurements_on_the_seg_segments(delivered, phantom_study):
    report = read_measurement_report(delivered["SR"])
    seg = pydicom.dcmread(delivered["SEG"], stop_before_pixels=True)
    segments = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    phantom = generate_phantom(slices=24, size=96, seed=1)
    result = run_model(ReferenceCTModel(), phantom.hu, SeriesInfo(modality="CT"))
    groups = {g.tracking_id: g for g in report.groups}
    for number, label in segments.items():
        group = groups[label]
        assert group.template == "1411"
        assert group.segment.sop_instance_uid == seg.SOPInstanceUID
        assert group.segment.segment_number == number
        expected = {
            m.name: m.value for m in result.measurements if m.label == number and m.instance is None
        }
        if "volume" not in expected:  # per-lesion labels: values are in per-object groups
            continue
        volume = next(m for m in group.measurements if m.concept.meaning == "Volume")
        assert volume.value == pytest.approx(expected["volume"], rel=1e-5)  # DS-rounded spacing
        assert volume.unit.value == "mm3"
    for m in result.measurements:
        if m.instance is not None:  # one group per detected object
            assert f"{segments[m.label]} {m.instance}" in groups
    nodules = [f for f in result.findings if f.label == 6]
    (nodule_group,) = [
        g for g in report.groups if g.segment and g.segment.segment_number == 6 and g.evaluations
    ]
    assert nodule_group.evaluations[0].value.meaning.lower() == nodules[0].value


def test_ko_flags_a_slice_of_the_source_series(delivered, phantom_study):
    ko = read_key_objects(delivered["KO"])
    sources = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in files_of(phantom_study)
    }
    assert len(ko.references) == 1 and ko.references[0].sop_instance_uid in sources


def test_overlay_and_map_outputs(config, phantom_study, tmp_path, monkeypatch):
    """Rules can add an SC overlay, an RTSTRUCT; a PM only when the model gives probabilities."""
    from dataclasses import replace

    import numpy as np

    from radbridge.gateway import Gateway

    (tmp_path / "probmodel.py").write_text(
        "import numpy as np\n"
        "from radbridge.models import ModelResult\n"
        "def model(volume, info):\n"
        "    p = np.clip((volume.array + 1000) / 2000, 0, 1).astype(np.float32)[None]\n"
        "    labels = volume.with_array((p[0] > 0.6).astype(np.uint8))\n"
        "    return ModelResult(labels=labels, probabilities=p, segments={1: 'body'})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rules = (
        replace(config.rules[0], name="ref", outputs=("seg", "sc", "pm", "rtstruct", "gsps")),
        replace(config.rules[0], name="prob", model="probmodel:model", outputs=("seg", "pm")),
    )
    gateway = Gateway(replace(config, rules=rules))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        states = [r["state"] for r in query(gateway, "SELECT state FROM jobs")]
        assert states == ["done", "done"]
        modalities = sorted(
            str(pydicom.dcmread(p, stop_before_pixels=True).Modality)
            for p in gateway.config.archive_dir.rglob("*.dcm")
        )
        # the reference model has no probability map: its PM is skipped, not faked
        # SEG + SC (OT) + RTSTRUCT for the reference rule (its model has no probability
        # map: no PM), SEG + PM (modality of the source) for the probability model
        assert modalities == ["CT", "OT", "PR", "RTSTRUCT", "SEG", "SEG"]
        sc = [
            p
            for p in gateway.config.archive_dir.rglob("*.dcm")
            if pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID.endswith("7.4")
        ]
        assert len(sc) == 1
        from radbridge.iods.pm import read_parametric_map

        pm = [
            p
            for p in gateway.config.archive_dir.rglob("*.dcm")
            if pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID.endswith("1.30")
        ]
        assert len(pm) == 1
        values = read_parametric_map(pm[0]).array
        assert values.min() >= 0 and values.max() <= 1 and np.ptp(values) > 0
        from radbridge.iods.rtstruct import read_rtstruct

        (rt,) = [
            p
            for p in gateway.config.archive_dir.rglob("*.dcm")
            if "RTSTRUCT" in str(pydicom.dcmread(p, stop_before_pixels=True).Modality)
        ]
        structures = read_rtstruct(rt)
        seg = next(p for p in gateway.config.outbox_dir.glob("1/seg.dcm"))
        segments = pydicom.dcmread(seg, stop_before_pixels=True).SegmentSequence
        assert sorted(structures.rois) == [int(s.SegmentNumber) for s in segments]
        assert pydicom.dcmread(rt).SeriesNumber == 905  # the gateway's numbering of kinds
        from radbridge.pr import read_gsps

        (outlines,) = [
            p
            for p in gateway.config.archive_dir.rglob("*.dcm")
            if pydicom.dcmread(p, stop_before_pixels=True).Modality == "PR"
        ]
        state = read_gsps(outlines)
        assert state.dataset.SeriesNumber == 906
        assert state.dataset.SeriesDescription.startswith("AI outlines")
        # the same segments, labels and colours as the SEG
        assert state.segments == {int(s.SegmentNumber): str(s.SegmentLabel) for s in segments}
        seg_lab = {int(s.SegmentNumber): list(s.RecommendedDisplayCIELabValue) for s in segments}
        assert {
            layer.order: list(item.GraphicLayerRecommendedDisplayCIELabValue)
            for layer, item in zip(state.layers, state.dataset.GraphicLayerSequence, strict=True)
        } == seg_lab
    finally:
        gateway.close()


def test_models_with_label_gaps_or_probabilities_alone_are_delivered(
    config, phantom_study, tmp_path, monkeypatch
):
    """Two models a rule may run: labels 1 and 4 only (a BraTS-like numbering), and
    probabilities without a label map. Both jobs died: the SEG refused label 4 ("renumber
    the label map"), and ko, rtstruct and gsps raised for the missing label map, losing
    the SEG and SR with them. Now the gaps are SEG segments 1, 2 (ROI numbers stay 1, 4),
    and the kinds with nothing to draw are skipped, as sc and pm are."""
    from dataclasses import replace

    from radbridge.gateway import Gateway
    from radbridge.iods.rtstruct import read_rtstruct

    (tmp_path / "oddmodels.py").write_text(
        "import numpy as np\n"
        "from radbridge.models import ModelResult\n"
        "def gaps(volume, info):\n"
        "    hu = volume.array\n"
        "    labels = np.where(hu > 300, 4, np.where(hu > -300, 1, 0)).astype(np.uint8)\n"
        "    segments = {1: 'body', 4: 'bone'}\n"
        "    return ModelResult(labels=volume.with_array(labels), segments=segments)\n"
        "def probabilities(volume, info):\n"
        "    p = np.clip((volume.array + 1000) / 2000, 0, 1).astype(np.float32)[None]\n"
        "    return ModelResult(probabilities=p, segments={1: 'body'})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    everything = ("seg", "sr", "ko", "sc", "rtstruct", "gsps", "pm")
    rules = (
        replace(config.rules[0], name="gaps", model="oddmodels:gaps", outputs=("seg", "rtstruct")),
        replace(config.rules[0], name="prob", model="oddmodels:probabilities", outputs=everything),
    )
    gateway = Gateway(replace(config, rules=rules))
    try:
        receive(gateway, files_of(phantom_study))
        run_until_idle(gateway)
        jobs = query(gateway, "SELECT rule, state, error FROM jobs ORDER BY rule")
        assert [(j["rule"], j["state"]) for j in jobs] == [("gaps", "done"), ("prob", "done")], jobs
        kinds = {}
        for path in gateway.config.archive_dir.rglob("*.dcm"):
            ds = pydicom.dcmread(path)
            kinds.setdefault(str(ds.Modality), []).append(ds)
        # gaps: SEG + RTSTRUCT; probabilities: SEG (FRACTIONAL) + SR + PM (the source's modality)
        assert sorted((m, len(v)) for m, v in kinds.items()) == [
            ("CT", 1),
            ("RTSTRUCT", 1),
            ("SEG", 2),
            ("SR", 1),
        ]
        segs = {str(ds.SegmentationType): ds for ds in kinds["SEG"]}
        assert sorted(segs) == ["BINARY", "FRACTIONAL"]
        assert [
            (int(s.SegmentNumber), str(s.SegmentLabel)) for s in segs["BINARY"].SegmentSequence
        ] == [
            (1, "body"),
            (2, "bone"),
        ]
        (rt_path,) = [
            p for p in gateway.config.archive_dir.rglob("*.dcm")
            if pydicom.dcmread(p, stop_before_pixels=True).Modality == "RTSTRUCT"
        ]  # fmt: skip
        assert sorted(read_rtstruct(rt_path).rois) == [1, 4]
    finally:
        gateway.close()
