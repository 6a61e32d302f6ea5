"""What a finished run writes besides its model: errors.json + report.html, a README.md model
card, and its trackers closed. None of it may fail a run that trained fine: failures are notices."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bertcli.console import info, notice


def _try(what: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as exc:  # a plot or a card must never cost the user a trained model
        notice(f"could not write {what} ({type(exc).__name__}: {exc})")
        return None


def finish_run(
    config: Any,
    source: Any,
    data: Any,
    task: Any,
    predictions: dict[str, Any],
    metrics: dict[str, Any],
    accelerator: Any = None,
) -> None:
    """Called once by `finetune` after the final model is saved (main process only)."""
    from bertcli.model_card import write_card
    from bertcli.report import ERRORS_FILE, find_mistakes, write_run_report

    out_dir = config.output_dir

    def errors() -> None:
        if "validation" in predictions:
            table = find_mistakes(task, predictions["validation"], data.validation)
            if table is not None:
                (out_dir / ERRORS_FILE).write_text(json.dumps(table, indent=1), encoding="utf-8")

    _try("errors.json", errors)
    report = _try("report.html", lambda: write_run_report(out_dir))
    sizes = {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)}
    card = _try("README.md", lambda: write_card(config, source, metrics, data.sources, sizes))
    if report or card:
        info(f"wrote {' and '.join(str(p) for p in (report, card) if p)}")
    if accelerator is not None and getattr(accelerator, "trackers", None):
        _try("the trackers' last records", accelerator.end_training)
