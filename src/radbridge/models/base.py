"""What a model is to radbridge: a callable from a volume to masks, measurements, findings.

A model takes a :class:`~radbridge.geometry.Volume` (CT in Hounsfield units, or
any modality with its Modality LUT applied) and a :class:`SeriesInfo` (series
metadata without patient identifiers) and returns a :class:`ModelResult`: a
label map and/or stacked probabilities on the input grid, what each label is,
measurements with UCUM units, and qualitative findings. The gateway turns the
result into SEG, TID 1500 SR and KOS. Models of whole-slide images implement
:class:`radbridge.models.SlideModel` instead and return their masks on a slide level
(``level``, ``slide_labels``, ``slide_probabilities``) and :class:`ModelAnnotations`.

Examples
--------
>>> import numpy as np
>>> from radbridge.geometry import Volume
>>> class Threshold:
...     name, version = "threshold", "1.0"
...     def __call__(self, volume, series):
...         labels = volume.with_array((volume.array > 0).astype(np.uint8))
...         return ModelResult(labels=labels, segments={1: "body"},
...                            algorithm=AlgorithmInfo(self.name, self.version))
>>> isinstance(Threshold(), Model)
True
>>> vol = Volume(np.arange(8, dtype=np.int16).reshape(2, 2, 2) - 3, np.eye(4))
>>> result = run_model(Threshold(), vol, SeriesInfo(modality="CT"))
>>> int(result.labels.array.sum())
4
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from radbridge.attributes import number_or_none, text_value
from radbridge.coding import Code
from radbridge.errors import ModelError
from radbridge.geometry import Volume

__all__ = [
    "AlgorithmInfo",
    "Finding",
    "Model",
    "ModelAnnotations",
    "ModelMeasurement",
    "ModelResult",
    "SeriesInfo",
    "call_model",
    "run_model",
]


@dataclass(frozen=True)
class SeriesInfo:
    """Series metadata a model may use. Never holds patient identifiers."""

    modality: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    body_part: str = ""
    series_description: str = ""
    study_description: str = ""
    manufacturer: str = ""
    slice_count: int = 0
    slice_thickness_mm: float | None = None
    #: The instances' headers (no pixel data), pseudonymised: given only when the
    #: gateway de-identifies for this model (a ``deidentify`` rule or an external
    #: model); empty otherwise, so a model never gets patient identifiers.
    headers: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_dataset(cls, ds: Any, *, slice_count: int = 0) -> SeriesInfo:
        """Take the fields from an image data set (its header)."""
        text = partial(text_value, ds)
        return cls(
            modality=text("Modality"),
            study_instance_uid=text("StudyInstanceUID"),
            series_instance_uid=text("SeriesInstanceUID"),
            body_part=text("BodyPartExamined"),
            series_description=text("SeriesDescription"),
            study_description=text("StudyDescription"),
            manufacturer=text("Manufacturer"),
            slice_count=slice_count,
            slice_thickness_mm=number_or_none(ds, "SliceThickness"),
        )


@dataclass(frozen=True)
class AlgorithmInfo:
    """Who produced the result: the model's plain name, version and maker.

    The gateway writes it as the DICOM objects' algorithm identification
    (:class:`radbridge.seg.AlgorithmIdentification`), the SR observer, and the
    Contributing Equipment of every result object (IHE AI Results): ``name`` as
    Manufacturer's Model Name, ``version`` as Software Versions, ``manufacturer``
    as Manufacturer (``"unknown"`` when empty).
    """

    name: str
    version: str
    family: str = "segmentation"
    manufacturer: str = ""


@dataclass(frozen=True)
class ModelMeasurement:
    """One numeric measurement as a model returns it: a plain name and a UCUM unit string.

    The gateway codes it as an SR measurement (:class:`radbridge.sr.Measurement`, a
    TID 300 item with coded concept and units). Formerly ``models.Measurement``.

    Parameters
    ----------
    name
        What is measured, e.g. ``"volume"``, ``"mean"``, ``"long axis"``.
    value
        The value, finite.
    unit
        UCUM unit code, e.g. ``"mm3"``, ``"[hnsf'U]"``, ``"mm"``.
    label
        The label (segment) it belongs to, or ``None`` for image-level values.
    instance
        Which connected object of that label (1-based) for per-lesion values.
    concept
        A coded concept name when known (else the SR writer codes ``name``).
    centroid_lps
        Where the measured object lies (LPS mm), for per-lesion values.
    """

    name: str
    value: float
    unit: str
    label: int | None = None
    instance: int | None = None
    concept: Code | None = None
    centroid_lps: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ModelError(
                f"measurement {self.name!r} is not a finite number ({self.value})",
                attribute="value",
            )


@dataclass(frozen=True)
class Finding:
    """A qualitative finding, e.g. ``Finding("lung nodule", "present", 0.93)``."""

    concept: str
    value: str
    probability: float | None = None
    label: int | None = None
    concept_code: Code | None = None
    value_code: Code | None = None


@dataclass(frozen=True, eq=False)
class ModelAnnotations:
    """One group of annotations a slide model returns (a Microscopy Bulk Annotation group).

    Parameters
    ----------
    label
        What the group holds, e.g. ``"tissue regions"`` (at most 64 characters).
    annotations
        The annotations, consumed once (a generator keeps memory bounded; give a list
        to encode the result more than once). Each is its points ``[point, 2]``
        (column, row in the Total Pixel Matrix of the result's ``level``) or, when the
        group has ``measurements``, ``(points, values)`` with one value per measurement.
    category, property_type
        What the annotated objects are (e.g. SCT 91723000 "Anatomical Structure" /
        SCT 85756007 "Tissue").
    graphic_type
        ``point``, ``polyline``, ``polygon`` (default), ``ellipse`` or ``rectangle``.
    measurements
        ``(concept, unit)`` codes of the values each annotation carries, e.g.
        ``(sct("42798000", "Area"), ucum("um2", "square micrometer"))``.
    """

    label: str
    annotations: Iterable[Any]
    category: Code
    property_type: Code
    graphic_type: str = "polygon"
    measurements: tuple[tuple[Code, Code], ...] = ()


@dataclass(frozen=True, eq=False)
class ModelResult:
    """What a model returns.

    Attributes
    ----------
    labels
        Label map on the input grid (0 background), or ``None``.
    probabilities
        ``[segment, slice, row, column]`` float32 in [0, 1] on the input grid, or
        ``None``; segment ``k`` (0-based) is label ``k + 1``.
    segments
        Label value → name from :mod:`radbridge.codes` (or a segment description).
    measurements, findings
        Quantitative and qualitative results.
    algorithm
        Name and version of the model.
    urgent
        The model's own judgement that the result needs a radiologist now (a rule
        with ``urgent.model_flag = true`` alerts on it; see docs/triage.md).
    level
        A slide model's result: the pyramid level (0 finest) that ``slide_labels``,
        ``slide_probabilities`` and the annotations' coordinates refer to; ``None``
        for a result on a volume.
    slide_labels
        Label map ``[row, column]`` on the level's Total Pixel Matrix (0 background),
        any array-like sliced like NumPy (a memory-mapped ``.npy``), or ``None``.
    slide_probabilities
        ``[segment, row, column]`` in [0, 1] on the level, or ``None``.
    annotations
        Annotation groups on the level: :class:`ModelAnnotations`, or
        ``(radbridge.ann.AnnotationGroupDescription, annotations)`` pairs.
    """

    labels: Volume | None = None
    probabilities: NDArray[np.float32] | None = None
    segments: Mapping[int, Any] = field(default_factory=dict)
    measurements: tuple[ModelMeasurement, ...] = ()
    findings: tuple[Finding, ...] = ()
    algorithm: AlgorithmInfo = AlgorithmInfo("unknown", "0")
    urgent: bool = False
    level: int | None = None
    slide_labels: Any = None
    slide_probabilities: Any = None
    annotations: tuple[Any, ...] = ()


@runtime_checkable
class Model(Protocol):
    """A model: ``model(volume, series) -> ModelResult`` with a name and version."""

    name: str
    version: str

    def __call__(self, volume: Volume, series: SeriesInfo) -> ModelResult:
        """Segment and measure ``volume``."""
        ...


def run_model(model: Model, volume: Volume, series: SeriesInfo) -> ModelResult:
    """Run ``model`` and check its output fits the input.

    Raises
    ------
    ModelError
        The model raised, or returned masks off the input grid, undeclared labels,
        or NaN probabilities (the message names the model).
    """
    name = getattr(model, "name", type(model).__name__)
    result = call_model(name, model, volume, series)
    _check_labels(name, result, volume)
    _check_probabilities(name, result, volume)
    return result


def call_model(name: str, function: Any, source: Any, series: SeriesInfo) -> ModelResult:
    """Call ``function(source, series)``: its failures and non-results become ModelErrors."""
    what = "series" if isinstance(source, Volume) else "slide"
    try:
        result = function(source, series)
    except ModelError:
        raise
    except Exception as exc:  # any failure inside user code becomes a ModelError
        # its text is the model's: it may quote what it was given (no patient data kept)
        raise ModelError(
            f"model {name} failed: {type(exc).__name__}: {scrub(str(exc), series)}",
            attribute="model",
            hint=f"check the model on this {what} outside the gateway",
        ) from exc
    if not isinstance(result, ModelResult):
        raise ModelError(
            f"model {name} returned {type(result).__name__}, not a ModelResult",
            attribute="model",
        )
    return result


#: Value representations of free text, names, IDs and dates: what :func:`scrub` removes.
_TEXT_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "DA", "DT", "AS"})


def _given_texts(series: SeriesInfo) -> dict[str, str]:
    """Return the texts a model was given, by where they came from (value -> keyword)."""
    found = {
        series.study_description: "StudyDescription",
        series.series_description: "SeriesDescription",
    }
    for header in series.headers:
        for element in header.iterall():
            if element.VR not in _TEXT_VRS or element.value in (None, ""):
                continue
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                parts = [str(value)]
                if element.VR == "PN":  # a name may be quoted in parts ("DOE, JOHN")
                    parts += [str(value.family_name), str(value.given_name)]
                found |= {part.strip(): element.keyword or str(element.tag) for part in parts}
    return {value: key for value, key in found.items() if len(value) >= 3}


def scrub(text: str, series: SeriesInfo) -> str:
    """Return ``text`` with every text value the model was given replaced by its keyword.

    A model's exception text is recorded (the gateway's store, audit log and status
    page, a batch report): a message quoting the study description or, for a
    de-identifying rule, a header value becomes ``<StudyDescription>``.

    Examples
    --------
    >>> series = SeriesInfo(study_description="CT CHEST JOHN DOE")
    >>> scrub("no lungs in 'ct chest john doe'", series)
    "no lungs in '<StudyDescription>'"
    """
    for value, keyword in sorted(_given_texts(series).items(), key=lambda kv: -len(kv[0])):
        text = re.sub(re.escape(value), f"<{keyword}>", text, flags=re.IGNORECASE)
    return text


def _check_labels(name: str, result: ModelResult, volume: Volume) -> None:
    if result.labels is None:
        return
    if result.labels.shape != volume.shape or not np.allclose(
        result.labels.affine, volume.affine, atol=1e-3
    ):
        raise ModelError(
            f"model {name} returned a label map of shape {result.labels.shape} off the "
            f"input grid {volume.shape}",
            attribute="labels",
            hint="return masks on the input volume's grid (volume.with_array(...))",
        )
    present = set(np.unique(result.labels.array).tolist()) - {0}
    undeclared = sorted(present - set(result.segments))
    if undeclared:
        raise ModelError(
            f"model {name} returned labels {undeclared[:10]} it did not describe",
            attribute="segments",
        )


def _check_probabilities(name: str, result: ModelResult, volume: Volume) -> None:
    probabilities = result.probabilities
    if probabilities is None:
        return
    if probabilities.ndim != 4 or probabilities.shape[1:] != volume.shape:
        raise ModelError(
            f"model {name} returned probabilities of shape {probabilities.shape}, expected "
            f"[segment, {', '.join(map(str, volume.shape))}]",
            attribute="probabilities",
        )
    if not np.all(np.isfinite(probabilities)):
        raise ModelError(
            f"model {name} returned NaN or infinite probabilities", attribute="probabilities"
        )
    if probabilities.size and (probabilities.min() < 0 or probabilities.max() > 1):
        raise ModelError(
            f"model {name} returned probabilities outside [0, 1]", attribute="probabilities"
        )


def __getattr__(name: str) -> Any:
    if name == "Measurement":  # the old name, ambiguous beside radbridge.sr.Measurement
        warnings.warn(
            "radbridge.models.Measurement is deprecated: use ModelMeasurement",
            DeprecationWarning,
            stacklevel=2,
        )
        return ModelMeasurement
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
