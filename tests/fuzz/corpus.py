"""Seed files for the reader fuzz tests, how to damage them, and how to run one CLI reader.

Seeds are radbridge's own SEG (BINARY, FRACTIONAL, LABELMAP), PM, RTSTRUCT, SR, KOS and
SC files on a small phantom, plus third-party files from ``../shared/interop``.
Damage is what a truncated transfer, a bit flip or a broken writer leaves: truncation,
flipped bytes, wrong element lengths and wrong VRs (found by walking the data set's
element headers, so lengths and VRs of real elements are hit, not random bytes).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import resource
import signal
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings

from radbridge.cli import main

#: Element VRs whose length field is 4 bytes (after 2 reserved bytes) in explicit VR.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR"}
_LONG_VRS |= {b"UT", b"UV"}
_ALL_VRS = sorted(
    {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT"}
    | {b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}
    | _LONG_VRS
)
#: VRs no standard defines: pydicom raises NotImplementedError on some of them.
BOGUS_VRS = (b"ZZ", b"\x00\x00", b"ox", b"  ")
_ITEM_TAGS = {0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD}
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


@dataclass(frozen=True)
class Header:
    """Where one element header lies in the file."""

    offset: int  # of the tag
    tag: int
    vr_offset: int | None  # explicit VR only
    length_offset: int
    length_size: int  # 2 or 4


class Seed:
    """An undamaged file, its element headers, and where its pixel data begins.

    A plain class with a short repr: Hypothesis prints its arguments when a case fails.
    """

    def __init__(self, name: str, kind: str, data: bytes, headers: list[Header], pixel_offset: int):
        self.name = name
        self.kind = kind
        self.data = data
        self.headers = tuple(headers)
        self.pixel_offset = pixel_offset

    def __repr__(self) -> str:
        return f"Seed({self.name!r}, {len(self.data)} bytes, {len(self.headers)} headers)"


def _transfer_syntax(data: bytes) -> tuple[str, int]:
    """Return the transfer syntax UID and where the data set starts (after file meta)."""
    pos = 132
    syntax = ""
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        (group, element) = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        if (group, element) == (2, 0x10):
            syntax = data[start : start + length].decode("ascii").strip("\x00 ")
        pos = start + length
    return syntax, pos


def walk_headers(data: bytes) -> tuple[list[Header], int]:
    """Return the element headers of a Part 10 file (explicit or implicit VR little endian).

    Sequences and items are entered, not skipped, so nested elements count too; the
    walk stops at the pixel data. Other transfer syntaxes give no headers.
    """
    syntax, pos = _transfer_syntax(data)
    explicit = syntax in ("1.2.840.10008.1.2.1",) or syntax.startswith("1.2.840.10008.1.2.4")
    explicit |= syntax == "1.2.840.10008.1.2.5"
    if syntax not in ("1.2.840.10008.1.2",) and not explicit:
        return [], len(data)
    headers: list[Header] = []
    while pos + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, pos)
        tag = (group << 16) | element
        if tag in _PIXEL_TAGS:
            return headers, pos
        if tag in _ITEM_TAGS:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            headers.append(Header(pos, tag, None, pos + 4, 4))
            pos += 8  # enter the item (or pass the delimiter)
            continue
        vr = data[pos + 4 : pos + 6] if explicit else None
        if explicit and vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            header = Header(pos, tag, pos + 4, pos + 8, 4)
            start = pos + 12
        elif explicit:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            header = Header(pos, tag, pos + 4, pos + 6, 2)
            start = pos + 8
        else:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            header = Header(pos, tag, None, pos + 4, 4)
            start = pos + 8
        headers.append(header)
        is_sequence = vr == b"SQ" or length == 0xFFFFFFFF or (not explicit and _is_sq(tag))
        pos = start if is_sequence else start + length
    return headers, len(data)


def _is_sq(tag: int) -> bool:
    from pydicom.datadict import dictionary_VR

    try:
        return bool(dictionary_VR(tag) == "SQ")
    except KeyError:
        return False


def make_seed(name: str, kind: str, path: Path) -> Seed:
    data = path.read_bytes()
    headers, pixel_offset = walk_headers(data)
    return Seed(name, kind, data, headers, pixel_offset)


# -- damage -----------------------------------------------------------------------


def truncate(seed: Seed, at: int) -> bytes:
    return seed.data[: at % max(len(seed.data), 1)]


def flip(seed: Seed, positions: list[int], masks: list[int], in_header: bool) -> bytes:
    out = bytearray(seed.data)
    span = seed.pixel_offset if in_header else len(out)
    for position, mask in zip(positions, masks, strict=False):
        out[position % max(span, 1)] ^= (mask & 0xFF) or 0xFF
    return bytes(out)


def wrong_length(seed: Seed, which: int, length: int) -> bytes:
    if not seed.headers:
        return truncate(seed, which)
    header = seed.headers[which % len(seed.headers)]
    out = bytearray(seed.data)
    if header.length_size == 2:
        struct.pack_into("<H", out, header.length_offset, length & 0xFFFF)
    else:
        struct.pack_into("<I", out, header.length_offset, length & 0xFFFFFFFF)
    return bytes(out)


def wrong_vr(seed: Seed, which: int, vr: bytes) -> bytes:
    explicit = [h for h in seed.headers if h.vr_offset is not None]
    if not explicit:
        return truncate(seed, which)
    header = explicit[which % len(explicit)]
    out = bytearray(seed.data)
    assert header.vr_offset is not None
    out[header.vr_offset : header.vr_offset + 2] = vr
    return bytes(out)


VRS = tuple(_ALL_VRS) + BOGUS_VRS
#: Lengths that break readers: zero, odd, off by a little, huge, undefined.
LENGTHS = (0, 1, 3, 7, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFF0)


# -- readers ----------------------------------------------------------------------


def readers(kind: str, path: Path, work: Path, source: Path) -> list[list[str]]:
    """Every CLI command that reads a file of ``kind`` (plus ``info``, which reads any)."""
    f, out = str(path), work
    commands = {
        "seg": [
            ["seg", "info", f],
            ["seg", "info", f, "--json"],
            ["seg", "decode", f, "-o", str(out / "label.npy")],
            ["seg", "decode", f, "-o", str(out / "stack.nii.gz"), "--stacked"],
            ["seg", "decode", f, "-o", str(out / "on-source.npy"), "--source", str(source)],
            ["convert", f, "--to", "rtstruct", "--source", str(source), "-o", str(out / "c.dcm")],
        ],
        "rtstruct": [
            ["rtstruct", "info", f],
            ["rtstruct", "info", f, "--json"],
            ["rtstruct", "decode", f, "--source", str(source), "-o", str(out / "rs.npy")],
            ["convert", f, "--to", "seg", "--source", str(source), "-o", str(out / "c.dcm")],
        ],
        "gsps": [
            ["gsps", "decode", f],
            ["gsps", "decode", f, "--json"],
            ["gsps", "decode", f, "--source", str(source), "-o", str(out / "ps.npy")],
        ],
        "pm": [["pm", "decode", f, "-o", str(out / "pm.npy")]],
        "sr": [["sr", "decode", f], ["sr", "decode", f, "--json"]],
        "sc": [],
        "wsi-seg": [
            ["wsi", "seg", "decode", f, "-o", str(out / "slide-mask.npy")],
            ["wsi", "seg", "decode", f, "-o", str(out / "slide-one.npy"), "--segment", "1"],
        ],
        "ann": [["ann", "decode", f, "-o", str(out / "ann.ndjson")]],
    }
    return [*commands[kind], ["info", f], ["info", f, "--json"]]


class CaseTimeout(BaseException):
    """A reader ran past its time (BaseException, so no reader's ``except`` hides it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise CaseTimeout


@contextlib.contextmanager
def _limits(seconds: float, memory_bytes: int) -> Iterator[None]:
    """A wall-clock alarm and an address-space limit for one in-process case."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = _address_space()
    limit = used + memory_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    return pages * resource.getpagesize()


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_reader(argv: list[str], *, seconds: float = 10.0, memory: int = 3 << 30) -> Outcome:
    """Run ``radbridge ARGV`` in-process; exceptions other than radbridge's escape."""
    out, err = io.StringIO(), io.StringIO()
    logging.disable(logging.CRITICAL)  # pydicom logs every damaged value it meets
    with (
        _limits(seconds, memory),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        finally:
            logging.disable(logging.NOTSET)
    return Outcome(code, out.getvalue(), err.getvalue())


def check(outcome: Outcome, argv: list[str]) -> None:
    """A reader either succeeds or says ``error: ...`` and exits 1."""
    assert outcome.code in (0, 1), (outcome.code, argv, outcome.stderr[-2000:])
    if outcome.code == 1:
        last = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
        assert last.startswith("error: "), (argv, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr, (argv, outcome.stderr[-2000:])
    if outcome.code == 0 and "--json" in argv:
        json.loads(outcome.stdout)


# -- settings ---------------------------------------------------------------------

#: ``RADBRIDGE_FUZZ_RANDOM=1`` draws new cases on every run (a fuzzing campaign); by
#: default every tier draws the same cases each run, so CI is repeatable and a crash
#: found by a campaign becomes a fixed test of its own.
_RANDOM = os.environ.get("RADBRIDGE_FUZZ_RANDOM") == "1"


def fuzz_settings(examples: int) -> Any:
    """Hypothesis settings of a fuzz test of ``examples`` cases (``_RANDOM`` above)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not _RANDOM,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
