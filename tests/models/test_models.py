"""Models: the reference CT model on the phantom and real CT, ONNX cards, loading, checks."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from radbridge.errors import ConfigError, ModelError
from radbridge.geometry import Volume
from radbridge.io.phantom import generate_phantom
from radbridge.io.series import read_series_datasets, read_volume
from radbridge.models import (
    AlgorithmInfo,
    FunctionModel,
    ModelResult,
    SeriesInfo,
    load_model,
    run_model,
)
from radbridge.models.reference_ct import LABELS, ReferenceCTModel
from tests.models.onnx_network import write_card

CT = SeriesInfo(modality="CT")


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


@pytest.fixture(scope="module")
def phantom():
    return generate_phantom(slices=100, size=192, seed=3)


@pytest.fixture(scope="module")
def result(phantom):
    return run_model(ReferenceCTModel(), phantom.hu, CT)


def test_reference_model_finds_the_phantom_anatomy(phantom, result):
    truth, found = phantom.labels.array, result.labels.array
    for label, name in LABELS.items():
        score = dice(found == label, truth == label)
        assert score >= (0.9 if label <= 5 else 0.6), f"{name}: Dice {score:.3f}"
    assert [f.value for f in result.findings] == ["present", "present"]


def test_every_lesion_found_with_its_diameter(phantom, result):
    spacing = max(phantom.hu.spacing)
    axes = [m for m in result.measurements if m.name == "long axis"]
    for lesion in phantom.lesions:
        nearest = min(
            axes, key=lambda m: np.linalg.norm(np.subtract(m.centroid_lps, lesion.centre_lps))
        )
        assert nearest.label == lesion.label
        assert np.linalg.norm(np.subtract(nearest.centroid_lps, lesion.centre_lps)) < spacing
        assert abs(nearest.value - lesion.diameter_mm) <= 2 * spacing
    assert len(axes) == len(phantom.lesions)


def test_measurements_match_the_labels(phantom, result):
    voxel = float(np.prod(phantom.hu.spacing))
    volumes = {
        m.label: m.value for m in result.measurements if m.name == "volume" and m.instance is None
    }
    for label, value in volumes.items():
        assert value == pytest.approx((result.labels.array == label).sum() * voxel)
    means = {m.label: m.value for m in result.measurements if m.name == "mean"}
    assert means[4] > 500 and means[2] < -700 and 45 < means[5] < 75
    units = {m.name: m.unit for m in result.measurements}
    assert units == {
        "volume": "mm3",
        "mean": "[hnsf'U]",
        "standard deviation": "[hnsf'U]",
        "long axis": "mm",
    }


def test_absent_findings_on_a_clean_phantom(phantom):
    hu = phantom.hu.array.copy()
    hu[np.isin(phantom.labels.array, (6,))] = -850  # nodules back to lung
    hu[phantom.labels.array == 7] = 60  # lesion back to liver
    result = run_model(ReferenceCTModel(), phantom.hu.with_array(hu), CT)
    assert [f.value for f in result.findings] == ["absent", "absent"]


@pytest.mark.parametrize("name", ["ct-3slice", "rtutils_ct"])
def test_runs_sensibly_on_real_ct(interop, name):
    folder = interop / "images" / name
    volume = read_volume(folder, rescale=True)
    info = SeriesInfo.from_dataset(
        read_series_datasets(folder, headers_only=True)[0], slice_count=volume.shape[0]
    )
    result = run_model(ReferenceCTModel(), volume, info)
    labels = result.labels.array
    body = labels > 0
    assert 0.05 < body.mean() < 0.95  # a body, not the whole field of view
    assert (volume.array[labels == 1] > -500).mean() > 0.5
    if (labels == 4).any():
        assert volume.array[labels == 4].mean() > 250


def test_refuses_other_modalities(phantom):
    with pytest.raises(ModelError, match="needs CT, not MR"):
        run_model(ReferenceCTModel(), phantom.hu, SeriesInfo(modality="MR"))


@pytest.mark.parametrize("spacing", [None, [6.0, 4.0, 4.0]])
def test_onnx_model_card(tmp_path, phantom, spacing):
    inputs = {"window": [-1000, 1000], **({"spacing_mm": spacing} if spacing else {})}
    model = load_model(str(write_card(tmp_path, input=inputs)))
    result = run_model(model, phantom.hu, CT)
    expected = phantom.hu.array > 0
    found = result.labels.array == 1
    if spacing is None:
        np.testing.assert_array_equal(found, expected)
    else:  # resampled both ways: equal up to the boundary
        assert dice(found, expected) > 0.9
    assert result.algorithm == AlgorithmInfo("tiny-threshold", "1")
    assert result.measurements == ()  # none unless the card asks


def test_an_onnx_card_can_ask_for_label_volumes(tmp_path, phantom):
    model = load_model(str(write_card(tmp_path, measurements=["volume"])))
    result = run_model(model, phantom.hu, CT)
    (volume,) = result.measurements
    # the body's voxels (HU > 0) times the phantom's voxel volume, counted here
    spacing = phantom.hu.spacing
    expected = int((phantom.hu.array > 0).sum()) * spacing[0] * spacing[1] * spacing[2]
    assert (volume.name, volume.unit, volume.label) == ("volume", "mm3", 1)
    assert volume.value == pytest.approx(expected)


def test_onnx_card_errors(tmp_path):
    (tmp_path / "card.json").write_text(
        json.dumps({"name": "x", "file": "missing.onnx", "labels": {"1": "liver"}})
    )
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(str(tmp_path / "card.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="needs name, file and labels"):
        load_model(str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match=r"unknown measurements \['diameter'\]") as caught:
        load_model(str(write_card(tmp_path, measurements=["volume", "diameter"])))
    assert caught.value.attribute == "measurements"
    with pytest.raises(ConfigError, match="measurements must be a list of names"):
        load_model(str(write_card(tmp_path, measurements="volume")))


def test_callable_by_import_path(tmp_path, monkeypatch, phantom):
    (tmp_path / "mymodels.py").write_text(
        textwrap.dedent("""
        from radbridge.models import ModelResult
        def bright(volume, series):
            return ModelResult(labels=volume.with_array((volume.array > 500).astype("uint8")),
                               segments={1: "bone"})
        def broken(volume, series):
            raise RuntimeError("out of memory")
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mymodels", None)
    model = load_model("mymodels:bright")
    assert isinstance(model, FunctionModel) and model.name == "bright"
    assert run_model(model, phantom.hu, CT).labels.array.any()
    with pytest.raises(ModelError, match="model broken failed: RuntimeError: out of memory"):
        run_model(load_model("mymodels:broken"), phantom.hu, CT)
    with pytest.raises(ConfigError, match="cannot be imported"):
        load_model("mymodels:nothing")
    with pytest.raises(ConfigError, match="unknown model"):
        load_model("definitely-not-a-model")


