"""ONNX int8: static quantization calibrated on training texts vs. the dynamic int8 of
`bertcli export --quantize int8`, side by side on one fine-tuned IMDb model.

Rows (all per-channel int8 weights, uint8 activations):
  * fp32, fused by ONNX Runtime's transformer optimizer (the `bertcli export` graph);
  * dynamic int8 on that fused graph (`--quantize int8`);
  * static int8 as `--quantize int8-static` writes it: the dynamic graph with calibrated activation
    scales (percentile calibration on N training reviews);
  * ONNX Runtime's own static QDQ quantizer on the fused graph (MatMul and Attention) and on the
    unfused graph (every op it can quantize), MinMax calibration on the same reviews.
Windows/s over the first `--test` test reviews (after one warm-up pass), and label agreement with
the PyTorch fp32 model on them. Calibration texts come from train.csv, never from the test set.

    python benchmarks/int8_static.py --model runs/imdb
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"


def static_quantize(path: Path, calibration: list[dict], ops: list[str] | None) -> float:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    out = path.with_suffix(".static.onnx")
    started = time.perf_counter()
    quantize_static(
        str(path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"DefaultTensorType": 1},
        **({"op_types_to_quantize": ops} if ops else {}),
    )
    os.replace(out, path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--test", type=int, default=400, help="test reviews to score")
    parser.add_argument("--calibration", type=int, default=256, help="training reviews")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's advice lines

    from collections import Counter

    import numpy as np
    import onnx
    from rich.console import Console
    from rich.table import Table

    from bertcli.data.batching import pad_windows, sorted_batches
    from bertcli.export import _export_onnx, _optimize, _quantize, _quantize_static
    from bertcli.infer import window_logits
    from bertcli.modeling.model import load_model
    from bertcli.onnx_runtime import OnnxPredictor
    from bertcli.predictor import input_columns, task_from_meta

    model, tokenizer, meta = load_model(args.model)
    task = task_from_meta(meta, None)

    def windows(file: str, n: int):
        columns, labels = input_columns(meta), meta.get("labels")
        rows = task.read_file(args.data / file, columns, labels, with_labels=False, limit=n)
        return task.windows(tokenizer, rows)

    test, calib = windows("test.csv", args.test), windows("train.csv", args.calibration)
    pad = tokenizer.pad_token_id or 0
    feeds = [pad_windows(calib, i, pad) for i in sorted_batches(calib.lengths(), 16)]
    reference = window_logits(model, test, pad_id=pad)
    decisions = task.decisions
    work = Path(tempfile.mkdtemp(prefix="bench-int8-"))

    variants = {
        "fp32, fused": (True, None),
        "dynamic int8, fused (--quantize int8)": (True, "dynamic"),
        "static int8, fused (--quantize int8-static)": (True, "bertcli static"),
        "onnxruntime static QDQ, fused graph": (True, ["MatMul", "Attention"]),
        "onnxruntime static QDQ, unfused graph": (False, "all"),
    }
    rows = []
    for name, (fuse, quant) in variants.items():
        folder = work / str(len(rows))
        folder.mkdir()
        path = folder / "model.onnx"
        _export_onnx(model, path, int(meta["max_length"]))
        if fuse:
            _optimize(path, model.config, model.traits)
        calibration_s = 0.0
        if quant == "dynamic":
            _quantize(path)
        elif quant == "bertcli static":
            started = time.perf_counter()
            _quantize_static(path, feeds)
            calibration_s = time.perf_counter() - started
        elif quant:
            calibration_s = static_quantize(path, feeds, None if quant == "all" else quant)
        ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
        tokenizer.save_pretrained(folder)
        shutil.copy2(args.model / "config.json", folder / "config.json")
        (folder / "bertcli.json").write_text(json.dumps({**meta, "runtime": "onnx"}))
        predictor = OnnxPredictor(folder)
        predictor.window_logits(test)  # warm-up
        started = time.perf_counter()
        got = predictor.window_logits(test)
        seconds = time.perf_counter() - started
        agreement = float((decisions(reference) == decisions(got)).mean())
        error = float(np.abs(np.asarray(reference) - np.asarray(got)).mean())
        quantized = ops["QuantizeLinear"] + ops["DynamicQuantizeLinear"]
        rows.append((name, len(test) / seconds, agreement, error, calibration_s, quantized))

    table = Table(title=f"{len(test)} IMDb test reviews, model {args.model}")
    columns = ("graph", "windows/s", "vs fp32", "agreement", "mean |dlogit|", "calibration s")
    for column in (*columns, "act. quant."):
        table.add_column(column, justify="right")
    base = rows[0][1]
    for name, rate, agreement, error, calibration_s, quantized in rows:
        table.add_row(
            name,
            f"{rate:.1f}",
            f"{rate / base:.2f}x",
            f"{agreement:.2%}",
            f"{error:.4f}",
            f"{calibration_s:.1f}",
            str(quantized),
        )
    Console(width=160).print(table)
    print(
        json.dumps(
            [
                dict(
                    zip(("graph", "rate", "agreement", "error", "calib_s", "quant"), r, strict=True)
                )
                for r in rows
            ]
        )
    )


if __name__ == "__main__":
    main()
