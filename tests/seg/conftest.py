"""Fixtures for SEG tests: a small phantom study and segment descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from radbridge.coding import sct
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series_datasets
from radbridge.iods.seg import AlgorithmIdentification, SegmentDescription
from radbridge.iods.source import SourceSeries

ALGORITHM = AlgorithmIdentification("radbridge-test", "1.0")
ANATOMY = sct("123037004", "Anatomical Structure")


def source_stack(study) -> list[Path]:
    """The source files in the source's slice order (a viewer's stack)."""
    by_uid = {}
    for path in study.folder.glob("*.dcm"):
        by_uid[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    return [by_uid[ref.sop_instance_uid] for ref in study.source.slice_refs]


def descriptions(n: int) -> list[SegmentDescription]:
    return [
        SegmentDescription(
            k,
            f"segment {k}",
            category=ANATOMY,
            property_type=sct("10200004", "Liver"),
            algorithm=ALGORITHM,
            tracking_id=f"seg-{k}",
            tracking_uid=f"2.25.{1000 + k}",
        )
        for k in range(1, n + 1)
    ]


@dataclass
class Study:
    folder: Path
    datasets: list[Dataset]
    source: SourceSeries
    labels: np.ndarray


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Study:
    out = tmp_path_factory.mktemp("phantom")
    files = write_phantom(out, slices=12, size=48, seed=7)
    datasets = read_series_datasets(files.dicom_dir, headers_only=True)
    return Study(
        files.dicom_dir, datasets, SourceSeries.from_datasets(datasets), np.load(files.labels_npy)
    )
