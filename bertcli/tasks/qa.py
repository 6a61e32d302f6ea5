"""Extractive question answering: the best context span over all windows of a question."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertcli.data.load import Record
from bertcli.data.windows import Windows
from bertcli.errors import DataError
from bertcli.tasks.base import InputRequest, Task

if TYPE_CHECKING:
    from bertcli.config import DataConfig, RunConfig
    from bertcli.data.load import Split
    from bertcli.data.squad import QAExample, QAReport


@dataclass
class QATask(Task):
    """Answers are spans of any-length contexts, read through overlapping windows."""

    max_length: int
    stride: int = 128
    max_question_tokens: int = 64
    max_answer_length: int = 30
    n_best: int = 20
    version_2: bool = False
    # SQuAD v2: answer "" when null score - best span score exceeds it; tuned on validation.
    null_threshold: float | None = None
    global_norm: bool = False
    ranker: bool = False

    name = "qa"
    section = "qa"
    main_metric = "f1"
    token_level = True
    auto_class = "AutoModelForQuestionAnswering"

    @classmethod
    def config_problems(cls, config: RunConfig) -> list[str]:
        qa, max_length = config.qa, config.train.max_length
        problems: list[str] = []
        if max_length - qa.max_question_tokens - 3 <= qa.stride:
            problems.append(
                f"qa.stride: {qa.stride} leaves no new context per window of "
                f"{max_length} tokens with questions of up to "
                f"{qa.max_question_tokens}; lower qa.stride or raise train.max_length"
            )
        return problems

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
            global_norm=bool(settings.get("global_norm", False)),
            ranker=bool(settings.get("ranker", False)),
        )

    def saved_settings(self, config: RunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
        """The `qa` section plus the null threshold: tuned at this evaluation, else adopted."""
        threshold = metrics.get("null_threshold", self.null_threshold)
        return {"qa": {**asdict(config.qa), "null_threshold": threshold}}

    # ------------------------------------------------------------------ data
    @staticmethod
    def _checked(report: QAReport, origin: str) -> list[QAExample]:
        from bertcli.console import notice

        if report.notice():
            notice(f"{origin}: {report.notice()}")
        return report.examples

    @classmethod
    def read_records(cls, config: RunConfig, path: str) -> Iterable[Record]:
        """SQuAD JSON/JSONL read whole (answers checked); each record is the example itself."""
        from bertcli.data.squad import read_squad

        report = read_squad(path, config.qa.on_mismatch)  # type: ignore[arg-type]
        return [(e.location, e) for e in cls._checked(report, path)]  # type: ignore[misc]

    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        return []  # answers are spans, not labels

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        from bertcli.data.squad import QAExample, records_to_examples

        if records and isinstance(records[0][1], QAExample):
            return [e for _, e in records]
        rows = [r for _, r in records]  # hub rows, checked here
        report = records_to_examples(rows, split.origin, config.qa.on_mismatch)  # type: ignore[arg-type]
        return cls._checked(report, split.origin)

    @classmethod
    def check_training(
        cls, config: RunConfig, split: Split, train: list[Any], names: list[str]
    ) -> None:
        if config.qa.version_2:
            return
        unanswerable = next((e for e in train if e.impossible), None)
        if unanswerable is not None:
            raise DataError(
                f"{unanswerable.location}: question has no answer",
                "set qa.version_2: true (SQuAD v2) to train on unanswerable questions",
            )

    @classmethod
    def augment_training(cls, config: RunConfig, train: list[Any]) -> list[Any]:
        from bertcli.data.squad import with_negatives

        return with_negatives(
            train,
            config.qa.negatives,
            config.train.seed,
            join=config.qa.join_contexts if config.qa.global_norm else 0,
        )

    @classmethod
    def read_file(
        cls,
        path: str | Path,
        data: DataConfig,
        label_names: Sequence[str] | None,
        *,
        with_labels: bool = True,
        limit: int | None = None,
    ) -> list[Any]:
        """SQuAD JSON or JSONL. Without labels, answers that do not match their context are
        skipped instead of refused: they are not used."""
        from bertcli.data.squad import read_squad

        return read_squad(path, "error" if with_labels else "skip").examples[:limit]

    @classmethod
    def read_inputs(
        cls, records: Iterator[Record], request: InputRequest, passthrough: deque[dict[str, Any]]
    ) -> Iterator[Any]:
        """Questions about contexts: JSON(L) records with "question" and "context" (any length)."""
        from bertcli.data.squad import QAExample

        if request.fmt not in ("jsonl", "json"):
            raise DataError(
                f'{request.source}: a QA model reads JSONL lines of {{"question", "context"}}',
                "or ask one question with --question TEXT --context-file FILE",
            )

        def examples() -> Iterator[Any]:
            for location, record in records:
                fields = {}
                for name in ("question", "context"):
                    value = record.get(name)
                    if not isinstance(value, str) or (name == "question" and not value.strip()):
                        raise DataError(
                            f"{location}: field {name!r} is missing or not a text",
                            'each line needs {"question": "...", "context": "..."}',
                        )
                    fields[name] = value
                passthrough.append({k: v for k, v in record.items() if k not in fields})
                yield QAExample(
                    str(record.get("id", "")),
                    fields["question"],
                    fields["context"],
                    [],
                    [],
                    location,
                )

        return examples()

    @classmethod
    def question_example(cls, question: str, context: str, model_dir: Any) -> Any:
        from bertcli.data.squad import QAExample

        if not question.strip():
            raise DataError("--question is empty")
        return QAExample("", question, context, [], [], "--question")

    # ------------------------------------------------------------------ head
    @classmethod
    def head_config(cls, label_names: Sequence[str]) -> dict[str, Any]:
        return {}  # a QA head always scores two things per token: start and end

    @classmethod
    def head_options(cls, pooling: str, settings: dict[str, Any]) -> dict[str, Any]:
        return {"ranker": bool(settings.get("ranker"))}

    @classmethod
    def window_scorer(cls, hf_config: Any, ranker: bool = False, **_: Any) -> Any:
        """The passage ranker: how likely a window is to hold the answer, from its [CLS]."""
        if not ranker:
            return None
        from bertcli.modeling.heads import window_scorer

        return window_scorer(hf_config)

    @staticmethod
    def logits(outputs: Any) -> Any:
        import torch

        return torch.stack((outputs.start_logits, outputs.end_logits), dim=-1)  # (batch, seq, 2)

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        from bertcli.modeling.heads import global_span_loss, span_loss

        if labels.shape[1] > 2:  # global_norm windows also carry example id and length
            return global_span_loss(logits, labels, ranker=model.scorer is not None)
        return span_loss(logits, labels)

    # ------------------------------------------------------------------ windows and decoding
    def windows(self, tokenizer: Any, examples: Sequence[Any]) -> Windows:
        from bertcli.data.qa_windows import make_qa_windows

        windows = make_qa_windows(
            tokenizer,
            [e.question for e in examples],
            [e.context for e in examples],
            max_length=self.max_length,
            stride=self.stride,
            max_question_tokens=self.max_question_tokens,
            answers=[e.first_span() for e in examples],
        )
        if self.global_norm and windows.labels is not None:
            # The loss normalises over all windows of an example, padding left out.
            windows.labels = [
                (*label, example, len(ids))
                for label, example, ids in zip(
                    windows.labels, windows.example_index, windows.input_ids, strict=True
                )
            ]
        return windows

    def training_groups(self, windows: Windows) -> tuple[list[list[int]], int] | None:
        return (windows.example_groups(), 0) if self.global_norm else None

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
            # The ranker's score of a window (its last channel) joins each of its spans' scores:
            # log p(span | window) + log p(window), as Multi-passage BERT combines them.
            window_scores=[float(logits[0, 2]) for logits in window_logits]
            if self.ranker
            else None,
        )

    @staticmethod
    def decisions(logits: Any) -> np.ndarray:
        """The start and end position of each window."""
        return np.concatenate([window[:, :2].argmax(0) for window in logits])

    # ------------------------------------------------------------------ metrics and output
    def metrics(self, predictions: Any, examples: Sequence[Any]) -> dict[str, Any]:
        """SQuAD exact match and F1 (percent); v2 without a threshold yet tunes one here."""
        from bertcli.metrics import squad_metrics
        from bertcli.qa_answers import tune_null_threshold

        unanswerable = next((e for e in examples if e.impossible), None)
        if unanswerable is not None and not self.version_2:
            # A v1 model always answers: every such question would score 0 and drag the
            # averages down without saying why.
            raise DataError(
                f"{unanswerable.location}: question has no answer, but this model was trained "
                "for SQuAD v1.1 (it always answers)",
                "score it on answerable questions, or train a v2 model (qa.version_2: true)",
            )
        texts = [a.text for a in predictions]
        extra: dict[str, Any] = {}
        if self.version_2 and self.null_threshold is None:
            threshold, _ = tune_null_threshold(predictions, examples)
            texts = ["" if -a.null_margin > threshold else a.text for a in predictions]
            extra["null_threshold"] = threshold
        elif self.version_2:
            # Scores use the threshold tuned on validation. What the best threshold for these
            # very questions would give is reported beside them, as the official v2.0 script's
            # best_f1 does, and never replaces them.
            spans = [replace(a, text=a.text or a.best_span) for a in predictions]
            best_threshold, best_f1 = tune_null_threshold(spans, examples)
            extra.update({"best_f1": round(best_f1, 4), "best_f1_threshold": best_threshold})
        # SQuAD v1.1 data is scored by the v1.1 script's rules, v2 data by v2.0's.
        answers = [e.answers for e in examples]
        return {**squad_metrics(texts, answers, v2=self.version_2), **extra}

    def adopt(self, metrics: dict[str, Any]) -> None:
        """SQuAD v2: the threshold tuned on validation is applied to test and saved."""
        if "null_threshold" in metrics:
            self.null_threshold = metrics["null_threshold"]

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
