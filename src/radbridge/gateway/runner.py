"""Run one job: series → volume → model → result objects in the outbox.

A VL Whole Slide Microscopy series goes the slide path instead: the frozen inputs
are opened with :func:`radbridge.wsi.read_slide` (tiles decoded on demand), the
rule's slide model runs on the slide (:func:`radbridge.models.run_slide_model`) and
its result is encoded as the rule's slide outputs (``slide-seg``, ``ann``). Slides
are not de-identified: such a job is refused (dead-lettered), as is a rule whose
outputs do not fit the series' kind (see :mod:`radbridge.gateway.sources`).

A job reads exactly the input set frozen for its version (SOP Instance UIDs and
content digests, recorded before it ran), never the series as it is now. Result
UIDs derive from (series UID, version, rule, model name and version), so a job
that runs twice — after a crash — writes the same objects from the same inputs.
Each file is written to a temporary name, fsynced and renamed into
``outbox/<job>/`` before any delivery is queued.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pydicom
from pydicom.dataset import Dataset

from radbridge.errors import (
    ConfigError,
    DecodingError,
    DicomReadError,
    GatewayError,
    GeometryError,
    ModelError,
    NotDicomError,
)
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.deid import Pseudonyms, map_uids, new_seed, pseudonymise, reidentify
from radbridge.gateway.routing import Rule
from radbridge.gateway.store import Job, Store, VersionInput
from radbridge.io.part10 import dataset_offset
from radbridge.io.series import load_datasets
from radbridge.io.storage import write_durably as write_bytes_durably
from radbridge.iods.common import SeriesOptions
from radbridge.iods.source import Series
from radbridge.models import (
    Model,
    SeriesInfo,
    SlideModel,
    load_model,
    run_model,
    run_slide_model,
)
from radbridge.net import AlertReason
from radbridge.uids import derived_uid

__all__ = [
    "Computed",
    "Executor",
    "JobOutput",
    "ModelCache",
    "PermanentJobError",
    "ResultFile",
    "compute_results",
    "deidentifies",
    "refuse_unprotected",
    "run_job",
    "write_bytes_durably",
]

log = logging.getLogger(__name__)


#: A model of volumes or of whole-slide images.
AnyModel = Model | SlideModel


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
    """What a job produced, and its seconds (``model_s`` in the model, ``encode_s`` encoding).

    ``reasons`` say why the result is urgent (empty: it is not; see
    :mod:`radbridge.gateway.triage`).
    """

    files: tuple[ResultFile, ...]
    seconds: float
    model_s: float = 0.0
    encode_s: float = 0.0
    reasons: tuple[AlertReason, ...] = ()


@dataclass(frozen=True)
class Computed:
    """What :func:`compute_results` returns: ``[(kind, SOP UID, bytes)]``, timings, urgency."""

    items: list[tuple[str, str, bytes]]
    model_s: float
    encode_s: float
    reasons: tuple[AlertReason, ...] = ()


class Executor(Protocol):
    """Runs :func:`compute_results` somewhere (see :mod:`radbridge.gateway.executors`)."""

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call ``function(*args)`` and return its result (raise on failure)."""
        ...


class ModelCache:
    """The models one gateway has loaded, by spec: each loaded once and shared by its runners.

    Owned by the :class:`~radbridge.gateway.Gateway`, which closes it (a model with a
    ``close()`` method is closed then); thread-safe: runners asking for the same spec
    at once wait for one load, other specs load meanwhile.

    Parameters
    ----------
    loader
        Turns a spec into a model (default :func:`radbridge.models.load_model`).

    Examples
    --------
    >>> cache = ModelCache()
    >>> cache.get("reference-ct") is cache.get("reference-ct")
    True
    >>> cache.close()
    """

    def __init__(self, loader: Callable[[str], AnyModel] = load_model) -> None:
        self._loader = loader
        self._models: dict[str, AnyModel] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _cached(self, spec: str) -> AnyModel | None:
        with self._lock:
            if self._closed:
                raise GatewayError(f"model {spec}: the gateway is closed", attribute="model")
            return self._models.get(spec)

    def get(self, spec: str) -> AnyModel:
        """Return the model for ``spec``, loading it on first use.

        Raises
        ------
        ModelError
            The model cannot be loaded.
        GatewayError
            The cache is closed.
        """
        model = self._cached(spec)
        if model is not None:
            return model
        with self._lock:
            loading = self._loading.setdefault(spec, threading.Lock())
        with loading:  # one load per spec; the others wait for it
            model = self._cached(spec)
            if model is None:
                model = self._loader(spec)
                with self._lock:
                    self._models[spec] = model
        return model

    def loaded(self) -> dict[str, AnyModel]:
        """Return the models loaded so far, by spec."""
        with self._lock:
            return dict(self._models)

    def close(self) -> None:
        """Close every loaded model that can be closed, and refuse further loads."""
        with self._lock:
            models, self._models, self._closed = list(self._models.values()), {}, True
        for model in models:
            close = getattr(model, "close", None)
            if callable(close):
                close()


