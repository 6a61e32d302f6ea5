"""`bertcli finetune RECIPE`: train a model from a recipe, with overrides."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import parse_overrides, report_errors
from bertcli.cli.options import (
    AggregateOpt,
    BatchSizeOpt,
    EpochsOpt,
    LongInputsOpt,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    MaxWindowsOpt,
    ModelOpt,
    OverwriteOpt,
    ResumeOpt,
    SeedOpt,
    SetOpt,
    StrideOpt,
    TrainPrecisionOpt,
    long_input_settings,
    training_overrides,
)
from bertcli.config import TAGGING_HEADS

TaggingHead = Enum("TaggingHead", {name: name for name in TAGGING_HEADS}, type=str)  # type: ignore[misc]


@report_errors
def finetune(
    recipe: Annotated[
        str, typer.Argument(help="Recipe name (see `bertcli recipes list`) or a YAML file.")
    ],
    model: ModelOpt = None,
    train: Annotated[str | None, typer.Option(help="Training file or hub split.")] = None,
    validation: Annotated[str | None, typer.Option(help="Validation file or hub split.")] = None,
    test: Annotated[str | None, typer.Option(help="Test file or hub split.")] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: runs/<recipe>.")
    ] = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    max_length: MaxLengthOpt = None,
    seed: SeedOpt = None,
    precision: TrainPrecisionOpt = None,
    crf: Annotated[
        bool,
        typer.Option("--crf", help="Tagging: a CRF head (Viterbi decoding) instead of linear."),
    ] = False,
    head: Annotated[
        TaggingHead | None,
        typer.Option(
            help="Tagging head: linear (softmax per word), crf (Viterbi) or globalpointer (a "
            "score per span and type; nested entities)."
        ),
    ] = None,
    head_lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of the task head/CRF (default: 20x lr for tagging)."),
    ] = None,
    long_inputs: LongInputsOpt = None,
    aggregate: AggregateOpt = None,
    stride: StrideOpt = None,
    max_windows: MaxWindowsOpt = None,
    report_to: Annotated[
        str | None,
        typer.Option(help="Log to tensorboard, wandb and/or mlflow (comma-separated)."),
    ] = None,
    set_: SetOpt = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            help="Run N times with seeds train.seed, +1, ... in seed-<n>/ sub-folders; the best "
            "on validation becomes the run's model; prints mean ± std of every test metric.",
            min=2,
        ),
    ] = None,
    resume: ResumeOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Fine-tune a pretrained BERT on a recipe's data and save the model directory.

    Re-running the same command on the same output directory resumes from its last checkpoint.
    """
    from bertcli.config import load_config

    overrides = parse_overrides(
        **{
            "data.train": train,
            "data.validation": validation,
            "data.test": test,
            "train.output_dir": str(output_dir) if output_dir else None,
            "train.head_lr": head_lr,
            "tagging.head": head.value if head else ("crf" if crf else None),
            "train.report_to": report_to,
        }
    )
    overrides.update(
        training_overrides(
            model=model,
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            lr=lr,
            max_length=max_length,
            seed=seed,
            precision=precision,
        )
    )
    long = long_input_settings(long_inputs, aggregate, None, max_windows)
    overrides.update({f"long_inputs.{key}": value for key, value in long.items()})
    if stride is not None:
        from bertcli.config import task_of
        from bertcli.tasks import get_task

        # --stride means the overlap of the task's windows: of a long text's (long_inputs), a
        # long sentence's (tagging) or a context's (QA). It is placed before the config is
        # checked, so the recipe's own stride is never judged against the new window instead.
        overrides[f"{get_task(task_of(recipe, set_ or [])).section}.stride"] = stride
    config = load_config(recipe, overrides, set_ or [])

    if seeds:
        from bertcli.console import console
        from bertcli.seeds import finetune_seeds, seeds_table

        console.print(
            seeds_table(finetune_seeds(config, seeds, resume=resume, overwrite=overwrite))
        )
        return
    from bertcli.finetune import finetune as run

    run(config, resume=resume, overwrite=overwrite)
