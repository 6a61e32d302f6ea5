"""Shared CLI plumbing: turn library errors into one-line messages and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from bertcli.console import errors, is_debug
from bertcli.errors import BertcliError

F = TypeVar("F", bound=Callable[..., Any])


def setting_hint(command: str, setting: str) -> str:
    """How `command` sets config key `setting`: finetune takes any key through --set; eval and
    predict have a flag per column (--text-column)."""
    if command == "finetune":
        return f"pass --set {setting}=NAME"
    return f"pass --{setting.rsplit('.', 1)[-1].replace('_', '-')} NAME"


def report_errors(func: F) -> F:
    """Library errors -> `error: ...` on stderr and their exit code; tracebacks with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BertcliError as exc:
            if is_debug():
                errors.print_exception()
            errors.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
            hint = exc.hint
            if exc.setting:
                hint = " ".join(h for h in (hint, setting_hint(func.__name__, exc.setting)) if h)
            if hint:
                errors.print(f"  [dim]hint:[/] {hint}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            errors.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # `bertcli predict ... | head -n 3`: the reader left; that is not an error.
            _silence_stdout()
            raise typer.Exit(0) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if is_debug():
                raise
            errors.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False
            )
            errors.print("  [dim]hint:[/] re-run with --debug for the traceback and report it")
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def parse_overrides(**flags: Any) -> dict[str, Any]:
    """Named flags -> dotted config keys, skipping the ones the user did not give."""
    return {key: value for key, value in flags.items() if value is not None}