def test_a_model_whose_version_the_objects_cannot_hold_is_refused_at_load(tmp_path, monkeypatch):
    # the version is the result objects' Algorithm Version (LO, 64 characters): refused
    # when the model loads, not cut (two builds would look alike) nor at every job
    (tmp_path / "longmodels.py").write_text(
        textwrap.dedent("""
        class Long:
            name, version = "liver", "2.1.0+" + "f" * 64
            def __call__(self, volume, series):
                raise AssertionError("never run")
        class Unnamed:
            name, version = " ", "1"
            def __call__(self, volume, series):
                raise AssertionError("never run")
        class Fine:
            name, version = "liver", "2.1.0+" + "f" * 58
            def __call__(self, volume, series):
                raise AssertionError("never run")
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("longmodels", None)
    with pytest.raises(ConfigError, match=r"its version .* has 70 characters") as caught:
        load_model("longmodels:Long")
    assert caught.value.attribute == "model"
    with pytest.raises(ConfigError, match="its name ' ' has 1 characters"):
        load_model("longmodels:Unnamed")
    assert len(load_model("longmodels:Fine").version) == 64


def test_output_checks(phantom):
    volume = phantom.hu

    def off_grid(v, s):
        small = Volume(np.zeros((2, 2, 2), np.uint8), np.eye(4))
        return ModelResult(labels=small, segments={})

    def undeclared(v, s):
        return ModelResult(labels=v.with_array(np.full(v.shape, 3, np.uint8)), segments={1: "x"})

    def nan(v, s):
        return ModelResult(probabilities=np.full((1, *v.shape), np.nan, np.float32))

    for function, match in (
        (off_grid, "off the input grid"),
        (undeclared, "did not describe"),
        (nan, "NaN"),
    ):
        with pytest.raises(ModelError, match=match):
            run_model(FunctionModel(function, name=function.__name__), volume, CT)


def test_model_measurement_keeps_its_old_name_with_a_warning():
    import radbridge.models
    from radbridge.models import ModelMeasurement

    with pytest.warns(DeprecationWarning, match="ModelMeasurement"):
        old = radbridge.models.Measurement
    assert old is ModelMeasurement
    with pytest.raises(AttributeError):
        radbridge.models.NoSuchName  # noqa: B018


def _network(path, weights, bias, *after):
    """A 1x1x1 convolution with one output channel per weight, then the nodes ``after``."""
    import onnx
    from onnx import TensorProto, helper

    count = len(weights)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c" if after else "y"])]
    initializers = [
        helper.make_tensor("W", TensorProto.FLOAT, [count, 1, 1, 1, 1], weights),
        helper.make_tensor("B", TensorProto.FLOAT, [count], bias),
    ]
    for node, tensors in after:
        nodes.append(node)
        initializers += tensors
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 5)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def _card(folder, **fields):
    card = {"name": "net", "version": "1", "file": "net.onnx", "labels": {"1": "liver"}}
    path = folder / "net.json"
    path.write_text(json.dumps({**card, **fields}))
    return str(path)


@pytest.mark.parametrize(
    ("fields", "attribute"),
    [
        ({"input": {"window": [0, 0]}}, "input.window"),  # was a division by zero per series
        ({"input": {"window": [240, -160]}}, "input.window"),  # was a silent nonsense input
        ({"input": {"window": [0, 10, 20]}}, "input.window"),
        ({"input": {"spacing_mm": [1.5, 1.5]}}, "input.spacing_mm"),
        ({"input": {"spacing_mm": [0, 1, 1]}}, "input.spacing_mm"),
        ({"output": {"kind": "sigmoid", "threshold": 1.5}}, "output.threshold"),
        ({"labels": {"0": "background", "1": "liver"}}, "labels"),
        # channel k of a sigmoid network is label k + 1: labels 2, 3 were read as 1, 2
        ({"output": {"kind": "sigmoid"}, "labels": {"2": "liver", "3": "liver_lesion"}}, "labels"),
        ({"output": {"kind": "softmax"}}, "output.kind"),
    ],
)
def test_onnx_card_values_that_cannot_work_are_refused_at_load(tmp_path, fields, attribute):
    _network(tmp_path / "net.onnx", [1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ConfigError) as caught:
        load_model(_card(tmp_path, **fields))
    assert caught.value.attribute == attribute
    assert "net.json" in str(caught.value)


def test_onnx_sigmoid_channels_are_the_labels_in_order(tmp_path):
    # channel 1 (the second label) is certain everywhere
    _network(tmp_path / "net.onnx", [0.0, 0.0], [0.0, 1.0])
    card = _card(tmp_path, output={"kind": "sigmoid"}, labels={"1": "liver", "2": "liver_lesion"})
    volume = Volume(np.zeros((4, 6, 6), np.int16), np.eye(4))
    result = run_model(load_model(card), volume, CT)
    assert np.unique(result.labels.array).tolist() == [2]
    assert result.probabilities.shape == (2, 4, 6, 6)


def _nan(path):
    from onnx import TensorProto, helper

    divide = helper.make_node("Div", ["c", "Z"], ["y"])
    zero = helper.make_tensor("Z", TensorProto.FLOAT, [1], [0.0])
    return _network(path, [0.0, 0.0], [0.0, 0.0], (divide, [zero]))


def _half(path):
    from onnx import helper

    pool = helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2, 2], strides=[2, 2, 2])
    return _network(path, [-1.0, 1.0], [0.5, -0.5], (pool, []))


@pytest.mark.parametrize(
    ("build", "fields", "message"),
    [
        # 0/0 logits: argmax read the NaNs as background everywhere, silently
        (_nan, {}, "NaN or infinite"),
        # a half-size output was zoomed back to the input grid when spacing_mm was set
        (_half, {"input": {"spacing_mm": [1.0, 1.0, 1.0]}}, r"shape \(1, 2, 4, 4, 4\)"),
        # two channels for labels 1 and 2: label 2 could never appear, silently
        (
            lambda p: _network(p, [-1.0, 1.0], [0.5, -0.5]),
            {"labels": {"1": "liver", "2": "liver_lesion"}},
            r"give \(1, 3, 8, 8, 8\)",
        ),
    ],
)
def test_onnx_output_that_does_not_fit_the_card_is_a_model_error(tmp_path, build, fields, message):
    build(tmp_path / "net.onnx")
    model = load_model(_card(tmp_path, **fields))
    volume = Volume(np.zeros((8, 8, 8), np.int16), np.eye(4))
    with pytest.raises(ModelError, match=message) as caught:
        run_model(model, volume, CT)
    assert caught.value.attribute == "output"
    assert "net.onnx" in str(caught.value)
