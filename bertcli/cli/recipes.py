"""`bertcli recipes list|show|keys`: the shipped recipes and the config schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bertcli.cli.common import report_errors
from bertcli.config import (
    DEFAULT_TASK,
    all_keys,
    dump_config,
    list_recipes,
    load_config,
    read_recipe,
)
from bertcli.console import console

app = typer.Typer(help="List, show and explain recipes.", no_args_is_help=True)


@app.command("list")
@report_errors
def list_() -> None:
    """List the shipped recipes."""
    table = Table(title="recipes")
    for column in ("name", "task", "dataset", "model", "file"):
        table.add_column(column)
    for name, path in list_recipes().items():
        data = read_recipe(path)
        table.add_row(
            name,
            str(data.get("task", DEFAULT_TASK)),
            str((data.get("data") or {}).get("dataset") or "-"),
            str((data.get("model") or {}).get("name") or "bert-base-uncased"),
            str(path),
        )
    console.print(table)


@app.command("show")
@report_errors
def show(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path to a YAML file.")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any key: dotted.key=value.")
    ] = None,
) -> None:
    """Print the fully resolved config of a recipe (YAML, on stdout)."""
    typer.echo(dump_config(load_config(recipe, sets=set_ or [])), nl=False)


@app.command("keys")
@report_errors
def keys() -> None:
    """List every config key a recipe or --set may use."""
    table = Table(title="config keys")
    table.add_column("key")
    table.add_column("meaning")
    for key, text in all_keys().items():
        table.add_row(key, text)
    console.print(table)
