"""Run one manifest row: encode, write atomically, record what was done.

:func:`run_row` is a plain function of picklable arguments, so the same code runs
in a local process pool and on Dask workers. A row's output is written to a
temporary name and renamed, then a ``.done.json`` sidecar records the row's id,
kind, source and options, the output's SHA-256 and the sizes and times of the files
it was made from; a re-run skips rows whose sidecar still matches (:func:`is_done`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePath
from typing import Any, NamedTuple

from radbridge.batch.manifest import ManifestRow
from radbridge.errors import ConfigError, RadbridgeError
from radbridge.uids import derived_uid

__all__ = ["RowResult", "is_done", "output_path", "run_row"]


@dataclass(frozen=True)
class RowResult:
    """What happened to one row."""

    id: str
    ok: bool
    output: str | None
    seconds: float
    error: str | None = None
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return asdict(self)


def _row_files(row: ManifestRow) -> list[Path]:
    """Return the files a row's output is made from: input, labels, an sr row's SEG."""
    files = [row.input, *([row.labels] if row.labels else [])]
    if row.kind == "sr" and row.options.get("seg"):
        files.append(row.input.parent / str(row.options["seg"]))
    return files


def _inputs_signature(row: ManifestRow) -> dict[str, list[float]]:
    signature = {}
    for path in _row_files(row):
        stat = path.stat()
        signature[str(path)] = [stat.st_size, stat.st_mtime]
    return signature


def _recipe(row: ManifestRow) -> dict[str, Any]:
    """Return what the manifest says of a row besides its files (changed: the row is redone)."""
    recipe = {
        "kind": row.kind,
        "source": row.source_url or str(row.source),
        "series": row.series,
        "options": row.options,
    }
    return dict(json.loads(json.dumps(recipe)))  # as the sidecar reads it back


def _content_key(row: ManifestRow) -> tuple[str, ...]:
    """Everything the row's bytes depend on but its source series: kind, options, files."""
    options = json.dumps(row.options, sort_keys=True)
    return (row.id, row.kind, options, *(_sha256(path) for path in _row_files(row)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(output: Path) -> Path:
    return output.with_name(output.name + ".done.json")


def output_path(row: ManifestRow, out_dir: str | os.PathLike[str]) -> Path:
    """Return where the row's output goes: always inside ``out_dir``.

    Raises
    ------
    ConfigError
        The output (or the id it defaults to) is absolute, climbs out with ``..``,
        or leads out of ``out_dir`` through a symbolic link.
    """
    name = row.output_name
    relative = PurePath(name)
    base = Path(out_dir)
    inside = not relative.is_absolute() and ".." not in relative.parts and bool(name.strip())
    if inside:
        resolved = (base / relative).resolve()
        inside = resolved.is_relative_to(base.resolve()) and resolved != base.resolve()
    if not inside:
        raise ConfigError(
            f"row {row.id}: output {name!r} would be written outside --out",
            attribute="output",
            hint="give a relative path inside the output folder, e.g. ct1/seg.dcm "
            "(absolute paths and '..' are refused)",
        )
    return base / relative


def is_done(row: ManifestRow, out_dir: Path) -> bool:
    """Tell whether the row's output exists and verifies against its sidecar."""
    try:
        output = output_path(row, out_dir)
    except ConfigError:
        return False
    sidecar = _sidecar(output)
    if not output.is_file() or not sidecar.is_file():
        return False
    try:
        record = json.loads(sidecar.read_text())
        return bool(
            record.get("id") == row.id
            and record.get("recipe") == _recipe(row)
            and record.get("inputs") == _inputs_signature(row)
            and record.get("sha256") == _sha256(output)
        )
    except (OSError, ValueError, AttributeError, RecursionError):  # a damaged sidecar: redo
        return False


def run_row(row: ManifestRow, out_dir: str | os.PathLike[str]) -> RowResult:
    """Encode one row; never raises for a bad row (the result says why)."""
    started = time.perf_counter()
    try:
        output = output_path(row, out_dir)
        output.parent.mkdir(parents=True, exist_ok=True)
        if row.source_url:
            row = replace(row, source=fetch_source(row, Path(out_dir)))
        dataset = _encode(row)
        temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        dataset.save_as(temporary, enforce_file_format=True)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, output)
        record = {
            "id": row.id,
            "sha256": _sha256(output),
            "recipe": _recipe(row),
            "inputs": _inputs_signature(row),
            "sop_instance_uid": str(dataset.SOPInstanceUID),
        }
        _sidecar(output).write_text(json.dumps(record, indent=1))
    except RadbridgeError as exc:
        return RowResult(row.id, False, None, time.perf_counter() - started, str(exc))
    except Exception as exc:  # a batch never stops for one row; the reason is kept
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return RowResult(row.id, False, None, time.perf_counter() - started, f"unexpected {detail}")
    return RowResult(row.id, True, str(output), time.perf_counter() - started)


def fetch_source(row: ManifestRow, out_dir: Path) -> Path:
    """Fetch a DICOMweb source series once into ``out_dir/.sources/<study>/<series>``.

    The series is downloaded into a temporary folder and renamed when complete, so an
    interrupted download is never mistaken for the series. Credentials come from
    ``RADBRIDGE_DICOMWEB_TOKEN`` or ``RADBRIDGE_DICOMWEB_USER``/``..._PASSWORD``.
    """
    import shutil
    import uuid

    from radbridge.net import Peer, wado

    assert row.source_url is not None
    folder = out_dir / row.source
    if folder.is_dir():
        return folder
    base, _, rest = row.source_url.partition("/studies/")
    study, _, series = rest.partition("/series/")
    peer = Peer(
        "DICOMWEB",
        "127.0.0.1",
        104,
        name=base,
        dicomweb_url=base,
        username=os.environ.get("RADBRIDGE_DICOMWEB_USER"),
        password=os.environ.get("RADBRIDGE_DICOMWEB_PASSWORD"),
        token=os.environ.get("RADBRIDGE_DICOMWEB_TOKEN"),
    )
    staging = out_dir / ".sources" / f".partial-{uuid.uuid4().hex}"
    try:
        wado(peer, staging, study=study, series=series)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging / study / series, folder)
        except OSError:
            if not folder.is_dir():  # another worker may have finished the same series first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _encode(row: ManifestRow) -> Any:
    """Encode the row with its output kind of :mod:`radbridge.results`."""
    from radbridge.io.series import read_series
    from radbridge.results import ResultOptions, encode_results
    from radbridge.wsi import read_slide

    build = _KINDS.get(row.kind)
    if build is None:
        raise ConfigError(
            f"row {row.id}: {row.kind} rows are not supported",
            attribute="kind",
            hint="use kind seg, rtstruct, gsps, sr, pm or slide-seg",
        )
    read = read_slide if row.kind == "slide-seg" else read_series
    source = read(row.source, series_instance_uid=row.series)
    options = dict(row.options)
    plan = build(row, source, options)
    _no_extra(options, row)
    shared = ResultOptions(series={row.kind: plan.series})
    return encode_results(source, plan.result, [plan.output], shared)[row.kind]