#: Output kinds by series number (900, 901, ...), and in delivery order but for the SR,
#: delivered last (see _outputs); other registered kinds come before the SR in the
#: rule's order (series number 999).
_KINDS = ("seg", "sr", "ko", "sc", "pm", "rtstruct", "gsps", "slide-seg", "ann")
_DESCRIPTIONS = {
    "seg": "AI segmentation",
    "sc": "AI overlay",
    "pm": "AI probability map",
    "rtstruct": "AI structures",
    "gsps": "AI outlines",
    "slide-seg": "AI slide segmentation",
    "ann": "AI annotations",
}


def _series_options(job: Job, rule: Rule, model: AnyModel, kind: str) -> SeriesOptions:
    key = (job.series_instance_uid, str(job.version), rule.name, model.name, model.version)
    description = _DESCRIPTIONS.get(kind, kind.upper())
    return SeriesOptions(
        series_description=f"{description} ({model.name})"[:64],
        series_number=900 + _KINDS.index(kind) if kind in _KINDS else 999,
        content_label=kind.upper().replace("-", "_")[:16],  # CS: no hyphen
        series_instance_uid=derived_uid(*key, kind, "series"),
        sop_instance_uid=derived_uid(*key, kind, "instance"),
        manufacturer="radbridge",
        manufacturer_model_name=model.name[:64],
        software_versions=model.version,
        timestamp=job.results_time(),  # fixed by the job: a re-run writes the same bytes
    )


def _outputs(rule: Rule, *, urgent: bool = False) -> list[Any]:
    """Return the rule's outputs in delivery order, with its settings (the SEG always).

    The SR comes last: it is the root report, whose evidence names the others. An
    ``urgent`` result's KOS is titled "For Referring Provider" and its SR carries
    Priority = Urgent (docs/triage.md).
    """
    from radbridge.results import (
        GspsOutput,
        KoOutput,
        PmOutput,
        RtstructOutput,
        SegOutput,
        SrOutput,
    )
    from radbridge.sr import concepts

    known = [kind for kind in _KINDS[2:] if kind in rule.outputs]
    others = [kind for kind in rule.outputs if kind not in _KINDS]
    others += ["sr"] if "sr" in rule.outputs else []
    settings = {
        "seg": SegOutput(segmentation_type=rule.seg_type),
        "pm": PmOutput(anatomic_region=rule.anatomy),
        # a label the model describes but did not find is kept without contours (as in the SEG)
        "rtstruct": RtstructOutput(allow_empty=True),
        "gsps": GspsOutput(allow_empty=True),
    }
    if urgent:
        settings |= {
            "ko": KoOutput(title=concepts.FOR_REFERRING_PROVIDER),
            "sr": SrOutput(urgent=True),
        }
    return [settings.get(kind, kind) for kind in ("seg", *known, *others)]


@contextmanager
def _readable() -> Iterator[None]:
    """Turn a series that cannot be read (or de-identified) into a permanent job error."""
    try:
        yield
    except (DicomReadError, DecodingError, GeometryError) as exc:
        raise PermanentJobError(
            f"the series cannot be read as one volume: {exc}",
            attribute=exc.attribute,
            hint="this series is dead-lettered; fix the source and resend it",
        ) from exc
    except GatewayError as exc:  # cannot be de-identified (burned-in text, other inputs)
        raise PermanentJobError(exc.message, attribute=exc.attribute, hint=exc.hint) from exc


