"""Extractive question-answering data: SQuAD v1.1/v2.0 JSON, flat JSONL and hub rows."""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bertcli.data.readers import detect_format, iter_records, require_columns
from bertcli.errors import DataError

OnMismatch = Literal["error", "skip"]
ON_MISMATCH: tuple[OnMismatch, ...] = ("error", "skip")

_SKIP_HINT = "fix answer_start, or skip such answers with on_mismatch='skip'"
_FLAT_ANSWERS = (
    'expected {"text": [...], "answer_start": [...]} or a list of {"text", "answer_start"}'
)


@dataclass
class QAExample:
    """One question about one context; `answers[k]` starts at character `answer_starts[k]`.

    `location` names where the question came from ("dev.json:id 5733be28"), for error messages.
    """

    id: str
    question: str
    context: str
    answers: list[str]
    answer_starts: list[int]
    location: str

    @property
    def impossible(self) -> bool:
        """True for a SQuAD v2 question that the context does not answer."""
        return not self.answers

    def first_span(self) -> tuple[int, int] | None:
        """(char_start, char_end) of the first answer, end exclusive; None if unanswerable."""
        if not self.answers:
            return None
        return self.answer_starts[0], self.answer_starts[0] + len(self.answers[0])


@dataclass
class QAReport:
    """What a reader kept, and how much it dropped in `on_mismatch="skip"` mode."""

    examples: list[QAExample] = field(default_factory=list)
    skipped_answers: int = 0  # answers whose text is not at answer_start in the context
    dropped_questions: int = 0  # answerable questions left with no valid answer

    def notice(self) -> str | None:
        """A one-line summary of what was skipped, or None when nothing was."""
        if not self.skipped_answers:
            return None
        return (
            f"skipped {self.skipped_answers} answers whose text does not match the context "
            f"at answer_start; dropped {self.dropped_questions} questions left without answers"
        )


def read_squad(path: str | Path, on_mismatch: OnMismatch = "error") -> QAReport:
    """Read SQuAD-layout JSON (nested articles/paragraphs/qas) or flat JSONL into examples.

    A .json file may hold the nested SQuAD layout or a list of flat records; a .jsonl file
    holds one flat record per line: {"id", "question", "context", "answers"}.
    """
    _check_mode(on_mismatch)
    name = str(path)
    fmt = detect_format(name)
    if fmt not in ("json", "jsonl"):
        raise DataError(
            f"{name}: question-answering data must be .json or .jsonl, not {fmt}",
            hint="use the SQuAD JSON layout or one JSON object per line in a .jsonl file",
        )
    report = QAReport()
    reader = _Reader(report, on_mismatch)
    for location, record in iter_records(name, fmt):
        if "paragraphs" in record:
            reader.article(record, name, location)
        else:
            reader.flat(record, location)
    if not report.examples:
        raise DataError(
            f"{name} has no questions",
            hint="expected SQuAD JSON with data[].paragraphs[].qas[] or JSONL question records",
        )
    return report


def records_to_examples(
    records: Iterable[Mapping[str, Any]], origin: str, on_mismatch: OnMismatch = "error"
) -> QAReport:
    """Convert already-loaded flat rows (e.g. a hub `squad` split) to examples.

    `origin` names the source in locations, e.g. "squad:validation" -> "squad:validation:row 7".
    """
    _check_mode(on_mismatch)
    report = QAReport()
    reader = _Reader(report, on_mismatch)
    for row, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise DataError(f"{origin}:row {row}: expected a record, found {type(record).__name__}")
        reader.flat(dict(record), f"{origin}:row {row}")
    return report


def _check_mode(on_mismatch: str) -> None:
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, not {on_mismatch!r}")


