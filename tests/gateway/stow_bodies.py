"""STOW-RS request bodies streamed from files (chunked with requests: a real client's way)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

BOUNDARY = "rb-gateway-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def parts_of(files: list[Path], *, stop_after: int | None = None) -> Iterator[bytes]:
    """Yield a multipart/related body holding ``files``, one part at a time.

    With ``stop_after``, the body stops inside the part after that many whole
    parts (the rest is never sent).
    """
    for index, path in enumerate(files):
        head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        data = path.read_bytes()
        if stop_after is not None and index == stop_after:
            yield head + data[: len(data) // 2]
            return
        yield head + data + b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()