def _load(paths: Sequence[str], pseudonyms: Pseudonyms | None) -> tuple[list[Dataset], Series]:
    """Read the frozen inputs (pseudonymised in place when asked) as one series."""
    with _readable():
        datasets = load_datasets([Path(p) for p in paths])
        if pseudonyms is not None:
            pseudonymise(datasets, pseudonyms)
        return datasets, Series.from_datasets(datasets)  # planned once, for the volume too


def _volume(source: Series) -> Any:
    with _readable():
        return source.volume(rescale=True)


def _model_info(datasets: list[Dataset], slices: int, pseudonymised: bool) -> SeriesInfo:
    info = SeriesInfo.from_dataset(datasets[0], slice_count=slices)
    if not pseudonymised:
        return info
    headers = tuple(Dataset({e.tag: e for e in ds if e.keyword != "PixelData"}) for ds in datasets)
    return replace(info, headers=headers)


def compute_results(
    job: Job,
    rule: Rule,
    paths: Sequence[str],
    models: ModelCache | None = None,
    pseudonyms: Pseudonyms | None = None,
) -> Computed:
    """Read the series, run the model, judge its urgency (the rule's ``urgent``), encode.

    A pure function of its (picklable) arguments, so it runs in the gateway process
    or on a Dask worker alike; it writes nothing. ``models`` is the gateway's model
    cache; on a Dask worker the worker's (see :mod:`radbridge.gateway.executors`).
    With ``pseudonyms`` the model sees only the pseudonymised series and the
    results are re-identified before they are returned (:mod:`radbridge.gateway.deid`).
    """
    from radbridge.results import ResultOptions, encode_results

    if _slide_job(rule, paths):
        return _compute_slide(job, rule, paths, models, pseudonyms)
    context = None
    if pseudonyms is not None:  # the original patient/study modules, to put back
        originals = load_datasets([Path(paths[0])], headers_only=True)
        context = Series.from_datasets(originals).context  # a copy of their elements
    datasets, source = _load(paths, pseudonyms)
    volume = _volume(source)
    model = _loaded(rule, models)
    refuse_unprotected(model, rule, pseudonyms)
    if not isinstance(model, Model):
        raise PermanentJobError(
            f"model {rule.model} is a slide model (run_slide) but the series is no slide",
            attribute="model",
            hint=f"route only VL Whole Slide Microscopy series to rule {rule.name!r}",
        )
    info = _model_info(datasets, volume.shape[0], pseudonyms is not None)
    started = time.perf_counter()
    result = run_model(model, volume, info)
    model_s = time.perf_counter() - started
    if result.labels is None and result.probabilities is None:
        raise ModelError(f"model {model.name} returned no masks", attribute="labels")
    reasons = rule.urgent.reasons(result)
    outputs = _outputs(rule, urgent=bool(reasons))
    kinds = [o if isinstance(o, str) else o.kind for o in outputs]
    options = ResultOptions(
        series={kind: _series_options(job, rule, model, kind) for kind in kinds},
        profile=rule.profile,
    )
    objects = encode_results(source, result, outputs, options)  # the SC reuses its volume
    if pseudonyms is not None and context is not None:
        for ds in objects.values():
            reidentify(ds, pseudonyms, context)
    items = [(kind, str(ds.SOPInstanceUID), _encode(ds)) for kind, ds in objects.items()]
    return Computed(items, model_s, time.perf_counter() - started - model_s, reasons)


def _loaded(rule: Rule, models: ModelCache | None) -> AnyModel:
    """Return the rule's model: from the gateway's cache, else the worker's, else loaded now."""
    if models is None:
        from radbridge.gateway.executors import worker_models

        models = worker_models()
    return models.get(rule.model) if models is not None else load_model(rule.model)