class _Reader:
    """Validates questions one at a time into a shared report, enforcing unique ids."""

    def __init__(self, report: QAReport, on_mismatch: OnMismatch) -> None:
        self.report = report
        self.on_mismatch = on_mismatch
        self.seen: dict[str, str] = {}  # id -> location of its first occurrence

    def article(self, record: dict, name: str, location: str) -> None:
        """One nested SQuAD article: {"title", "paragraphs": [{"context", "qas": [...]}]}."""
        paragraphs = record["paragraphs"]
        where = f"{location} ({record['title']!r})" if "title" in record else location
        if not isinstance(paragraphs, list):
            raise DataError(f"{where}: field 'paragraphs' must be a list")
        for p, paragraph in enumerate(paragraphs, start=1):
            here = f"{where} paragraph {p}"
            if not isinstance(paragraph, dict):
                raise DataError(f"{here}: expected an object with 'context' and 'qas'")
            require_columns(paragraph, here, ("context", "qas"))
            context = _string(paragraph["context"], "context", here)
            if not isinstance(paragraph["qas"], list):
                raise DataError(f"{here}: field 'qas' must be a list")
            for q, qa in enumerate(paragraph["qas"], start=1):
                if not isinstance(qa, dict):
                    raise DataError(f"{here} question {q}: expected an object")
                require_columns(qa, f"{here} question {q}", ("id", "question"))
                qid = _question_id(qa["id"], f"{here} question {q}")
                qa_location = f"{name}:id {qid}"
                answers = qa.get("answers", [])
                if not isinstance(answers, list):
                    raise DataError(f"{qa_location}: field 'answers' must be a list")
                pairs = [_answer_pair(answer, qa_location) for answer in answers]
                self.add(qa, qid, qa_location, context, pairs)

    def flat(self, record: dict, location: str) -> None:
        """One flat row: {"id", "question", "context", "answers"} as in the hub's `squad`."""
        require_columns(record, location, ("id", "question", "context"))
        qid = _question_id(record["id"], location)
        where = f"{location} (id {qid})"
        context = _string(record["context"], "context", where)
        self.add(record, qid, where, context, _flat_answers(record.get("answers"), where))

    def add(
        self,
        qa: dict,
        qid: str,
        location: str,
        context: str,
        pairs: list[tuple[str, int]],
    ) -> None:
        question = _string(qa["question"], "question", location)
        if qid in self.seen:
            raise DataError(
                f"{location}: duplicate question id (first seen at {self.seen[qid]})",
                hint="every question needs its own id so predictions can be matched to it",
            )
        self.seen[qid] = location
        impossible = qa.get("is_impossible", False)
        if not isinstance(impossible, bool):
            raise DataError(f"{location}: field 'is_impossible' must be true or false")
        if impossible and pairs:
            raise DataError(
                f"{location}: is_impossible is true but {len(pairs)} answers are given",
                hint="an unanswerable question has an empty 'answers' list",
            )
        if not impossible and "is_impossible" in qa and not pairs:
            raise DataError(
                f"{location}: is_impossible is false but 'answers' is empty",
                hint="give at least one answer, or set is_impossible to true",
            )
        valid = [pair for pair in pairs if self._valid(pair, context, location)]
        if pairs and not valid:
            self.report.dropped_questions += 1
            return
        self.report.examples.append(
            QAExample(
                id=qid,
                question=question,
                context=context,
                answers=[text for text, _ in valid],
                answer_starts=[start for _, start in valid],
                location=location,
            )
        )

    def _valid(self, pair: tuple[str, int], context: str, location: str) -> bool:
        text, start = pair
        found = context[start : start + len(text)]
        if text and found == text:
            return True
        if self.on_mismatch == "skip":
            self.report.skipped_answers += 1
            return False
        if not text:
            raise DataError(f"{location}: empty answer text", hint=_SKIP_HINT)
        raise DataError(
            f"{location}: answer {_short(text)} is not at answer_start {start} "
            f"(the context there reads {_short(found)}{_nearest(text, start, context)})",
            hint=_SKIP_HINT,
        )


def _answer_pair(answer: object, location: str) -> tuple[str, int]:
    if not isinstance(answer, Mapping):
        raise DataError(f"{location}: each answer must be an object with 'text' and 'answer_start'")
    require_columns(dict(answer), f"{location} answer", ("text", "answer_start"))
    text = _string(answer["text"], "answers.text", location)
    return text, _start(answer["answer_start"], location)


