"""Streaming prediction over a file or stdin: records in, formatted output lines out, in order."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bertcli.data.readers import detect_format, iter_records
from bertcli.errors import DataError
from bertcli.jsonio import dumps


def format_line(
    extra: dict[str, Any], prediction: dict[str, Any], output_format: str = "jsonl"
) -> str:
    """One JSON output line; input fields named like an output field are kept as `input_<name>`.

    Only "jsonl" is formatted here: the tasks write their own text formats (`Task.text_row`)."""
    if output_format != "jsonl":
        raise ValueError(f"format_line writes JSON lines, not {output_format}")
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
    compile: bool = False,
) -> Iterator[str]:
    """Yield one output line per input record, batch by batch, so memory stays flat."""
    from bertcli.predictor import open_predictor
    from bertcli.tasks import InputRequest, output_formats

    if output_format not in output_formats():
        raise DataError(
            f"unknown output format {output_format!r} (use {', '.join(output_formats())})"
        )
    fmt = fmt or ("text" if str(source) == "-" else detect_format(source))
    records = iter_records(source, fmt)  # fails fast on a missing or empty file
    predictor = open_predictor(
        model_dir,
        precision=precision,
        batch_size=batch_size,
        threads=threads,
        long_inputs=long_inputs,
        compile=compile,
    )
    task = predictor.task
    if output_format not in task.output_formats:
        raise DataError(
            f"--format {output_format} does not apply to a {task.name} model "
            f"(use {' or '.join(task.output_formats)})"
        )
    passthrough: deque[dict[str, Any]] = deque()
    request = InputRequest(str(source), fmt, predictor.meta, text_column, pair_column)
    examples = task.read_inputs(records, request, passthrough)
    # JSON lines carry the input's other fields; the tasks' text formats (tsv, conll) do not.
    text = output_format != "jsonl"
    render = partial(task.text_row, output_format) if text else task.format
    for _, prediction in predictor.predict_stream(examples, render=render):
        extra = passthrough.popleft()
        yield prediction if text else format_line(extra, prediction)


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
    from bertcli.predictor import open_predictor

    predictor = open_predictor(
        model_dir,
        precision=precision,
        batch_size=batch_size,
        threads=threads,
        long_inputs={"stride": stride},
    )
    example = predictor.task.question_example(question, context, model_dir)
    ((_, prediction),) = list(predictor.predict_stream([example]))
    return format_line({}, prediction)
