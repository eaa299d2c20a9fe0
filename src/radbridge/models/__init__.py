"""Models: the Model protocol, the reference CT model, ONNX model cards, loading by name.

See :mod:`radbridge.models.base` for the protocol and result types.
"""

from radbridge.models.base import (
    AlgorithmInfo,
    Finding,
    Measurement,
    Model,
    ModelResult,
    SeriesInfo,
    run_model,
)
from radbridge.models.registry import FunctionModel, load_model

__all__ = [
    "AlgorithmInfo",
    "Finding",
    "FunctionModel",
    "Measurement",
    "Model",
    "ModelResult",
    "SeriesInfo",
    "load_model",
    "run_model",
]
