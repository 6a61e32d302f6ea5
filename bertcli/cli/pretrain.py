"""`bertcli pretrain RECIPE|--text FILE`: masked-LM pre-training on the user's own text."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import parse_overrides, report_errors
from bertcli.cli.options import (
    BatchSizeOpt,
    EpochsOpt,
    LrOpt,
    MaxLengthOpt,
    MaxStepsOpt,
    ModelOpt,
    OverwriteOpt,
    ResumeOpt,
    SeedOpt,
    SetOpt,
    TrainPrecisionOpt,
    training_overrides,
)


class TextFormat(str, Enum):
    lines = "lines"
    paragraphs = "paragraphs"


@report_errors
def pretrain(
    recipe: Annotated[
        str | None,
        typer.Argument(help="Recipe whose training text to use (labels ignored); optional."),
    ] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(help="Text file(s): .txt, or CSV/TSV/JSON(L)/Parquet with --text-column."),
    ] = None,
    text_format: Annotated[
        TextFormat | None,
        typer.Option("--format", help="Plain text: a document per line, or per paragraph."),
    ] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text.")] = None,
    model: ModelOpt = None,
    train: Annotated[str | None, typer.Option(help="The recipe's training file.")] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: runs/<recipe>-mlm.")
    ] = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: BatchSizeOpt = None,
    lr: LrOpt = None,
    max_length: MaxLengthOpt = None,
    seed: SeedOpt = None,
    precision: TrainPrecisionOpt = None,
    whole_word: Annotated[
        bool, typer.Option("--whole-word", help="Mask all pieces of a word together.")
    ] = False,
    set_: SetOpt = None,
    resume: ResumeOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Continue masked-LM pre-training on your own text; fine-tune from the result with
    `bertcli finetune RECIPE --model runs/<recipe>-mlm`.

    15% of tokens are chosen (80% become the mask token, 10% a random token, 10% stay), fresh
    every epoch; documents are packed into full windows with [SEP] between them.
    """
    from bertcli.pretrain import pretrain as run
    from bertcli.pretrain import pretrain_config

    overrides = parse_overrides(
        **{
            "data.train": train,
            "data.text_column": text_column,
            "mlm.format": text_format.value if text_format else None,
            "mlm.whole_word": True if whole_word else None,
            "train.output_dir": str(output_dir) if output_dir else None,
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
    config = pretrain_config(recipe, text or [], overrides, set_ or [])
    run(config, resume=resume, overwrite=overwrite)
