"""What every writer does with the source's patient and study context.

It copies it: editing the new object (anonymising its Patient Name, say) leaves the
source series and the source's data sets as they were (they shared the elements).

It keeps the source's character set unless a text needs another: a Latin-1 source
(ISO_IR 100, a German patient name) and Japanese text in what the user controls (a
segment label, a description, the series description) must give an object that
declares ISO_IR 192 and carries the text, read back by pydicom (and highdicom and
dcmqi and dciodvfy for the SEG), never question marks; the patient name must survive the
switch; and the source series keeps its own set (an earlier writer replaced the
character set of the source's context in place, so every later object of that series
changed its declaration).
"""

from __future__ import annotations

import copy
import dataclasses
import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radbridge import Series
from radbridge.coding import dcm, sct, ucum
from radbridge.errors import EncodingError
from radbridge.io.phantom import write_phantom
from radbridge.ko import encode_key_objects
from radbridge.pm import encode_parametric_map
from radbridge.rtstruct import ROIDescription, encode_rtstruct
from radbridge.sc import encode_overlay_sc
from radbridge.seg import (
    AlgorithmIdentification,
    SegmentDescription,
    SeriesOptions,
    encode_segmentation,
)
from radbridge.sr import MeasurementGroup, MeasurementReport, encode_measurement_report
from tests.peers.dcmqi import segimage2itkimage
from tests.peers.dicom3tools import dciodvfy

JAPANESE = "肝臓の解析"
GERMAN = "Müller^Jörg"
KINDS = ["seg", "pm", "sc", "ko", "sr", "rtstruct"]
LIVER = SegmentDescription(
    1,
    JAPANESE,
    sct("91723000", "Anatomical structure"),
    sct("10200004", "Liver"),
    algorithm_type="MANUAL",
)


