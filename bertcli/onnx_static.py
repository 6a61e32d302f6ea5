"""Static int8 for an ONNX graph: activation scales calibrated on real texts, fixed in the file.

Built on onnxruntime's dynamic quantizer, whose int8 kernels are the fast ones on CPUs (QAttention
with its packed QKV product, and integer matrix products): its per-channel int8 weights are kept,
and every activation it would quantize at run time (DynamicQuantizeLinear) gets a QuantizeLinear
with a scale and zero point from calibration instead. onnxruntime's own static (QDQ) quantizer has
no QAttention: on the fused graph its products became weight-only int8 (MatMulNBits) and ran 0.87x
fp32; with attention fused as MultiHeadAttention over separate Q/K/V products, at best 0.89x the
dynamic graph. This graph ran 1.00x-1.06x the dynamic one (benchmarks/RESULTS.md, session 11).

Calibration: onnxruntime's percentile calibrator (99.999th percentile of each activation, not
symmetrised: after GELU an activation is mostly positive), one batch at a time so memory stays at
one batch of intermediate tensors. An activation that calibration did not reach keeps its dynamic
quantizer.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

CALIBRATED_OPS = ["MatMul", "Attention", "Gemm"]
PERCENTILE = 99.999


def calibrate(path: Path, feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, tuple[float, float]]:
    """The (low, high) range of every input of the graph's matrix products and attention ops."""
    import onnx
    from onnxruntime.quantization.calibrate import (
        CalibrationDataReader,
        CalibrationMethod,
        create_calibrator,
    )
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    class OneBatch(CalibrationDataReader):
        def __init__(self, feed: dict[str, np.ndarray]) -> None:
            self.feeds = [feed]

        def get_next(self) -> dict[str, np.ndarray] | None:
            return self.feeds.pop() if self.feeds else None

    with tempfile.TemporaryDirectory(prefix="bertcli-calibrate-") as tmp:
        # The fused ops (Attention, SkipLayerNorm...) have no ONNX shape inference; the
        # calibrator skips tensors whose type it does not know.
        typed = Path(tmp) / "typed.onnx"
        onnx.save(
            SymbolicShapeInference.infer_shapes(onnx.load(str(path)), auto_merge=True), str(typed)
        )
        calibrator = create_calibrator(
            typed,
            CALIBRATED_OPS,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"symmetric": False, "percentile": PERCENTILE},
        )
        inputs = {i.name for i in calibrator.infer_session.get_inputs()}
        # The calibrator prints its progress; bertcli's stdout is for results (the JSON report).
        with contextlib.redirect_stdout(io.StringIO()):
            for feed in feeds:  # histograms merge across calls: one batch in memory at a time
                calibrator.collect_data(OneBatch({k: v for k, v in feed.items() if k in inputs}))
            ranges = calibrator.compute_data().data
    return {name: _bounds(r.range_value) for name, r in ranges.items()}


def _bounds(range_value: tuple) -> tuple[float, float]:
    low, high = (float(np.asarray(v).reshape(-1)[0]) for v in range_value)
    return low, high


def uint8_scale(low: float, high: float) -> tuple[np.float32, np.uint8]:
    """Scale and zero point mapping [low, high] (widened to hold 0) onto 0..255."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 or 1.0
    return np.float32(scale), np.uint8(np.clip(round(-low / scale), 0, 255))


def make_static(path: Path, ranges: dict[str, tuple[float, float]]) -> int:
    """Rewrite a dynamically quantized graph in place to use the calibrated `ranges`.

    Returns how many activations got a static scale.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    static: dict[str, tuple[str, str, str]] = {}  # fp32 tensor -> (uint8 tensor, scale, zero)
    nodes = []

    def quantized(tensor: str) -> tuple[str, str, str]:
        if tensor not in static:
            scale, zero = uint8_scale(*ranges[tensor])
            base = f"{tensor}_static"
            names = (f"{base}_q", f"{base}_scale", f"{base}_zero")
            graph.initializer.extend(
                [
                    numpy_helper.from_array(np.array(scale), names[1]),
                    numpy_helper.from_array(np.array(zero), names[2]),
                ]
            )
            nodes.append(
                helper.make_node("QuantizeLinear", [tensor, *names[1:]], [names[0]], name=base)
            )
            static[tensor] = names
        return static[tensor]

    renamed: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "DynamicQuantizeLinear" and node.input[0] in ranges:
            renamed.update(zip(node.output, quantized(node.input[0]), strict=True))
            continue
        node.input[:] = [renamed.get(name, name) for name in node.input]
        nodes.append(node)
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    nodes = _fuse_integer_matmuls(nodes, {names[0]: names for names in static.values()}, shapes)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(path))
    return len(static)


def _fuse_integer_matmuls(
    nodes: list, static: dict[str, tuple[str, str, str]], shapes: dict[str, list[int]]
) -> list:
    """MatMulInteger -> Cast -> Mul(input scale x weight scale) [-> Add(bias)] on a statically
    quantized input becomes one MatMulIntegerToFloat: onnxruntime fuses that chain by itself only
    behind a DynamicQuantizeLinear, and unfused it ran 7% slower."""
    from onnx import helper

    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def sole(tensor: str, op_type: str):
        found = consumers.get(tensor, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    def other(node, tensor: str) -> str:
        return node.input[1] if node.input[0] == tensor else node.input[0]

    replaced, dropped = {}, set()
    for node in nodes:
        if node.op_type != "MatMulInteger" or len(node.input) != 4 or node.input[0] not in static:
            continue
        cast = sole(node.output[0], "Cast")
        mul = cast and sole(cast.output[0], "Mul")
        scales = mul and producer.get(other(mul, cast.output[0]))
        if scales is None or scales.op_type != "Mul":
            continue
        a_q, w_q, a_zero, w_zero = node.input
        a_scale = static[a_q][1]
        w_scale = other(scales, a_scale)
        add = sole(mul.output[0], "Add")
        bias = add and other(add, mul.output[0])
        columns = shapes.get(w_q, [None])[-1:]
        if bias and shapes.get(bias) != columns:  # a residual or a broadcast, not a bias
            add = bias = None
        replaced[id(node)] = helper.make_node(
            "MatMulIntegerToFloat",
            [a_q, w_q, a_scale, w_scale, a_zero, w_zero] + ([bias] if bias else []),
            [(add or mul).output[0]],
            name=f"{node.name}_static",
            domain="com.microsoft",
        )
        dropped |= {id(cast), id(mul)} | ({id(add)} if add else set())
        if len(consumers[scales.output[0]]) == 1:
            dropped.add(id(scales))
    return [replaced.get(id(n), n) for n in nodes if id(n) not in dropped]
