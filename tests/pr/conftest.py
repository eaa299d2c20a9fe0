"""Fixtures for presentation state tests: a phantom CT on disk, its labels, and helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radbridge import Series
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series, read_series_datasets

#: Phantom label -> name.
NAMES = {
    1: "Body",
    2: "Lung L",
    3: "Lung R",
    4: "Bone",
    5: "Liver",
    6: "Nodules",
    7: "Liver lesion",
}


@dataclass
class Study:
    folder: Path
    datasets: list[Dataset]
    source: Series
    labels: np.ndarray

    @property
    def present(self) -> dict[int, str]:
        """The labels the phantom holds, number -> name."""
        return {n: NAMES[n] for n in np.unique(self.labels).tolist() if n}

    def stacked(self) -> np.ndarray:
        """One boolean mask per present label (they do not overlap in the phantom)."""
        return np.stack([self.labels == n for n in self.present])


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Study:
    """A 10-slice 64x64 phantom CT (Instance Number order is not slice order)."""
    files = write_phantom(tmp_path_factory.mktemp("pr-phantom"), slices=10, size=64, seed=5)
    datasets = read_series_datasets(files.dicom_dir, headers_only=True)
    return Study(files.dicom_dir, datasets, read_series(files.dicom_dir), np.load(files.labels_npy))


def save(ds: Dataset, folder: Path, name: str = "ps.dcm") -> Path:
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path
