"""Run an ONNX segmentation network, driven by a small JSON model card.

The card says how to prepare the input and read the output, so a network
exported from PyTorch or MONAI runs without Python glue::

    {
      "name": "liver-unet", "version": "2.1",
      "file": "liver-unet.onnx",
      "input": {"spacing_mm": [3.0, 1.5, 1.5], "window": [-160, 240]},
      "output": {"kind": "logits"},
      "labels": {"1": "liver", "2": "liver_lesion"}
    }

- ``input.window``: HU clipped to ``[low, high]`` and scaled to [0, 1];
  ``input.spacing_mm`` (slice, row, column): the volume is resampled to it
  (linear) before the network and the labels back (nearest) after; omitted means
  the network runs on the original grid. The network sees ``[1, 1, slice, row,
  column]`` float32.
- ``output.kind``: ``logits`` (one channel per class, background first: argmax)
  or ``sigmoid`` (one probability channel per label; a voxel takes the most
  probable label above ``output.threshold``, default 0.5, and the probabilities
  are returned too).
- ``labels``: label value → name from :mod:`radbridge.codes`.
- ``manufacturer`` (optional): who made the network, written with its name and
  version as the Contributing Equipment of every result (IHE AI Results).
- ``external`` (optional, ``false``): the model is run by or sent to a third
  party; the gateway then de-identifies what it sees (docs/gateway.md).
- ``measurements`` (optional, ``[]``): ``["volume"]`` adds each present label's
  volume in mm3 (its voxels times the voxel volume of the source grid) to the
  result, so the SR reports it and a gateway rule's ``[rules.urgent]
  measurements`` can act on it (docs/triage.md).

The card is checked when it loads (ConfigError) and the output on every run
(ModelError): ``[1, channel, ...]`` on the grid the network was given, finite,
``channel`` one per label (sigmoid, labels 1..N) or ``max(label) + 1`` (logits).

onnxruntime comes with ``pip install 'radbridge[onnx]'``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from radbridge._optional import require
from radbridge.errors import ConfigError, ModelError
from radbridge.geometry import Volume
from radbridge.models.base import AlgorithmInfo, ModelMeasurement, ModelResult, SeriesInfo

__all__ = ["MEASUREMENTS", "ModelCard", "OnnxModel"]

#: What a card's ``measurements`` may ask for.
MEASUREMENTS = ("volume",)


@dataclass(frozen=True)
class ModelCard:
    """The parsed model card (see the module docstring)."""

    name: str
    version: str
    file: Path
    labels: dict[int, str]
    window: tuple[float, float] | None = None
    spacing_mm: tuple[float, float, float] | None = None
    kind: str = "logits"
    threshold: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)
    manufacturer: str = ""
    external: bool = False
    measurements: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelCard:
        """Read and check a card; ``file`` is resolved against the card's folder."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
            inputs = data.get("input", {}) or {}
            outputs = data.get("output", {}) or {}
            card = cls(
                name=str(data["name"]),
                version=str(data.get("version", "0")),
                file=(p.parent / data["file"]).resolve(),
                labels={int(k): str(v) for k, v in data["labels"].items()},
                window=tuple(float(v) for v in inputs["window"]) if inputs.get("window") else None,  # type: ignore[arg-type]
                spacing_mm=(
                    tuple(float(v) for v in inputs["spacing_mm"])  # type: ignore[arg-type]
                    if inputs.get("spacing_mm")
                    else None
                ),
                kind=str(outputs.get("kind", "logits")),
                threshold=float(outputs.get("threshold", 0.5)),
                manufacturer=str(data.get("manufacturer", "")),
                external=_flag(data.get("external", False)),
                measurements=_names(data.get("measurements", [])),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ConfigError(
                f"model card cannot be read ({type(exc).__name__}: {exc})",
                path=p,
                hint="a card needs name, file and labels; see radbridge.models.onnx",
            ) from exc
        _check_card(card, p)
        unknown = sorted(set(card.measurements) - set(MEASUREMENTS))
        if unknown:
            raise ConfigError(
                f"unknown measurements {unknown}",
                path=p,
                attribute="measurements",
                hint=f"a list of {', '.join(MEASUREMENTS)}",
            )
        if not card.file.is_file():
            raise ConfigError(
                "the ONNX file named by the card does not exist", path=card.file, attribute="file"
            )
        return card


def _check_card(card: ModelCard, path: Path) -> None:
    """Refuse values that would fail, or silently mislead, on the first series."""
    problems: list[tuple[str, str, str]] = []
    if card.kind not in ("logits", "sigmoid"):
        problems.append(
            (f"unknown output kind {card.kind!r}", "output.kind", "use logits or sigmoid")
        )
    if card.window is not None and (len(card.window) != 2 or not card.window[0] < card.window[1]):
        problems.append(
            (
                f"window {list(card.window)} is not [low, high] with low < high",
                "input.window",
                "give the HU range as [low, high], e.g. [-160, 240]",
            )
        )
    spacing = card.spacing_mm
    if spacing is not None and (len(spacing) != 3 or not all(0 < s < np.inf for s in spacing)):
        problems.append(
            (
                f"spacing_mm {list(spacing)} is not three positive numbers",
                "input.spacing_mm",
                "give [slice, row, column] spacing in mm, e.g. [3.0, 1.5, 1.5]",
            )
        )
    if not 0.0 <= card.threshold < 1.0:
        problems.append(
            (
                f"threshold {card.threshold} is outside [0, 1)",
                "output.threshold",
                "a probability between 0 and 1, e.g. 0.5",
            )
        )
    labels = sorted(card.labels)
    if not labels or labels[0] < 1 or labels[-1] > 65535:
        problems.append(
            (
                f"labels {labels} are not label values 1 to 65535",
                "labels",
                "number the labels from 1; 0 is the background and needs no entry",
            )
        )
    elif card.kind == "sigmoid" and labels != list(range(1, len(labels) + 1)):
        problems.append(
            (
                f"sigmoid labels {labels} are not 1 to {len(labels)}",
                "labels",
                "channel k of a sigmoid network is label k + 1: number the labels 1, 2, ... "
                "in channel order",
            )
        )
    if problems:
        message, attribute, hint = problems[0]
        raise ConfigError(message, path=path, attribute=attribute, hint=hint)


class OnnxModel:
    """A :class:`~radbridge.models.base.Model` running an ONNX network on the CPU."""

    def __init__(self, card: ModelCard) -> None:
        ort = require("onnxruntime", "onnx", purpose="run ONNX models")
        self.card = card
        self.name = card.name
        self.version = card.version
        self.manufacturer = card.manufacturer
        self.external = card.external
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(card.file), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    @classmethod
    def from_card(cls, path: str | os.PathLike[str]) -> OnnxModel:
        """Load the card at ``path`` and its network."""
        return cls(ModelCard.load(path))

    def __call__(self, volume: Volume, series: SeriesInfo) -> ModelResult:
        """Prepare the volume, run the network, map its output back to the grid."""
        data, zoom = self._prepare(volume)
        try:
            (output,) = self._session.run(None, {self._input: data[None, None]})[:1]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(
                f"model {self.name} failed in onnxruntime: {exc}", attribute="model"
            ) from exc
        scores = self._check_output(np.asarray(output), data.shape)
        labels, probabilities = self._decode(scores)
        if zoom is not None:
            labels = _resize(labels, volume.shape, order=0).astype(labels.dtype)
            if probabilities is not None:
                probabilities = np.stack(
                    [_resize(p, volume.shape, order=1) for p in probabilities]
                ).clip(0, 1)
        return ModelResult(
            labels=volume.with_array(labels),
            probabilities=probabilities,
            segments=dict(self.card.labels),
            measurements=self._measure(labels, volume),
            algorithm=AlgorithmInfo(self.name, self.version, manufacturer=self.card.manufacturer),
        )

    def _measure(self, labels: NDArray[Any], volume: Volume) -> tuple[ModelMeasurement, ...]:
        if "volume" not in self.card.measurements:
            return ()
        voxel = float(np.prod(volume.spacing))
        counts = np.bincount(labels.ravel(), minlength=max(self.card.labels, default=0) + 1)
        return tuple(
            ModelMeasurement("volume", float(counts[label]) * voxel, "mm3", label=label)
            for label in sorted(self.card.labels)
            if counts[label]
        )

    def _prepare(self, volume: Volume) -> tuple[NDArray[np.float32], tuple[float, ...] | None]:
        data = np.asarray(volume.array, dtype=np.float32)
        if self.card.window is not None:
            low, high = self.card.window
            data = (np.clip(data, low, high) - low) / (high - low)
        zoom = None
        if self.card.spacing_mm is not None:
            zoom = tuple(s / t for s, t in zip(volume.spacing, self.card.spacing_mm, strict=True))
            data = ndimage.zoom(data, zoom, order=1)
        return np.ascontiguousarray(data, dtype=np.float32), zoom

    def _check_output(self, output: NDArray[Any], grid: tuple[int, ...]) -> NDArray[np.float32]:
        """Return the scores ``[channel, slice, row, column]`` if the output fits the card."""
        labels = self.card.labels
        channels = len(labels) if self.card.kind == "sigmoid" else max(labels) + 1
        expected = (1, channels, *grid)
        problem = ""
        if output.shape != expected:
            problem = f"returned shape {output.shape}; the card and the input give {expected}"
        elif not np.issubdtype(output.dtype, np.number) or np.issubdtype(
            output.dtype, np.complexfloating
        ):
            problem = f"returned {output.dtype} values, not real numbers"
        elif not np.all(np.isfinite(output)):
            problem = "returned NaN or infinite values"
        if problem:
            raise ModelError(
                f"model {self.name} {problem}",
                path=self.card.file,
                attribute="output",
                hint=f"a {self.card.kind} network returns [1, channel, slice, row, column] on "
                "its input grid: one channel per label"
                + (" plus background first" if self.card.kind == "logits" else "")
                + "; check the card's labels and output.kind",
            )
        scores: NDArray[np.float32] = np.asarray(output[0], dtype=np.float32)
        return scores

    def _decode(
        self, scores: NDArray[np.float32]
    ) -> tuple[NDArray[Any], NDArray[np.float32] | None]:
        dtype = np.uint8 if max(self.card.labels, default=0) <= 255 else np.uint16
        if self.card.kind == "logits":
            return np.argmax(scores, axis=0).astype(dtype), None
        probabilities = scores.clip(0, 1)
        best = np.argmax(probabilities, axis=0)
        labels = np.where(probabilities.max(axis=0) > self.card.threshold, best + 1, 0)
        return labels.astype(dtype), probabilities


def _resize(array: NDArray[Any], shape: tuple[int, ...], *, order: int) -> NDArray[Any]:
    factors = [t / s for s, t in zip(array.shape, shape, strict=True)]
    out = ndimage.zoom(array, factors, order=order)
    # zoom may miss by one voxel on odd factors: crop or pad to the exact shape
    fixed = np.zeros(shape, out.dtype)
    region = tuple(slice(0, min(a, b)) for a, b in zip(out.shape, shape, strict=True))
    fixed[region] = out[region]
    return fixed


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"external must be true or false, got {value!r}")
    return value


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"measurements must be a list of names, got {value!r}")
    return tuple(value)
