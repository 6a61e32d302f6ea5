"""`bertcli pretrain RECIPE|--text FILE`: masked-LM pre-training on the user's own text."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import parse_overrides, report_errors
from bertcli.cli.options import Precision


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
    model: Annotated[
        str | None,
        typer.Option(help="Hub model name, local model directory, or 'minilm' (embedded)."),
    ] = None,
    train: Annotated[str | None, typer.Option(help="The recipe's training file.")] = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: runs/<recipe>-mlm.")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the text.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per device per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per packed window.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (data order, dropout).")] = None,
    precision: Annotated[
        Precision | None,
        typer.Option(help="auto picks bf16 on GPUs and on CPUs with AVX-512 BF16/AMX."),
    ] = None,
    whole_word: Annotated[
        bool, typer.Option("--whole-word", help="Mask all pieces of a word together.")
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any key: dotted.key=value (e.g. mlm.probability)."),
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option("--resume/--no-resume", help="Resume from the last checkpoint."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier run in the output directory.")
    ] = False,
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
            "model.name": model,
            "data.train": train,
            "data.text_column": text_column,
            "mlm.format": text_format.value if text_format else None,
            "mlm.whole_word": True if whole_word else None,
            "train.output_dir": str(output_dir) if output_dir else None,
            "train.epochs": epochs,
            "train.max_steps": max_steps,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.max_length": max_length,
            "train.seed": seed,
            "train.precision": precision.value if precision else None,
            "model.offline_fallback": False if model else None,
        }
    )
    config = pretrain_config(recipe, text or [], overrides, set_ or [])
    run(config, resume=resume, overwrite=overwrite)
