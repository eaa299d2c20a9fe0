"""Fixtures for the SR tests: a small phantom study and a BINARY SEG on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_source_series
from radbridge.iods.seg.writer import encode_segmentation


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    return write_phantom(tmp_path_factory.mktemp("sr-phantom"), slices=12, size=64, nifti=False)


@pytest.fixture(scope="session")
def source(study):
    return read_source_series(study.dicom_dir)


@pytest.fixture(scope="session")
def seg_file(study, source, tmp_path_factory):
    names = {int(k): v for k, v in json.loads(study.labels_json.read_text()).items()}
    seg = encode_segmentation(np.load(study.labels_npy), source, names)
    path = tmp_path_factory.mktemp("sr-seg") / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    return path
