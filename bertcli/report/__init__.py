"""Run reports: report.html (and its PNGs) for a run folder or for one evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertcli.report import plots
from bertcli.report.mistakes import find_mistakes
from bertcli.report.page import Section, render
from bertcli.report.run import ERRORS_FILE, Run, read_run

REPORT_FILE = "report.html"

__all__ = [
    "ERRORS_FILE",
    "REPORT_FILE",
    "find_mistakes",
    "read_run",
    "write_eval_report",
    "write_run_report",
]


def _fmt(value: Any) -> str:
    return plots.number(value) if isinstance(value, float) else str(value)


def score_sections(scores: dict[str, Any], folder: Path, prefix: str = "") -> list[Section]:
    """Pictures and tables of one split's scores, by what they hold: a confusion matrix
    (classification), per-type scores (tagging), or plain numbers (QA and others)."""
    sections = []
    matrix = scores.get("confusion_matrix")
    if isinstance(matrix, dict):
        image = plots.confusion(
            folder / f"{prefix}confusion_matrix.png",
            matrix["labels"],
            matrix["matrix"],
        )
        per_class = scores.get("per_class") or {}
        table = {
            "columns": ["label", "precision", "recall", "f1", "support"],
            "rows": [
                [name, v["precision"], v["recall"], v["f1"], v["support"]]
                for name, v in per_class.items()
            ],
        }
        sections.append(Section("Confusion matrix and per-class scores", [image], table))
    elif isinstance(scores.get("per_type"), dict) and scores["per_type"]:
        image = plots.per_type(folder / f"{prefix}per_type.png", scores["per_type"])
        sections.append(Section("Entity scores per type", [image]))
    numbers = [
        [k, v] for k, v in scores.items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    if numbers and not sections:
        sections.append(Section("Scores", table={"columns": ["metric", "value"], "rows": numbers}))
    return sections


def mistakes_section(mistakes: dict[str, Any] | None, where: str) -> Section:
    if not mistakes:
        return Section("Errors", note=f"No error table yet: it is written {where}.")
    shown = len(mistakes["rows"])
    note = f"{mistakes['total']} of {mistakes['of']} examples wrong" if mistakes["total"] else ""
    if mistakes["total"] > shown:
        note += f"; the first {shown} shown"
    if not mistakes["total"]:
        note = f"No errors on the {mistakes['of']} examples."
    return Section(mistakes["title"], table=mistakes if shown else None, note=note)


def _run_sections(run: Run) -> list[Section]:
    folder = run.folder
    sections = []
    if run.steps:
        sections.append(
            Section(
                "Training",
                [plots.curves(folder / "loss_lr.png", run.steps, run.loss, run.lr)],
            )
        )
    points = [(r["step"], r["eval"][run.metric]) for r in run.evals if run.metric in r["eval"]]
    if points:
        best = run.best_eval()
        image = plots.evaluations(
            folder / "validation.png",
            [s for s, _ in points],
            [v for _, v in points],
            run.metric,
            best["step"] if best else None,
        )
        sections.append(
            Section(
                "Validation per evaluation", [image], note="The star marks the best checkpoint."
            )
        )
    sections += score_sections(run.scores, folder)
    where = "at the end of the run" if not run.finished else "by a run that finishes"
    sections.append(mistakes_section(run.mistakes, where))
    return sections


def write_run_report(folder: str | Path) -> Path:
    """report.html in a run folder, from what the folder holds now (finished or not)."""
    run = read_run(folder)
    best = run.best_eval()
    model = (run.config.get("model") or {}).get("name", "?")
    if run.finished:
        status = f"finished: {run.final.get('steps')} steps"  # type: ignore[union-attr]
    else:
        status = f"still training: {run.steps[-1] if run.steps else 0} steps so far"
    cards = []
    if run.scores.get(run.metric) is not None:
        cards.append((f"validation {run.metric}", _fmt(run.scores[run.metric])))
    test = (run.final or {}).get("test")
    if isinstance(test, dict) and test.get(run.metric) is not None:
        cards.append((f"test {run.metric}", _fmt(test[run.metric])))
    if best:
        cards.append(("best step", str(best["step"])))
    if run.loss:
        cards.append(("last loss", f"{run.loss[-1]:.4f}"))
    page = render(
        f"Run report: {run.name}",
        f"{run.task} · model {model} · {status} · {run.folder}",
        cards,
        _run_sections(run),
    )
    path = run.folder / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def write_eval_report(
    path: str | Path,
    model: str,
    results: dict[str, dict[str, Any]],
    kept: Sequence[tuple[str, Any, Sequence[Any], Any]],
) -> Path:
    """The error view of `bertcli eval`: per data file its scores and its mistakes; `kept` holds
    each file's (file, task, examples, predictions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sections = []
    cards = []
    found = {name: find_mistakes(task, preds, examples) for name, task, examples, preds in kept}
    for number, (name, scores) in enumerate(results.items(), start=1):
        mistakes = found.get(name)
        for section in score_sections(scores, path.parent, f"{path.stem}-{number}-"):
            section.title = f"{name}: {section.title}"
            sections.append(section)
        section = mistakes_section(mistakes, "for tasks that have one")
        section.title = f"{name}: {section.title}"
        sections.append(section)
        main = next((k for k in ("accuracy", "f1_conlleval", "f1", "exact") if k in scores), None)
        if main:
            cards.append((f"{Path(name).name} {main}", _fmt(scores[main])))
    path.write_text(render(f"Evaluation: {model}", "bertcli eval", cards, sections), "utf-8")
    return path
