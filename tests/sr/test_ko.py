"""Key Object Selection (TID 2010): third-party KOS, vendor images, determinism, CLI, peers."""

from __future__ import annotations

import datetime as dt
import io

import pydicom
import pytest

from radbridge.cli import main
from radbridge.coding import dcm, sct
from radbridge.errors import EncodingError, NotDicomError, UnsupportedObjectError
from radbridge.io.series import read_source_series
from radbridge.iods.common import SeriesOptions
from radbridge.iods.ko import KEY_OBJECT_SELECTION_STORAGE, encode_key_objects, read_key_objects
from radbridge.iods.sr import MeasurementGroup, MeasurementReport, encode_measurement_report
from tests.peers import interop_dir
from tests.peers.dcmtk import dsrdump
from tests.peers.dicom3tools import dciodvfy
from tests.peers.pixelmed import validate_sr

FIXED = SeriesOptions(
    series_instance_uid="1.2.826.0.1.3680043.10.1234.21",
    sop_instance_uid="1.2.826.0.1.3680043.10.1234.22",
    timestamp=dt.datetime(2024, 5, 6, 7, 8, 9),
)
# CID 7010 Key Object Selection Document Title, checked against pydicom's codedict.
REJECTED = dcm("113001", "Rejected for Quality Reasons")


@pytest.fixture(scope="module")
def vendor_source():
    """The three GE CT slices of the interop set (real vendor images)."""
    return read_source_series(interop_dir() / "images" / "ct-3slice")


def to_bytes(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_source_as_datasets_or_in_the_former_order_gives_the_same_kos(vendor_source):
    keys = [vendor_source.slice_refs[1].sop_instance_uid]
    expected = to_bytes(encode_key_objects(keys, vendor_source, options=FIXED))
    folder = interop_dir() / "images" / "ct-3slice"
    datasets = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    assert to_bytes(encode_key_objects(keys, datasets, options=FIXED)) == expected
    deprecated = r"encode_key_objects\(source, \.\.\.\) is deprecated"
    with pytest.warns(DeprecationWarning, match=deprecated):
        former = encode_key_objects(vendor_source, keys, options=FIXED)
    assert to_bytes(former) == expected


def test_third_party_kos_agrees_with_highdicom_and_its_images():
    import highdicom as hd

    interop = interop_dir()
    path = interop / "ko" / "generated" / "dcmtk-3.6.7_xml2dsr_kos.dcm"
    ours = read_key_objects(path)
    theirs = hd.ko.KeyObjectSelectionDocument.from_dataset(pydicom.dcmread(path))
    assert [r.sop_instance_uid for r in ours.references] == [
        str(r.referenced_sop_instance_uid) for r in theirs.content.get_references()
    ]
    images = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in (interop / "images" / "ct-3slice").glob("*.dcm")
    }
    assert {r.sop_instance_uid for r in ours.references} <= images
    assert len(ours.references) == 2
    assert ours.title.value == "113000" and ours.title.scheme == "DCM"
    assert ours.description  # the object carries a Key Object Description


def test_kos_on_vendor_images_round_trips_and_is_deterministic(vendor_source):
    refs = vendor_source.slice_refs
    keys = [refs[2].sop_instance_uid, refs[0].sop_instance_uid, refs[2].sop_instance_uid]
    first = encode_key_objects(
        keys, vendor_source, title=REJECTED, description="motion", options=FIXED
    )
    second = encode_key_objects(
        keys, vendor_source, title=REJECTED, description="motion", options=FIXED
    )
    assert to_bytes(first) == to_bytes(second)
    assert first.SOPInstanceUID == FIXED.sop_instance_uid
    assert first.SOPClassUID == KEY_OBJECT_SELECTION_STORAGE and first.Modality == "KO"
    assert first.StudyInstanceUID == vendor_source.study_instance_uid
    read = read_key_objects(to_bytes(first))
    # order kept, the repeated key listed once
    assert [r.sop_instance_uid for r in read.references] == keys[:2]
    assert {r.sop_class_uid for r in read.references} == {refs[0].sop_class_uid}
    assert read.title == REJECTED and read.description == "motion"
    evidence = first.CurrentRequestedProcedureEvidenceSequence[0]
    listed = [
        item.ReferencedSOPInstanceUID
        for series in evidence.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    ]
    assert sorted(listed) == sorted(keys[:2])


