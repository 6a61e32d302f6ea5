"""Prediction throughput: transformers.pipeline vs. bertcli (PyTorch fp32, bf16 autocast alone,
bf16 with bf16 encoder weights, compiled PyTorch, ONNX fp32, ONNX int8 dynamic and static).

The same fine-tuned model and the same N real IMDb test reviews for every row; texts/s, peak memory
(max RSS of the process, model included), accuracy against the gold labels and label agreement with
bertcli's fp32 PyTorch predictions. Each row runs in its own process.

    python benchmarks/predict_throughput.py --model runs/imdb     # a model from `bertcli finetune`
    python benchmarks/predict_throughput.py                       # trains a quick one first

The pipeline gets the same cleaned text and the same max length as bertcli, batch size 32. Every
row is timed the same way: libraries imported before the clock starts, model loading and
prediction inside it (what a `bertcli predict` run costs after start-up).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def load_reviews(n: int) -> tuple[list[str], list[int]]:
    with open(DATA / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows = rows[:n]  # any leading slice of the file is close to balanced (see its README)
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def run_row(spec: dict) -> dict:
    """One measurement, inside its own process."""
    # split("\n"), not splitlines(): reviews contain \x85 and \u2028, which are not line ends
    # for bertcli's reader either.
    texts = Path(spec["texts"]).read_text(encoding="utf-8").split("\n")[:-1]
    kind = spec["kind"]
    if kind == "pipeline":
        from transformers import pipeline

        from bertcli.data.load import clean_text

        meta = json.loads((Path(spec["model"]) / "bertcli.json").read_text())
        cleaned = [clean_text(t, meta.get("clean", [])) for t in texts]
        started = time.perf_counter()
        clf = pipeline("text-classification", model=spec["model"], device=-1)
        out = clf(cleaned, batch_size=32, truncation=True, max_length=meta["max_length"])
        seconds = time.perf_counter() - started
        labels = [o["label"] for o in out]
    else:
        from bertcli.predict import predict_records
        from bertcli.predictor import read_meta

        # Imports outside the clock, as for the pipeline; model loading inside it for both.
        # `from transformers import pipeline` loads transformers.modeling_utils (1.5 s here);
        # the PyTorch rows import it too, or they alone would pay it on the clock.
        if read_meta(spec["model"]).get("runtime") == "onnx":
            import bertcli.onnx_runtime
        else:
            import transformers.modeling_utils  # noqa: F401

            import bertcli.infer

            bertcli.infer.BF16_ENCODER_WEIGHTS = spec.get("bf16_weights", True)
        started = time.perf_counter()
        lines = list(
            predict_records(
                spec["texts"],
                spec["model"],
                fmt="text",
                precision=spec["precision"],
                compile=spec.get("compile", False),
            )
        )
        seconds = time.perf_counter() - started
        labels = [json.loads(line)["label"] for line in lines]
    return {
        "seconds": seconds,
        "labels": labels,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_loaded": "torch" in sys.modules,
    }


def measure(spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--row", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{spec['kind']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bertcli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bertcli", "--quiet", *args], check=True, env=ENV)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("-n", type=int, default=1000, help="test reviews to predict")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return

    from rich.console import Console
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    model = args.model
    if model is None:
        model = work / "imdb"
        bertcli(
            "finetune", "imdb", "--model", "minilm", "--train", str(DATA / "train.csv"),
            "--max-steps", "100", "--output-dir", str(model),
        )  # fmt: skip
    bertcli("export", "--model", str(model), "--format", "onnx", "--output", str(work / "onnx"))
    bertcli("export", "--model", str(model), "--format", "onnx", "--quantize", "int8",
            "--output", str(work / "int8"))  # fmt: skip
    # Static int8 calibrates on the model's training file (train.csv), never on these test texts.
    bertcli("export", "--model", str(model), "--format", "onnx", "--quantize", "int8-static",
            "--output", str(work / "int8-static"))  # fmt: skip
    texts, gold = load_reviews(args.n)
    source = work / "reviews.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    names = json.loads((model / "bertcli.json").read_text())["labels"]

    rows = [
        ("transformers.pipeline (fp32, batch 32)", {"kind": "pipeline", "model": str(model)}),
        ("bertcli PyTorch fp32", {"kind": "bertcli", "model": str(model), "precision": "no"}),
        (
            "bertcli PyTorch auto, autocast over fp32 weights",
            {"kind": "bertcli", "model": str(model), "precision": "auto", "bf16_weights": False},
        ),
        ("bertcli PyTorch auto", {"kind": "bertcli", "model": str(model), "precision": "auto"}),
        (
            "bertcli PyTorch auto --compile",
            {"kind": "bertcli", "model": str(model), "precision": "auto", "compile": True},
        ),
        ("bertcli ONNX fp32", {"kind": "bertcli", "model": str(work / "onnx"), "precision": "no"}),
        ("bertcli ONNX int8", {"kind": "bertcli", "model": str(work / "int8"), "precision": "no"}),
        (
            "bertcli ONNX int8-static",
            {"kind": "bertcli", "model": str(work / "int8-static"), "precision": "no"},
        ),
    ]
    results = {name: measure({**spec, "texts": str(source)}) for name, spec in rows}
    reference = results["bertcli PyTorch fp32"]["labels"]
    base = results[rows[0][0]]
    table = Table(title=f"Prediction on {len(texts)} IMDb test reviews, model {model}")
    for column in ("runtime", "texts/s", "vs pipeline", "peak MiB", "accuracy", "agreement"):
        table.add_column(column, justify="right")
    summary = {}
    for name, _ in rows:
        r = results[name]
        rate = len(texts) / r["seconds"]
        accuracy = sum(names.index(p) == g for p, g in zip(r["labels"], gold, strict=True))
        agree = sum(a == b for a, b in zip(r["labels"], reference, strict=True)) / len(texts)
        ratio = base["seconds"] / r["seconds"]
        table.add_row(
            name,
            f"{rate:.1f}",
            f"{ratio:.2f}x",
            f"{r['peak_mb']:.0f}",
            f"{accuracy / len(texts):.4f}",
            f"{agree:.2%}",
        )
        summary[name] = {
            "texts_per_s": rate,
            "ratio": ratio,
            "peak_mb": r["peak_mb"],
            "accuracy": accuracy / len(texts),
            "agreement_with_fp32": agree,
            "torch_loaded": r["torch_loaded"],
        }
    Console().print(table)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
