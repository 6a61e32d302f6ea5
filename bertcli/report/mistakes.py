"""The error table: a model's worst mistakes on labelled examples, one small function per task.

Rows are plain JSON (saved as errors.json in a run folder) so `bertcli report` can redraw them
without the model. A cell is a string, a number, or {"before", "mark", "after"} for a span shown
in its context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

MAX_ROWS = 30
CONTEXT_WORDS = 6
CONTEXT_CHARS = 90


def _short(text: str, limit: int = 220) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classification_mistakes(task: Any, predictions: Any, examples: Sequence[Any]) -> dict:
    """The most confident wrong predictions, with their text."""
    probs = predictions[0]
    names = task.label_names
    wrong = []
    for index, example in enumerate(examples):
        best = int(probs[index].argmax())
        if example.label is not None and best != example.label:
            text = example.text + (f" ‖ {example.pair}" if example.pair else "")
            wrong.append((float(probs[index, best]), names[example.label], names[best], text))
    wrong.sort(key=lambda row: -row[0])
    return {
        "title": "Most confident wrong predictions",
        "columns": ["confidence", "true", "predicted", "text"],
        "rows": [[round(c, 4), t, p, _short(x)] for c, t, p, x in wrong[:MAX_ROWS]],
        "total": len(wrong),
        "of": len(examples),
    }


def _in_context(example: Any, first: int, last: int) -> dict[str, str]:
    words = example.words or []
    before = " ".join(words[max(0, first - CONTEXT_WORDS) : first])
    after = " ".join(words[last + 1 : last + 1 + CONTEXT_WORDS])
    return {
        "before": ("... " if first > CONTEXT_WORDS else "") + before + " ",
        "mark": " ".join(words[first : last + 1]),
        "after": " " + after + (" ..." if last + 1 + CONTEXT_WORDS < len(words) else ""),
    }


def tagging_mistakes(task: Any, predictions: Any, examples: Sequence[Any]) -> dict:
    """Missed entities (in the gold tags, not predicted) and spurious ones, in context; an entity
    with the right span but the wrong type shows as one of each."""
    from bertcli.metrics.entities import get_entities

    rows: list[list[Any]] = []
    total = 0
    for example, predicted in zip(examples, predictions, strict=True):
        gold = set(get_entities([task.label_names[t] for t in example.tags or []]))
        found = set(get_entities(task.tag_names(predicted)))
        for kind, entities in (("missed", gold - found), ("spurious", found - gold)):
            for entity_type, first, last in sorted(entities, key=lambda e: e[1]):
                total += 1
                if len(rows) < MAX_ROWS:
                    rows.append(
                        [kind, entity_type, _in_context(example, first, last), example.location]
                    )
    return {
        "title": "Missed and spurious entities",
        "columns": ["error", "type", "in context", "where"],
        "rows": rows,
        "total": total,
        "of": len(examples),
    }


def qa_mistakes(task: Any, predictions: Any, examples: Sequence[Any]) -> dict:
    """Wrong answers beside the gold ones, worst F1 first."""
    from bertcli.metrics.squad import exact_score, f1_score

    wrong = []
    for example, answer in zip(examples, predictions, strict=True):
        if exact_score(answer.text, example.answers):
            continue
        f1 = f1_score(answer.text, example.answers)
        gold = " | ".join(dict.fromkeys(example.answers)) or "(no answer)"
        wrong.append((f1, _short(example.question, 160), answer.text or "(no answer)", gold))
    wrong.sort(key=lambda row: row[0])
    return {
        "title": "Wrong answers",
        "columns": ["F1", "question", "predicted", "gold"],
        "rows": [
            [round(f, 3), q, _short(p, 120), _short(g, 120)] for f, q, p, g in wrong[:MAX_ROWS]
        ],
        "total": len(wrong),
        "of": len(examples),
    }


def _finders() -> dict[str, Callable[[Any, Any, Sequence[Any]], dict]]:
    """Keyed by task name, read from the task classes: the report is a view of their outputs."""
    from bertcli.tasks import ClassificationTask, QATask, TaggingTask

    return {
        ClassificationTask.name: classification_mistakes,
        TaggingTask.name: tagging_mistakes,
        QATask.name: qa_mistakes,
    }


def find_mistakes(task: Any, predictions: Any, examples: Sequence[Any]) -> dict | None:
    """The task's error table, or None for a task without one."""
    finder = _finders().get(task.name)
    return finder(task, predictions, examples) if finder else None
