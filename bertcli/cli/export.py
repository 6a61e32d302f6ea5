"""`bertcli export`: a fine-tuned model as a Hugging Face directory or an ONNX file."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import report_errors


class ExportFormat(str, Enum):
    hf = "hf"
    onnx = "onnx"


class Quantize(str, Enum):
    int8 = "int8"
    int8_static = "int8-static"


@report_errors
def export(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model directory written by `bertcli finetune`.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="New directory to write.")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="hf (safetensors) or onnx.")
    ] = ExportFormat.onnx,
    quantize: Annotated[
        Quantize | None,
        typer.Option(
            help="onnx only, for CPUs: int8 (activation scales computed per batch) or "
            "int8-static (scales calibrated on 256 training texts; as fast, closer to fp32)."
        ),
    ] = None,
    check_data: Annotated[
        Path | None,
        typer.Option(
            help="Texts to check the export on (default: the training file, if present); "
            "int8-static also calibrates on them when the training file is gone."
        ),
    ] = None,
) -> None:
    """Export a model; ONNX exports are checked against PyTorch before they are kept.

    Prints the export report (largest logit difference, label agreement, size) as JSON on stdout.
    `bertcli predict --model OUTPUT` runs an ONNX export with ONNX Runtime.
    """
    from dataclasses import asdict

    from bertcli.console import info
    from bertcli.export import export_model

    report = export_model(
        model,
        output,
        fmt=fmt.value,
        quantize=quantize.value if quantize else None,
        check_data=check_data,
    )
    if report.max_abs_diff is not None:
        info(
            f"checked on {report.samples} windows ({report.checked_on}): max |logit diff| "
            f"{report.max_abs_diff:.2e}, label agreement {report.label_agreement:.1%}"
        )
    info(f"[green]exported[/] {model} to {output} ({report.size_mb:.1f} MiB)")
    typer.echo(json.dumps(asdict(report)))