def _slide_job(rule: Rule, paths: Sequence[str]) -> bool:
    """Tell whether the job's series is a whole-slide image; refuse a rule of the other kind."""
    from radbridge.gateway.sources import is_slide, refuse_other_source

    with _readable():
        header = load_datasets([Path(paths[0])], headers_only=True)[0]
    sop_class = str(header.get("SOPClassUID", ""))
    reason = refuse_other_source(rule, sop_class, rule.outputs)
    if reason is not None:
        raise PermanentJobError(
            reason, attribute="outputs", hint="this series is dead-lettered; fix the rule"
        )
    return is_slide(sop_class)


def _compute_slide(
    job: Job,
    rule: Rule,
    paths: Sequence[str],
    models: ModelCache | None,
    pseudonyms: Pseudonyms | None,
) -> Computed:
    """Run the slide path of :func:`compute_results`: slide -> slide model -> slide kinds."""
    from radbridge.results import ResultOptions, SlideSegOutput, encode_results
    from radbridge.wsi import read_slide

    if pseudonyms is not None:
        raise PermanentJobError(
            f"rule {rule.name!r} de-identifies (or its model is external), which radbridge "
            "does not do for whole-slide images",
            attribute="deidentify",
            hint="de-identify slides before they reach the gateway, and use a model that "
            "is not marked external",
        )
    with _readable():
        slide = read_slide([Path(p) for p in paths])
    model = _loaded(rule, models)
    if not isinstance(model, SlideModel):
        raise PermanentJobError(
            f"model {rule.model} takes volumes; the series is a whole-slide image",
            attribute="model",
            hint=f"give rule {rule.name!r} a slide model (run_slide), e.g. reference-slide",
        )
    info = SeriesInfo.from_dataset(slide.levels[0].datasets[0], slice_count=len(paths))
    started = time.perf_counter()
    result = run_slide_model(model, slide, info)
    model_s = time.perf_counter() - started
    reasons = rule.urgent.reasons(result)
    settings = {"slide-seg": SlideSegOutput(segmentation_type=rule.seg_type)}
    outputs = [settings.get(kind, kind) for kind in rule.outputs]
    options = ResultOptions(
        series={kind: _series_options(job, rule, model, kind) for kind in rule.outputs},
        profile=rule.profile,
    )
    objects = encode_results(slide, result, outputs, options)
    items = [(kind, str(ds.SOPInstanceUID), _encode(ds)) for kind, ds in objects.items()]
    return Computed(items, model_s, time.perf_counter() - started - model_s, reasons)


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def deidentifies(rule: Rule, models: ModelCache | None, *, remote: bool = False) -> bool:
    """Tell whether the rule's model must see a pseudonymised series (rule or model says so).

    With ``remote`` (jobs run on Dask workers) a model the gateway's own process cannot
    import is not asked here: the worker that loads it refuses it if it is external
    (:func:`refuse_unprotected`), so the check fails closed.
    """
    if rule.deidentify:
        return True
    if rule.model.endswith(".json"):  # a model card says it without loading the network
        from radbridge.models.onnx import ModelCard

        return ModelCard.load(rule.model).external
    try:
        model = models.get(rule.model) if models is not None else load_model(rule.model)
    except ConfigError:
        if not remote:
            raise
        log.info("rule %s: model importable only on the workers; they check 'external'", rule.name)
        return False
    return bool(getattr(model, "external", False))


def refuse_unprotected(model: Any, rule: Rule, pseudonyms: Pseudonyms | None) -> None:
    """Refuse to give an external model a series that was not de-identified."""
    if pseudonyms is None and getattr(model, "external", False):
        raise PermanentJobError(
            f"model {rule.model} is marked external but its series was not de-identified "
            "(the gateway's process could not load the model to ask)",
            attribute="deidentify",
            hint=f"set deidentify = true on rule {rule.name!r}, or make the model importable "
            "by the gateway too",
        )


def _pseudonyms(job: Job, store: Store, paths: Sequence[str]) -> Pseudonyms:
    """Return the pseudonyms of the job's inputs: kept ones, or new ones kept first."""
    kept = store.pseudonyms(job.series_instance_uid, job.version)
    if kept is None:
        headers = load_datasets([Path(p) for p in paths], headers_only=True)
        made = map_uids(headers, new_seed())
        kept = store.save_pseudonyms(job.series_instance_uid, job.version, made.seed, made.uids)
    log.info("job %d: de-identified (%d UIDs mapped)", job.id, len(kept[1]))  # no values
    return Pseudonyms(*kept)