def test_kos_refuses_bad_input_and_foreign_files(vendor_source, tmp_path):
    key = vendor_source.slice_refs[0].sop_instance_uid
    with pytest.raises(EncodingError) as err:
        encode_key_objects([key], vendor_source, description="x" * 1025)
    assert err.value.attribute == "TextValue"
    with pytest.raises(EncodingError) as err:
        encode_key_objects([key, "1.2.3.999"], vendor_source)
    assert err.value.attribute == "ReferencedSOPInstanceUID"
    sr = encode_measurement_report(
        MeasurementReport(groups=(MeasurementGroup("a", finding=sct("27925004", "Nodule")),)),
        vendor_source,
    )
    with pytest.raises(UnsupportedObjectError, match="Key Object Selection"):
        read_key_objects(sr)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(to_bytes(encode_key_objects([key], vendor_source))[:300])
    with pytest.raises((NotDicomError, UnsupportedObjectError)):
        read_key_objects(truncated)


def test_cli_ko_errors_exit_non_zero(tmp_path, capsys):
    folder = interop_dir() / "images" / "ct-3slice"
    out = tmp_path / "ko.dcm"
    args = ["ko", "encode", "--source", str(folder), "--key", "1.2.3.999", "-o", str(out)]
    assert main(args) == 1
    assert "not instances of the source series" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.peer
@pytest.mark.slow
def test_validators_accept_kos_on_vendor_images(vendor_source, tmp_path):
    keys = [r.sop_instance_uid for r in vendor_source.slice_refs[:2]]
    written = []
    for name, kwargs in (
        ("plain.dcm", {}),
        ("rejected.dcm", {"title": REJECTED, "description": "motion artefact"}),
    ):
        path = tmp_path / name
        encode_key_objects(keys, vendor_source, options=FIXED, **kwargs).save_as(
            path, enforce_file_format=True
        )
        written.append(path)
    cli_out = tmp_path / "cli.dcm"
    folder = interop_dir() / "images" / "ct-3slice"
    assert (
        main(["ko", "encode", "--source", str(folder), "--key", keys[0], "-o", str(cli_out)]) == 0
    )
    written.append(cli_out)
    for path in written:
        result = dciodvfy(path)
        assert not result.errors, result.summary()
        assert dsrdump(path, "+Pt").returncode == 0
    for path, result in validate_sr(written).items():
        assert "TID_2010" in result.output, path.name
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert not errors, (path.name, errors[:3])


def test_the_key_slice_of_a_multi_frame_source_names_its_frame(tmp_path):
    """The ko output flags the key slice's frame, not frame 1 of the whole instance.

    The source is dcmqi's Legacy Converted Enhanced CT (three slices, one instance); the
    finding is on the third slice. A KOS without Referenced Frame Number opens the
    instance at its first frame.
    """
    import highdicom as hd
    import numpy as np

    from radbridge.geometry import Volume
    from radbridge.io.series import read_series
    from radbridge.models import ModelResult
    from radbridge.results import encode_results

    folder = interop_dir() / "images" / "dcmqi_23x38x3"
    enhanced = pydicom.dcmread(folder / "multiframe_legacy_enhanced.dcm")
    source = read_series(folder, series_instance_uid=enhanced.SeriesInstanceUID)
    labels = np.zeros(source.geometry.shape, np.uint8)
    labels[2, 5:10, 5:10] = 1
    result = ModelResult(labels=Volume.from_geometry(labels, source.geometry))
    ko = encode_results(source, result, ["ko"])["ko"]
    path = tmp_path / "ko.dcm"
    ko.save_as(path, enforce_file_format=True)

    key = source.slice_refs[2]
    assert key.frame_number is not None
    ref = pydicom.dcmread(path).ContentSequence[-1].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == enhanced.SOPInstanceUID
    assert int(ref.ReferencedFrameNumber) == key.frame_number
    assert read_key_objects(path).references[0].frames == (key.frame_number,)
    theirs = hd.ko.KeyObjectSelectionDocument.from_dataset(pydicom.dcmread(path))
    (image,) = theirs.content.get_references()
    assert image.referenced_frame_numbers == [key.frame_number]
    assert dciodvfy(path).ok


def test_keys_given_as_slices_and_uids():
    """A slice flags its frame; a plain UID of the same instance flags all of it."""
    from radbridge.io.series import read_series

    folder = interop_dir() / "images" / "dcmqi_23x38x3"
    enhanced = pydicom.dcmread(folder / "multiframe_legacy_enhanced.dcm")
    source = read_series(folder, series_instance_uid=enhanced.SeriesInstanceUID)
    refs = source.slice_refs
    two = read_key_objects(encode_key_objects([refs[2], refs[0], refs[2]], source))
    assert [r.frames for r in two.references] == [(refs[2].frame_number, refs[0].frame_number)]
    whole = read_key_objects(encode_key_objects([refs[2], enhanced.SOPInstanceUID], source))
    assert [r.frames for r in whole.references] == [()]
