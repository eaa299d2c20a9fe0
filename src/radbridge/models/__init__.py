"""Models: the Model and SlideModel protocols, reference models, ONNX model cards, loading by name.

See :mod:`radbridge.models.base` for the protocol and result types, and
:mod:`radbridge.models.slide` for models of whole-slide images.
"""

import typing as _typing

from radbridge.models import base as _base
from radbridge.models.base import (
    AlgorithmInfo,
    Finding,
    Model,
    ModelAnnotations,
    ModelMeasurement,
    ModelResult,
    SeriesInfo,
    run_model,
)
from radbridge.models.registry import FunctionModel, load_model
from radbridge.models.slide import SlideModel, run_slide_model

__all__ = [
    "AlgorithmInfo",
    "Finding",
    "FunctionModel",
    "Model",
    "ModelAnnotations",
    "ModelMeasurement",
    "ModelResult",
    "SeriesInfo",
    "SlideModel",
    "load_model",
    "run_model",
    "run_slide_model",
]


def __getattr__(name: str) -> _typing.Any:
    return getattr(_base, name)  # the deprecated Measurement (warns)
