"""dcmqi (3D Slicer's DICOM converter) from the PyPI wheel ``dcmqi==1.5.7``.

Measured (tests/test_compatibility.py): ``segimage2itkimage`` reads uncompressed,
Deflated Explicit VR and 8-bit RLE SEGs (BINARY, FRACTIONAL, LABELMAP), not JPEG-LS,
JPEG 2000 or 1-bit RLE ones, nor slide-microscopy SEGs. ``paramap2itkimage`` reads
only float32 Parametric Maps with Frame Anatomy (it takes every frame as 32-bit
float: integer or float64 maps crash it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._common import PeerCommandError, run, venv_program

__all__ = [
    "SegImages",
    "itkimage2segimage",
    "paramap2itkimage",
    "segimage2itkimage",
    "tid1500reader",
    "tid1500writer",
]


@dataclass(frozen=True)
class SegImages:
    """What ``segimage2itkimage`` wrote: one image per segment plus its metadata JSON."""

    directory: Path
    images: dict[int, Path]
    meta: dict[str, Any]
    output: str


def segimage2itkimage(
    path: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    fmt: str = "nrrd",
    merge_segments: bool = False,
    timeout: float = 300.0,
) -> SegImages:
    """Convert a SEG to ITK images (``<segment number>.<fmt>``) in ``outdir``.

    ``outdir`` is created if needed (dcmqi requires it to exist). With
    ``merge_segments`` dcmqi writes merged files instead; ``images`` then holds whatever
    numbered files it produced. Raises :class:`PeerCommandError` when dcmqi fails.
    """
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no such SEG file: {src}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    args: list[str | os.PathLike[str]] = [
        "--inputDICOM",
        src,
        "--outputDirectory",
        out,
        "-t",
        fmt,
    ]
    if merge_segments:
        args.append("--mergeSegments")
    done = run(venv_program("segimage2itkimage"), args, timeout=timeout).check()
    images: dict[int, Path] = {}
    for p in sorted(out.glob(f"*.{fmt}")):
        stem = p.name[: -len(fmt) - 1]
        if stem.isdigit():
            images[int(stem)] = p
    meta_path = out / "meta.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if not images:
        raise PeerCommandError(
            f"segimage2itkimage wrote no image for {src}:\n{done.output[-3000:]}"
        )
    return SegImages(directory=out, images=images, meta=meta, output=done.output)


def tid1500reader(
    path: str | os.PathLike[str], out_json: str | os.PathLike[str], *, timeout: float = 300.0
) -> dict[str, Any]:
    """Read a TID 1500 SR with dcmqi and return the metadata JSON it writes to ``out_json``."""
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no such SR file: {src}")
    out = Path(out_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = run(
        venv_program("tid1500reader"),
        ["--inputDICOM", src, "--outputMetadata", out],
        timeout=timeout,
    ).check()
    if not out.exists():
        raise PeerCommandError(f"tid1500reader wrote no JSON for {src}:\n{done.output[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def paramap2itkimage(
    path: str | os.PathLike[str], outdir: str | os.PathLike[str], *, timeout: float = 300.0
) -> Path:
    """Convert a Parametric Map with dcmqi; return the NRRD it wrote (``pmap.nrrd``).

    Raises :class:`PeerCommandError` when dcmqi fails (it crashes on maps it cannot read).
    """
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"no such Parametric Map file: {src}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    done = run(
        venv_program("paramap2itkimage"),
        ["--inputDICOM", src, "--outputDirectory", out],
        timeout=timeout,
    ).check()
    image = out / "pmap.nrrd"
    if not image.exists():
        raise PeerCommandError(f"paramap2itkimage wrote no image for {src}:\n{done.output[-3000:]}")
    return image


def _write(program: str, args: list[str | os.PathLike[str]], target: Path, timeout: float) -> Path:
    """Run a dcmqi writer; return ``target``, or raise when it wrote nothing."""
    done = run(venv_program(program), [*args, "--outputDICOM", target], timeout=timeout).check()
    if not target.is_file():
        raise PeerCommandError(f"{program} wrote no file:\n{done.output[-3000:]}")
    return target


def itkimage2segimage(
    images: list[Path],
    dicom_dir: str | os.PathLike[str],
    meta: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    timeout: float = 300.0,
) -> Path:
    """Write a SEG with dcmqi from label images, their source series and a meta.json."""
    args: list[str | os.PathLike[str]] = [
        "--inputImageList", ",".join(str(p) for p in images),
        "--inputDICOMDirectory", dicom_dir,
        "--inputMetadata", meta,
    ]  # fmt: skip
    return _write("itkimage2segimage", args, Path(out), timeout)


def tid1500writer(
    meta: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    context_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    timeout: float = 300.0,
) -> Path:
    """Write a TID 1500 SR with dcmqi from its JSON, the images and the SEG folder."""
    args: list[str | os.PathLike[str]] = [
        "--inputMetadata", meta,
        "--inputImageLibraryDirectory", image_dir,
        "--inputCompositeContextDirectory", context_dir,
    ]  # fmt: skip
    return _write("tid1500writer", args, Path(out), timeout)
