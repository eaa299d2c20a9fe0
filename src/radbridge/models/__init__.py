"""Models: the Model protocol, the reference CT model, ONNX model cards, loading by name.

See :mod:`radbridge.models.base` for the protocol and result types.
"""

import typing as _typing

from radbridge.models import base as _base
from radbridge.models.base import (
    AlgorithmInfo,
    Finding,
    Model,
    ModelMeasurement,
    ModelResult,
    SeriesInfo,
    run_model,
)
from radbridge.models.registry import FunctionModel, load_model

__all__ = [
    "AlgorithmInfo",
    "Finding",
    "FunctionModel",
    "Model",
    "ModelMeasurement",
    "ModelResult",
    "SeriesInfo",
    "load_model",
    "run_model",
]


def __getattr__(name: str) -> _typing.Any:
    return getattr(_base, name)  # the deprecated Measurement (warns)
