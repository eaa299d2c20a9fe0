"""A tiny ONNX network and its model card, for the tests of ONNX models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def build_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    # Two-class logits from one 1x1x1 convolution: background = 0.5 - x, class 1 = x - 0.5.
    weights = helper.make_tensor("W", TensorProto.FLOAT, [2, 1, 1, 1, 1], [-1.0, 1.0])
    bias = helper.make_tensor("B", TensorProto.FLOAT, [2], [0.5, -0.5])
    node = helper.make_node("Conv", ["x", "W", "B"], ["logits"])
    graph = helper.make_graph(
        [node],
        "threshold",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, None, None, None])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def write_card(folder: Path, **fields: Any) -> Path:
    """Write the threshold network and a card for it (``fields`` change the card)."""
    build_onnx(folder / "threshold.onnx")
    card = {
        "name": "tiny-threshold",
        "version": "1",
        "file": "threshold.onnx",
        "input": {"window": [-1000, 1000]},
        "output": {"kind": "logits"},
        "labels": {"1": "body"},
        **fields,
    }
    path = folder / "card.json"
    path.write_text(json.dumps(card))
    return path
