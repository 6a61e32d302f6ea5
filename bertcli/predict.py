"""Streaming prediction over a file or stdin: records in, formatted output lines out, in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertcli.data.load import Example, clean_text, pick_column
from bertcli.data.readers import detect_format, iter_records
from bertcli.errors import DataError
from bertcli.jsonio import dumps

OUTPUT_FORMATS = ("jsonl", "tsv", "conll")
# Which output formats each task can write.
TASK_FORMATS = {"classification": ("jsonl", "tsv"), "tagging": ("jsonl", "conll"), "qa": ("jsonl",)}


def _qa_examples(
    records: Iterator[tuple[str, dict[str, Any]]], passthrough: deque[dict[str, Any]]
) -> Iterator[Any]:
    """Questions about contexts: JSON(L) records with "question" and "context" (any length)."""
    from bertcli.data.squad import QAExample

    for location, record in records:
        fields = {}
        for name in ("question", "context"):
            value = record.get(name)
            if not isinstance(value, str) or (name == "question" and not value.strip()):
                raise DataError(
                    f"{location}: field {name!r} is missing or not a text",
                    'each line needs {"question": "...", "context": "..."}',
                )
            fields[name] = value
        passthrough.append({k: v for k, v in record.items() if k not in fields})
        yield QAExample(
            str(record.get("id", "")), fields["question"], fields["context"], [], [], location
        )


def _examples(
    records: Iterator[tuple[str, dict[str, Any]]],
    text_column: str,
    pair_column: str | None,
    clean: list[str],
    passthrough: deque[dict[str, Any]],
    words: bool = False,
) -> Iterator[Example]:
    """Lazily map records to examples; the fields that pass through wait in `passthrough`.

    For tagging (`words`) a record's text is either a line of raw text, split into words by the
    documented pre-tokenizer, or a list of tokens; it is never cleaned, so offsets stay true.
    """
    from bertcli.data.tagging import text_example, token_example

    columns: tuple[str | None, str | None] | None = None
    for location, record in records:
        if columns is None:
            text_col = pick_column(text_column, record, location, "data.text_column")
            pair_col = pick_column(pair_column, record, location, "data.pair_column")
            columns = (text_col, pair_col)
        text_col, pair_col = columns
        text, pair = record.get(text_col), record.get(pair_col) if pair_col else None
        if text is None:
            raise DataError(f"{location}: field {text_col!r} is missing or empty")
        passthrough.append({k: v for k, v in record.items() if k not in (text_col, pair_col)})
        if words:
            yield (
                token_example(text, location, text_col)  # type: ignore[arg-type]
                if isinstance(text, list)
                else text_example(str(text), location)
            )
            continue
        yield Example(
            clean_text(str(text), clean),
            clean_text(str(pair), clean) if pair is not None else None,
            None,
            location,
        )


def format_line(extra: dict[str, Any], prediction: dict[str, Any], output_format: str) -> str:
    """One output line; input fields named like an output field are kept as `input_<name>`."""
    if output_format == "tsv":
        return f"{prediction['label']}\t{prediction['score']:.6f}\t{prediction['windows']}\n"
    kept = {(f"input_{k}" if k in prediction else k): v for k, v in extra.items()}
    return dumps({**kept, **prediction}, ensure_ascii=False) + "\n"


def predict_records(
    source: str | Path,
    model_dir: str | Path,
    *,
    fmt: str | None = None,
    text_column: str | None = None,
    pair_column: str | None = None,
    output_format: str = "jsonl",
    batch_size: int | None = None,
    precision: str = "auto",
    threads: int | None = None,
    long_inputs: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Yield one output line per input record, batch by batch, so memory stays flat."""
    from bertcli.predictor import input_columns, open_predictor

    if output_format not in OUTPUT_FORMATS:
        raise DataError(
            f"unknown output format {output_format!r} (use {', '.join(OUTPUT_FORMATS)})"
        )
    fmt = fmt or ("text" if str(source) == "-" else detect_format(source))
    records = iter_records(source, fmt)  # fails fast on a missing or empty file
    predictor = open_predictor(
        model_dir,
        precision=precision,
        batch_size=batch_size,
        threads=threads,
        long_inputs=long_inputs,
    )
    task = predictor.task
    allowed = TASK_FORMATS[task.name]
    if output_format not in allowed:
        raise DataError(
            f"--format {output_format} does not apply to a {task.name} model "
            f"(use {' or '.join(allowed)})"
        )
    passthrough: deque[dict[str, Any]] = deque()
    if task.name == "qa":
        if fmt not in ("jsonl", "json"):
            raise DataError(
                f'{source}: a QA model reads JSONL lines of {{"question", "context"}}',
                "or ask one question with --question TEXT --context-file FILE",
            )
        examples: Iterator[Any] = _qa_examples(records, passthrough)
    else:
        if fmt == "text":
            if pair_column:
                raise DataError("--pair-column needs CSV, TSV, JSON(L) or Parquet input")
            text_col, pair_col = "text", None
        else:
            columns = input_columns(predictor.meta, text_column, pair_column)
            text_col, pair_col = columns.text_column, columns.pair_column
            if task.name == "tagging" and not text_column:
                text_col = f"{text_col}|tokens|text"  # token lists or raw text lines
        words = task.name == "tagging"
        examples = _examples(records, text_col, pair_col, predictor.clean, passthrough, words)
    conll = output_format == "conll"
    render = task.conll if conll else task.format  # type: ignore[attr-defined]
    for _, prediction in predictor.predict_stream(examples, render=render):
        extra = passthrough.popleft()
        yield prediction if conll else format_line(extra, prediction, output_format)


def answer_question(
    model_dir: str | Path,
    question: str,
    context: str,
    *,
    batch_size: int | None = None,
    precision: str = "auto",
    threads: int | None = None,
    stride: int | None = None,
) -> str:
    """One question about one document of any length: the answer's JSON line."""
    from bertcli.data.squad import QAExample
    from bertcli.predictor import open_predictor

    predictor = open_predictor(
        model_dir,
        precision=precision,
        batch_size=batch_size,
        threads=threads,
        long_inputs={"stride": stride},
    )
    if predictor.task.name != "qa":
        raise DataError(
            f"{model_dir}: --question needs a QA model, this one does {predictor.task.name}"
        )
    if not question.strip():
        raise DataError("--question is empty")
    example = QAExample("", question, context, [], [], "--question")
    ((_, prediction),) = list(predictor.predict_stream([example]))
    return format_line({}, prediction, "jsonl")
