"""`bertcli predict`: stream predictions for a file or stdin as JSON lines (or TSV) on stdout."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import report_errors
from bertcli.cli.options import (
    AggregateOpt,
    BatchSizeOpt,
    LongInputsOpt,
    MaxWindowsOpt,
    Precision,
    PrecisionOpt,
    StrideOpt,
    long_input_settings,
)


def _last_run_model() -> str:
    from bertcli.console import info
    from bertcli.last_run import last_run

    folder = last_run()
    info(f"using the last finished run: {folder} (pass --model to choose another)")
    return str(folder)


class OutputFormat(str, Enum):
    jsonl = "jsonl"
    tsv = "tsv"
    conll = "conll"


class InputFormat(str, Enum):
    text = "text"
    csv = "csv"
    tsv = "tsv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"


@report_errors
def predict(
    source: Annotated[
        str | None,
        typer.Argument(
            help="Input file, or '-' for stdin (the default when stdin is a pipe). "
            "Plain text: one example per line."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model directory written by `bertcli finetune` or `bertcli export` "
            "(default: the last run `bertcli finetune` finished).",
        ),
    ] = None,
    question: Annotated[
        str | None,
        typer.Option(help="QA: one question about --context-file (instead of an input file)."),
    ] = None,
    context_file: Annotated[
        Path | None,
        typer.Option(help="QA: the document --question asks about; any length (UTF-8 text)."),
    ] = None,
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--input-format", help="Default: from the file suffix; stdin is text."),
    ] = None,
    text_column: Annotated[str | None, typer.Option(help="Text column of CSV/TSV/JSONL.")] = None,
    pair_column: Annotated[str | None, typer.Option(help="Second text of a pair.")] = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="jsonl (all tasks); tsv (classification: label, score, windows); "
            "conll (tagging: word<TAB>tag lines, a blank line after each input).",
        ),
    ] = OutputFormat.jsonl,
    batch_size: BatchSizeOpt = None,
    long_inputs: LongInputsOpt = None,
    aggregate: AggregateOpt = None,
    stride: StrideOpt = None,
    max_windows: MaxWindowsOpt = None,
    precision: PrecisionOpt = Precision.auto,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads for PyTorch or ONNX Runtime.")
    ] = None,
    compile_model: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the PyTorch model: about 20 s of compiling on a 2-core CPU, then "
            "1.2x faster; pays off from a few thousand inputs (needs a C++ compiler on CPUs).",
        ),
    ] = False,
) -> None:
    """Predict for new inputs, streamed in input order, one output per input.

    Classification: {"label", "score", "scores", "windows"} per line (or --format tsv).
    Tagging: {"entities": [{"type", "text", "start", "end", "score"}]}, offsets into the line.
    Raw text is split into words by a regex (see README); JSONL may give {"tokens": [...]}.
    QA: JSONL {"question", "context"} lines, or --question TEXT --context-file FILE.
    """
    from bertcli.errors import DataError
    from bertcli.predict import answer_question, predict_records

    model = model or _last_run_model()
    if (question is None) != (context_file is None):
        raise DataError("--question and --context-file go together")
    if question is not None and context_file is not None:
        if source is not None:
            raise DataError("give either an input file or --question/--context-file, not both")
        try:
            context = context_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{context_file}: cannot read context ({exc})") from None
        line = answer_question(
            model, question, context, batch_size=batch_size, precision=precision.value,
            threads=threads, stride=stride,
        )  # fmt: skip
        sys.stdout.write(line)
        return
    if source is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise DataError(
                "missing input: pass a file, '-' for stdin, or --question/--context-file"
            )
        source = "-"  # `... | bertcli predict`: the pipe is the input
    fmt = input_format.value if input_format else None
    for line in predict_records(
        source,
        model,
        fmt=fmt,
        text_column=text_column,
        pair_column=pair_column,
        output_format=output_format.value,
        batch_size=batch_size,
        precision=precision.value,
        threads=threads,
        long_inputs=long_input_settings(long_inputs, aggregate, stride, max_windows),
        compile=compile_model,
    ):
        sys.stdout.write(line)
        sys.stdout.flush()
