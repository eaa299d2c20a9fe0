"""One Series: a folder scanned and planned once, its pixels read on first use."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import radbridge.io.scan
import radbridge.io.series
from radbridge import Series, SourceSeries, read_series
from radbridge.errors import MissingAttributeError
from radbridge.geometry import Volume, volume_from_datasets
from radbridge.io.series import read_source_series, read_volume
from radbridge.iods.source import resolve_source
from radbridge.seg import encode_segmentation, read_segmentation
from tests.foundation.builders import ct_slice


def _folder(tmp_path, count=5):
    # written in shuffled order: the plan, not the file order, orders the slices
    for k in [k for k in (3, 0, 4, 1, 2) if k < count]:
        ds = ct_slice((0, 0, 2.0 * k), value=100 + k)
        ds.save_as(tmp_path / f"f{k}.dcm", enforce_file_format=True)
    return tmp_path


@pytest.fixture
def reads(monkeypatch):
    """Every dcmread the scan and the series make: (file name, with pixels?)."""
    seen: list[tuple[str, bool]] = []
    real = pydicom.dcmread

    def counting(path, *args, **kwargs):
        seen.append((str(path).rsplit("/", 1)[-1], not kwargs.get("stop_before_pixels")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(radbridge.io.scan, "dcmread", counting)
    monkeypatch.setattr(radbridge.io.series, "dcmread", counting)
    return seen


def test_a_folder_is_read_once_headers_then_pixels(tmp_path, reads):
    folder = _folder(tmp_path)
    series = read_series(folder)
    headers = sorted(reads)
    assert headers == sorted((f"f{k}.dcm", False) for k in range(5))  # one header read each
    assert series.geometry.shape == (5, 4, 5) and series.modality == "CT"
    reads.clear()
    volume = series.volume(rescale=True)
    assert sorted(reads) == sorted((f"f{k}.dcm", True) for k in range(5))  # pixels once each
    assert volume.array[:, 0, 0].tolist() == [100 - 1024 + k for k in range(5)]
    reads.clear()
    assert series.volume(rescale=True) is volume  # decoded once
    assert reads == []


def test_series_volume_equals_the_other_entry_points(tmp_path):
    folder = _folder(tmp_path)
    datasets = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    expected = volume_from_datasets(datasets)
    for volume in (
        read_series(folder).volume(),
        read_volume(folder),
        Series.from_datasets(datasets).volume(),
    ):
        assert np.array_equal(volume.array, expected.array)
        assert volume.array.dtype == expected.array.dtype == np.uint16
        assert np.allclose(volume.affine, expected.affine)
        assert volume.slice_refs == expected.slice_refs


def test_old_names_are_the_same_series(tmp_path):
    folder = _folder(tmp_path, 3)
    assert SourceSeries is Series
    assert isinstance(read_source_series(folder), Series)


def test_headers_alone_have_no_pixels_to_read(tmp_path):
    folder = _folder(tmp_path, 3)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in folder.glob("*.dcm")]
    series = Series.from_datasets(headers)
    assert series.geometry.shape == (3, 4, 5)
    with pytest.raises(MissingAttributeError, match="headers alone") as err:
        series.volume()
    assert err.value.attribute == "PixelData"


def test_a_series_from_a_volume_returns_that_volume():
    volume = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4), "1.2.3")
    series = Series.from_volume(volume)
    assert series.volume() is volume and series.volume(rescale=True) is volume


def test_every_writer_takes_the_series_and_it_is_not_planned_again(tmp_path, monkeypatch):
    series = read_series(_folder(tmp_path, 3))
    assert resolve_source(series, consequence="", hint="") is series

    def no_planning(*args, **kwargs):
        raise AssertionError("the series was planned again")

    monkeypatch.setattr("radbridge.iods.source.plan_series", no_planning)
    labels = np.zeros(series.geometry.shape, np.uint8)
    labels[1, 1:3, 1:4] = 1
    seg = read_segmentation(encode_segmentation(labels, series, {1: "liver"}))
    assert np.array_equal(seg.label_volume(series).array, labels)


def test_a_series_travels_to_a_worker_process(tmp_path):
    # Dask and process pools pickle what they run: the lazy loader must survive
    import pickle

    folder = _folder(tmp_path, 3)
    datasets = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    for series in (read_series(folder), Series.from_datasets(datasets)):
        copy = pickle.loads(pickle.dumps(series))
        assert np.array_equal(copy.volume().array, series.volume().array)
