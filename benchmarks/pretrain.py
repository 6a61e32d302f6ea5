"""Does further masked-LM pre-training on IMDb text help IMDb fine-tuning? (issue 14)

    python benchmarks/pretrain.py [--data ../shared/data/imdb] [--seeds 1 2 3]

1. `bertcli pretrain imdb --model minilm` on train.csv + train_extra.csv (labels unused);
2. `bertcli finetune imdb` from the embedded model and from the pre-trained folder, same budget,
   several seeds, each scored on test.csv;
prints one table: test accuracy mean +- std with and without pre-training, the pre-training
throughput (tokens/s) and its held-out masked-token accuracy and perplexity. First, a side-by-side
of one training step with bertcli's sparse masked scoring (only the ~15% masked positions go
through the vocabulary projection) against scoring every position, as transformers' masked-LM
models do when given labels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def bertcli(*args: str) -> float:
    """Run one bertcli command (offline), return its wall time in seconds."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bertcli", "-q", *args], check=True, env=env)
    return time.perf_counter() - start


def metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def step_times(texts: list[str], length: int, batch: int = 32, steps: int = 4) -> dict[str, float]:
    """Seconds per training step (forward + backward) of the embedded model, sparse vs full."""
    import torch

    from bertcli.hub import resolve_model
    from bertcli.modeling.model import build_model
    from bertcli.tasks.masked_lm import Document, MaskedLMTask

    torch.manual_seed(0)
    model, tokenizer = build_model(resolve_model("minilm").path, [], task="masked_lm")
    windows = MaskedLMTask(length).windows(tokenizer, [Document(t) for t in texts])
    ids = torch.tensor(windows.input_ids[:batch])
    labels = torch.tensor(windows.labels[:batch])
    mask = torch.ones_like(ids)
    times = {}
    for name in ("full", "sparse"):
        for step in range(steps + 1):  # the first step warms up
            start = time.perf_counter()
            if name == "sparse":
                loss, _ = model(ids, mask, labels=labels)
            else:
                logits = model.hf(input_ids=ids, attention_mask=mask).logits
                loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels)
            loss.backward()
            model.zero_grad()
            if step:
                times[name] = times.get(name, 0.0) + (time.perf_counter() - start) / steps
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imdb"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-pretrain"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pretrain-epochs", type=float, default=1.0)
    parser.add_argument("--pretrain-length", type=int, default=128)
    parser.add_argument("--finetune-steps", type=int, default=100)
    parser.add_argument("--finetune-length", type=int, default=128)
    args = parser.parse_args()
    data, out = args.data, args.out
    import csv

    with (data / "train.csv").open(encoding="utf-8") as f:
        texts = [row["text"] for _, row in zip(range(300), csv.DictReader(f), strict=False)]
    times = step_times(texts, args.pretrain_length)
    print(f"| masked-LM step, 32 x {args.pretrain_length} tokens | full scoring | sparse | ratio |")
    print("|---|---|---|---|")
    print(
        f"| seconds per step | {times['full']:.3f} | {times['sparse']:.3f} | "
        f"{times['full'] / times['sparse']:.2f}x |",
        flush=True,
    )
    mlm = out / "imdb-mlm"
    common = ["--train", str(data / "train.csv")]
    pre_wall = bertcli(
        "pretrain", "imdb", "--model", "minilm", *common, "--text", str(data / "train_extra.csv"),
        "--epochs", str(args.pretrain_epochs), "--max-length", str(args.pretrain_length),
        "--batch-size", "32", "--lr", "1e-4", "-o", str(mlm), "--overwrite",
    )  # fmt: skip
    pre = metrics(mlm)
    tokens_per_s = pre["train_samples_per_second"] * args.pretrain_length
    accuracy: dict[str, list[float]] = {"minilm": [], "minilm + IMDb MLM": []}
    for seed in args.seeds:
        for label, model in (("minilm", "minilm"), ("minilm + IMDb MLM", str(mlm))):
            run = out / f"ft-{'mlm' if model != 'minilm' else 'base'}-{seed}"
            bertcli(
                "finetune", "imdb", "--model", model, *common, "--test", str(data / "test.csv"),
                "--max-steps", str(args.finetune_steps), "--max-length",
                str(args.finetune_length), "--seed", str(seed), "-o", str(run), "--overwrite",
            )  # fmt: skip
            accuracy[label].append(metrics(run)["test"]["accuracy"])
            print(f"seed {seed} {label}: test accuracy {accuracy[label][-1]:.4f}", flush=True)

    print()
    held_out = pre["validation"]
    print(
        f"pre-training: {pre['steps']} steps x 32 windows x {args.pretrain_length} tokens, "
        f"{pre_wall / 60:.1f} min wall, {tokens_per_s:,.0f} tokens/s; held-out masked accuracy "
        f"{held_out['masked_accuracy']:.4f}, perplexity {held_out['perplexity']:.2f}"
    )
    print(
        f"fine-tuning: {args.finetune_steps} steps x 16 x {args.finetune_length} tokens, "
        f"seeds {' '.join(map(str, args.seeds))}, scored on {data / 'test.csv'}"
    )
    print()
    print("| start | test accuracy, mean +- std | per seed |")
    print("|---|---|---|")
    for label, values in accuracy.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        seeds = " / ".join(f"{v:.4f}" for v in values)
        print(f"| {label} | {statistics.mean(values):.4f} +- {std:.4f} | {seeds} |")
    gain = statistics.mean(accuracy["minilm + IMDb MLM"]) - statistics.mean(accuracy["minilm"])
    print(f"\ngain: {gain:+.4f}")


if __name__ == "__main__":
    main()
