"""`bertcli report RUN_DIR`: rebuild a run's report.html (also while it is still training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertcli.cli.common import report_errors


@report_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="The output folder of a `bertcli finetune` run.")],
) -> None:
    """Write RUN_DIR/report.html: loss and learning-rate curves, validation per evaluation, the
    confusion matrix or per-type scores, and the worst errors."""
    from bertcli.console import info
    from bertcli.report import write_run_report

    path = write_run_report(run_dir)
    info(f"[green]wrote[/] {path}")
    typer.echo(str(path))
