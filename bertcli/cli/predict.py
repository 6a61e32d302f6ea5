"""`bertcli predict`: stream predictions for a file or stdin as JSON lines (or TSV) on stdout."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

from bertcli.cli.common import report_errors
from bertcli.cli.options import (
    AggregateOpt,
    LongInputsOpt,
    MaxWindowsOpt,
    Precision,
    PrecisionOpt,
    StrideOpt,
    long_input_settings,
)


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
        str, typer.Argument(help="Input file, or '-' for stdin. Plain text: one example per line.")
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model directory written by `bertcli finetune`.")
    ],
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
    batch_size: Annotated[int, typer.Option(help="Examples per batch.")] = 64,
    long_inputs: LongInputsOpt = None,
    aggregate: AggregateOpt = None,
    stride: StrideOpt = None,
    max_windows: MaxWindowsOpt = None,
    precision: PrecisionOpt = Precision.auto,
    threads: Annotated[int | None, typer.Option(help="CPU threads for PyTorch.")] = None,
) -> None:
    """Predict labels for new texts, streamed in input order, one output line per input.

    Tagging models print {"entities": [{"type", "text", "start", "end", "score"}]} per input,
    with character offsets into the input line. Plain text is split into words by a regex
    pre-tokenizer (dotted abbreviations, words joined by - . , /, clitics like 's, and each
    other punctuation mark alone); JSONL may give pre-split {"tokens": [...]} instead, whose
    offsets refer to the tokens joined by single spaces.
    """
    from bertcli.predict import predict_records

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
    ):
        sys.stdout.write(line)
        sys.stdout.flush()
