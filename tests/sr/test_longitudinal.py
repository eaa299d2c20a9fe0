"""Longitudinal comparison of two visits of the phantom (issue 19, files).

A baseline phantom study and its follow-up (one nodule resolved, one grown, one shrunk,
the liver lesion stable, a new nodule) are measured by the reference CT model and
encoded as SEG + TID 1500 SR by ``radbridge.results``; ``radbridge sr compare`` follows
the lesions. Truth is the phantom's own label masks: each reported change must be
within one voxel of volume per surface voxel of the lesion (at both visits) of the
true change, the status must be the phantom's, and tracking UIDs must carry over.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import highdicom as hd
import numpy as np
import pytest
from pydicom import dcmread
from scipy import ndimage
from typer.testing import CliRunner

from radbridge.cli import app, main
from radbridge.errors import EncodingError, GeometryError, InvalidAttributeError
from radbridge.geometry import Volume
from radbridge.io.phantom import FollowUp, write_phantom
from radbridge.io.registration import register_rigid
from radbridge.io.series import read_series
from radbridge.models import SeriesInfo
from radbridge.models.reference_ct import ReferenceCTModel
from radbridge.results import encode_results
from radbridge.sr import (
    compare_reports,
    concepts,
    encode_comparison,
    longitudinal,
    read_measurement_report,
    report_from_json,
    report_to_json,
)

from ..peers import dicom3tools, pixelmed

SHAPE = {"slices": 60, "size": 128, "seed": 3, "nifti": False}
STATUSES = {"grown", "shrunk", "stable", "new", "resolved"}


def _visit(folder, follow_up):
    files = write_phantom(folder, follow_up=follow_up, **SHAPE)
    series = read_series(files.dicom_dir)
    result = ReferenceCTModel()(series.volume(rescale=True), SeriesInfo(modality="CT"))
    objects = encode_results(series, result, ["seg", "sr"])
    for kind, ds in objects.items():
        ds.save_as(folder / f"{kind}.dcm", enforce_file_format=True)
    return files, folder / "sr.dcm"


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    prior = _visit(tmp_path_factory.mktemp("visit0"), None)
    current = _visit(tmp_path_factory.mktemp("visit1"), FollowUp(days=91))
    return prior, current


@pytest.fixture(scope="module")
def comparison(visits):
    (_, prior_sr), (_, current_sr) = visits
    return compare_reports(prior_sr, current_sr)


@pytest.fixture(scope="module")
def comparison_file(comparison, tmp_path_factory):
    path = tmp_path_factory.mktemp("compare") / "comparison.dcm"
    encode_comparison(comparison).save_as(path, enforce_file_format=True)
    return path


def _truth(files):
    """Per true lesion: centre, volume of its label mask (mm3) and its surface voxels."""
    truth = json.loads(files.truth_json.read_text())
    labels = np.load(files.labels_npy)
    series = read_series(files.dicom_dir)
    voxel = float(np.prod(series.geometry.spacing))
    out = []
    for lesion in truth["lesions"]:
        centre = np.array(lesion["centre_lps"])
        index = np.rint(series.geometry.lps_to_index(centre[None])[0]).astype(int)
        components, _ = ndimage.label(labels == lesion["label"])
        mask = components == components[tuple(index)]
        surface = mask & ~ndimage.binary_erosion(mask)
        out.append((lesion, centre, mask.sum() * voxel, int(surface.sum()), voxel))
    return out


def _nearest(truth, centre):
    return min(truth, key=lambda t: math.dist(t[1], centre))


def test_statuses_and_changes_agree_with_the_phantom(visits, comparison):
    (prior_files, _), (current_files, _) = visits
    before, after = _truth(prior_files), _truth(current_files)
    statuses = sorted(lesion.status for lesion in comparison.lesions)
    assert statuses == ["grown", "new", "resolved", "shrunk", "stable"]
    assert comparison.interval_days == 91
    for lesion in comparison.lesions:
        volume = (
            next(c for c in lesion.changes if c.concept.meaning == "Volume")
            if (lesion.changes)
            else None
        )
        if lesion.status == "new":
            centre = next(m.region.points for m in lesion.current.measurements if m.region)
            truth = _nearest(after, centre)
            assert truth[0]["status"] == "new"
            continue
        prior_centre = next(m.region.points for m in lesion.prior.measurements if m.region)
        old = _nearest(before, prior_centre)
        if lesion.status == "resolved":
            assert 0 not in [t[0]["baseline_index"] for t in after]
            assert volume.current == 0 and volume.absolute == -volume.prior
            continue
        new = _nearest(
            after, next(m.region.points for m in lesion.current.measurements if m.region)
        )
        assert new[0]["status"] == lesion.status
        assert new[0]["baseline_index"] == before.index(old)
        true_change = new[2] - old[2]
        tolerance = (old[3] + new[3]) * old[4]
        assert abs(volume.absolute - true_change) <= tolerance, (lesion.tracking_id, volume)
        assert volume.relative == pytest.approx(volume.absolute / volume.prior)


def test_tracking_uids_carry_over_and_the_sr_says_so(visits, comparison, comparison_file):
    (_, prior_sr), (_, current_sr) = visits
    prior = {g.tracking_uid for g in read_measurement_report(prior_sr).groups}
    current = {g.tracking_uid for g in read_measurement_report(current_sr).groups}
    written = read_measurement_report(comparison_file)
    by_uid = {g.tracking_uid: g for g in written.groups}
    for lesion in comparison.lesions:
        assert lesion.tracking_uid in (current if lesion.status == "new" else prior)
        group = by_uid[lesion.tracking_uid]
        status = [
            e.value for e in group.evaluations if e.concept == longitudinal.QUALITATIVE_DIFFERENCE
        ]
        assert status == [longitudinal.STATUS_CODES[lesion.status]]
        assert group.time_point.order == 2
        days = [m.value for m in group.measurements if m.concept == longitudinal.INTERVAL]
        assert days == ([] if lesion.status == "new" else [91.0])


def test_a_third_visit_continues_the_chain(visits, comparison_file, tmp_path):
    (_, _), (_, current_sr) = visits
    _, third_sr = _visit(tmp_path, FollowUp(visit=2, days=180))
    chained = compare_reports(comparison_file, third_sr)
    first = {lesion.tracking_uid for lesion in compare_reports(visits[0][1], current_sr).lesions}
    assert {lesion.matched_by for lesion in chained.lesions} <= {"position", None}
    assert {x.tracking_uid for x in chained.lesions if x.status != "new"} <= first
    assert chained.time_point.order == 3
    # the resolved lesion ended its chain; the second follow-up changes nothing more
    assert sorted(lesion.status for lesion in chained.lesions) == ["stable"] * 4


def test_highdicom_reads_the_comparison(comparison, comparison_file):
    doc = hd.sr.srread(comparison_file)
    groups = doc.content.get_volumetric_roi_measurement_groups()
    uids = {str(g.tracking_uid) for g in groups}
    assert uids == {x.tracking_uid for x in comparison.lesions}  # resolved: the prior segment
    grown = next(x for x in comparison.lesions if x.status == "grown")
    group = next(g for g in groups if str(g.tracking_uid) == grown.tracking_uid)
    values = {
        (m.name.meaning, m.derivation.meaning if m.derivation else None): m.value
        for m in group.get_measurements()
    }
    change = next(c for c in grown.changes if c.concept.meaning == "Volume")
    assert values[("Volume", "Change since prior time point")] == pytest.approx(change.absolute)
    assert values[("Volume", "Value at prior time point")] == pytest.approx(change.prior)


@pytest.mark.slow
@pytest.mark.peer
def test_dciodvfy_and_pixelmed_accept_the_comparison(comparison_file):
    result = dicom3tools.dciodvfy(comparison_file)
    assert not result.errors, result.output
    checked = pixelmed.validate_sr([comparison_file])[comparison_file.resolve()]
    assert not checked.errors, checked.output


def test_cli_compare_prints_json_and_writes_the_sr(visits, tmp_path):
    (_, prior_sr), (_, current_sr) = visits
    out = tmp_path / "c.dcm"
    done = CliRunner().invoke(
        app, ["sr", "compare", str(prior_sr), str(current_sr), "--json", "-o", str(out)]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.output[done.output.index("{") :])
    assert {lesion["status"] for lesion in data["lesions"]} == STATUSES
    assert (
        dcmread(out).PertinentOtherEvidenceSequence[0].StudyInstanceUID
        == dcmread(prior_sr).StudyInstanceUID
    )


def test_cli_compare_refuses_a_non_report_and_writes_nothing(visits, tmp_path, capsys):
    (prior_files, _), (_, current_sr) = visits
    image = next(prior_files.dicom_dir.iterdir())
    out = tmp_path / "c.dcm"
    code = main(["sr", "compare", str(image), str(current_sr), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error:") and image.name in err and "not a structured report" in err
    assert not out.exists()


def test_positions_in_different_frames_need_a_registration(visits, tmp_path):
    (_, prior_sr), _ = visits
    _, moved_sr = _visit(tmp_path, FollowUp(shift_mm=(8.0, -5.0, 12.0), rotation_deg=3.0))
    with pytest.raises(GeometryError, match="frame of reference") as caught:
        compare_reports(prior_sr, moved_sr)
    assert "register" in caught.value.hint


@pytest.mark.slow
def test_a_moved_patient_is_matched_after_rigid_registration(visits, tmp_path):
    (prior_files, prior_sr), _ = visits
    motion = FollowUp(shift_mm=(8.0, -5.0, 12.0), rotation_deg=3.0)
    moved_files, moved_sr = _visit(tmp_path, motion)
    out = tmp_path / "c.dcm"
    code = main(
        [
            "sr", "compare", str(prior_sr), str(moved_sr), "-o", str(out),
            "--prior-images", str(prior_files.dicom_dir),
            "--current-images", str(moved_files.dicom_dir),
        ]
    )  # fmt: skip
    assert code == 0
    transform = register_rigid(
        read_series(prior_files.dicom_dir).volume(rescale=True),
        read_series(moved_files.dicom_dir).volume(rescale=True),
    )
    for lesion in json.loads(prior_files.truth_json.read_text())["lesions"]:
        expected = motion.to_scanner(tuple(lesion["centre_lps"]))
        assert math.dist(transform(tuple(lesion["centre_lps"])), expected) < 2.5
    written = read_measurement_report(out)
    statuses = sorted(
        e.value.meaning
        for g in written.groups
        for e in g.evaluations
        if e.concept == longitudinal.QUALITATIVE_DIFFERENCE
    )
    assert statuses == sorted(c.meaning for c in longitudinal.STATUS_CODES.values())


def test_the_json_form_keeps_time_points_and_centres(comparison_file):
    report = read_measurement_report(comparison_file)
    again = report_from_json(json.loads(json.dumps(report_to_json(report))))
    assert again == report
    assert {g.time_point.order for g in again.groups} == {2}
    purposes = {m.region.purpose for g in again.groups for m in g.measurements if m.region}
    assert purposes == {concepts.CENTER_OF_MASS}
    with pytest.raises(InvalidAttributeError, match=r"groups\[0\].time_point"):
        report_from_json({"groups": [{"tracking_id": "a", "time_point": {"order": 2}}]})


def test_reports_without_lesions_give_a_clear_error(tmp_path, capsys):
    from radbridge.coding import Code, sct
    from radbridge.sr import Measurement, MeasurementGroup, MeasurementReport

    volume = Measurement(sct("118565006", "Volume"), 1500.0, Code("ml", "UCUM", "ml"))
    organ = MeasurementReport(groups=(MeasurementGroup("liver", measurements=(volume,)),))
    comparison = compare_reports(organ, organ)
    assert comparison.lesions == ()
    with pytest.raises(EncodingError, match="neither report has a lesion"):
        encode_comparison(comparison)


def _lesion_report(*lesions):
    """A TID 1500 report of lesions given as (tracking id, UID, centre, volume in ml)."""
    from radbridge.coding import Code, sct
    from radbridge.sr import ImageRegion, Measurement, MeasurementGroup, MeasurementReport

    groups = []
    for tracking_id, uid, centre, ml in lesions:
        region = ImageRegion(
            "POINT", centre, frame_of_reference_uid="1.2.3", purpose=concepts.CENTER_OF_MASS
        )
        volume = Measurement(
            sct("118565006", "Volume"), ml, Code("ml", "UCUM", "ml"), region=region
        )
        groups.append(MeasurementGroup(tracking_id, tracking_uid=uid, measurements=(volume,)))
    return MeasurementReport(groups=tuple(groups))


def test_a_followed_lesion_keeps_its_tracking_identifier_when_a_new_one_has_it():
    # each visit's sr output numbers its objects afresh: the new nodule is "nodule 1" too
    prior = _lesion_report(("nodule 1", "1.2.4.1", (0.0, 0.0, 0.0), 2.0))
    current = _lesion_report(
        ("nodule 1", "1.2.5.1", (80.0, 0.0, 0.0), 1.0),  # new, listed first
        ("nodule 2", "1.2.5.2", (1.0, 0.0, 0.0), 3.0),  # the prior's nodule 1, grown
    )
    groups = longitudinal.comparison_report(compare_reports(prior, current)).groups
    ids = {g.tracking_uid: g.tracking_id for g in groups}
    assert ids["1.2.4.1"] == "nodule 1"  # the chain keeps its identifier
    assert ids["1.2.5.1"] == "nodule 1 (new at time point 2)"


def test_a_prior_measured_in_another_unit_is_converted():
    # e.g. an earlier model version reported ml, the current one mm3
    prior = _lesion_report(("nodule 1", "1.2.4.1", (0.0, 0.0, 0.0), 2.0))  # ml
    current = _lesion_report(("nodule 1", "1.2.5.1", (0.0, 0.0, 0.0), 4.0))
    volume = current.groups[0].measurements[0]
    mm3 = replace(volume, value=4000.0, unit=replace(volume.unit, value="mm3", meaning="mm3"))
    current = replace(current, groups=(replace(current.groups[0], measurements=(mm3,)),))
    (lesion,) = compare_reports(prior, current).lesions
    assert lesion.status == "grown"  # the old code: "stable", no change computed
    (change,) = lesion.changes
    assert (change.prior, change.current, change.relative) == (2000.0, 4000.0, 1.0)
    assert change.unit.value == "mm3"


def test_a_lesion_without_a_comparable_measurement_is_not_called_stable(tmp_path):
    """Prior measured a long axis only, current a volume only: no change is known."""
    from radbridge.coding import Code, sct

    prior = _lesion_report(("nodule 1", "1.2.4.1", (0.0, 0.0, 0.0), 2.0))
    volume = prior.groups[0].measurements[0]
    axis = replace(volume, concept=sct("103339001", "Long Axis"), unit=Code("mm", "UCUM", "mm"))
    prior = replace(prior, groups=(replace(prior.groups[0], measurements=(axis,)),))
    current = _lesion_report(("nodule 1", "1.2.5.1", (0.0, 0.0, 0.0), 4.0))
    (lesion,) = compare_reports(prior, current).lesions
    assert lesion.status == longitudinal.NOT_COMPARED  # the old code: "stable"
    assert lesion.matched_by == "position" and all(c.absolute is None for c in lesion.changes)
    (group,) = longitudinal.comparison_report(compare_reports(prior, current)).groups
    assert not [e for e in group.evaluations if e.concept == longitudinal.QUALITATIVE_DIFFERENCE]


def test_a_size_that_was_zero_has_grown():
    prior = _lesion_report(("nodule 1", "1.2.4.1", (0.0, 0.0, 0.0), 0.0))
    current = _lesion_report(("nodule 1", "1.2.5.1", (0.0, 0.0, 0.0), 0.5))
    (lesion,) = compare_reports(prior, current).lesions
    assert lesion.status == "grown"  # the old code: "stable" (no relative change from 0)


def test_a_volume_too_small_to_register_is_a_geometry_error_naming_it(visits):
    """A scout or single image (under 4 slices) made SimpleITK raise its own RuntimeError."""
    (prior_files, _), _ = visits
    prior = read_series(prior_files.dicom_dir).volume(rescale=True)
    scout = Volume(prior.array[:2], prior.affine, prior.frame_of_reference_uid)  # 2 slices
    with pytest.raises(GeometryError, match="current volume of shape") as caught:
        register_rigid(prior, scout)
    assert caught.value.attribute == "current" and "scout" in caught.value.hint
