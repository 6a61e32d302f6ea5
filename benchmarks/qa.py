"""Extractive QA with the embedded MiniLM: EM/F1, throughput, doc_stride and long documents.

Trains `bertcli finetune squad` on `squad/train.json` (SQuADShifts New-Wiki). The dev file (XQuAD
English = 1,190 official SQuAD v1.1 dev questions) is split by article: even articles pick the
best checkpoint, odd articles are a held-out set scored once. Then, on the held-out questions:

* prediction throughput of `bertcli predict` (questions/s);
* doc_stride: every paragraph of an article joined into one long context (answers shifted), so
  each question needs several windows; EM/F1 and questions/s for several strides;
* long documents: each question's paragraph put at the end of a ~3,000-word context built from
  other articles; how often the answer is still found (EM), vs. the paragraph alone.

    python benchmarks/qa.py                         # about 25 min on 2 CPU cores
    python benchmarks/qa.py --epochs 0.1 --long 20  # quick look
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

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def bertcli(*args: str, stdout: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bertcli", "--quiet", *args]
    return subprocess.run(command, check=True, env=ENV, stdout=stdout, text=True)


def split_articles(src: Path, out: Path) -> tuple[Path, Path]:
    data = json.loads(src.read_text(encoding="utf-8"))
    paths = (out / "dev.json", out / "heldout.json")
    for parity, path in enumerate(paths):
        articles = [a for i, a in enumerate(data["data"]) if i % 2 == parity]
        path.write_text(json.dumps({"version": data.get("version"), "data": articles}))
    return paths


def questions(path: Path) -> list[dict]:
    """Flat questions: id, question, context, answers (texts), starts."""
    rows = []
    for article in json.loads(path.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                rows.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "context": paragraph["context"],
                        "answers": [a["text"] for a in qa["answers"]],
                        "starts": [a["answer_start"] for a in qa["answers"]],
                        "title": article.get("title", ""),
                    }
                )
    return rows


def joined_articles(path: Path, out: Path) -> Path:
    """Each article's paragraphs as one context; answer offsets shifted to match."""
    records = []
    for article in json.loads(path.read_text())["data"]:
        context, shift = "", []
        for paragraph in article["paragraphs"]:
            if context:
                context += "\n\n"
            shift.append(len(context))
            context += paragraph["context"]
        for offset, paragraph in zip(shift, article["paragraphs"], strict=True):
            for qa in paragraph["qas"]:
                answers = qa["answers"]
                records.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "context": context,
                        "answers": {
                            "text": [a["text"] for a in answers],
                            "answer_start": [a["answer_start"] + offset for a in answers],
                        },
                    }
                )
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def score(model: Path, data: Path, *extra: str) -> tuple[dict, float]:
    started = time.perf_counter()
    proc = bertcli(
        "eval", "--model", str(model), "--data", str(data), *extra, stdout=subprocess.PIPE
    )
    return json.loads(proc.stdout)[str(data)], time.perf_counter() - started


def predict_speed(model: Path, rows: list[dict], work: Path) -> float:
    source = work / "heldout_questions.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": r["id"], "question": r["question"], "context": r["context"]}) + "\n"
            for r in rows
        )
    )
    started = time.perf_counter()
    bertcli("predict", "--model", str(model), str(source), stdout=subprocess.DEVNULL)
    return len(rows) / (time.perf_counter() - started)


