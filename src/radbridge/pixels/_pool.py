"""Run frame encoding on several cores, keeping frame order.

Measured on the project's 2-core machine (see bench/PIXELS.md): pylibjpeg-rle,
pyjpegls and pylibjpeg-openjpeg hold the GIL while they encode, so threads do
not help them; zlib releases it, so Deflate runs on threads. The other codecs
run in worker processes. A forked worker inherits the frames without copying
them, and starts in milliseconds; a fork is only used while the calling process
runs a single thread (forking a threaded process can deadlock the child).
Otherwise workers come from a *forkserver* (or *spawn*) context and receive
their frames by pickling, which costs about a second of start-up, so it is only
used for work expected to take longer than that.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from numpy.typing import NDArray

from radbridge.pixels.bits import pack_each_frame, unpack_frames
from radbridge.pixels.codecs import encode_frame
from radbridge.pixels.frame_format import FrameFormat
from radbridge.pixels.syntax import TransferSyntax

log = logging.getLogger(__name__)

#: Rough encoding cost in nanoseconds per sample, measured for 512x512 label frames
#: (bench/bench_pixels.py); only used to decide whether workers pay off.
_COST_NS = {
    TransferSyntax.RLE: 9.0,
    TransferSyntax.JPEGLS: 0.9,
    TransferSyntax.JPEG2000: 5.5,
    TransferSyntax.DEFLATE: 3.5,
}
#: Expected serial time (s) below which no pool is started, by pool kind.
_MIN_SECONDS = {"thread": 0.05, "fork": 0.2, "spawn": 2.0}
#: Tasks per worker: small enough to balance uneven frames, large enough to amortise.
_TASKS_PER_WORKER = 4

# Frames handed to forked workers by inheritance, keyed by a token.
_SHARED: dict[int, NDArray[Any]] = {}


def _encode_range(
    token: int, start: int, stop: int, syntax: TransferSyntax, fmt: FrameFormat
) -> list[bytes]:
    frames = _SHARED[token]
    return [encode_frame(frames[i], syntax, fmt, index=i) for i in range(start, stop)]


def _encode_payload(
    payload: NDArray[Any], start: int, syntax: TransferSyntax, fmt: FrameFormat, packed: bool
) -> list[bytes]:
    out = []
    for i, item in enumerate(payload):
        if packed:
            item = unpack_frames(item, rows=fmt.rows, columns=fmt.columns, indices=[0])[0]
        out.append(encode_frame(item, syntax, fmt, index=start + i))
    return out


def encode_serial(frames: NDArray[Any], syntax: TransferSyntax, fmt: FrameFormat) -> list[bytes]:
    """Encode every frame in this thread."""
    return [encode_frame(frame, syntax, fmt, index=i) for i, frame in enumerate(frames)]


def choose_pool(syntax: TransferSyntax, fmt: FrameFormat, count: int, workers: int) -> str:
    """Return ``"serial"``, ``"thread"``, ``"fork"`` or ``"spawn"`` for this job."""
    if workers <= 1 or count < 2:
        return "serial"
    seconds = count * fmt.pixels * _COST_NS[syntax] * 1e-9
    if syntax is TransferSyntax.DEFLATE:
        kind = "thread"
    elif multiprocessing.current_process().daemon:
        return "serial"  # daemonic processes (e.g. pool workers) may not have children
    elif "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        kind = "fork"
    else:
        kind = "spawn"
    return kind if seconds >= _MIN_SECONDS[kind] else "serial"


def encode_parallel(
    frames: NDArray[Any], syntax: TransferSyntax, fmt: FrameFormat, workers: int
) -> list[bytes]:
    """Encode frames with ``workers`` workers of the kind :func:`choose_pool` picks."""
    count = len(frames)
    kind = choose_pool(syntax, fmt, count, workers)
    if kind == "serial":
        return encode_serial(frames, syntax, fmt)
    workers = min(workers, count)
    size = max(1, math.ceil(count / (workers * _TASKS_PER_WORKER)))
    bounds = [(start, min(start + size, count)) for start in range(0, count, size)]
    started = time.perf_counter()
    try:
        result = _run(kind, frames, syntax, fmt, workers, bounds)
    except (OSError, RuntimeError) as exc:  # no processes allowed, or a worker died
        log.warning("parallel encoding failed (%s), encoding in this thread", exc)
        return encode_serial(frames, syntax, fmt)
    log.debug(
        "encoded %d %s frames with %d %s workers in %.2f s",
        count,
        syntax.value,
        workers,
        kind,
        time.perf_counter() - started,
    )
    return result


def _run(
    kind: str,
    frames: NDArray[Any],
    syntax: TransferSyntax,
    fmt: FrameFormat,
    workers: int,
    bounds: list[tuple[int, int]],
) -> list[bytes]:
    if kind == "thread":
        with ThreadPoolExecutor(workers, thread_name_prefix="radbridge-encode") as pool:
            return _collect(
                pool, lambda a, b: pool.submit(_slice, frames, a, b, syntax, fmt), bounds
            )
    if kind == "fork":
        token = id(frames)
        _SHARED[token] = frames
        try:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                return _collect(
                    pool, lambda a, b: pool.submit(_encode_range, token, a, b, syntax, fmt), bounds
                )
        finally:
            del _SHARED[token]
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    packed = fmt.bits_allocated == 1
    payload = pack_each_frame(frames) if packed else frames
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        return _collect(
            pool,
            lambda a, b: pool.submit(_encode_payload, payload[a:b], a, syntax, fmt, packed),
            bounds,
        )


def _slice(
    frames: NDArray[Any], start: int, stop: int, syntax: TransferSyntax, fmt: FrameFormat
) -> list[bytes]:
    return [encode_frame(frames[i], syntax, fmt, index=i) for i in range(start, stop)]


def _collect(
    pool: Executor, submit: Callable[[int, int], Any], bounds: list[tuple[int, int]]
) -> list[bytes]:
    futures = [submit(start, stop) for start, stop in bounds]
    try:
        return [item for future in futures for item in future.result()]
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def default_workers() -> int:
    """Return the worker count used when none is given: the number of usable CPUs."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
