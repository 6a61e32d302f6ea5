"""Task objects: how examples become windows, and windows' outputs predictions and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bertcli.aggregate import pool_windows, softmax, word_scores
from bertcli.data.load import Example
from bertcli.data.windows import Windows, make_windows
from bertcli.data.word_windows import make_word_windows
from bertcli.viterbi import CrfScores, marginals, viterbi


class Task(Protocol):
    """What the training loop, evaluation and prediction need to know about a task.

    Window logits are one (windows, labels) array for window-level tasks and, for token-level
    ones (`token_level`), one (positions, labels) array per window.
    """

    name: str
    main_metric: str
    token_level: bool

    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows: ...

    def bind(self, model: Any) -> None: ...

    def predict(self, window_logits: Any, windows: Windows, examples: Sequence[Any]) -> Any: ...

    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]: ...

    def report(self, metrics: dict[str, Any], title: str) -> Any: ...

    def format(self, predictions: Any, index: int, example: Example) -> dict[str, Any]: ...


@dataclass
class ClassificationTask:
    """Sequence classification of single texts or pairs; windows pooled per example."""

    label_names: list[str]
    max_length: int
    strategy: str = "head"
    head_tokens: int = 128
    stride: int = 128
    max_windows: int = 0
    aggregate: str = "mean"

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> ClassificationTask:
        """From the `long_inputs` settings (a recipe's or a saved model's), checked, with any
        non-None `overrides` (eval/predict flags) applied."""
        from dataclasses import asdict

        from bertcli.config import LongInputsConfig, build, raise_all

        changed = {k: v for k, v in (overrides or {}).items() if v is not None}
        checked = build(LongInputsConfig, {**settings, **changed}, "long_inputs.")
        raise_all(checked.problems_for(int(max_length)))
        return cls(list(label_names), int(max_length), **asdict(checked))

    name = "classification"
    section = "long_inputs"  # the config section (and bertcli.json key) holding its settings
    main_metric = "accuracy"
    token_level = False

    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows:
        has_pairs = bool(examples) and examples[0].pair is not None
        labels = [e.label for e in examples] if examples and examples[0].label is not None else None
        return make_windows(
            tokenizer,
            [e.text for e in examples],
            [e.pair or "" for e in examples] if has_pairs else None,
            max_length=self.max_length,
            labels=labels,  # type: ignore[arg-type]
            strategy=self.strategy,
            head_tokens=self.head_tokens,
            stride=self.stride,
            max_windows=self.max_windows,
        )

    def bind(self, model: Any) -> None:
        """Nothing to read from the model: its logits say everything."""

    def predict(self, window_logits: np.ndarray, windows: Windows, examples: Sequence[Any]) -> Any:
        """(windows, labels) logits -> (examples, labels) probabilities, and windows per example."""
        n = len(examples)
        logits = pool_windows(window_logits, windows.example_index, n, self.aggregate)
        return softmax(logits), windows.windows_per_example(n)

    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        from bertcli.metrics import classification_metrics

        probs, _ = predictions
        return classification_metrics(
            probs.argmax(-1).tolist(), [e.label for e in examples], self.label_names
        )

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from bertcli.metrics import render_classification_report

        return render_classification_report(metrics, title)

    def format(
        self, predictions: Any, index: int, example: Example | None = None
    ) -> dict[str, Any]:
        probs, counts = predictions
        row = probs[index]
        best = int(row.argmax())
        out = {
            "label": self.label_names[best],
            "score": round(float(row[best]), 6),
            "scores": {
                name: round(float(p), 6) for name, p in zip(self.label_names, row, strict=True)
            },
        }
        out["windows"] = counts[index]
        return out


@dataclass
class TaggedWords:
    """One example's prediction: a tag id and its probability per word."""

    tags: list[int]
    probs: list[float]


# Sentences decoded together by the CRF: big enough to vectorise, small enough to pad little.
DECODE_GROUP = 128


