"""NER on CoNLL-2003: linear, CRF and GlobalPointer heads on the embedded MiniLM, same budget.

Every head fine-tunes on `conll2003/train.txt`. The validation file (eng.testa) is split by
document: even documents pick the best checkpoint, odd documents are a held-out test set that
neither training nor checkpoint selection ever sees. Reported per head: entity F1 (held-out and
validation), training samples/s, prediction sentences/s (`bertcli predict` over the held-out
sentences) and the cost of decoding (argmax, Viterbi, or reading span scores above 0).

    python benchmarks/ner.py                  # 3 x about 8 min on 2 CPU cores
    python benchmarks/ner.py --epochs 0.2     # quick look
    python benchmarks/ner.py --heads linear,globalpointer
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

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def split_documents(src: Path, out: Path) -> tuple[Path, Path]:
    """Even documents -> dev.txt (checkpoint selection), odd -> heldout.txt (scored once)."""
    docs: list[list[str]] = []
    for line in src.read_text(encoding="utf-8").splitlines():
        if line.startswith("-DOCSTART-"):
            docs.append([])
        if docs:
            docs[-1].append(line)
    paths = (out / "dev.txt", out / "heldout.txt")
    for parity, path in enumerate(paths):
        lines = [line for i, doc in enumerate(docs) if i % 2 == parity for line in doc]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def train(args: argparse.Namespace, head: str, dev: Path, heldout: Path, out: Path) -> dict:
    command = [
        sys.executable, "-m", "bertcli", "--quiet", "finetune", "conll2003",
        "--model", "minilm", "--train", str(args.data / "train.txt"),
        "--validation", str(dev), "--test", str(heldout), "--output-dir", str(out),
        "--epochs", str(args.epochs),
        "--head", head,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, env=ENV)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


def predict_speed(model: Path, heldout: Path, work: Path) -> tuple[float, int]:
    """Sentences/s of `bertcli predict` on the held-out sentences given as token JSONL."""
    from bertcli.data.conll import read_conll

    sentences = read_conll(heldout)
    source = work / "heldout.jsonl"
    source.write_text("".join(json.dumps({"tokens": s.tokens}) + "\n" for s in sentences))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bertcli", "predict", "--model", str(model), str(source)],
        check=True,
        env=ENV,
        stdout=subprocess.DEVNULL,
    )
    return len(sentences) / (time.perf_counter() - started), len(sentences)


def decode_cost(model: Path, heldout: Path) -> tuple[float, float]:
    """Milliseconds per 1,000 sentences to turn the head's scores into entities: argmax, and
    the head's own decoder (Viterbi for a CRF, spans above 0 for GlobalPointer)."""
    from bertcli.data.conll import read_conll
    from bertcli.data.load import Example
    from bertcli.data.tagging import join_words
    from bertcli.predictor import open_predictor

    predictor = open_predictor(model)
    examples = []
    for s in read_conll(heldout):
        text, spans = join_words(s.tokens)
        examples.append(Example(text, words=s.tokens, spans=spans))
    windows = predictor.task.windows(predictor.tokenizer, examples)
    logits = predictor.window_logits(windows)
    task = predictor.task
    crf, head, timings = task.crf, task.head, []
    for scores in (None, crf):
        task.crf = scores
        started = time.perf_counter()
        task.predict(logits, windows, examples)
        timings.append((time.perf_counter() - started) * 1000 / len(examples) * 1000)
        if head == "globalpointer":  # span scores have no argmax decoding
            return timings[0], timings[0]
    task.crf = crf
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--heads", default="linear,crf,globalpointer", help="comma-separated")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    work = Path(tempfile.mkdtemp(prefix="bench-ner-"))
    dev, heldout = split_documents(args.data / "valid.txt", work)
    rows = {}
    heads = args.heads.split(",")
    for head in heads:
        out = work / head
        metrics = train(args, head, dev, heldout, out)
        speed, n_sentences = predict_speed(out, heldout, work)
        argmax_ms, viterbi_ms = decode_cost(out, heldout)
        rows[head] = {
            "heldout_f1": metrics["test"]["f1_conlleval"],
            "heldout_f1_strict": metrics["test"]["f1_strict"],
            "dev_f1": metrics["validation"]["f1_conlleval"],
            "per_type_f1": {k: v["f1"] for k, v in metrics["test"]["per_type"].items()},
            "train_samples_per_s": metrics["train_samples_per_second"],
            "wall_minutes": metrics["wall_seconds"] / 60,
            "predict_sentences_per_s": speed,
            "decode_ms_per_1k": argmax_ms if head == "linear" else viterbi_ms,
            "argmax_ms_per_1k": argmax_ms,
            "steps": metrics["steps"],
        }

    table = Table(
        title=f"CoNLL-2003 NER, embedded MiniLM, {args.epochs:g} epochs each; F1 on "
        f"{n_sentences} held-out eng.testa sentences"
    )
    others = [h for h in heads if h != heads[0]]
    for column in ("", *heads, *(f"{h} / {heads[0]}" for h in others)):
        table.add_column(column, justify="right")
    lines = (
        ("entity F1, conlleval (held-out)", "heldout_f1", "{:.4f}"),
        ("entity F1, strict IOB2 (held-out)", "heldout_f1_strict", "{:.4f}"),
        ("entity F1, conlleval (dev)", "dev_f1", "{:.4f}"),
        ("train samples/s", "train_samples_per_s", "{:.1f}"),
        ("finetune wall, min", "wall_minutes", "{:.1f}"),
        ("predict sentences/s", "predict_sentences_per_s", "{:.1f}"),
        ("decode ms / 1k sentences", "decode_ms_per_1k", "{:.1f}"),
    )
    for label, key, fmt in lines:
        base = rows[heads[0]][key]
        ratios = [f"{rows[h][key] / base:.2f}x" if base else "-" for h in others]
        table.add_row(label, *(fmt.format(rows[h][key]) for h in heads), *ratios)
    Console().print(table)
    print(json.dumps({"n_heldout": n_sentences, "epochs": args.epochs, "rows": rows}))


if __name__ == "__main__":
    main()