class _Plan(NamedTuple):
    """What a row encodes: the result (its segments, algorithm), its output, series options."""

    result: Any
    output: Any
    series: Any


def _flag(row: ManifestRow, options: dict[str, Any], name: str, default: bool) -> bool:
    """Take the JSON boolean option ``name``: "false" or 0 is a mistake, not a truth value."""
    value = options.pop(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"row {row.id}: option {name} must be true or false, not {value!r}",
            attribute="options",
            hint=f'write it as a JSON boolean, e.g. {{"{name}": {str(not default).lower()}}}',
        )
    return value


def _series_options(
    row: ManifestRow, source: Any, description: str, *, content_label: str = "RADBRIDGE"
) -> Any:
    """Series options fixed by the row, so the same row always gives the same bytes."""
    from radbridge.iods.common import SeriesOptions

    # A row whose kind, options or files change is another object: new UIDs (a PACS
    # keeps or refuses a second object under an existing UID).
    key = (str(source.series_instance_uid), *_content_key(row))
    return SeriesOptions(
        series_description=description,
        content_label=content_label,
        series_instance_uid=derived_uid(*key, "series"),
        sop_instance_uid=derived_uid(*key, "instance"),
        # Dated by the input file, so the same row always gives the same bytes.
        timestamp=datetime.datetime.fromtimestamp(row.input.stat().st_mtime),
    )