@pytest.fixture(scope="module")
def latin1_datasets(tmp_path_factory) -> list[Dataset]:
    files = write_phantom(tmp_path_factory.mktemp("latin1"), slices=4, size=32, nifti=False)
    datasets = []
    for path in sorted(files.dicom_dir.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = GERMAN
        datasets.append(ds)
    return datasets


@pytest.fixture
def latin1_source(latin1_datasets) -> Series:
    """A fresh series (of fresh data sets) per test: a change must not hide behind another."""
    return Series.from_datasets(copy.deepcopy(latin1_datasets))


def _mask(source: Series) -> np.ndarray:
    mask = np.zeros(source.geometry.shape, np.uint8)
    mask[:, 8:20, 8:20] = 1
    return mask


def encode_kind(
    kind: str, source: Series, series_description: str = JAPANESE
) -> tuple[Dataset, str]:
    """The object of ``kind`` made with Japanese text, and the attribute holding that text."""
    options = SeriesOptions(series_description=series_description)
    if kind == "seg":
        return encode_segmentation(_mask(source), source, [LIVER], options=options), "SegmentLabel"
    if kind == "pm":
        values = _mask(source).astype(np.float32)
        quantity, units = dcm("110807", "Field of View"), ucum("1", "no units")
        made = encode_parametric_map(
            values, source, quantity=quantity, units=units, options=options
        )
        return made, "SeriesDescription"
    if kind == "sc":
        frames = np.zeros((*source.geometry.shape, 3), np.uint8)
        made = encode_overlay_sc(frames, source, description=JAPANESE, options=options)
        return made, "DerivationDescription"
    if kind == "ko":
        keys = [source.slice_refs[0].sop_instance_uid]
        return encode_key_objects(keys, source, description=JAPANESE, options=options), "TextValue"
    if kind == "sr":
        group = MeasurementGroup(JAPANESE, finding=sct("27925004", "Nodule"))
        report = MeasurementReport(groups=(group,))
        return encode_measurement_report(report, source, options=options), "SeriesDescription"
    rois = [ROIDescription(1, JAPANESE)]
    return encode_rtstruct(_mask(source), source, rois, options=options), "ROIName"


def _texts(ds: Dataset, keyword: str) -> list[str]:
    found = [str(ds[keyword].value)] if keyword in ds else []
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found += _texts(item, keyword)
    return found


def _read_back(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("kind", KINDS)
def test_japanese_text_switches_the_object_to_utf8(latin1_source, kind):
    made, keyword = encode_kind(kind, latin1_source)
    read = _read_back(made)
    assert read.SpecificCharacterSet == "ISO_IR 192", kind
    assert JAPANESE in _texts(read, keyword), kind
    assert str(read.PatientName) == GERMAN, kind
    # the source series keeps its own declaration for the next object made from it
    assert latin1_source.context.SpecificCharacterSet == "ISO_IR 100"


@pytest.mark.parametrize("kind", KINDS)
def test_editing_the_new_object_leaves_the_source_alone(latin1_datasets, kind):
    datasets = copy.deepcopy(latin1_datasets)
    source = Series.from_datasets(datasets)
    made, _ = encode_kind(kind, source)
    made.PatientName = "Anonymous"
    made.StudyDescription = "changed"
    assert str(source.context.PatientName) == GERMAN, kind
    assert str(datasets[0].PatientName) == GERMAN, kind
    assert "StudyDescription" not in source.context or source.context.StudyDescription != "changed"
    assert str(encode_kind(kind, source)[0].PatientName) == GERMAN, kind


@pytest.mark.parametrize("kind", KINDS)
def test_a_backslash_in_a_text_of_one_value_is_refused(latin1_source, kind):
    # pydicom would split it into two values (DICOM's separator); readers show "CT"
    with pytest.raises(EncodingError, match=r"SeriesDescription 'CT\\AI' holds a backslash"):
        encode_kind(kind, latin1_source, series_description="CT\\AI")


def test_a_segment_label_with_a_backslash_is_refused(latin1_source):
    left_right = dataclasses.replace(LIVER, label="left\\right")
    with pytest.raises(EncodingError, match="SegmentLabel") as caught:
        encode_segmentation(_mask(latin1_source), latin1_source, [left_right])
    assert caught.value.attribute == "SegmentLabel"


def test_a_source_attribute_with_a_backslash_is_copied_as_it_was(latin1_datasets):
    # a malformed source is the sender's business: its patient/study attributes pass
    datasets = copy.deepcopy(latin1_datasets)
    for ds in datasets:
        ds.StudyDescription = "CT\\Abdomen"
    source = Series.from_datasets(datasets)
    read = _read_back(encode_kind("seg", source)[0])
    assert list(read.StudyDescription) == ["CT", "Abdomen"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_text_longer_than_its_value_representation_is_refused(latin1_source, kind):
    # LO holds 64 characters; the writers cut the series description to 64 silently
    long = "Liver segmentation, model build 2026-12-06 with the new training set"
    assert len(long) == 68
    with pytest.raises(EncodingError, match=r"SeriesDescription .* has 68 characters") as caught:
        encode_kind(kind, latin1_source, series_description=long)
    assert caught.value.attribute == "SeriesDescription"
    # 64 characters fit, and are written whole
    read = _read_back(encode_kind(kind, latin1_source, series_description=long[:64])[0])
    assert read.SeriesDescription == long[:64]


def test_a_person_name_longer_than_64_characters_a_group_is_refused(latin1_source):
    creator = "Radiology-AI-Service-of-the-University-Hospital-Department-Of-Imaging^Bot"
    with pytest.raises(EncodingError, match=r"ContentCreatorName .* has 73 characters"):
        encode_segmentation(
            _mask(latin1_source),
            latin1_source,
            [LIVER],
            options=SeriesOptions(content_creator_name=creator),
        )
    # 64 in each of the three component groups (alphabetic=ideographic=phonetic) fit
    fits = "=".join(["D" * 60 + "^Bot"] * 3)
    made = encode_segmentation(
        _mask(latin1_source),
        latin1_source,
        [LIVER],
        options=SeriesOptions(content_creator_name=fits),
    )
    assert str(_read_back(made).ContentCreatorName) == fits


@pytest.mark.parametrize("keyword", ["name", "version", "source"])
def test_an_algorithm_text_longer_than_64_characters_is_refused(latin1_source, keyword):
    # cutting a version makes two model versions look alike in the objects
    fields = {"name": "liver-net", "version": "2.1.0", "source": "radbridge tests"}
    fields[keyword] = "2.1.0+build." + "0123456789" * 6
    algorithm = AlgorithmIdentification(**fields)
    automatic = dataclasses.replace(
        LIVER, label="Liver", algorithm_type="AUTOMATIC", algorithm=algorithm
    )
    with pytest.raises(EncodingError, match=rf"Algorithm{keyword.title()} .* has 72 characters"):
        encode_segmentation(_mask(latin1_source), latin1_source, [automatic])
    roi = ROIDescription(1, "Liver", generation_algorithm="AUTOMATIC", algorithm=algorithm)
    with pytest.raises(EncodingError, match=f"Algorithm{keyword.title()}"):
        encode_rtstruct(_mask(latin1_source), latin1_source, [roi])


def test_a_long_source_attribute_is_copied_as_it_was(latin1_datasets):
    # the source's own study attributes are the sender's business, as with backslashes
    datasets = copy.deepcopy(latin1_datasets)
    for ds in datasets:
        ds.StudyDescription = "S" * 70
    read = _read_back(encode_kind("seg", Series.from_datasets(datasets))[0])
    assert read.StudyDescription == "S" * 70


def test_latin1_text_keeps_the_source_character_set(latin1_source):
    german = dataclasses.replace(LIVER, label="Lebersegment Ä")
    read = _read_back(encode_segmentation(_mask(latin1_source), latin1_source, [german]))
    assert read.SpecificCharacterSet == "ISO_IR 100"
    assert read.SegmentSequence[0].SegmentLabel == "Lebersegment Ä"


@pytest.mark.peer
@pytest.mark.slow
def test_utf8_segmentation_reads_in_highdicom_and_dcmqi_and_passes_dciodvfy(
    latin1_source, tmp_path
):
    import highdicom as hd

    path = tmp_path / "seg.dcm"
    encode_segmentation(_mask(latin1_source), latin1_source, [LIVER]).save_as(
        path, enforce_file_format=True
    )
    theirs = hd.seg.segread(path)
    assert theirs.get_segment_description(1).segment_label == JAPANESE
    assert str(theirs.PatientName) == GERMAN
    assert dciodvfy(path).errors == []
    (segment,) = segimage2itkimage(path, tmp_path / "dcmqi").meta["segmentAttributes"][0]
    assert segment["SegmentLabel"] == JAPANESE
