"""Contract: encode -> write -> read -> decode equals the input; dciodvfy finds no error."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from radbridge.iods.seg import encode_segmentation, read_segmentation
from radbridge.iods.source import SourceSeries
from tests.foundation.builders import ct_slice, rotation
from tests.peers import dciodvfy

from .conftest import descriptions

SYNTAXES = ["explicit", "deflated-explicit", "rle", "jpegls", "jpeg2000"]
#: 1-bit BINARY frames cannot be JPEG-LS coded (it needs at least 2 bits per sample).
BINARY_SYNTAXES = [s for s in SYNTAXES if s != "jpegls"]
COMBINATIONS = [("binary", s) for s in BINARY_SYNTAXES] + [("labelmap", s) for s in SYNTAXES]


def validate(path, tmp_path):
    """dciodvfy the file; it cannot parse Deflated Explicit VR Little Endian, so such a
    file is validated as the same data set saved uncompressed."""
    ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99":
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        path = tmp_path / "inflated.dcm"
        ds.save_as(path, enforce_file_format=True)
    result = dciodvfy(path)
    assert result.errors == [], result.output


def round_trip(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return read_segmentation(buffer.getvalue()), buffer.getvalue()


@pytest.mark.parametrize(("seg_type", "syntax"), COMBINATIONS)
def test_label_map_round_trip(study, tmp_path, seg_type, syntax):
    ds = encode_segmentation(
        study.labels,
        study.source,
        descriptions(7),
        segmentation_type=seg_type,
        transfer_syntax=syntax,
    )
    seg, data = round_trip(ds)
    np.testing.assert_array_equal(seg.label_volume(study.source).array, study.labels)
    path = tmp_path / "seg.dcm"
    path.write_bytes(data)
    validate(path, tmp_path)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_fractional_round_trip(study, tmp_path, syntax):
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 256, size=(3, *study.labels.shape), dtype=np.uint8)
    stored[:, :, :10] = 0
    ds = encode_segmentation(
        stored,
        study.source,
        descriptions(3),
        segmentation_type="fractional",
        transfer_syntax=syntax,
    )
    seg, data = round_trip(ds)
    back = seg.stacked_volume(study.source, fractional_as_float=False)
    np.testing.assert_array_equal(back.array, stored)
    path = tmp_path / "seg.dcm"
    path.write_bytes(data)
    validate(path, tmp_path)


def test_binary_jpegls_is_refused_with_alternatives(study):
    from radbridge.errors import EncodingError

    with pytest.raises(EncodingError, match="1-bit") as err:
        encode_segmentation(study.labels, study.source, descriptions(7), transfer_syntax="jpegls")
    assert "rle" in str(err.value) and "LABELMAP" in str(err.value)


@pytest.mark.parametrize("syntax", BINARY_SYNTAXES)
def test_overlapping_binary_round_trip(study, syntax):
    rng = np.random.default_rng(2)
    stacked = rng.random((4, *study.labels.shape)) > 0.7
    ds = encode_segmentation(stacked, study.source, descriptions(4), transfer_syntax=syntax)
    seg, _ = round_trip(ds)
    assert seg.dataset.SegmentsOverlap == "UNDEFINED"
    np.testing.assert_array_equal(seg.stacked_volume(study.source).array, stacked)


def test_sixteen_bit_labelmap(study):
    labels = (study.labels.astype(np.uint16) * 50) % 301
    ds = encode_segmentation(
        labels,
        study.source,
        descriptions(300),
        segmentation_type="labelmap",
        transfer_syntax="explicit",
    )
    assert ds.BitsAllocated == 16
    seg, _ = round_trip(ds)
    np.testing.assert_array_equal(seg.label_volume(study.source).array, labels)


def small_source(q, rows, columns, count):
    rot = rotation(q)
    iop = [*rot[:, 0], *rot[:, 1]]
    normal = np.cross(rot[:, 0], rot[:, 1])
    datasets = [
        ct_slice(tuple(7.0 * k * normal), iop, rows=rows, columns=columns, spacing=(0.8, 0.6))
        for k in range(count)
    ]
    return SourceSeries.from_datasets(datasets)


shapes = st.tuples(st.integers(1, 5), st.integers(1, 13), st.integers(1, 13))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    q=st.tuples(*(st.floats(0.1, 1.0) for _ in range(4))),
    shape=shapes,
    seg_type=st.sampled_from(["binary", "labelmap"]),
)
def test_random_label_maps_round_trip(data, q, shape, seg_type):
    labels = data.draw(arrays(np.uint8, shape, elements=st.integers(0, 4)))
    if not labels.any():
        labels.flat[0] = 1
    source = small_source(q, shape[1], shape[2], shape[0])
    ds = encode_segmentation(
        labels, source, descriptions(4), segmentation_type=seg_type, transfer_syntax="explicit"
    )
    seg, _ = round_trip(ds)
    np.testing.assert_array_equal(seg.label_volume(source).array, labels)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), shape=shapes, n=st.integers(1, 4))
def test_random_stacked_binary_round_trip(data, shape, n):
    stacked = data.draw(arrays(np.bool_, (n, *shape)))
    if not stacked.any():
        stacked.flat[0] = True
    source = small_source((1, 0, 0, 0), shape[1], shape[2], shape[0])
    ds = encode_segmentation(stacked, source, descriptions(n))
    seg, _ = round_trip(ds)
    np.testing.assert_array_equal(seg.stacked_volume(source).array, stacked)
