"""Run one job: series → volume → model → result objects in the outbox.

A job reads exactly the input set frozen for its version (SOP Instance UIDs and
content digests, recorded before it ran), never the series as it is now. Result
UIDs derive from (series UID, version, rule, model name and version), so a job
that runs twice — after a crash — writes the same objects from the same inputs.
Each file is written to a temporary name, fsynced and renamed into
``outbox/<job>/`` before any delivery is queued.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset

from radbridge.errors import (
    DecodingError,
    DicomReadError,
    GatewayError,
    GeometryError,
    ModelError,
)
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.queue import Job
from radbridge.gateway.routing import Rule
from radbridge.gateway.state import Store
from radbridge.geometry import volume_from_datasets
from radbridge.io.series import load_datasets
from radbridge.iods.common import SeriesOptions
from radbridge.iods.source import SourceSeries
from radbridge.models import Model, ModelResult, SeriesInfo, load_model, run_model
from radbridge.net.durable import write_durably as write_bytes_durably
from radbridge.uids import derived_uid

__all__ = [
    "Executor",
    "JobOutput",
    "PermanentJobError",
    "ResultFile",
    "compute_results",
    "run_job",
    "write_bytes_durably",
]

log = logging.getLogger(__name__)


class PermanentJobError(GatewayError):
    """A job that cannot succeed however often it is retried (e.g. a corrupt series)."""


@dataclass(frozen=True)
class ResultFile:
    """One object written to the outbox, with the SHA-256 of its bytes."""

    kind: str
    sop_instance_uid: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class JobOutput:
    """What a job produced."""

    files: tuple[ResultFile, ...]
    seconds: float


class Executor(Protocol):
    """Runs :func:`compute_results` somewhere (see :mod:`radbridge.gateway.executors`)."""

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call ``function(*args)`` and return its result (raise on failure)."""
        ...


#: Encoders of the report objects (SR, KOS); registered when their modules exist.
ReportEncoder = Callable[[ModelResult, SourceSeries, Dataset, Rule, SeriesOptions], Dataset]

_MODELS: dict[str, Model] = {}


def _model(spec: str) -> Model:
    if spec not in _MODELS:
        _MODELS[spec] = load_model(spec)
    return _MODELS[spec]


#: Output kinds in delivery order (and series numbers 900, 901, ...).
_KINDS = ("seg", "sr", "ko", "sc", "pm")


def _options(job: Job, rule: Rule, model: Model, kind: str, description: str) -> SeriesOptions:
    key = (job.series_instance_uid, str(job.version), rule.name, model.name, model.version)
    return SeriesOptions(
        series_description=f"{description} ({model.name})"[:64],
        series_number=900 + _KINDS.index(kind) if kind in _KINDS else 999,
        content_label=kind.upper(),
        series_instance_uid=derived_uid(*key, kind, "series"),
        sop_instance_uid=derived_uid(*key, kind, "instance"),
        manufacturer="radbridge",
        manufacturer_model_name=model.name[:64],
        software_versions=model.version,
        # Fixed by the job, so a re-run writes the same bytes.
        timestamp=_dt.datetime(2000, 1, 1) + _dt.timedelta(seconds=job.version),
    )


def _load(paths: Sequence[str]) -> tuple[list[Dataset], Any, SourceSeries]:
    try:
        datasets = load_datasets([Path(p) for p in paths])
        volume = volume_from_datasets(datasets, rescale=True)
        source = SourceSeries.from_datasets(datasets)
    except (DicomReadError, DecodingError, GeometryError) as exc:
        raise PermanentJobError(
            f"the series cannot be read as one volume: {exc}",
            attribute=exc.attribute,
            hint="this series is dead-lettered; fix the source and resend it",
        ) from exc
    return datasets, volume, source


def compute_results(
    job: Job,
    rule: Rule,
    paths: Sequence[str],
    report_encoders: dict[str, ReportEncoder] | None = None,
) -> list[tuple[str, str, bytes]]:
    """Read the series, run the model, encode the results: ``[(kind, SOP UID, bytes)]``.

    A pure function of its (picklable) arguments, so it runs in the gateway process
    or on a Dask worker alike; it writes nothing.
    """
    datasets, volume, source = _load(paths)
    model = _model(rule.model)
    info = SeriesInfo.from_dataset(datasets[0], slice_count=volume.shape[0])
    result = run_model(model, volume, info)
    seg = _encode_seg(job, rule, model, result, source)
    out = [("seg", str(seg.SOPInstanceUID), _encode(seg))]
    for kind in ("sr", "ko"):
        if kind not in rule.outputs:
            continue
        encoder = (report_encoders or {}).get(kind)
        if encoder is None:
            log.warning("job %d: no %s encoder available; skipped", job.id, kind.upper())
            continue
        report = encoder(result, source, seg, rule, _options(job, rule, model, kind, kind.upper()))
        out.append((kind, str(report.SOPInstanceUID), _encode(report)))
    if "sc" in rule.outputs:
        overlay = _encode_overlay(
            volume, seg, result, source, _options(job, rule, model, "sc", "AI overlay"), rule
        )
        if overlay is not None:
            out.append(("sc", str(overlay.SOPInstanceUID), _encode(overlay)))
    if "pm" in rule.outputs:
        heat = _encode_map(
            result, source, _options(job, rule, model, "pm", "AI probability map"), rule
        )
        if heat is not None:
            out.append(("pm", str(heat.SOPInstanceUID), _encode(heat)))
    return out


