"""What viewers and IHE AI Results consumers get from one result (issue 18, part 2).

- the SR's image-plane long axes (TID 1410 groups with POLYLINE SCOORDs) are drawn by
  dcmjs's Cornerstone3D measurement-report adapter — what OHIF hydrates an SR with —
  as Length annotations on the key slice of each lesion;
- every object names the model as Contributing Equipment (pydicom and highdicom read it);
- the SR is the root report: its evidence lists the SEG and the KOS;
- each object passes dciodvfy with no error.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from radbridge.io.phantom import write_phantom
from radbridge.io.series import load_datasets
from radbridge.iods.source import Series
from radbridge.models import SeriesInfo, run_model
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.results import SrOutput, encode_results
from radbridge.sr import read_measurement_report
from tests.peers.dcmjs import dcmjs_read_annotations
from tests.peers.dicom3tools import dciodvfy

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("viewers")
    files = write_phantom(folder / "phantom", slices=24, size=96, seed=5)
    datasets = load_datasets(sorted(files.dicom_dir.glob("*.dcm")))
    source = Series.from_datasets(datasets)
    volume = source.volume(rescale=True)
    result = run_model(ReferenceCTModel(), volume, SeriesInfo.from_dataset(datasets[0]))
    objects = encode_results(source, result, ["seg", "ko", "sr"])
    paths = {}
    for kind, ds in objects.items():
        paths[kind] = folder / f"{kind}.dcm"
        ds.save_as(paths[kind], enforce_file_format=True)
    return source, result, objects, paths


def _objects_measured(result):
    return {(m.label, m.instance) for m in result.measurements if m.instance is not None}


def test_dcmjs_draws_each_lesion_long_axis_on_its_key_slice(encoded, tmp_path):
    source, result, _, paths = encoded
    lesions = _objects_measured(result)
    assert lesions, "the phantom has nodules and a liver lesion the model measures one by one"
    drawn = dcmjs_read_annotations(paths["sr"], tmp_path)["Length"]
    assert len(drawn) == len(lesions)
    labels = np.asarray(result.labels.array)
    spacing = result.labels.spacing
    slices = {ref.sop_instance_uid: k for k, ref in enumerate(source.slice_refs)}
    for annotation in drawn:
        k = slices[annotation["sopInstanceUid"]]  # a source image of the series
        (c0, r0), (c1, r1) = annotation["points"]
        # both ends are pixel centres of a lesion on that slice (nodule 6 or lesion 7)
        for c, r in ((c0, r0), (c1, r1)):
            assert labels[k, int(r - 0.5), int(c - 0.5)] in (6, 7)
        length = float(np.hypot((c1 - c0) * spacing[2], (r1 - r0) * spacing[1]))
        assert annotation["length"] == pytest.approx(length, abs=1e-3)
        assert length > 2.0


def test_long_axes_are_planar_groups_radbridge_reads_back(encoded):
    source, result, _, paths = encoded
    report = read_measurement_report(paths["sr"])
    planar = [g for g in report.groups if g.template == "1410"]
    assert len(planar) == len(_objects_measured(result))
    for group in planar:
        (axis,) = group.measurements
        assert axis.concept.value == "103339001" and axis.unit.value == "mm"
        assert axis.region.graphic_type == "POLYLINE" and len(axis.region.points) == 4
        outline = group.region.points
        assert group.region.graphic_type == "POLYLINE" and outline[:2] == outline[-2:]
        assert group.region.sop_instance_uid == axis.region.sop_instance_uid
    without = encode_results(source, result, ["seg", SrOutput(long_axes=False)])["sr"]
    assert not [g for g in read_measurement_report(without).groups if g.template == "1410"]


def test_every_object_names_the_model_as_contributing_equipment(encoded):
    _, result, _, paths = encoded
    for kind, path in paths.items():
        ds = pydicom.dcmread(path)
        (item,) = ds.ContributingEquipmentSequence
        assert item.Manufacturer == "radbridge", kind
        assert item.ManufacturerModelName == result.algorithm.name
        assert item.SoftwareVersions == result.algorithm.version
        purpose = item.PurposeOfReferenceCodeSequence[0]
        assert (purpose.CodeValue, purpose.CodingSchemeDesignator) == ("109102", "DCM")
    seg = hd.seg.segread(paths["seg"])  # an outside reader opens it with the sequence
    assert seg.ContributingEquipmentSequence[0].ManufacturerModelName == result.algorithm.name
    sr = hd.sr.srread(paths["sr"])
    assert sr.ContributingEquipmentSequence[0].SoftwareVersions == result.algorithm.version


def test_the_report_is_the_root_naming_seg_and_kos(encoded):
    _, _, objects, paths = encoded
    ds = pydicom.dcmread(paths["sr"])
    listed = {
        ref.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert {objects["seg"].SOPInstanceUID, objects["ko"].SOPInstanceUID} <= listed


def test_dciodvfy_finds_no_error(encoded):
    _, _, _, paths = encoded
    for kind, path in paths.items():
        assert dciodvfy(path).errors == [], kind


@pytest.mark.slow
def test_pixelmed_finds_no_template_error(encoded):
    from tests.peers.pixelmed import validate_sr

    _, _, _, paths = encoded
    result = validate_sr([paths["sr"]])[paths["sr"].absolute()]
    assert "Root Template Validation Complete" in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert not errors, errors[:3]