def _comparison(
    job: Job,
    rule: Rule,
    config: GatewayConfig,
    items: list[tuple[str, str, bytes]],
    paths: Sequence[str],
) -> list[tuple[str, str, bytes]]:
    """Return the ``compare`` output: the SR compared with the prior study's (or nothing)."""
    from radbridge.gateway.prior import compare_with_prior

    report = next((data for kind, _, data in items if kind == "sr"), None)
    if report is None:
        return []
    source = load_datasets([Path(paths[0])], headers_only=True)[0]
    ds = compare_with_prior(
        job, rule, config, source, pydicom.dcmread(io.BytesIO(report)), list(paths)
    )
    return [] if ds is None else [("compare", str(ds.SOPInstanceUID), _encode(ds))]


def _spooled_digest(path: Path) -> str | None:
    """Return the SHA-256 of a spool file's data set (file meta excluded); None if unreadable."""
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 20)
            digest = hashlib.sha256(memoryview(head)[dataset_offset(head) :])
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except (OSError, NotDicomError):
        return None
    return digest.hexdigest()


def _check_inputs(job: Job, inputs: Sequence[VersionInput]) -> None:
    """Refuse to run on spool files that are not the contents frozen for the job's version.

    Each file must still hold the data set whose digest was recorded when it was
    received (and acknowledged); a file removed or changed since (a script
    editing the spool, a disk error) would make the results describe data the
    sender never sent.

    Raises
    ------
    PermanentJobError
        A frozen input is missing or has other content (the job is dead-lettered).
    """
    for item in inputs:
        if not item.sha256:  # recorded without a digest: nothing to compare with
            continue
        found = _spooled_digest(Path(item.path))
        if found == item.sha256:
            continue
        what = "is missing or unreadable" if found is None else "has changed"
        raise PermanentJobError(
            f"job {job.id}: the spool file of SOP instance {item.sop_instance_uid} {what} "
            f"since it was received (recorded digest {item.sha256[:16]}, now "
            f"{'none' if found is None else found[:16]}); the job does not run on it",
            path=item.path,
            attribute="SOPInstanceUID",
            hint="have the sender send the series again (an identical instance restores "
            f"the file), then `radbridge gateway retry {job.id}`",
        )


def run_job(
    job: Job,
    store: Store,
    config: GatewayConfig,
    *,
    models: ModelCache | None = None,
    executor: Executor | None = None,
) -> JobOutput:
    """Run ``job`` (locally or on ``executor``) and write its results to the outbox.

    ``models`` (the gateway's cache) serves local runs; without it the model is
    loaded for this job.

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
    inputs = store.version_inputs(job.series_instance_uid, job.version)
    _check_inputs(job, inputs)
    paths = [i.path for i in inputs]
    if not paths:
        raise PermanentJobError(
            f"job {job.id}: version {job.version} of series {job.series_instance_uid} has no "
            "frozen inputs",
            attribute="version_inputs",
        )
    pseudonyms = (
        _pseudonyms(job, store, paths)
        if deidentifies(rule, models, remote=executor is not None)
        else None
    )
    if executor is None:
        computed = compute_results(job, rule, paths, models, pseudonyms)
    else:
        computed = executor.run(compute_results, job, rule, paths, None, pseudonyms)
    items = list(computed.items)
    if rule.compare_with_prior:
        items += _comparison(job, rule, config, items, paths)
    folder = config.outbox_dir / str(job.id)
    files = []
    for kind, sop_uid, data in items:
        path = folder / f"{kind}.dcm"
        write_bytes_durably(data, path, mode=config.file_mode)
        files.append(ResultFile(kind, sop_uid, path, hashlib.sha256(data).hexdigest()))
    seconds = time.perf_counter() - started
    log.info(
        "job %d (series %s v%d): %d objects in %.2f s%s",
        job.id,
        job.series_instance_uid,
        job.version,
        len(files),
        seconds,
        f", urgent ({len(computed.reasons)} reasons)" if computed.reasons else "",
    )
    return JobOutput(tuple(files), seconds, computed.model_s, computed.encode_s, computed.reasons)
