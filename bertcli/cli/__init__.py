"""The `bertcli` command: a thin Typer shell over the library API."""

from __future__ import annotations

from typing import Annotated

import typer

from bertcli import __version__
from bertcli.cli import attention as attention_cmd
from bertcli.cli import evaluate as evaluate_cmd
from bertcli.cli import export as export_cmd
from bertcli.cli import finetune as finetune_cmd
from bertcli.cli import predict as predict_cmd
from bertcli.cli import pretrain as pretrain_cmd
from bertcli.cli import recipes as recipes_cmd
from bertcli.cli import report as report_cmd
from bertcli.console import configure

app = typer.Typer(
    name="bertcli",
    help="Fine-tune BERT-family encoders from recipes and use them in shell pipelines.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bertcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr (no progress, no tables).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Fine-tune BERT-family encoders from recipes and use them in shell pipelines.

    Logs, progress bars and tables go to stderr; data (predictions) goes to stdout.
    """
    configure(quiet=quiet, debug=debug)


app.command("finetune", no_args_is_help=True)(finetune_cmd.finetune)
app.command("pretrain", no_args_is_help=True)(pretrain_cmd.pretrain)
app.command("eval", no_args_is_help=True)(evaluate_cmd.evaluate)
app.command("predict")(predict_cmd.predict)
app.command("export", no_args_is_help=True)(export_cmd.export)
app.add_typer(recipes_cmd.app, name="recipes")
app.command("attention", no_args_is_help=True)(attention_cmd.attention)
app.command("report", no_args_is_help=True)(report_cmd.report)


def main() -> None:
    app()