def _masks(row: ManifestRow, source: Any, options: dict[str, Any]) -> _Plan:
    """Plan a ``seg`` or ``rtstruct`` row: ``input`` is a mask on the source grid."""
    from radbridge.io.masks import read_mask
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.results import RtstructOutput, SegOutput
    from radbridge.seg import load_labels

    mask = read_mask(row.input, source.geometry)
    seg = row.kind == "seg"
    description = str(
        options.pop("series_description", "Segmentation" if seg else "RT Structure Set")
    )
    algorithm = AlgorithmInfo(
        str(options.pop("algorithm", "unspecified")), str(options.pop("algorithm_version", "0"))
    )
    assert row.labels is not None  # the manifest guarantees it
    result = ModelResult(segments=load_labels(row.labels), algorithm=algorithm)
    output: Any
    if seg:
        output = SegOutput(
            mask=mask,
            segmentation_type=str(options.pop("type", "binary")),
            transfer_syntax=options.pop("compression", None),
            keep_empty_frames=_flag(row, options, "keep_empty_frames", False),
        )
    else:
        output = RtstructOutput(mask=mask, allow_empty=_flag(row, options, "allow_empty", False))
    label = "SEGMENTATION" if seg else "RADBRIDGE"
    return _Plan(result, output, _series_options(row, source, description, content_label=label))


def _report(row: ManifestRow, source: Any, options: dict[str, Any]) -> _Plan:
    """Plan an ``sr`` row: ``input`` is a report JSON (docs/sr.md).

    Option ``seg`` names the SEG that ``{"segment": N}`` refers to (relative to the report).
    """
    from pydicom import dcmread

    from radbridge.models import ModelResult
    from radbridge.results import SrOutput
    from radbridge.sr import report_from_json

    seg_name = options.pop("seg", None)
    description = str(options.pop("series_description", "Measurement report"))
    try:
        document = json.loads(row.input.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"row {row.id}: cannot read the report JSON ({exc})", path=row.input, attribute="input"
        ) from exc
    seg = dcmread(row.input.parent / str(seg_name), stop_before_pixels=True) if seg_name else None
    output = SrOutput(report=report_from_json(document, seg=seg))
    return _Plan(ModelResult(), output, _series_options(row, source, description))


def _map(row: ManifestRow, source: Any, options: dict[str, Any]) -> _Plan:
    """Plan a ``pm`` row: ``input`` is a map on the source grid (units, quantity required)."""
    from radbridge.coding import Code
    from radbridge.io.masks import read_mask
    from radbridge.models import ModelResult
    from radbridge.results import PmOutput

    try:
        units = str(options.pop("units"))
        given = options.pop("quantity")
        # the JSON code object, or the CLI's SCHEME:VALUE:MEANING (pm encode --quantity)
        quantity = (
            Code.parse(given, attribute="quantity")
            if isinstance(given, str)
            else Code.from_json(given)
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"row {row.id}: a pm row needs options units and quantity",
            attribute="options",
            hint='e.g. {"units": "{probability}", "quantity": "DCM:130402:Class activation"} '
            '(or quantity as {"value": ..., "scheme": ..., "meaning": ...})',
        ) from exc
    nan_policy = str(options.pop("nan_policy", "refuse"))
    description = str(options.pop("series_description", "Parametric map"))
    values = read_mask(row.input, source.geometry)
    output = PmOutput(values=values, quantity=quantity, units=units, nan_policy=nan_policy)
    return _Plan(ModelResult(), output, _series_options(row, source, description))


