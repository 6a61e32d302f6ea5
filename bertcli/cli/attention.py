"""`bertcli attention`: draw what every head attends to and name its pattern."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import report_errors
from bertcli.errors import ConfigError


@report_errors
def attention(
    text: Annotated[str | None, typer.Argument(help="The text to look at.")] = None,
    pair: Annotated[str | None, typer.Argument(help="An optional second text (a pair).")] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model directory (fine-tuned or not), hub name, or 'minilm'."
        ),
    ] = "minilm",
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Several inputs: one text per line (TAB before a pair text), or JSONL with "
            '"text" and "pair".',
        ),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The HTML page (head view and model view).")
    ] = Path("attention.html"),
    png: Annotated[
        Path | None, typer.Option(help="Also write the model-view grid as a PNG picture.")
    ] = None,
    max_length: Annotated[
        int, typer.Option(help="Tokens per window; longer texts are cut into windows.")
    ] = 128,
    window: Annotated[
        int | None,
        typer.Option(help="Show window N (1-based) of each long input; default: all windows."),
    ] = None,
) -> None:
    """Every layer's and head's attention as an HTML page; the heads' patterns on stderr (a
    table) and stdout (JSON)."""
    from bertcli.attention import explain, read_inputs
    from bertcli.attention.table import pattern_table
    from bertcli.console import console, info

    if (text is None) == (input_file is None):
        raise ConfigError(
            "give one text (and an optional pair text) or --input FILE",
            'e.g. bertcli attention --model minilm "I went to the store." "At the store, ..."',
        )
    if max_length < 8:
        raise ConfigError(f"--max-length: {max_length} is too short (at least 8 tokens)")
    inputs = read_inputs(input_file) if input_file else [(text or "", pair)]
    result = explain(model, inputs, html=output, png=png, max_length=max_length, window=window)
    shown = Path(model).name or model
    console.print(pattern_table(result.heads, f"attention patterns of {shown}"))
    info(f"[green]wrote[/] {result.html}" + (f" and {result.png}" if result.png else ""))
    typer.echo(json.dumps(result.to_json()))
