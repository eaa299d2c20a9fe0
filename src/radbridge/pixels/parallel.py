"""Run frame encoding and decoding on several cores, keeping frame order.

What bench/bench_pixels.py measured on the project's 2-core machine decides
the strategy (figures in bench/PIXELS.md):

* pylibjpeg-rle, pyjpegls and pylibjpeg-openjpeg hold the GIL while they
  encode: threads give nothing (and pylibjpeg-openjpeg 2.6 crashes when two
  threads encode at once, see codecs.py). zlib releases the GIL, so Deflate
  runs on threads.
* Forked worker processes inherit the frames without a copy and start in
  milliseconds: about 1.9x for RLE and JPEG 2000 with 2 workers. A fork is only
  used while the calling process runs a single thread (forking a threaded
  process can deadlock the child) and is not itself a daemonic worker.
* Spawned or forkserver workers must receive the frames by pickling and import
  pydicom first; with 2 cores they were slower than one thread (RLE 5.3 s vs
  6.8 s at best, JPEG-LS 5.8 s vs 0.8 s, 3,000 frames), so they are not used.

Decoding forks the same way; workers write the frames into shared memory.
"""

from __future__ import annotations

import logging
import math
import mmap
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.pixels.codecs import encode_frame
from radbridge.pixels.frame_format import FrameFormat
from radbridge.pixels.syntax import TransferSyntax

__all__ = [
    "MIN_SECONDS",
    "can_fork",
    "choose_pool",
    "decode_parallel",
    "default_workers",
    "encode_parallel",
]

log = logging.getLogger(__name__)

#: Rough cost in nanoseconds per sample of 512x512 label frames (bench_pixels.py);
#: only used to decide whether workers pay off.
_ENCODE_NS: dict[TransferSyntax | str, float] = {
    TransferSyntax.RLE: 9.0,
    TransferSyntax.JPEGLS: 0.9,
    TransferSyntax.JPEG2000: 5.5,
    TransferSyntax.DEFLATE: 3.5,
}
_DECODE_NS: dict[TransferSyntax | str, float] = {
    TransferSyntax.RLE: 0.6,
    TransferSyntax.JPEGLS: 0.9,
    TransferSyntax.JPEG2000: 4.5,
    TransferSyntax.DEFLATE: 0.5,
}
#: Expected serial time (s) below which no pool is started, by pool kind.
MIN_SECONDS = {"thread": 0.05, "fork": 0.3}
#: Tasks per worker: small enough to balance uneven frames, large enough to amortise.
_TASKS_PER_WORKER = 4

# State handed to forked workers by inheritance, keyed by a token.
_SHARED: dict[int, Any] = {}


def default_workers() -> int:
    """Return the worker count used when none is given: the number of usable CPUs."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Whether forking workers is safe here (one thread, not a daemonic worker)."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
    )


def choose_pool(
    syntax: TransferSyntax | str,
    fmt: FrameFormat,
    count: int,
    workers: int,
    *,
    decode: bool = False,
) -> str:
    """Return ``"serial"``, ``"thread"`` or ``"fork"`` for encoding (or decoding) a job."""
    if workers <= 1 or count < 2:
        return "serial"
    cost = (_DECODE_NS if decode else _ENCODE_NS).get(syntax, 1.0)
    seconds = count * fmt.pixels * cost * 1e-9
    if syntax is TransferSyntax.DEFLATE and not decode:
        kind = "thread"
    elif can_fork():
        kind = "fork"
    else:
        return "serial"
    return kind if seconds >= MIN_SECONDS[kind] else "serial"


def _chunks(count: int, workers: int) -> list[tuple[int, int]]:
    size = max(1, math.ceil(count / (workers * _TASKS_PER_WORKER)))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def _collect(
    pool: Executor, submit: Callable[[int, int], Any], bounds: list[tuple[int, int]]
) -> list[Any]:
    futures = [submit(start, stop) for start, stop in bounds]
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise


# -- encoding ------------------------------------------------------------------------------


def _encode_range(
    frames: NDArray[Any], start: int, stop: int, syntax: TransferSyntax, fmt: FrameFormat
) -> list[bytes]:
    return [encode_frame(frames[i], syntax, fmt, index=i) for i in range(start, stop)]


def _encode_shared(
    token: int, start: int, stop: int, syntax: TransferSyntax, fmt: FrameFormat
) -> list[bytes]:
    return _encode_range(_SHARED[token], start, stop, syntax, fmt)


def encode_parallel(
    frames: NDArray[Any],
    syntax: TransferSyntax,
    fmt: FrameFormat,
    workers: int,
    *,
    kind: str | None = None,
) -> list[bytes]:
    """Encode frames with up to ``workers`` workers of the kind :func:`choose_pool` picks.

    ``kind`` forces ``"serial"``, ``"thread"`` or ``"fork"`` (benchmarks, tests).
    """
    count = len(frames)
    kind = kind or choose_pool(syntax, fmt, count, workers)
    if kind not in ("serial", "thread", "fork"):
        raise ValueError(f"unknown pool kind {kind!r}")
    if kind == "serial" or workers <= 1:
        return _encode_range(frames, 0, count, syntax, fmt)
    workers = min(workers, count)
    bounds = _chunks(count, workers)
    started = time.perf_counter()
    try:
        if kind == "thread":
            with ThreadPoolExecutor(workers, thread_name_prefix="radbridge-encode") as pool:
                parts = _collect(
                    pool, lambda a, b: pool.submit(_encode_range, frames, a, b, syntax, fmt), bounds
                )
        else:
            token = id(frames)
            _SHARED[token] = frames
            try:
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(workers, mp_context=context) as pool:
                    parts = _collect(
                        pool,
                        lambda a, b: pool.submit(_encode_shared, token, a, b, syntax, fmt),
                        bounds,
                    )
            finally:
                _SHARED.pop(token, None)
    except (OSError, RuntimeError) as exc:  # no processes allowed, or a worker died
        log.warning("parallel encoding failed (%s); encoding in this thread", exc)
        return _encode_range(frames, 0, count, syntax, fmt)
    log.debug(
        "encoded %d %s frames on %d %s workers in %.2f s",
        count,
        syntax.value,
        workers,
        kind,
        time.perf_counter() - started,
    )
    return [item for part in parts for item in part]


# -- decoding ------------------------------------------------------------------------------


def _decode_shared(token: int, start: int, stop: int) -> None:
    decode, wanted, out = _SHARED[token]
    for position in range(start, stop):
        out[position] = decode(wanted[position])


def decode_parallel(
    decode: Callable[[int], NDArray[Any]],
    wanted: Sequence[int],
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    workers: int,
) -> NDArray[Any]:
    """Decode frames ``wanted`` in forked workers into one array ``[len(wanted), *shape]``.

    ``decode(index)`` returns one frame. The result lives in anonymous shared
    memory that the workers write; it is an ordinary writable array.
    """
    count = len(wanted)
    size = max(1, count * math.prod(shape) * dtype.itemsize)
    buffer = mmap.mmap(-1, size)
    out: NDArray[Any] = np.frombuffer(buffer, dtype=dtype, count=count * math.prod(shape))
    out = out.reshape(count, *shape)
    workers = min(workers, count)
    token = id(out)
    _SHARED[token] = (decode, list(wanted), out)
    started = time.perf_counter()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            _collect(
                pool,
                lambda a, b: pool.submit(_decode_shared, token, a, b),
                _chunks(count, workers),
            )
    finally:
        _SHARED.pop(token, None)
    log.debug(
        "decoded %d frames on %d forked workers in %.2f s",
        count,
        workers,
        time.perf_counter() - started,
    )
    return out
