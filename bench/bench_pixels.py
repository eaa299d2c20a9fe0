"""Pixel layer throughput: 1-bit packing, and each codec serial vs parallel.

Usage: .venv/bin/python bench/bench_pixels.py [--frames 3000] [--workers 2]

Frames are 512x512: a label map (uint8, a few blobs per frame, like a LABELMAP
SEG) and 1-bit masks (one blob, like BINARY SEG frames). Each codec encodes
them in this thread, on threads and in forked processes; then FrameReader
decodes every frame, in this thread and in forked processes. Prints a
Markdown table of frames/s; "(auto)" marks what radbridge picks by itself.
Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset

from radbridge.pixels import (
    FrameFormat,
    FrameReader,
    TransferSyntax,
    encode_pixel_data,
    pack_frames,
    unpack_frames,
)
from radbridge.pixels.parallel import choose_pool, encode_parallel

SIZE = 512


def label_frames(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.ogrid[:SIZE, :SIZE]
    out = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        for label in range(1, 4):
            cy, cx = rng.integers(120, 390, 2)
            r = int(rng.integers(8, 90))
            out[i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = label
    return out


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def row(name: str, mode: str, n: int, seconds: float, extra: str = "") -> None:
    print(f"| {name} | {mode} | {n / seconds:,.0f} | {seconds:.2f} | {extra} |", flush=True)


def bench_bits(masks: np.ndarray) -> None:
    n = len(masks)
    data = b""

    def pack() -> None:
        nonlocal data
        data = pack_frames(masks)

    row("pack_frames (1-bit native)", "serial", n, timed(pack), f"{len(data) / 1e6:.0f} MB")
    row(
        "unpack_frames, all",
        "serial",
        n,
        timed(lambda: unpack_frames(data, rows=SIZE, columns=SIZE, number_of_frames=n)),
    )
    pick = np.random.default_rng(1).permutation(n)[: n // 10]
    row(
        "unpack_frames, random 10%",
        "serial",
        len(pick),
        timed(lambda: unpack_frames(data, rows=SIZE, columns=SIZE, indices=pick)),
    )
    odd = masks[:, :509, :509]
    odd_data = pack_frames(odd)
    row(
        "unpack_frames 509x509 (not byte-aligned), random 10%",
        "serial",
        len(pick),
        timed(lambda: unpack_frames(odd_data, rows=509, columns=509, indices=pick)),
    )


def dataset(frames: np.ndarray, syntax: TransferSyntax, bits: int) -> Dataset:
    ds = Dataset()
    ds.Rows = ds.Columns = SIZE
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    encode_pixel_data(frames, syntax, bits_allocated=bits, workers=os.cpu_count()).store(ds)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax.uid
    return ds


def bench_codec(name: str, frames: np.ndarray, syntax: TransferSyntax, workers: int) -> None:
    bits = 1 if frames.dtype == np.bool_ else 8
    fmt = FrameFormat.of_frames(frames, bits_allocated=bits)
    n = len(frames)
    auto = choose_pool(syntax, fmt, n, workers)
    sizes: list[int] = []
    for mode in ("serial", "thread", "fork"):
        count = 1 if mode == "serial" else workers

        def run(mode: str = mode, count: int = count) -> None:
            sizes[:] = [len(e) for e in encode_parallel(frames, syntax, fmt, count, kind=mode)]

        seconds = timed(run)
        label = f"{mode} x{count}" + (" (auto)" if mode == auto else "")
        row(f"encode {syntax.value}, {name}", label, n, seconds, f"{sum(sizes) / 1e6:.1f} MB")
    reader = FrameReader(dataset(frames, syntax, bits))
    auto = choose_pool(syntax, fmt, n, workers, decode=True)
    for count in (1, workers):
        mode = "serial x1" if count == 1 else f"fork x{count}"
        mode += " (auto)" if (auto == "serial") == (count == 1) else ""
        seconds = timed(lambda count=count: reader.frames(workers=count))
        row(f"decode {syntax.value}, {name}", mode, n, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    print(
        f"{args.frames} frames of {SIZE}x{SIZE}; {args.workers} workers; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}, NumPy {np.__version__}"
    )
    labels = label_frames(args.frames)
    masks = labels == 1
    print("\n| case | mode | frames/s | seconds | size |\n|---|---|---:|---:|---|")
    bench_bits(masks)
    for syntax in (TransferSyntax.RLE, TransferSyntax.JPEGLS, TransferSyntax.JPEG2000):
        bench_codec("8-bit labels", labels, syntax, args.workers)
        if syntax is not TransferSyntax.JPEGLS:
            bench_codec("1-bit masks", masks, syntax, args.workers)
    if TransferSyntax.DEFLATE.writable:
        bench_codec("8-bit labels", labels, TransferSyntax.DEFLATE, args.workers)
        bench_codec("1-bit masks", masks, TransferSyntax.DEFLATE, args.workers)
    else:
        print("\n(deflate skipped: this pydicom cannot write Deflated Image Frame Compression)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
