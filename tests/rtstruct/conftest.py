"""Fixtures for RTSTRUCT tests: a phantom study on disk, ROI descriptions with codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radbridge.coding import sct
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series_datasets
from radbridge.iods.rtstruct import ROIDescription
from radbridge.iods.seg import AlgorithmIdentification, SegmentDescription
from radbridge.iods.source import SourceSeries

ALGORITHM = AlgorithmIdentification("radbridge-test", "1.0")
ANATOMY = sct("123037004", "Anatomical Structure")
ALTERED = sct("49755003", "Morphologically Altered Structure")
#: Phantom label → (name, property type); codes written explicitly so the tests do not
#: depend on the curated code table.
PHANTOM = {
    1: ("Body", sct("38266002", "Entire body"), ANATOMY),
    2: ("Lung_L", sct("39607008", "Lung"), ANATOMY),
    3: ("Lung_R", sct("39607008", "Lung"), ANATOMY),
    4: ("Bone", sct("272673000", "Bone"), ANATOMY),
    5: ("Liver", sct("10200004", "Liver"), ANATOMY),
    6: ("Nodules", sct("27925004", "Nodule"), ALTERED),
    7: ("Liver lesion", sct("52988006", "Lesion"), ALTERED),
}


def segment(number: int) -> SegmentDescription:
    name, property_type, category = PHANTOM[number]
    return SegmentDescription(
        number,
        name,
        category=category,
        property_type=property_type,
        algorithm=ALGORITHM,
        display_rgb=(40 * number % 256, 255 - 30 * number, 90),
    )


def rois(numbers=tuple(PHANTOM)) -> list[ROIDescription]:
    return [ROIDescription.from_segment(segment(n)) for n in numbers]


@dataclass
class Study:
    folder: Path
    datasets: list[Dataset]
    source: SourceSeries
    labels: np.ndarray


def _study(out: Path, *, slices: int, size: int, seed: int) -> Study:
    files = write_phantom(out, slices=slices, size=size, seed=seed, nifti=False)
    datasets = read_series_datasets(files.dicom_dir, headers_only=True)
    return Study(
        files.dicom_dir, datasets, SourceSeries.from_datasets(datasets), np.load(files.labels_npy)
    )


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Study:
    """A 16-slice 64x64 phantom: every label present, fast."""
    return _study(tmp_path_factory.mktemp("rt-phantom"), slices=16, size=64, seed=7)


@pytest.fixture(scope="session")
def big_study(tmp_path_factory) -> Study:
    """A 16-slice 256x256 phantom (0.78 mm pixels less than a clinical CT's 512)."""
    return _study(tmp_path_factory.mktemp("rt-phantom-256"), slices=16, size=256, seed=3)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total