def _encode_overlay(
    volume: Any,
    seg: Dataset,
    result: ModelResult,
    source: SourceSeries,
    options: SeriesOptions,
    rule: Rule,
) -> Dataset | None:
    """Return a "not for diagnostic use" RGB Secondary Capture of the labels on the images."""
    from radbridge.color import dicom_lab_to_rgb
    from radbridge.iods.sc import encode_overlay_sc, render_overlay

    if result.labels is None:
        log.warning("no label map: SC overlay skipped")
        return None
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    colours = {
        int(s.SegmentNumber): dicom_lab_to_rgb(
            tuple(int(v) for v in s.RecommendedDisplayCIELabValue)
        )
        for s in seg.SegmentSequence
        if "RecommendedDisplayCIELabValue" in s
    }
    frames = render_overlay(volume, result.labels.array, colours, names)
    return encode_overlay_sc(source, frames, options=options, profile=rule.profile)


def _encode_map(
    result: ModelResult, source: SourceSeries, options: SeriesOptions, rule: Rule
) -> Dataset | None:
    """Return the model's probability map as a Parametric Map (probability, unit 1).

    Its Frame Anatomy is the rule's ``anatomy`` or the source's Body Part Examined.
    """
    from radbridge.iods.pm import encode_parametric_map
    from radbridge.iods.sr.concepts import PROBABILITY

    heat = result.probabilities
    if heat is None:
        log.warning("the model returned no probability map: PM skipped")
        return None
    heat = heat.max(axis=0) if heat.ndim == 4 else heat  # [segment, slice, row, column]
    return encode_parametric_map(
        heat,
        source,
        quantity=PROBABILITY,
        units="1",
        options=options,
        anatomic_region=rule.anatomy,
        profile=rule.profile,
    )


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def run_job(
    job: Job,
    store: Store,
    config: GatewayConfig,
    *,
    report_encoders: dict[str, ReportEncoder] | None = None,
    executor: Executor | None = None,
) -> JobOutput:
    """Run ``job`` (locally or on ``executor``) and write its results to the outbox.

    Raises
    ------
    PermanentJobError
        The series cannot be processed at all (the job is dead-lettered at once).
    ModelError, GatewayError
        The model, an encoder or the executor failed (the job is retried with backoff).
    """
    started = time.perf_counter()
    rule = next((r for r in config.rules if r.name == job.rule), None)
    if rule is None:
        raise PermanentJobError(
            f"job {job.id}: rule {job.rule!r} is no longer configured", attribute="rules"
        )
    paths = [i.path for i in store.version_inputs(job.series_instance_uid, job.version)]
    if not paths:
        raise PermanentJobError(
            f"job {job.id}: version {job.version} of series {job.series_instance_uid} has no "
            "frozen inputs",
            attribute="version_inputs",
        )
    if executor is None:
        items = compute_results(job, rule, paths, report_encoders)
    else:
        items = executor.run(compute_results, job, rule, paths, report_encoders)
    folder = config.outbox_dir / str(job.id)
    files = []
    for kind, sop_uid, data in items:
        path = folder / f"{kind}.dcm"
        write_bytes_durably(data, path, mode=config.file_mode)
        files.append(ResultFile(kind, sop_uid, path, hashlib.sha256(data).hexdigest()))
    seconds = time.perf_counter() - started
    log.info(
        "job %d (series %s v%d): %d objects in %.2f s",
        job.id,
        job.series_instance_uid,
        job.version,
        len(files),
        seconds,
    )
    return JobOutput(tuple(files), seconds)


def _encode_seg(
    job: Job, rule: Rule, model: Model, result: ModelResult, source: SourceSeries
) -> Dataset:
    from radbridge.iods.seg import AlgorithmIdentification, encode_segmentation

    mask: Any = result.labels
    seg_type = rule.seg_type
    if mask is None:
        if result.probabilities is None:
            raise ModelError(f"model {model.name} returned no masks", attribute="labels")
        mask, seg_type = result.probabilities, "fractional"
    return encode_segmentation(
        mask,
        source,
        dict(result.segments),
        segmentation_type=seg_type,
        algorithm=AlgorithmIdentification(result.algorithm.name, result.algorithm.version),
        options=_options(job, rule, model, "seg", "AI segmentation"),
        keep_empty_frames=False,
        profile=rule.profile,
    )
