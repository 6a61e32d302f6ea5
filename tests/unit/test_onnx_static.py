"""Static int8 ONNX: activation scales calibrated once on real texts and fixed in the graph."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.export import _quantize
from bertcli.onnx_static import calibrate, make_static, uint8_scale

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def ops(path: Path) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def linear_graph(path: Path, rng: np.random.Generator) -> None:
    """x (batch, 16) @ W (16, 8) + b: the shape of every projection in an encoder."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(rng.normal(size=(16, 8)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=[weight, bias],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_uint8_scale_covers_the_range_and_zero() -> None:
    scale, zero = uint8_scale(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255) and zero == 64
    scale, zero = uint8_scale(0.5, 2.0)  # widened to hold 0: zero maps exactly
    assert zero == 0 and scale == pytest.approx(2.0 / 255)


def test_static_scales_do_not_depend_on_the_rest_of_the_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    fp32, dynamic, static = (tmp_path / f"{n}.onnx" for n in ("fp32", "dynamic", "static"))
    linear_graph(fp32, rng)
    feeds = [{"x": rng.normal(size=(8, 16)).astype(np.float32)} for _ in range(4)]
    ranges = calibrate(fp32, feeds)
    for path in (dynamic, static):
        shutil.copy(fp32, path)
        _quantize(path)
    assert make_static(static, ranges) == 1
    # One fused integer product with a fixed input scale; nothing is quantized at run time.
    assert ops(static)["MatMulIntegerToFloat"] == 1
    assert not {"DynamicQuantizeLinear", "MatMulInteger", "Cast"} & set(ops(static))

    row = rng.normal(size=(1, 16)).astype(np.float32)
    loud = np.vstack([row, 50 * rng.normal(size=(1, 16)).astype(np.float32)])
    # Dynamic int8 scales each batch by its largest value: a loud neighbour blurs the row...
    assert not np.allclose(run(dynamic, row)[0], run(dynamic, loud)[0], atol=1e-3)
    # ...static int8 gives the row the same answer in any company, close to fp32.
    np.testing.assert_array_equal(run(static, row)[0], run(static, loud)[0])
    np.testing.assert_allclose(run(static, row), run(fp32, row), atol=0.1)


def test_static_int8_export_checks_itself_and_predicts(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "static"
    result = CliRunner().invoke(
        app,
        ["export", "--model", str(trained_model_dir), "-o", str(out), "--quantize", "int8-static"],
    )
    assert result.exit_code == 0, result.output
    # stdout is the report alone: the calibrator's progress prints stay out of it.
    report = json.loads(result.stdout)
    assert report["quantize"] == "int8-static" and report["label_agreement"] >= 0.9
    graph = ops(out / "model.onnx")
    assert graph["MatMulIntegerToFloat"] > 0 and graph["QuantizeLinear"] > 0
    assert "DynamicQuantizeLinear" not in graph
    predicted = CliRunner().invoke(
        app, ["predict", "--model", str(out), "-"], input="good great movie\nbad awful plot\n"
    )
    assert predicted.exit_code == 0, predicted.output
    labels = [json.loads(line)["label"] for line in predicted.stdout.splitlines()]
    assert len(labels) == 2


def test_static_int8_without_texts_to_calibrate_says_what_to_pass(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    meta = json.loads((model / "bertcli.json").read_text())
    texts = Path(meta["config"]["data"]["train"])
    meta["config"]["data"]["train"] = str(tmp_path / "moved-away.csv")
    (model / "bertcli.json").write_text(json.dumps(meta))
    args = ["export", "--model", str(model), "--quantize", "int8-static"]

    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "calibrates on real texts" in result.output and "--check-data" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()

    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "out"), "--check-data", texts])
    assert result.exit_code == 0, result.output
