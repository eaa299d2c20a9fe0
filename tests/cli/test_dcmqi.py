"""dcmqi's own JSON documents round-trip through radbridge, with dcmqi as the oracle.

Segmentation: a dcmqi meta.json (written as dcmqi documents it) -> dcmqi's
itkimage2segimage -> dcmqi's segimage2itkimage gives dcmqi's meta.json and label map ->
``radbridge seg encode --labels meta.json`` -> dcmqi reads our SEG back: the same
segments, codes, series attributes and voxels. Then ``seg decode --dcmqi-json`` gives a
meta.json that dcmqi's itkimage2segimage turns into the same SEG again.

TID 1500: a tid1500writer document -> dcmqi's SR -> tid1500reader's JSON ->
``radbridge sr encode`` -> tid1500reader on our SR gives the same document (less the
keys radbridge reports it does not write).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radbridge.cli import main
from tests.peers.dcmqi import (
    itkimage2segimage,
    segimage2itkimage,
    tid1500reader,
    tid1500writer,
)

pytestmark = pytest.mark.peer


def _code(value: str, scheme: str, meaning: str) -> dict[str, str]:
    return {"CodeValue": value, "CodingSchemeDesignator": scheme, "CodeMeaning": meaning}


ANATOMY = _code("123037004", "SCT", "Anatomical Structure")
LIVER = _code("10200004", "SCT", "Liver")
DCMQI_META = {  # the shape of dcmqi's doc/examples/seg-example.json
    "ContentCreatorName": "Reader1",
    "ClinicalTrialSeriesID": "Session1",
    "ClinicalTrialTimePointID": "1",
    "SeriesDescription": "Liver and lesion",
    "SeriesNumber": "77",
    "InstanceNumber": "1",
    "segmentAttributes": [[
        {"labelID": 1, "SegmentLabel": "Liver", "SegmentAlgorithmType": "SEMIAUTOMATIC",
         "SegmentAlgorithmName": "SlicerEditor", "SegmentedPropertyCategoryCodeSequence": ANATOMY,
         "SegmentedPropertyTypeCodeSequence": LIVER,
         "recommendedDisplayRGBValue": [221, 130, 101]},
        {"labelID": 2, "SegmentLabel": "Lesion", "SegmentAlgorithmType": "MANUAL",
         "SegmentedPropertyCategoryCodeSequence": _code("49755003", "SCT",
                                                        "Morphologically Altered Structure"),
         "SegmentedPropertyTypeCodeSequence": _code("4147007", "SCT", "Mass"),
         "AnatomicRegionSequence": LIVER,
         "recommendedDisplayRGBValue": [144, 238, 144]},
    ]],
}  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    assert main(["-q", "phantom", str(out), "--slices", "12", "--size", "64"]) == 0
    return out


def _segments(meta: dict) -> list[dict]:
    """Segment attributes by labelID, colours left out (CIELab round trips vary by 1)."""
    items = [item for group in meta["segmentAttributes"] for item in group]
    return sorted(
        ({k: v for k, v in item.items() if k != "recommendedDisplayRGBValue"} for item in items),
        key=lambda item: item["labelID"],
    )


def _series(meta: dict) -> dict:
    keys = ("SeriesDescription", "SeriesNumber", "ContentCreatorName")
    return {key: meta[key] for key in keys}


def _voxels(images) -> np.ndarray:
    (image,) = images.images.values()
    return sitk.GetArrayFromImage(sitk.ReadImage(str(image)))


def test_dcmqi_segmentation_meta_round_trips(study, tmp_path):
    labels = nib.load(study / "labels.nii.gz")
    data = np.asarray(labels.dataobj)
    mapped = np.select([data == 5, data == 7], [1, 2], 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(mapped, labels.affine), tmp_path / "truth.nii.gz")
    (tmp_path / "in.json").write_text(json.dumps(DCMQI_META))
    theirs = itkimage2segimage(
        [tmp_path / "truth.nii.gz"], study / "dicom", tmp_path / "in.json", tmp_path / "dcmqi.dcm"
    )
    dcmqi_doc = segimage2itkimage(theirs, tmp_path / "dcmqi-out", merge_segments=True)

    ours = tmp_path / "ours.dcm"
    (meta_file,) = [dcmqi_doc.directory / "meta.json"]
    (image,) = dcmqi_doc.images.values()
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", image, "--labels", meta_file,
            "--type", "labelmap", "-o", ours]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    read_back = segimage2itkimage(ours, tmp_path / "ours-out", merge_segments=True)
    assert _segments(read_back.meta) == _segments(dcmqi_doc.meta)
    assert _series(read_back.meta) == _series(dcmqi_doc.meta) == {
        "SeriesDescription": "Liver and lesion", "SeriesNumber": "77",
        "ContentCreatorName": "Reader1",
    }  # fmt: skip
    assert np.array_equal(_voxels(read_back), _voxels(dcmqi_doc))
    assert int(_voxels(read_back).max()) == 2

    # and back: radbridge's meta.json + label map -> dcmqi writes the same SEG
    argv = ["seg", "decode", ours, "-o", tmp_path / "back" / "labels.nii.gz",
            "--dcmqi-json", tmp_path / "back" / "meta.json"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    again = itkimage2segimage(
        [tmp_path / "back" / "labels.nii.gz"], study / "dicom", tmp_path / "back" / "meta.json",
        tmp_path / "again.dcm",
    )  # fmt: skip
    again_doc = segimage2itkimage(again, tmp_path / "again-out", merge_segments=True)
    assert _segments(again_doc.meta) == _segments(dcmqi_doc.meta)
    assert _series(again_doc.meta) == _series(dcmqi_doc.meta)
    assert np.array_equal(_voxels(again_doc), _voxels(dcmqi_doc))


def test_labels_with_gaps_are_numbered_as_dcmqi_numbers_them(study, tmp_path):
    """A label map with values 5 and 7 only (labelIDs 5 and 7 in the meta.json): dcmqi
    writes segments 1 and 2; radbridge refused it ("renumber the label map") and now
    writes the same segments on the same voxels."""
    meta = json.loads(json.dumps(DCMQI_META))
    liver, lesion = meta["segmentAttributes"][0]
    liver["labelID"], lesion["labelID"] = 5, 7
    (tmp_path / "in.json").write_text(json.dumps(meta))
    labels = nib.load(study / "labels.nii.gz")
    data = np.asarray(labels.dataobj)
    gaps = np.where(np.isin(data, [5, 7]), data, 0).astype(np.uint8)
    assert set(np.unique(gaps).tolist()) == {0, 5, 7}
    nib.save(nib.Nifti1Image(gaps, labels.affine), tmp_path / "gaps.nii.gz")
    theirs = itkimage2segimage(
        [tmp_path / "gaps.nii.gz"], study / "dicom", tmp_path / "in.json", tmp_path / "dcmqi.dcm"
    )
    ours = tmp_path / "ours.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", tmp_path / "gaps.nii.gz",
            "--labels", tmp_path / "in.json", "-o", ours]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    dcmqi_doc = segimage2itkimage(theirs, tmp_path / "dcmqi-out", merge_segments=True)
    read_back = segimage2itkimage(ours, tmp_path / "ours-out", merge_segments=True)
    assert [item["labelID"] for item in _segments(read_back.meta)] == [1, 2]
    assert _segments(read_back.meta) == _segments(dcmqi_doc.meta)
    assert np.array_equal(_voxels(read_back), _voxels(dcmqi_doc))
    assert int((_voxels(read_back) == 2).sum()) == int((gaps == 7).sum()) > 0


def test_dcmqi_reads_the_nrrd_that_decode_writes(study, tmp_path):
    # `seg decode -o X.nrrd` writes NRRD itself (radbridge.io.nrrd), not through SimpleITK
    (tmp_path / "in.json").write_text(json.dumps(DCMQI_META))
    labels = np.load(study / "labels.npy")
    np.save(
        tmp_path / "mask.npy", np.select([labels == 5, labels == 7], [1, 2], 0).astype(np.uint8)
    )
    ours = tmp_path / "ours.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", tmp_path / "mask.npy",
            "--labels", tmp_path / "in.json", "--type", "labelmap", "-o", ours]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    argv = ["seg", "decode", ours, "-o", tmp_path / "back" / "labels.nrrd",
            "--dcmqi-json", tmp_path / "back" / "meta.json"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    again = itkimage2segimage(
        [tmp_path / "back" / "labels.nrrd"], study / "dicom", tmp_path / "back" / "meta.json",
        tmp_path / "again.dcm",
    )  # fmt: skip
    theirs = segimage2itkimage(again, tmp_path / "again-out", merge_segments=True)
    direct = segimage2itkimage(ours, tmp_path / "ours-out", merge_segments=True)
    assert np.array_equal(_voxels(theirs), _voxels(direct))
    assert int(_voxels(theirs).max()) == 2 and _segments(theirs.meta) == _segments(direct.meta)


def test_series_options_on_the_command_line_win(study, tmp_path):
    (tmp_path / "in.json").write_text(json.dumps(DCMQI_META))
    labels = np.load(study / "labels.npy")
    np.save(
        tmp_path / "mask.npy", np.select([labels == 5, labels == 7], [1, 2], 0).astype(np.uint8)
    )
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", tmp_path / "mask.npy",
            "--labels", tmp_path / "in.json", "-o", tmp_path / "s.dcm",
            "--series-description", "Mine", "--series-number", "5",
            "--content-creator", "Doe^Jane"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    assert (ds.SeriesDescription, ds.SeriesNumber, str(ds.ContentCreatorName)) == (
        "Mine", 5, "Doe^Jane"
    )  # fmt: skip
    first, second = ds.SegmentSequence
    assert (first.SegmentAlgorithmType, first.SegmentAlgorithmName) == ("SEMIAUTOMATIC",
                                                                        "SlicerEditor")  # fmt: skip
    assert second.SegmentAlgorithmType == "MANUAL"
    assert second.AnatomicRegionSequence[0].CodeValue == "10200004"


def _tid1500_document(seg: pydicom.Dataset, images: list[str]) -> dict:
    hu = _code("[hnsf'U]", "UCUM", "Hounsfield unit")
    attenuation = _code("112031", "DCM", "Attenuation Coefficient")
    return {  # the shape of dcmqi's doc/examples/sr-tid1500-ct-liver-example.json
        "SeriesDescription": "Liver measurements", "SeriesNumber": "1001", "InstanceNumber": "1",
        "compositeContext": ["seg.dcm"], "imageLibrary": images,
        "observerContext": {"ObserverType": "PERSON", "PersonObserverName": "Reader1"},
        "VerificationFlag": "VERIFIED", "CompletionFlag": "COMPLETE",
        "activitySession": "1", "timePoint": "1",
        "Measurements": [{
            "TrackingIdentifier": "Liver", "ReferencedSegment": 5,
            "SourceSeriesForImageSegmentation": seg.ReferencedSeriesSequence[0].SeriesInstanceUID,
            "segmentationSOPInstanceUID": seg.SOPInstanceUID,
            "Finding": LIVER, "FindingSite": LIVER,
            "measurementItems": [
                {"value": "1520.5", "quantity": _code("118565006", "SCT", "Volume"),
                 "units": _code("ml", "UCUM", "milliliter")},
                {"value": "61.2", "quantity": attenuation, "units": hu,
                 "derivationModifier": _code("373098007", "SCT", "Mean")},
                {"value": "12.5", "quantity": attenuation, "units": hu,
                 "derivationModifier": _code("386136009", "SCT", "Standard Deviation")},
            ],
            "qualitativeEvaluations": [
                {"conceptCode": _code("50960005", "SCT", "Hemorrhage"),
                 "conceptValue": _code("121053", "DCM", "Present")},
            ],
        }],
    }  # fmt: skip


IGNORED = ("activitySession", "timePoint", "VerificationFlag", "CompletionFlag")


def _comparable(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k not in IGNORED}
    out["imageLibrary"] = sorted(out["imageLibrary"])
    out["Measurements"] = [
        {k: v for k, v in group.items() if k not in IGNORED} for group in doc["Measurements"]
    ]
    return out


def test_dcmqi_tid1500_document_round_trips(study, tmp_path, capsys):
    seg_file = tmp_path / "context" / "seg.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", study / "labels.npy",
            "--labels", study / "labels.json", "-o", seg_file]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    seg = pydicom.dcmread(seg_file)
    images = sorted(p.name for p in (study / "dicom").iterdir())
    (tmp_path / "writer.json").write_text(json.dumps(_tid1500_document(seg, images)))
    theirs = tid1500writer(
        tmp_path / "writer.json", study / "dicom", seg_file.parent, tmp_path / "dcmqi-sr.dcm"
    )
    dcmqi_doc = tid1500reader(theirs, tmp_path / "dcmqi.json")
    capsys.readouterr()

    argv = ["sr", "encode", tmp_path / "dcmqi.json", "--source", study / "dicom",
            "--seg", seg_file, "-o", tmp_path / "ours.dcm", "--json"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["ignored"] == list(IGNORED)  # said, not silently dropped
    ours = tid1500reader(tmp_path / "ours.dcm", tmp_path / "ours.json")
    assert _comparable(ours) == _comparable(dcmqi_doc)
    assert len(ours["Measurements"][0]["measurementItems"]) == 3


def test_a_dcmqi_document_naming_another_seg_is_refused(study, tmp_path, capsys):
    group = {"TrackingIdentifier": "x", "ReferencedSegment": 1,
             "segmentationSOPInstanceUID": "1.2.3.4", "measurementItems": []}  # fmt: skip
    doc = {"Measurements": [group]}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    argv = ["sr", "encode", str(tmp_path / "r.json"), "--source", str(study / "dicom"),
            "-o", str(tmp_path / "x.dcm")]  # fmt: skip
    assert main(argv) == 2
    assert "1.2.3.4" in capsys.readouterr().err and not (tmp_path / "x.dcm").exists()


def test_sr_series_options_and_observer_as_dcmqi_reads_them(study, tmp_path):
    seg_file = tmp_path / "seg.dcm"
    argv = ["seg", "encode", "--source", study / "dicom", "--mask", study / "labels.npy",
            "--labels", study / "labels.json", "-o", seg_file]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    volume = {"concept": {"value": "118565006", "scheme": "SCT", "meaning": "Volume"},
              "value": 1520.0, "unit": "ml"}  # fmt: skip
    report = {"groups": [{"tracking_id": "liver", "segment": 5, "measurements": [volume]}]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    argv = ["sr", "encode", tmp_path / "report.json", "--source", study / "dicom", "--seg",
            seg_file, "-o", tmp_path / "sr.dcm", "--series-description", "Liver volume",
            "--series-number", "9", "--content-creator", "Doe^Jane"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    read = tid1500reader(tmp_path / "sr.dcm", tmp_path / "sr.json")
    assert (read["SeriesDescription"], read["SeriesNumber"]) == ("Liver volume", "9")
    assert read["observerContext"] == {"ObserverType": "PERSON", "PersonObserverName": "Doe^Jane"}
