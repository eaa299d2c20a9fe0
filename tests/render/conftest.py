"""Fixtures for overlay tests: a phantom study read with pixels, and its labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from radbridge.geometry import Volume
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_source_series, read_volume
from radbridge.iods.source import SourceSeries

#: Saturated colours, none grey, so "coloured" and "grey" pixels cannot be confused.
COLOURS = {1: (255, 0, 0), 2: (0, 200, 0), 3: (0, 0, 255), 4: (255, 0, 255), 5: (0, 255, 255)}


@dataclass
class Study:
    root: Path
    folder: Path
    source: SourceSeries
    volume: Volume
    labels: np.ndarray


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Study:
    out = tmp_path_factory.mktemp("render-phantom")
    files = write_phantom(out, slices=6, size=48, seed=2)
    labels = np.load(files.labels_npy)
    labels[labels > 5] = 5
    return Study(
        out,
        files.dicom_dir,
        read_source_series(files.dicom_dir),
        read_volume(files.dicom_dir, rescale=True),
        labels,
    )