def _outlines(row: ManifestRow, source: Any, options: dict[str, Any]) -> _Plan:
    """Plan a ``gsps`` row: ``input`` is a mask on the source grid, outlined over its images.

    Options: ``window`` ``[center, width]``, ``tolerance_mm``, ``labels`` (text, default
    true), ``areas``, ``allow_empty``.
    """
    from radbridge.io.masks import read_mask
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.pr import OutlineOptions
    from radbridge.results import GspsOutput
    from radbridge.seg import load_labels

    description = str(options.pop("series_description", "Presentation State (outlines)"))
    window = options.pop("window", None)
    labels, areas = _flag(row, options, "labels", True), _flag(row, options, "areas", False)
    try:
        outlines = OutlineOptions(
            tolerance_mm=float(options.pop("tolerance_mm", 0.0)), labels=labels, areas=areas
        )
        chosen = None if window is None else (float(window[0]), float(window[1]))
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise ConfigError(
            f"row {row.id}: gsps options are malformed ({exc})",
            attribute="options",
            hint='e.g. {"window": [40, 400], "tolerance_mm": 0.5, "areas": true}',
        ) from exc
    assert row.labels is not None  # the manifest guarantees it
    output = GspsOutput(
        mask=read_mask(row.input, source.geometry),
        outlines=outlines,
        window=chosen,
        allow_empty=_flag(row, options, "allow_empty", False),
    )
    result = ModelResult(
        segments=load_labels(row.labels), algorithm=AlgorithmInfo("unspecified", "0")
    )
    return _Plan(result, output, _series_options(row, source, description))


def _slide_masks(row: ManifestRow, slide: Any, options: dict[str, Any]) -> _Plan:
    """Plan a ``slide-seg`` row: ``input`` is a ``.npy`` mask on level ``level`` of the slide.

    Options: ``level`` (default 0), ``type`` (binary, fractional), ``omit_empty_tiles``,
    ``optical_path``, ``algorithm``, ``algorithm_version``.
    """
    from radbridge.errors import DicomReadError
    from radbridge.io.arrays import load_array
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.results import SlideSegOutput
    from radbridge.seg import load_labels

    try:
        mask = load_array(row.input, mmap_mode="r")
        level = int(options.pop("level", 0))
    except (DicomReadError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"row {row.id}: cannot read the slide mask or its level ({exc})",
            path=row.input,
            attribute="input",
            hint='save the mask with numpy.save (.npy); options {"level": N}',
        ) from exc
    description = str(options.pop("series_description", "Segmentation"))
    algorithm = AlgorithmInfo(
        str(options.pop("algorithm", "unspecified")), str(options.pop("algorithm_version", "0"))
    )
    assert row.labels is not None  # the manifest guarantees it
    output = SlideSegOutput(
        mask=mask,
        level=level,
        segmentation_type=str(options.pop("type", "binary")),
        omit_empty_tiles=_flag(row, options, "omit_empty_tiles", False),
        optical_path=options.pop("optical_path", None),
    )
    result = ModelResult(segments=load_labels(row.labels), algorithm=algorithm)
    series = _series_options(row, slide, description, content_label="SEGMENTATION")
    return _Plan(result, output, series)


#: Row kind -> (row, source, options) -> (model result, output, series options); each
#: takes its options out of ``options`` (what is left is an error).
_KINDS = {
    "seg": _masks,
    "rtstruct": _masks,
    "gsps": _outlines,
    "sr": _report,
    "pm": _map,
    "slide-seg": _slide_masks,
}


def _no_extra(options: dict[str, Any], row: ManifestRow) -> None:
    if options:
        raise ConfigError(
            f"row {row.id}: unknown options {sorted(options)}",
            attribute="options",
            hint="rows take series_description; seg and rtstruct rows algorithm, "
            "algorithm_version; seg rows also type, compression, keep_empty_frames; "
            "rtstruct rows allow_empty; gsps rows window, tolerance_mm, labels, areas, "
            "allow_empty; sr rows seg; pm rows units, quantity, nan_policy; slide-seg rows "
            "level, type, omit_empty_tiles, optical_path, algorithm, algorithm_version",
        )
