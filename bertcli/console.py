"""One rich Console on stderr for logs, progress and tables; stdout is reserved for data."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, highlight=False)
# Errors are printed even with --quiet, which only silences logs, progress and tables.
errors = Console(stderr=True, highlight=False)
_state = {"quiet": False, "debug": False}


def configure(*, quiet: bool = False, debug: bool = False) -> None:
    _state["quiet"] = quiet
    _state["debug"] = debug
    console.quiet = quiet


def is_debug() -> bool:
    return _state["debug"]


def is_main_process() -> bool:
    # Under `accelerate launch` every rank runs the CLI; only rank 0 talks to the user.
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def info(message: str) -> None:
    if is_main_process():
        console.print(message, soft_wrap=True)


def notice(message: str) -> None:
    """A one-line notice the user should not miss (fallbacks, resumes)."""
    if is_main_process():
        console.print(f"[bold yellow]note:[/] {message}", soft_wrap=True)


def progress(*extra_columns: TextColumn) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=_state["quiet"] or not is_main_process(),
        transient=False,
    )
