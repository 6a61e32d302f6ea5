"""Documents, not paragraphs: long IMDb reviews and long-context QA, per-window vs whole-document.

Classification: the embedded MiniLM fine-tuned on IMDb for the same budget (steps x 16 windows x
256 tokens) with head, head+tail, chunk (scored by mean and by max over all of a review's windows)
and chunk + attention pooling (`--aggregate attention`: the review is one example, its windows
weighted by learned attention). Scored on the reviews longer than 512 wordpieces of test.csv and
train_extra.csv (508; no run trains on train_extra.csv).

QA: `bertcli finetune squad` for the same number of steps, with
  * per-window: each window its own softmax (bertcli before issue 13; the squad recipe);
  * per-window + joined: the same, but each `qa.negatives` question is trained against its own
    paragraph joined to another one (what global norm trains on), to tell data from loss apart;
  * global norm: one softmax over all windows of a question (`qa.global_norm: true`);
  * global norm + ranker (`qa.ranker: true`);
  * both again as "x4": each negative's paragraph joined to 1-4 others (`qa.join_contexts: 4`), so
    training sees answers deep inside documents of several windows.
Each is scored on the held-out paragraphs (EM/F1), on whole articles (a question asked about all
of its article's paragraphs joined) and on the "paragraph at the end of ~3,000 words" set (EM,
against the same questions asked about their paragraph alone). See benchmarks/qa.py for the data.

    python benchmarks/long_docs.py                               # about 3 hours on 2 CPU cores
    python benchmarks/long_docs.py --parts qa --qa-steps 50 --long 10   # quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import long_inputs
import qa

STRATEGIES = [
    # name, training flags, aggregations scored
    ("head", ["--long-inputs", "head"], [None]),
    ("head+tail", ["--long-inputs", "head+tail"], [None]),
    ("chunk", ["--long-inputs", "chunk", "--aggregate", "mean"], ["mean", "max"]),
    ("attention", ["--long-inputs", "chunk", "--aggregate", "attention"], [None]),
]
QA_RUNS = [
    ("per-window", {}),
    ("per-window + joined", {"qa.global_norm": "false", "qa.negatives": "0.5", "join": True}),
    ("global norm", {"qa.global_norm": "true"}),
    ("global norm + ranker", {"qa.global_norm": "true", "qa.ranker": "true"}),
    ("global norm x4", {"qa.global_norm": "true", "qa.join_contexts": "4"}),
    ("global norm + ranker x4",
     {"qa.global_norm": "true", "qa.ranker": "true", "qa.join_contexts": "4"}),
]  # fmt: skip


def imdb(args: argparse.Namespace, work: Path) -> list[dict]:
    test_long, n_long = long_reviews(args, work)
    rows = []
    for name, flags, aggregations in STRATEGIES:
        if args.only and name not in args.only:
            continue
        run = work / name.replace("+", "_")
        started = time.perf_counter()
        long_inputs.bertcli(
            "finetune", "imdb", "--model", "minilm", "--train", str(args.imdb / "train.csv"),
            "--max-steps", str(args.imdb_steps), "--batch-size", "16", "--max-length", "256",
            "--stride", "64", "--max-windows", "4", *flags, "--output-dir", str(run),
            "--set", f"train.save_steps={args.imdb_steps}", "--set", f"train.seed={args.seed}",
        )  # fmt: skip
        wall = time.perf_counter() - started
        metrics = json.loads((run / "metrics.json").read_text())
        for aggregate in aggregations:
            extra = ["--aggregate", aggregate] if aggregate else []
            if name in ("chunk", "attention"):
                extra += ["--max-windows", "0"]  # score every window of every review
            started = time.perf_counter()
            scores = json.loads(
                long_inputs.bertcli(
                    "eval", "--model", str(run), "--data", str(test_long), *extra
                ).stdout
            )[str(test_long)]
            rows.append(
                {
                    "strategy": f"{name} {aggregate}" if aggregate else name,
                    "long_accuracy": scores["accuracy"],
                    "reviews": n_long,
                    "train_windows": metrics["train_samples"],
                    "train_min": round(wall / 60, 1),
                    "predict_reviews_per_s": n_long / (time.perf_counter() - started),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def long_reviews(args: argparse.Namespace, work: Path) -> tuple[Path, int]:
    """The reviews > 512 wordpieces of test.csv and, unless --test-samples limits the test,
    of train_extra.csv (no run trains on it): 508 reviews instead of 230, since one seed's
    accuracy on 230 moved by up to 5 points between seeds."""
    import csv

    sources = ["test.csv"] + ([] if args.test_samples else ["train_extra.csv"])
    rows: list[dict] = []
    for name in sources:
        folder = work / name.removesuffix(".csv")
        folder.mkdir()
        _, path, _, _ = long_inputs.split_by_length(args.imdb / name, folder, args.test_samples)
        with open(path, newline="", encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    out = work / "test_long.csv"
    long_inputs.write_reviews(out, rows)
    return out, len(rows)


def squad(args: argparse.Namespace, work: Path) -> list[dict]:
    dev, heldout = qa.split_articles(args.squad / "dev.json", work)
    questions = qa.questions(heldout)
    joined = qa.joined_articles(heldout, work / "heldout_joined.jsonl")
    rows = []
    for name, settings in QA_RUNS:
        if args.only and name not in args.only:
            continue
        settings = dict(settings)
        if settings.pop("join", False):
            # Per-window training on the joined examples: global_norm's data, per-window loss.
            train = joined_training(args.squad / "train.json", work / "train_joined.json")
            settings["qa.negatives"] = "0"
        else:
            train = args.squad / "train.json"
        run = work / name.replace(" ", "_").replace("+", "and")
        started = time.perf_counter()
        qa.bertcli(
            "finetune", "squad", "--model", "minilm", "--train", str(train),
            "--validation", str(dev), "--test", str(heldout), "--output-dir", str(run),
            "--max-steps", str(args.qa_steps), "--set", f"train.save_steps={args.qa_steps}",
            "--set", f"train.seed={args.seed}",
            *[f for key, value in settings.items() for f in ("--set", f"{key}={value}")],
        )  # fmt: skip
        wall = time.perf_counter() - started
        metrics = json.loads((run / "metrics.json").read_text())
        article, _ = qa.score(run, joined)
        long = qa.long_documents(run, questions, args.long or len(questions), args.words)
        rows.append(
            {
                "run": name,
                "paragraph_em": metrics["test"]["exact"],
                "paragraph_f1": metrics["test"]["f1"],
                "article_em": article["exact"],
                "article_f1": article["f1"],
                "long_em_alone": long["alone"],
                "long_em_end": long["end_of_document"],
                "long_from_filler": long["from_filler"],
                "long_questions": long["questions"],
                "long_words": long["mean_words"],
                "train_windows": metrics["train_samples"],
                "train_min": round(wall / 60, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def joined_training(src: Path, out: Path) -> Path:
    """squad/train.json plus global norm's joined questions (the same seed and fraction), as
    one SQuAD file: what `qa.global_norm` trains on, for a per-window run."""
    from bertcli.data.squad import read_squad, with_negatives

    examples = read_squad(src, "error").examples
    records = [
        {
            "id": e.id,
            "question": e.question,
            "context": e.context,
            "answers": {"text": e.answers, "answer_start": e.answer_starts},
        }
        for e in with_negatives(examples, 0.5, 42, join=1)
    ]
    out = out.with_suffix(".jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="imdb,qa")
    parser.add_argument("--imdb", type=Path, default=long_inputs.DATA)
    parser.add_argument("--squad", type=Path, default=qa.DATA)
    parser.add_argument("--imdb-steps", type=int, default=150)
    parser.add_argument("--qa-steps", type=int, default=600)
    parser.add_argument("--test-samples", type=int, default=None)
    parser.add_argument(
        "--long", type=int, default=0,
        help="questions in the long-doc set (0: all 578; 100 measured +-5 EM of noise)",
    )  # fmt: skip
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42, help="train.seed of every run")
    parser.add_argument(
        "--only", type=lambda text: text.split(","), default=None,
        help="comma-separated strategies / QA runs to run (default: all)",
    )  # fmt: skip
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="bench-long-docs-"))
    console = Console()
    parts = args.parts.split(",")
    result: dict = {}
    if "imdb" in parts:
        result["imdb"] = imdb(args, work)
        table = Table(
            title=f"IMDb reviews > 512 wordpieces ({result['imdb'][0]['reviews']}), "
            f"{args.imdb_steps} steps x 16 windows x 256 tokens, seed {args.seed}"
        )
        for column in ("strategy", "accuracy", "train windows", "train min", "predict rev/s"):
            table.add_column(column, justify="right")
        for r in result["imdb"]:
            table.add_row(
                r["strategy"], f"{r['long_accuracy']:.4f}", str(r["train_windows"]),
                f"{r['train_min']:.1f}", f"{r['predict_reviews_per_s']:.1f}",
            )  # fmt: skip
        console.print(table)
    if "qa" in parts:
        result["qa"] = squad(args, work)
        table = Table(
            title=f"SQuAD on documents, MiniLM, {args.qa_steps} steps x 16 windows, "
            f"seed {args.seed}"
        )
        for column in (
            "run", "paragraph EM / F1", "whole-article EM / F1", "long doc EM (alone / end)",
            "gap closed", "end: answer from filler", "train windows", "train min",
        ):  # fmt: skip
            table.add_column(column, justify="right")
        base = result["qa"][0]  # the first run listed is the baseline of "gap closed"
        base_gap = base["long_em_alone"] - base["long_em_end"]
        for r in result["qa"]:
            closed = (r["long_em_end"] - base["long_em_end"]) / base_gap if base_gap else 0.0
            table.add_row(
                r["run"],
                f"{r['paragraph_em']:.2f} / {r['paragraph_f1']:.2f}",
                f"{r['article_em']:.2f} / {r['article_f1']:.2f}",
                f"{r['long_em_alone']:.2f} / {r['long_em_end']:.2f}",
                f"{closed:.0%}",
                f"{r['long_from_filler']:.1%}",
                str(r["train_windows"]),
                f"{r['train_min']:.1f}",
            )
        console.print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
