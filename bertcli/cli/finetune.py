"""`bertcli finetune RECIPE`: train a model from a recipe, with overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import parse_overrides, report_errors
from bertcli.cli.options import (
    AggregateOpt,
    LongInputsOpt,
    MaxWindowsOpt,
    Precision,
    StrideOpt,
    long_input_settings,
)


@report_errors
def finetune(
    recipe: Annotated[
        str, typer.Argument(help="Recipe name (see `bertcli recipes list`) or a YAML file.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Hub model name, local model directory, or 'minilm' (embedded)."),
    ] = None,
    train: Annotated[str | None, typer.Option(help="Training file or hub split.")] = None,
    validation: Annotated[str | None, typer.Option(help="Validation file or hub split.")] = None,
    test: Annotated[str | None, typer.Option(help="Test file or hub split.")] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: runs/<recipe>.")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Training epochs.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per device per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per window.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    precision: Annotated[
        Precision | None,
        typer.Option(help="auto picks bf16 on GPUs and on CPUs with AVX-512 BF16/AMX."),
    ] = None,
    crf: Annotated[
        bool,
        typer.Option("--crf", help="Tagging: a CRF head (Viterbi decoding) instead of linear."),
    ] = False,
    head_lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of the task head/CRF (default: 20x lr for tagging)."),
    ] = None,
    long_inputs: LongInputsOpt = None,
    aggregate: AggregateOpt = None,
    stride: StrideOpt = None,
    max_windows: MaxWindowsOpt = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any recipe key: dotted.key=value (repeatable)."),
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option(
            "--resume/--no-resume",
            help="Resume from the last checkpoint (default: when the output dir has one).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Delete the output directory first and start over.")
    ] = False,
) -> None:
    """Fine-tune a pretrained BERT on a recipe's data and save the model directory.

    Re-running the same command on the same output directory resumes from its last checkpoint.
    """
    from bertcli.config import load_config

    overrides = parse_overrides(
        **{
            "model.name": model,
            "data.train": train,
            "data.validation": validation,
            "data.test": test,
            "train.output_dir": str(output_dir) if output_dir else None,
            "train.epochs": epochs,
            "train.max_steps": max_steps,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.max_length": max_length,
            "train.seed": seed,
            "train.precision": precision.value if precision else None,
            "train.head_lr": head_lr,
            "tagging.head": "crf" if crf else None,
            # A model the user names is never swapped for the embedded one when offline.
            "model.offline_fallback": False if model else None,
        }
    )
    long = long_input_settings(long_inputs, aggregate, stride, max_windows)
    overrides.update({f"long_inputs.{key}": value for key, value in long.items()})
    config = load_config(recipe, overrides, set_ or [])
    if config.task in ("tagging", "qa") and stride is not None:
        # --stride means the overlap of a long sentence's (tagging) or context's (QA) windows.
        overrides.pop("long_inputs.stride")
        overrides[f"{config.task}.stride"] = stride
        config = load_config(recipe, overrides, set_ or [])

    from bertcli.finetune import finetune as run

    run(config, resume=resume, overwrite=overwrite)
