"""Parallel encoding: every pool kind gives the serial result in frame order; errors survive."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from pydicom.dataset import Dataset

from radbridge.errors import DecodingError, EncodingError
from radbridge.pixels import (
    FrameFormat,
    FrameReader,
    TransferSyntax,
    encode_frames,
    encode_pixel_data,
    parallel,
)
from radbridge.pixels import reader as reader_module
from radbridge.pixels import syntax as syntax_module


def labels(n: int = 24, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(9)
    frames = np.zeros((n, size, size), np.uint8)
    for i in range(n):  # every frame different, so a reordering shows
        top, left = rng.integers(0, size - 16, 2)
        frames[i, top : top + 16, left : left + 8 + i % 8] = 1 + i % 5
    return frames


@pytest.fixture
def alone():
    """Forking is only safe (and only chosen) while this process runs one thread."""
    if not parallel.can_fork():
        if os.environ.get("RADBRIDGE_REQUIRE_FORK") == "1":
            pytest.fail("this process runs several threads: the fork pool cannot be tested")
        pytest.skip(
            "other threads run in this test process, so radbridge will not fork; "
            "scripts/dev.sh test runs this file again in a fresh process"
        )


@pytest.fixture
def deflate(monkeypatch):
    monkeypatch.setattr(syntax_module, "_pydicom_writes_deflate", lambda: True)


@pytest.mark.usefixtures("deflate", "alone")
@pytest.mark.parametrize("kind", ["thread", "fork"])
@pytest.mark.parametrize(
    ("syntax", "binary"),
    [(s, False) for s in ("rle", "jpegls", "jpeg2000", "deflate")]
    + [(s, True) for s in ("rle", "jpeg2000", "deflate")],  # JPEG-LS has no 1-bit frames
)
def test_pools_keep_frame_order(kind, syntax, binary):
    frames = labels() > 0 if binary else labels()
    ts = TransferSyntax(syntax)
    fmt = FrameFormat.of_frames(frames)
    serial = parallel.encode_parallel(frames, ts, fmt, 1)
    assert len(serial) == len(frames)
    assert len(set(serial)) == len(frames)  # distinct frames, distinct bytes
    assert parallel.encode_parallel(frames, ts, fmt, 2, kind=kind) == serial


@pytest.mark.usefixtures("alone")
def test_public_api_uses_workers_when_worth_it(monkeypatch):
    monkeypatch.setitem(parallel.MIN_SECONDS, "fork", 0.0)
    frames = labels()
    kinds = []
    original = parallel.choose_pool

    def spy(*args, **kwargs):
        kinds.append(original(*args, **kwargs))
        return kinds[-1]

    monkeypatch.setattr(parallel, "choose_pool", spy)
    assert encode_frames(frames, "jpegls", workers=2) == encode_frames(frames, "jpegls", workers=1)
    assert kinds == ["fork", "serial"]
    # RLE is encoded for all frames at once in NumPy (pixels/rle.py), never in a pool
    assert encode_frames(frames, "rle", workers=2) == encode_frames(frames, "rle", workers=1)
    assert kinds == ["fork", "serial"]


@pytest.mark.usefixtures("alone")
def test_worker_errors_name_the_global_frame_number(monkeypatch):
    monkeypatch.setitem(parallel.MIN_SECONDS, "fork", 0.0)
    frames = np.zeros((40, 8, 8), np.uint8)
    frames[32] = np.random.default_rng(0).integers(0, 256, (8, 8))  # pyjpegls fails on it
    with pytest.raises(EncodingError, match="frame 33"):
        parallel.encode_parallel(frames, TransferSyntax.JPEGLS, FrameFormat.of_frames(frames), 2)


@pytest.mark.usefixtures("alone")
def test_choose_pool():
    big = FrameFormat(512, 512, bits_allocated=8)
    assert parallel.choose_pool(TransferSyntax.RLE, big, 3000, 1) == "serial"
    assert parallel.choose_pool(TransferSyntax.RLE, big, 3, 2) == "serial"  # not worth it
    assert parallel.choose_pool(TransferSyntax.RLE, big, 3000, 2) == "fork"
    assert parallel.choose_pool(TransferSyntax.DEFLATE, big, 3000, 2) == "thread"
    assert parallel.choose_pool(TransferSyntax.JPEG2000, big, 3000, 2, decode=True) == "fork"
    assert parallel.choose_pool(TransferSyntax.JPEGLS, big, 30, 2, decode=True) == "serial"
    # JPEG-LS decodes at ~0.9 ns a sample here (0.7 s for 3,000 label frames in one
    # process, half on two): such a series is decoded in forked workers
    assert parallel.choose_pool(TransferSyntax.JPEGLS, big, 3000, 2, decode=True) == "fork"
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:  # never fork a process that runs other threads
        assert parallel.choose_pool(TransferSyntax.RLE, big, 3000, 2) == "serial"
        assert parallel.choose_pool(TransferSyntax.DEFLATE, big, 3000, 2) == "thread"
    finally:
        stop.set()
        other.join()


def reader_for(frames, syntax):
    encoded = encode_pixel_data(frames, syntax, workers=1)
    ds = Dataset()
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 1 if frames.dtype == bool else 8
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    encoded.store(ds)
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = encoded.transfer_syntax.uid
    return FrameReader(ds)


@pytest.mark.parametrize("syntax", ["rle", "jpeg2000"])
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.usefixtures("alone")
def test_forked_decoding_equals_serial(monkeypatch, syntax, binary):
    monkeypatch.setitem(parallel.MIN_SECONDS, "fork", 0.0)
    frames = labels() > 0 if binary else labels()
    reader = reader_for(frames, syntax)
    calls = []
    original = parallel.decode_parallel
    monkeypatch.setattr(
        reader_module, "decode_parallel", lambda *a: calls.append(1) or original(*a)
    )
    order = [5, 0, 23, 7, 7, 12, 1]
    got = reader.frames(order, workers=2)
    assert calls == [1]
    np.testing.assert_array_equal(got, frames[order])
    got[0] = 1  # an ordinary writable array
    np.testing.assert_array_equal(reader.frames(order, workers=1), frames[order])


@pytest.mark.usefixtures("alone")
def test_forked_decoding_reports_the_bad_frame(monkeypatch):
    monkeypatch.setitem(parallel.MIN_SECONDS, "fork", 0.0)
    frames = labels()
    reader = reader_for(frames, "jpegls")
    assert reader.encoded_frame(0)  # builds the fragment index
    reader._fragments._frames[17] = b"\xff\xd8" + b"\x00" * 30  # frame 18 is garbage
    with pytest.raises(DecodingError, match="frame 18"):
        reader.frames(workers=2)


def test_workers_must_be_positive():
    with pytest.raises(EncodingError, match="workers"):
        encode_frames(labels(), "rle", workers=0)


def test_jpeg2000_encoding_from_several_threads_does_not_crash():
    # pylibjpeg-openjpeg 2.6 segfaults when threads encode 512x512 frames concurrently;
    # radbridge serialises JPEG 2000 encoding. Run in a child so a crash fails cleanly.
    script = textwrap.dedent(
        """
        from concurrent.futures import ThreadPoolExecutor
        import numpy as np
        from radbridge.pixels import encode_frames
        rng = np.random.default_rng(0)
        chunks = [rng.integers(0, 4, (4, 512, 512), dtype=np.uint8) for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            done = list(pool.map(lambda c: encode_frames(c, "jpeg2000", workers=1), chunks))
        print(sum(len(d) for d in done))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "16"


@pytest.mark.parametrize("syntax", ["rle", "jpegls"])
@pytest.mark.usefixtures("alone")
def test_a_compressed_series_decodes_its_slices_in_forked_workers(monkeypatch, syntax):
    # one compressed frame per file (a CT series): the slices are decoded across files
    from radbridge import Series
    from tests.foundation.builders import ct_slice

    monkeypatch.setitem(parallel.MIN_SECONDS, "fork", 0.0)
    rng = np.random.default_rng(3)
    datasets, expected = [], []
    for k in (4, 0, 3, 1, 2, 5):  # stored out of order: the plan orders them
        ds = ct_slice((0, 0, 1.5 * k), rows=16, columns=16)
        pixels = rng.integers(0, 4096, (1, 16, 16)).astype(np.uint16)
        encoded = encode_pixel_data(pixels, syntax, workers=1)
        encoded.store(ds)
        ds.file_meta.TransferSyntaxUID = encoded.transfer_syntax.uid
        datasets.append(ds)
        expected.append((k, pixels[0]))
    calls = []
    original = parallel.decode_parallel
    monkeypatch.setattr(
        reader_module, "decode_parallel", lambda *a: calls.append(1) or original(*a)
    )
    volume = Series.from_datasets(datasets).volume(workers=2)
    assert calls == [1]
    np.testing.assert_array_equal(volume.array, np.stack([p for _, p in sorted(expected)]))
    serial = Series.from_datasets(datasets).volume(workers=1)
    assert calls == [1]  # one worker: decoded in this process
    np.testing.assert_array_equal(serial.array, volume.array)
