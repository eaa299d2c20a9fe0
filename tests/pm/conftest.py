"""Fixtures for Parametric Map tests: a small phantom study and a quantity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radbridge.coding import dcm
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_series_datasets
from radbridge.iods.common import SeriesOptions
from radbridge.iods.source import SourceSeries

CLASS_ACTIVATION = dcm("130402", "Class activation")
ADC = dcm("113041", "Apparent Diffusion Coefficient")
FIXED = SeriesOptions(
    series_instance_uid="2.25.4242",
    sop_instance_uid="2.25.4243",
    timestamp=dt.datetime(2024, 5, 6, 7, 8, 9),
)


@dataclass
class Study:
    folder: Path
    datasets: list[Dataset]
    source: SourceSeries
    labels: np.ndarray


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Study:
    out = tmp_path_factory.mktemp("pm-phantom")
    files = write_phantom(out, slices=8, size=32, seed=3)
    datasets = read_series_datasets(files.dicom_dir, headers_only=True)
    return Study(
        files.dicom_dir, datasets, SourceSeries.from_datasets(datasets), np.load(files.labels_npy)
    )


def probability(shape: tuple[int, ...], dtype: type = np.float32, seed: int = 0) -> np.ndarray:
    """Random values in [0, 1) with awkward floats (not round decimals)."""
    return np.random.default_rng(seed).random(shape).astype(dtype)