def long_documents(model: Path, rows: list[dict], n: int, words: int) -> dict:
    """EM of each question with its paragraph alone vs. at the end of a `words`-word document,
    and the share of wrong answers at the end taken from the filler before the paragraph: the
    part of the gap a better choice of window could close (the rest is misread paragraphs)."""
    from bertcli.data.squad import QAExample
    from bertcli.metrics.squad import exact_score
    from bertcli.predictor import open_predictor

    predictor = open_predictor(model)
    picked = rows[:: max(1, len(rows) // n)][:n]
    short, long, lengths, offsets = [], [], [], []
    for row in picked:
        filler, pos = [], 0
        others = [r["context"] for r in rows if r["title"] != row["title"]]
        while sum(len(p.split()) for p in filler) < words - len(row["context"].split()):
            filler.append(others[pos % len(others)])
            pos += 7  # spread over articles, skipping neighbours
        document = "\n\n".join([*dict.fromkeys(filler), row["context"]])
        lengths.append(len(document.split()))
        offsets.append(len(document) - len(row["context"]))
        short.append(QAExample(row["id"], row["question"], row["context"], [], [], row["id"]))
        long.append(QAExample(row["id"], row["question"], document, [], [], row["id"]))
    out = {}
    for name, examples in (("alone", short), ("end_of_document", long)):
        answers = predictor.predict_examples(examples)
        out[name] = sum(
            exact_score(a.text, r["answers"]) for a, r in zip(answers, picked, strict=True)
        ) / len(picked)
        if name == "end_of_document":
            for a, e in zip(answers, examples, strict=True):
                assert e.context[a.start : a.end] == a.text  # offsets are exact slices
            out["from_filler"] = sum(
                not exact_score(a.text, r["answers"]) and a.start < offset
                for a, r, offset in zip(answers, picked, offsets, strict=True)
            ) / len(picked)
    out["questions"] = len(picked)
    out["mean_words"] = sum(lengths) / len(lengths)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument(
        "--negatives", type=float, default=None, help="qa.negatives (default: the recipe's)"
    )
    parser.add_argument("--strides", default="32,64,128,192")
    parser.add_argument("--long", type=int, default=100, help="questions in the long-doc test")
    parser.add_argument("--words", type=int, default=3000)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="bench-qa-"))
    dev, heldout = split_articles(args.data / "dev.json", work)
    model = work / "squad"
    started = time.perf_counter()
    bertcli(
        "finetune", "squad", "--model", "minilm", "--train", str(args.data / "train.json"),
        "--validation", str(dev), "--test", str(heldout), "--output-dir", str(model),
        "--epochs", str(args.epochs),
        *(["--set", f"qa.negatives={args.negatives}"] if args.negatives is not None else []),
    )  # fmt: skip
    wall = time.perf_counter() - started
    metrics = json.loads((model / "metrics.json").read_text())
    rows = questions(heldout)
    speed = predict_speed(model, rows, work)
    joined = joined_articles(heldout, work / "heldout_joined.jsonl")
    strides = []
    for stride in [int(s) for s in args.strides.split(",")]:
        scores, seconds = score(model, joined, "--stride", str(stride))
        strides.append({"stride": stride, **scores, "questions_per_s": len(rows) / seconds})
    long = long_documents(model, rows, args.long, args.words)

    console = Console()
    negatives = json.loads((model / "bertcli.json").read_text())["qa"]["negatives"]
    table = Table(
        title=f"SQuAD v1.1 QA, embedded MiniLM, {args.epochs:g} epochs, negatives {negatives:g}"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row(
        "held-out EM / F1", f"{metrics['test']['exact']:.2f} / {metrics['test']['f1']:.2f}"
    )
    table.add_row(
        "dev EM / F1", f"{metrics['validation']['exact']:.2f} / {metrics['validation']['f1']:.2f}"
    )
    table.add_row("held-out questions", str(metrics["test"]["num_examples"]))
    table.add_row("train samples/s (windows)", f"{metrics['train_samples_per_second']:.1f}")
    table.add_row("finetune wall, min", f"{wall / 60:.1f}")
    table.add_row("predict questions/s", f"{speed:.1f}")
    console.print(table)
    strides_table = Table(title="doc_stride on whole-article contexts (held-out questions)")
    for column in ("stride", "EM", "F1", "questions/s"):
        strides_table.add_column(column, justify="right")
    for s in strides:
        strides_table.add_row(
            str(s["stride"]), f"{s['exact']:.2f}", f"{s['f1']:.2f}", f"{s['questions_per_s']:.1f}"
        )
    console.print(strides_table)
    console.print(
        f"long documents ({long['questions']} questions, mean {long['mean_words']:.0f} words): "
        f"EM alone {long['alone']:.3f}, at the end of the document {long['end_of_document']:.3f}"
    )
    print(json.dumps({"metrics": metrics, "predict_qps": speed, "strides": strides, "long": long}))


if __name__ == "__main__":
    main()