@dataclass
class TaggingTask:
    """A tag per word (NER and friends), by softmax per word or Viterbi over a CRF's scores."""

    label_names: list[str]
    max_length: int
    stride: int = 32
    label_all_subwords: bool = False
    crf: CrfScores | None = None

    name = "tagging"
    section = "tagging"
    main_metric = "f1"
    token_level = True

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> TaggingTask:
        """From the `tagging` settings; a saved CRF model's transitions come from `model_dir`."""
        from bertcli.config import raise_all

        stride = (overrides or {}).get("stride")
        stride = stride if stride is not None else settings.get("stride")
        stride = int(stride if stride is not None else max_length // 4)
        if not 0 <= stride <= (max_length - 2) // 2:
            raise_all([f"stride: {stride} does not fit windows of {max_length} tokens"])
        crf = None
        if settings.get("head") == "crf" and model_dir is not None:
            crf = CrfScores.from_file(head_file(model_dir, "the CRF's transition scores"))
        return cls(
            list(label_names),
            int(max_length),
            stride=stride,
            label_all_subwords=bool(settings.get("label_all_subwords", False)),
            crf=crf,
        )

    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows:
        labelled = bool(examples) and examples[0].tags is not None
        return make_word_windows(
            tokenizer,
            [e.words or [] for e in examples],
            [e.tags or [] for e in examples] if labelled else None,
            max_length=self.max_length,
            stride=self.stride,
            continuation=self._continuation() if self.label_all_subwords else None,
        )

    def _continuation(self) -> list[int]:
        """For each tag id, the tag of a word's later pieces: I-X for B-X, itself otherwise."""
        index = {name: i for i, name in enumerate(self.label_names)}
        return [
            index.get("I-" + name[2:], i) if name.startswith("B-") else i
            for i, name in enumerate(self.label_names)
        ]

    def bind(self, model: Any) -> None:
        """Take the CRF's current transition scores (they change while training)."""
        crf = getattr(model, "crf", None)
        if crf is not None:
            state = {
                "crf." + k: v.detach().float().cpu().numpy() for k, v in crf.state_dict().items()
            }
            self.crf = CrfScores.from_state(state)

    def predict(
        self, window_logits: Any, windows: Windows, examples: Sequence[Any]
    ) -> list[TaggedWords]:
        scores = word_scores(
            window_logits, windows.owned or [], windows.example_index, len(examples)
        )
        if self.crf is None:
            probs = [softmax(s) if len(s) else s for s in scores]
            paths = [p.argmax(-1).tolist() for p in probs]
        else:
            paths, probs = self._decode(scores)
        return [
            TaggedWords(path, [float(p[i, t]) for i, t in enumerate(path)])
            for path, p in zip(paths, probs, strict=True)
        ]

    def _decode(self, scores: list[np.ndarray]) -> tuple[list[list[int]], list[np.ndarray]]:
        """Viterbi paths and CRF marginal probabilities, in length-sorted groups padded only to
        the group's longest sentence (one 120-word sentence would otherwise pad them all)."""
        assert self.crf is not None
        paths: list[list[int]] = [[] for _ in scores]
        probs: list[np.ndarray] = [np.zeros((0, len(self.label_names)))] * len(scores)
        order = sorted(range(len(scores)), key=lambda i: len(scores[i]))
        for start in range(0, len(order), DECODE_GROUP):
            group = order[start : start + DECODE_GROUP]
            lengths = [len(scores[i]) for i in group]
            padded = np.zeros((len(group), max(lengths), len(self.label_names)), np.float32)
            for row, i in enumerate(group):
                padded[row, : lengths[row]] = scores[i]
            group_probs = marginals(padded, lengths, self.crf)
            decoded = viterbi(padded, lengths, self.crf)
            for row, (i, path) in enumerate(zip(group, decoded, strict=True)):
                paths[i], probs[i] = path, group_probs[row, : lengths[row]]
        return paths, probs

    def tag_names(self, predicted: TaggedWords) -> list[str]:
        return [self.label_names[t] for t in predicted.tags]

    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        from bertcli.metrics import entity_metrics

        return entity_metrics(
            [self.tag_names(p) for p in predictions],
            [[self.label_names[t] for t in e.tags or []] for e in examples],
        )

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from bertcli.metrics import render_entity_report

        return render_entity_report(metrics, title)

    def format(self, predictions: Any, index: int, example: Example) -> dict[str, Any]:
        """Entities with character offsets into the example's text; score: the mean probability
        of the entity's tags (softmax per word, or the CRF's marginals)."""
        from bertcli.metrics.entities import get_entities

        predicted = predictions[index]
        spans = example.spans or []
        entities = []
        for kind, first, last in get_entities(self.tag_names(predicted)):
            start, end = spans[first][0], spans[last][1]
            score = sum(predicted.probs[first : last + 1]) / (last - first + 1)
            entities.append(
                {
                    "type": kind,
                    "text": example.text[start:end],
                    "start": start,
                    "end": end,
                    "score": round(score, 6),
                }
            )
        return {"entities": entities}

    def conll(self, predictions: Any, index: int, example: Example) -> str:
        """One `word<TAB>tag` line per word and a blank line after the example."""
        tags = self.tag_names(predictions[index])
        lines = [f"{w}\t{t}" for w, t in zip(example.words or [], tags, strict=True)]
        return "".join(line + "\n" for line in lines) + "\n"


@dataclass
class QATask:
    """Extractive question answering: the best context span over all windows of a question."""

    max_length: int
    stride: int = 128
    max_question_tokens: int = 64
    max_answer_length: int = 30
    n_best: int = 20
    version_2: bool = False
    # SQuAD v2: answer "" when null score - best span score exceeds it; tuned on validation.
    null_threshold: float | None = None

    name = "qa"
    section = "qa"
    main_metric = "f1"
    token_level = True

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> QATask:
        """From the `qa` settings (a saved model's include the tuned `null_threshold`)."""
        stride = (overrides or {}).get("stride")
        return cls(
            int(max_length),
            stride=int(stride if stride is not None else settings.get("stride", 128)),
            max_question_tokens=int(settings.get("max_question_tokens", 64)),
            max_answer_length=int(settings.get("max_answer_length", 30)),
            n_best=int(settings.get("n_best", 20)),
            version_2=bool(settings.get("version_2", False)),
            null_threshold=settings.get("null_threshold"),
        )

    def windows(self, tokenizer: Any, examples: Sequence[Any]) -> Windows:
        from bertcli.data.qa_windows import make_qa_windows

        return make_qa_windows(
            tokenizer,
            [e.question for e in examples],
            [e.context for e in examples],
            max_length=self.max_length,
            stride=self.stride,
            max_question_tokens=self.max_question_tokens,
            answers=[e.first_span() for e in examples],
        )

    def bind(self, model: Any) -> None:
        """Nothing to read from the model: its start/end logits say everything."""

    def predict(self, window_logits: Any, windows: Windows, examples: Sequence[Any]) -> list:
        from bertcli.qa_answers import best_answers

        return best_answers(
            [logits[:, 0] for logits in window_logits],
            [logits[:, 1] for logits in window_logits],
            windows,  # type: ignore[arg-type]
            [e.context for e in examples],
            n_best=self.n_best,
            max_answer_length=self.max_answer_length,
            null_threshold=self.null_threshold if self.version_2 else None,
        )

    def metrics(self, predictions: Any, examples: Sequence[Any]) -> dict[str, Any]:
        """SQuAD exact match and F1 (percent); v2 without a threshold yet tunes one here."""
        from bertcli.metrics import squad_metrics
        from bertcli.qa_answers import tune_null_threshold

        texts = [a.text for a in predictions]
        extra: dict[str, Any] = {}
        if self.version_2 and self.null_threshold is None:
            threshold, _ = tune_null_threshold(predictions, examples)
            texts = ["" if -a.null_margin > threshold else a.text for a in predictions]
            extra["null_threshold"] = threshold
        return {**squad_metrics(texts, [e.answers for e in examples]), **extra}

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from bertcli.metrics import render_scalar_table

        return render_scalar_table(metrics, title)

    def format(self, predictions: Any, index: int, example: Any) -> dict[str, Any]:
        answer = predictions[index]
        return {
            "answer": answer.text,
            "start": answer.start,
            "end": answer.end,
            "score": round(float(answer.score), 6),
        }


TASK_TYPES: dict[str, Any] = {
    "classification": ClassificationTask,
    "tagging": TaggingTask,
    "qa": QATask,
}

HEAD_FILE = "bertcli_head.safetensors"


def head_file(model_dir: Any, what: str) -> Any:
    """bertcli_head.safetensors of a saved model, which must exist."""
    from pathlib import Path

    from bertcli.errors import ModelError

    path = Path(model_dir) / HEAD_FILE
    if not path.is_file():
        raise ModelError(f"{model_dir}: {HEAD_FILE} is missing ({what})")
    return path
