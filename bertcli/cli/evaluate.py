"""`bertcli eval`: metrics of a fine-tuned model on labelled files."""

from __future__ import annotations

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


@report_errors
def evaluate(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model directory written by `bertcli finetune`.")
    ],
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            "-d",
            help="Labelled file(s): CSV, TSV, JSON(L), Parquet; CoNLL or token JSONL for "
            "tagging; SQuAD JSON or JSONL for QA.",
        ),
    ],
    text_column: Annotated[str | None, typer.Option(help="Default: as in training.")] = None,
    pair_column: Annotated[str | None, typer.Option(help="Default: as in training.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Default: as in training.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the metrics JSON here.")
    ] = None,
    batch_size: BatchSizeOpt = None,
    long_inputs: LongInputsOpt = None,
    aggregate: AggregateOpt = None,
    stride: StrideOpt = None,
    max_windows: MaxWindowsOpt = None,
    precision: PrecisionOpt = Precision.auto,
) -> None:
    """Score a model on labelled data: a table on stderr, the metrics JSON on stdout."""
    from bertcli.evaluation import evaluate_model
    from bertcli.jsonio import dumps
    from bertcli.modeling.model import write_json_atomic

    results = evaluate_model(
        model,
        data,
        text_column=text_column,
        pair_column=pair_column,
        label_column=label_column,
        precision=precision.value,
        batch_size=batch_size,
        long_inputs=long_input_settings(long_inputs, aggregate, stride, max_windows),
    )
    if output:
        write_json_atomic(output, results)  # creates missing parent folders
    typer.echo(dumps(results))
