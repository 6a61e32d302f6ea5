"""Question + context windows for extractive QA, with character offsets and answer token spans.

A context longer than one window is split into several, consecutive windows sharing `stride`
tokens, each holding the (truncated) question: [CLS] question [SEP] context part [SEP]. Every
context token keeps its (char_start, char_end) in the context, so a predicted token span maps back
to the exact characters of the context whatever the tokenizer did to case, accents or spacing.
Training, evaluation and prediction all go through `make_qa_windows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bertcli.data.windows import Windows
from bertcli.errors import ConfigError

Offset = tuple[int, int]
CLS_POSITION = 0  # where BERT-style tokenizers put [CLS]: the label of "no answer in this window"


@dataclass
class QAWindows(Windows):
    """Windows plus, per position, the context characters it covers (None off the context).

    `labels[w]` is the (start, end) token position of the answer in window w, both inclusive,
    or (0, 0) -- [CLS] -- when the window does not hold the whole answer or there is none.
    """

    labels: list[tuple[int, int]] | None = None  # type: ignore[assignment]
    offsets: list[list[Offset | None]] = field(default_factory=list)

    def add(  # type: ignore[override]
        self,
        ids: list[int],
        types: list[int],
        example: int,
        label: tuple[int, int] | None,
        offsets: list[Offset | None],
    ) -> None:
        self.input_ids.append(ids)
        self.token_type_ids.append(types)
        self.example_index.append(example)
        self.offsets.append(offsets)
        if self.labels is not None:
            self.labels.append(label if label is not None else (CLS_POSITION, CLS_POSITION))

    def context_positions(self, window: int) -> list[int]:
        """Positions of window `window` that hold context tokens, in order."""
        return [i for i, offset in enumerate(self.offsets[window]) if offset is not None]


def make_qa_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    max_length: int = 384,
    stride: int = 128,
    max_question_tokens: int = 64,
    answers: Sequence[Offset | None] | None = None,
) -> QAWindows:
    """Tokenize question/context pairs into windows of at most `max_length` tokens.

    `stride` is the number of context tokens consecutive windows share (Hugging Face's meaning).
    `answers[i]` is (char_start, char_end) of example i's answer, end exclusive, or None when
    it has none; without `answers` the windows carry no labels (prediction).
    """
    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    if answers is not None and len(answers) != len(contexts):
        raise ValueError(f"{len(answers)} answers but {len(contexts)} contexts")
    budget = max_length - max_question_tokens - tokenizer.num_special_tokens_to_add(pair=True)
    if budget <= stride:
        raise ConfigError(
            f"max_length {max_length} leaves {budget} context tokens after a question of up to "
            f"{max_question_tokens} tokens, not more than the stride {stride}",
            hint="raise max_length, or lower stride or max_question_tokens",
        )
    windows = QAWindows(labels=[] if answers is not None else None)
    if not questions:
        return windows
    enc = tokenizer(
        _truncate_questions(tokenizer, questions, max_question_tokens),
        list(contexts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        return_attention_mask=False,
        padding=False,
    )
    for w, example in enumerate(enc["overflow_to_sample_mapping"]):
        # Offsets of question and special tokens point into the question or are (0, 0):
        # only positions whose sequence id is 1 index the context.
        context = contexts[example]
        offsets: list[Offset | None] = [
            trim_blanks(context, int(offset[0]), int(offset[1])) if sequence == 1 else None
            for offset, sequence in zip(enc["offset_mapping"][w], enc.sequence_ids(w), strict=True)
        ]
        span = answers[example] if answers is not None else None
        label = answer_tokens(offsets, span) if answers is not None else None
        windows.add(enc["input_ids"][w], enc["token_type_ids"][w], int(example), label, offsets)
    return windows


def trim_blanks(text: str, start: int, end: int) -> Offset | None:
    """A token's character span without the blanks some tokenizers glue to it, None if blank.

    Sentencepiece (`▁word`) and untrimmed byte-level BPE (`Ġword`) offsets include the space
    before a word, and byte-level BPE has lone-space tokens: an answer must neither start nor
    end on a blank, so blank tokens are no answer position at all.
    """
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _truncate_questions(tokenizer: Any, questions: Sequence[str], limit: int) -> list[str]:
    """Cut each question after its `limit`-th token, so a long question cannot eat the window."""
    # Leading blanks carry no meaning, and some SQuAD v2 questions start with dozens of them,
    # which byte-level BPE tokenizers turn into tokens.
    stripped = [question.lstrip() for question in questions]
    enc = tokenizer(
        stripped, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False
    )
    out = []
    for question, offsets in zip(stripped, enc["offset_mapping"], strict=True):
        out.append(question[: offsets[limit - 1][1]] if len(offsets) > limit else question)
    return out


def answer_tokens(offsets: Sequence[Offset | None], span: Offset | None) -> tuple[int, int]:
    """Token positions (start, end inclusive) of a character span inside one window.

    (0, 0) -- [CLS] -- when there is no span or the window does not contain all of it, so a
    model learns to point at [CLS] in windows that cannot answer.
    """
    none = (CLS_POSITION, CLS_POSITION)
    if span is None:
        return none
    char_start, char_end = span
    spans = [(i, offset) for i, offset in enumerate(offsets) if offset is not None]
    if not spans or spans[0][1][0] > char_start or spans[-1][1][1] < char_end:
        return none
    # First token ending after the answer starts, last token starting before it ends: this
    # skips blanks at either edge of the answer, which belong to no token.
    start = next(i for i, (_, stop) in spans if stop > char_start)
    end = next(i for i, (begin, _) in reversed(spans) if begin < char_end)
    return (start, end) if start <= end else none
