"""dcmjs (npm), the DICOM library OHIF and Cornerstone use: what an OHIF user sees.

Installed into ``tests/js/node_modules`` from the committed lock file by
``scripts/dev.sh`` (``npm ci``); run with the machine's Node. The scripts beside the
lock file call dcmjs's adapters:

- ``seg_labelmap.js``: ``adapters.Cornerstone.Segmentation.generateToolState`` places a
  SEG's frames on the source images (the code OHIF's Cornerstone3D adapter builds on);
  measured with dcmjs 0.52.2: BINARY (uncompressed or deflated) yes; 1-bit RLE,
  JPEG 2000, true FRACTIONAL and Label Map SEGs no.
- ``seg_cornerstone3d.mjs``: the Cornerstone3D segmentation adapter OHIF 3.13 uses
  (``@cornerstonejs/adapters`` 5.6.8, ``createLabelmapsFromDICOMBuffer``) builds one
  labelmap per source image; reads BINARY and Label Map SEGs (see docs/compatibility.md).
- ``seg_ohif_browser.mjs``: OHIF 3.13's own SEG load path (``createFromDicomSegImageId``,
  frames decoded by ``@cornerstonejs/dicom-image-loader``) in Debian's headless Chromium.
- ``sr_measurements.js``: ``adapters.Cornerstone3D.MeasurementReport.generateToolState``
  walks a TID 1500 report; the numeric values and units come from dcmjs's parse.
- ``sr_write_measurements.js``: ``adapters.Cornerstone3D.MeasurementReport.generateReport``
  writes Length/Bidirectional annotations as OHIF does (one SCOORD under each NUM).
- ``sr_read_annotations.js``: ``generateToolState`` with dcmjs's own Length and
  Bidirectional classes: the annotations OHIF would draw from an SR.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._common import REPO_ROOT, PeerCommandError, PeerMissingError, run

__all__ = [
    "Cornerstone3DLabelmaps",
    "DcmjsLabelmaps",
    "cornerstone3d_segmentation",
    "dcmjs_read_annotations",
    "dcmjs_segmentation",
    "dcmjs_sr_measurements",
    "dcmjs_write_measurements",
    "node_program",
    "ohif_browser_segmentation",
]

JS_DIR = REPO_ROOT / "tests" / "js"


def node_program(package: str = "dcmjs") -> str:
    node = shutil.which("node")
    if node is None:
        raise PeerMissingError("node not found on PATH; scripts/install-system.sh installs it")
    if not (JS_DIR / "node_modules" / package / "package.json").exists():
        raise PeerMissingError(
            f"{package} is not installed in {JS_DIR}; "
            "`bash scripts/dev.sh test` runs `npm ci` there"
        )
    return node


@dataclass(frozen=True)
class DcmjsLabelmaps:
    """The adapter's result: labelmaps ``[image, row, column]`` (uint16) and segments.

    ``labelmaps`` has one volume per group of non-overlapping segments (one when
    nothing overlaps); ``segments`` maps each segment number to its label.
    """

    labelmaps: list[np.ndarray]
    segments: dict[int, str]


def dcmjs_segmentation(
    seg: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    workdir: str | os.PathLike[str],
    *,
    timeout: float = 300.0,
) -> DcmjsLabelmaps:
    """Rebuild a SEG on ``sources`` (the stack, in this order) with dcmjs's adapter.

    Raises :class:`PeerCommandError` with dcmjs's message when the adapter fails.
    """
    summary, volumes = _labelmaps("seg_labelmap.js", "dcmjs", seg, sources, workdir, timeout)
    segments = {int(s["index"]): str(s["label"]) for s in summary["segments"]}
    return DcmjsLabelmaps(volumes("u16", "<u2", summary["labelmaps"]), segments)


def _labelmaps(
    script: str,
    package: str,
    seg: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    workdir: str | os.PathLike[str],
    timeout: float,
) -> tuple[dict[str, Any], Callable[[str, Any, int], list[np.ndarray]]]:
    """Run a SEG script; return its JSON summary and a reader of the volumes it wrote."""
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / Path(script).stem
    args = [JS_DIR / script, Path(seg), prefix, *(Path(s) for s in sources)]
    done = run(node_program(package), args, timeout=timeout, cwd=JS_DIR)
    if done.returncode != 0:
        raise PeerCommandError(f"{package} could not read {seg}: {done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(prefix.with_suffix(".json").read_text())
    shape = tuple(summary["shape"])

    def volumes(suffix: str, dtype: Any, count: int) -> list[np.ndarray]:
        return [
            np.fromfile(f"{prefix}.{m}.{suffix}", dtype=dtype).reshape(shape) for m in range(count)
        ]

    return summary, volumes


@dataclass(frozen=True)
class Cornerstone3DLabelmaps:
    """The Cornerstone3D adapter's result on the stack: labelmaps ``[image, row, column]``.

    ``labelmaps`` has one uint8 volume per group of non-overlapping segments (one when
    nothing overlaps), ``segments`` maps each segment number to its label and
    ``overlapping`` is the adapter's own flag.
    """

    labelmaps: list[np.ndarray]
    segments: dict[int, str]
    overlapping: bool


def cornerstone3d_segmentation(
    seg: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    workdir: str | os.PathLike[str],
    *,
    timeout: float = 300.0,
) -> Cornerstone3DLabelmaps:
    """Rebuild a SEG on ``sources`` (the stack, in this order) as OHIF 3.13's adapter does.

    Raises :class:`PeerCommandError` with the adapter's message when it refuses the SEG.
    """
    summary, volumes = _labelmaps(
        "seg_cornerstone3d.mjs", "@cornerstonejs/adapters", seg, sources, workdir, timeout
    )
    segments = {int(s["index"]): str(s["label"]) for s in summary["segments"]}
    return Cornerstone3DLabelmaps(
        volumes("u8", np.uint8, summary["groups"]), segments, bool(summary["overlapping"])
    )


def ohif_browser_segmentation(
    seg: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]],
    workdir: str | os.PathLike[str],
    *,
    timeout: float = 300.0,
) -> Cornerstone3DLabelmaps:
    """Rebuild a SEG on ``sources`` with OHIF 3.13's load path in headless Chromium.

    Raises :class:`PeerMissingError` without Chromium (``RADBRIDGE_CHROMIUM``, default
    ``/usr/bin/chromium``) and :class:`PeerCommandError` with the page's error.
    """
    chromium = os.environ.get("RADBRIDGE_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        raise PeerMissingError(f"{chromium} not found; scripts/install-system.sh installs chromium")
    summary, volumes = _labelmaps(
        "seg_ohif_browser.mjs", "playwright-core", seg, sources, workdir, timeout
    )
    segments = {int(s["index"]): str(s["label"]) for s in summary["segments"]}
    return Cornerstone3DLabelmaps(
        volumes("u8", np.uint8, summary["groups"]), segments, bool(summary["overlapping"])
    )


def _read_to_json(script: str, sr: str | os.PathLike[str], workdir: Path, timeout: float) -> Any:
    """Run a reader script on ``sr``; return the JSON it wrote."""
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{Path(script).stem}.json"
    done = run(node_program(), [JS_DIR / script, Path(sr), target], timeout=timeout)
    if done.returncode != 0:
        raise PeerCommandError(f"dcmjs could not read {sr}: {done.stderr[-3000:]}")
    return json.loads(target.read_text())


def dcmjs_sr_measurements(
    sr: str | os.PathLike[str], workdir: str | os.PathLike[str], *, timeout: float = 300.0
) -> list[dict[str, Any]]:
    """Return the measurement groups of a TID 1500 SR as dcmjs's report adapter walks them."""
    groups: list[dict[str, Any]] = _read_to_json("sr_measurements.js", sr, Path(workdir), timeout)[
        "groups"
    ]
    return groups


def dcmjs_write_measurements(
    annotations: dict[str, Any], target: str | os.PathLike[str], *, timeout: float = 300.0
) -> Path:
    """Write ``annotations`` (see ``sr_write_measurements.js``) as dcmjs/OHIF write an SR."""
    out = Path(target)
    spec = out.with_suffix(".in.json")
    spec.write_text(json.dumps(annotations))
    done = run(node_program(), [JS_DIR / "sr_write_measurements.js", spec, out], timeout=timeout)
    if done.returncode != 0:
        raise PeerCommandError(f"dcmjs could not write the SR: {done.stderr[-3000:]}")
    return out


def dcmjs_read_annotations(
    sr: str | os.PathLike[str], workdir: str | os.PathLike[str], *, timeout: float = 300.0
) -> dict[str, list[dict[str, Any]]]:
    """Return the Length/Bidirectional annotations dcmjs rebuilds from an SR (by tool type)."""
    found: dict[str, list[dict[str, Any]]] = _read_to_json(
        "sr_read_annotations.js", sr, Path(workdir), timeout
    )
    return found