def _flat_answers(answers: object, location: str) -> list[tuple[str, int]]:
    """Answers as {"text": [...], "answer_start": [...]} (hub rows) or a list of objects."""
    if answers is None:
        return []
    if isinstance(answers, list):
        return [_answer_pair(answer, location) for answer in answers]
    if not isinstance(answers, Mapping):
        raise DataError(f"{location}: field 'answers' has the wrong shape", hint=_FLAT_ANSWERS)
    require_columns(dict(answers), f"{location} answers", ("text", "answer_start"))
    texts, starts = _as_list(answers["text"]), _as_list(answers["answer_start"])
    if texts is None or starts is None:
        raise DataError(f"{location}: answers.text and answers.answer_start must be lists")
    if len(texts) != len(starts):
        raise DataError(
            f"{location}: {len(texts)} answers.text but {len(starts)} answers.answer_start",
            hint="every answer text needs exactly one start offset",
        )
    return [
        (_string(text, "answers.text", location), _start(start, location))
        for text, start in zip(texts, starts, strict=True)
    ]


def _as_list(value: object) -> list | None:
    # Hub rows carry lists, or numpy arrays when the dataset is formatted as numpy.
    if isinstance(value, (list, tuple)):
        return list(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        converted = tolist()
        return converted if isinstance(converted, list) else None
    return None


def _question_id(value: object, location: str) -> str:
    # Hub rows and some exports use integer ids; they are matched as strings everywhere.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{location}: field 'id' must be a non-empty string")
    return value


def _string(value: object, name: str, location: str) -> str:
    if not isinstance(value, str):
        raise DataError(
            f"{location}: field '{name}' must be a string, found {type(value).__name__}"
        )
    return value


def _start(value: object, location: str) -> int:
    # numbers.Integral also admits numpy integers, which hub rows in numpy format carry.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise DataError(
            f"{location}: field 'answers.answer_start' must be a character offset >= 0, "
            f"found {value!r}"
        )
    return int(value)


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _nearest(text: str, start: int, context: str) -> str:
    """Where the answer text does occur, to tell an off-by-N offset from a wrong answer."""
    hits = [m.start() for m in re.finditer(re.escape(text), context)]
    if not hits:
        return "; the text does not occur in the context"
    return f"; the text occurs at {min(hits, key=lambda hit: abs(hit - start))}"


def with_negatives(
    examples: list[QAExample], fraction: float, seed: int, join: int = 0
) -> list[QAExample]:
    """`examples` plus, for a seeded `fraction` of them, the same question about another context
    that does not contain its answer, labelled unanswerable; with `join` >= 1, from 1 to `join`
    other contexts (a random number) are joined to the question's own instead, its paragraph at
    a random place among them (answer offsets shifted), so one example has windows with and
    without the answer (what global normalisation learns from).

    SQuAD contexts fit one window, so without these the model never sees a window that lacks
    the answer; on a long document it then finds confident spans in every window and the best
    one across windows is often wrong. Pointing at [CLS] in such windows teaches it not to.
    """
    import random

    if fraction <= 0 or len(examples) < 2:
        return list(examples)
    rng = random.Random(seed)
    contexts = list(dict.fromkeys(e.context for e in examples))
    extra = []
    for example in rng.sample(examples, round(len(examples) * min(fraction, 1.0))):
        wanted = rng.randint(1, join) if join else 1
        others: list[str] = []
        for _ in range(5 * wanted):  # a few tries: most other contexts will not hold the answer
            context = rng.choice(contexts)
            lowered = context.lower()
            taken = context == example.context or context in others
            if taken or any(a.lower() in lowered for a in example.answers):
                continue
            others.append(context)
            if len(others) == wanted:
                break
        if not others:
            continue
        if not join:
            extra.append(
                QAExample(f"{example.id}#negative", example.question, others[0], [], [],
                          f"{example.location} (negative)")
            )  # fmt: skip
            continue
        before = rng.randint(0, len(others))
        prefix = "".join(context + "\n\n" for context in others[:before])
        suffix = "".join("\n\n" + context for context in others[before:])
        extra.append(replace(example, id=f"{example.id}#joined",
                             context=prefix + example.context + suffix,
                             answer_starts=[s + len(prefix) for s in example.answer_starts],
                             location=f"{example.location} (joined)"))  # fmt: skip
    return [*examples, *extra]
