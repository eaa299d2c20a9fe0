"""The classic images' references to other images: kept with their evidence, or left out.

A classic MR image names the localizers it was planned on (Referenced Image
Sequence); a derived image names its sources (Source Image Sequence). The enhanced
image must list each referenced instance with its study and series (Referenced /
Source Image Evidence Sequence). Oracle outside radbridge: dciodvfy, on a real
Philips MR series (BRAINIX) whose slices reference three localizers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from radbridge.cli import main
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series_datasets
from radbridge.legacy import encode_legacy_enhanced
from radbridge.uids import new_uid
from tests.peers import dciodvfy

# BRAINIX's Patient's Sex is "0000" in the source images; the converted image keeps
# the patient's attributes as they are, so dciodvfy reports that one source error.
SOURCE_ERROR = "Patient's Sex"


@pytest.fixture
def brainix(interop: Path) -> list[pydicom.Dataset]:
    return read_series_datasets(interop / "images" / "brainix_flair_22slices")


def _localizers(images: list[pydicom.Dataset], series_uid: str) -> list[Dataset]:
    """Headers of the localizers the images name: the same study, another series."""
    uids = {str(r.ReferencedSOPInstanceUID) for ds in images for r in ds.ReferencedImageSequence}
    headers = []
    for uid in sorted(uids):
        header = Dataset()
        header.StudyInstanceUID = images[0].StudyInstanceUID
        header.SeriesInstanceUID = series_uid
        header.SOPClassUID = images[0].SOPClassUID
        header.SOPInstanceUID = uid
        headers.append(header)
    return headers


def _errors(image: pydicom.Dataset, folder: Path) -> list[str]:
    path = folder / "lce.dcm"
    image.save_as(path, enforce_file_format=True)
    return [e for e in dciodvfy(path).errors if SOURCE_ERROR not in e]


@pytest.mark.peer
def test_references_with_known_series_are_kept_with_their_evidence(brainix, tmp_path):
    localizer_series = new_uid()
    image = encode_legacy_enhanced(brainix, referenced=_localizers(brainix, localizer_series))
    frames = image.PerFrameFunctionalGroupsSequence
    by_source = {
        str(f.ConversionSourceAttributesSequence[0].ReferencedSOPInstanceUID): f for f in frames
    }
    for ds in brainix:
        kept = by_source[str(ds.SOPInstanceUID)].ReferencedImageSequence
        assert [r.ReferencedSOPInstanceUID for r in kept] == [
            r.ReferencedSOPInstanceUID for r in ds.ReferencedImageSequence
        ]
    (study,) = image.ReferencedImageEvidenceSequence
    assert study.StudyInstanceUID == brainix[0].StudyInstanceUID
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == localizer_series
    assert len(series.ReferencedSOPSequence) == 3
    assert _errors(image, tmp_path) == []


@pytest.mark.peer
def test_references_of_unknown_series_are_left_out_with_a_warning(brainix, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="radbridge"):
        image = encode_legacy_enhanced(brainix)
    assert not any("ReferencedImageSequence" in f for f in image.PerFrameFunctionalGroupsSequence)
    assert "ReferencedImageEvidenceSequence" not in image
    (warning,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("radbridge")
    ]
    assert "3 instance(s)" in warning and "referenced=" in warning
    assert _errors(image, tmp_path) == []
    # the classic images keep their references, untouched
    assert all(len(ds.ReferencedImageSequence) == 3 for ds in brainix)


@pytest.fixture
def derived(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Dataset], list[Dataset]]:
    """A CT series and a DERIVED one made from it, slice by slice."""
    root = tmp_path_factory.mktemp("derived")
    original = read_series_datasets(
        write_phantom(root / "a", slices=6, size=32, nifti=False).dicom_dir
    )
    images = read_series_datasets(
        write_phantom(root / "b", slices=6, size=32, nifti=False).dicom_dir
    )
    series = new_uid()
    for ds, source in zip(images, original, strict=True):
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, new_uid()
        ds.StudyInstanceUID = source.StudyInstanceUID
        ds.FrameOfReferenceUID = source.FrameOfReferenceUID
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.DerivationDescription = "smoothed"
        item = Dataset()
        item.ReferencedSOPClassUID = source.SOPClassUID
        item.ReferencedSOPInstanceUID = source.SOPInstanceUID
        ds.SourceImageSequence = [item]
    return images, original


@pytest.mark.peer
def test_source_images_are_listed_in_the_source_image_evidence(derived, tmp_path):
    images, original = derived
    image = encode_legacy_enhanced(images, referenced=original)
    for frame in image.PerFrameFunctionalGroupsSequence:
        (derivation,) = frame.DerivationImageSequence
        assert derivation.DerivationDescription == "smoothed"
        assert len(derivation.SourceImageSequence) == 1
    (study,) = image.SourceImageEvidenceSequence
    (series,) = study.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == original[0].SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in series.ReferencedSOPSequence} == {
        ds.SOPInstanceUID for ds in original
    }
    assert _errors(image, tmp_path) == []
    alone = encode_legacy_enhanced(images)
    assert "SourceImageEvidenceSequence" not in alone
    assert not any("DerivationImageSequence" in f for f in alone.PerFrameFunctionalGroupsSequence)
    assert _errors(alone, tmp_path) == []


def test_cli_finds_the_referenced_series_in_the_source_folder(derived, tmp_path, caplog):
    images, original = derived
    folder = tmp_path / "study"
    folder.mkdir()
    for k, ds in enumerate([*images, *original]):
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=True)
    out = tmp_path / "lce.dcm"
    with caplog.at_level(logging.WARNING, logger="radbridge"):
        series = str(images[0].SeriesInstanceUID)
        code = main(
            ["legacy", "encode", "--source", str(folder), "--series", series, "-o", str(out)]
        )
    assert code == 0
    written = pydicom.dcmread(out)
    (study,) = written.SourceImageEvidenceSequence
    assert study.ReferencedSeriesSequence[0].SeriesInstanceUID == original[0].SeriesInstanceUID
    assert not [r for r in caplog.records if r.name.startswith("radbridge.iods.legacy")]
