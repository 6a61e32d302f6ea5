"""A tag per word (NER and friends), by softmax per word or Viterbi over a CRF's scores."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertcli.aggregate import decode_spans, softmax, word_scores
from bertcli.data.load import Example, Record
from bertcli.data.windows import Windows
from bertcli.data.word_windows import make_word_windows
from bertcli.errors import DataError
from bertcli.metrics.entities import get_entities
from bertcli.tasks.base import (
    InputRequest,
    Task,
    column_examples,
    head_file,
    require_labels,
)
from bertcli.viterbi import CrfScores, marginals, viterbi

if TYPE_CHECKING:
    from bertcli.config import DataConfig, RunConfig
    from bertcli.data.load import Split


@dataclass
class TaggedWords:
    """One example's prediction: a tag id and its probability per word; a span head also gives
    its entities as (type, first word, last word, probability), nested ones included (the tags
    then hold the entities that do not overlap a longer one)."""

    tags: list[int]
    probs: list[float]
    entities: list[tuple[str, int, int, float]] | None = None


# Sentences decoded together by the CRF: big enough to vectorise, small enough to pad little.
DECODE_GROUP = 128


@dataclass
class TaggingTask(Task):
    """Word tags in IOB2; long sentences split into overlapping windows, each word scored once."""

    label_names: list[str]
    max_length: int
    stride: int = 32
    label_all_subwords: bool = False
    crf: CrfScores | None = None
    head: str = "linear"

    name = "tagging"
    section = "tagging"
    main_metric = "f1_conlleval"  # CoNLL-2003's convention; f1_strict is reported beside it
    token_level = True
    auto_class = "AutoModelForTokenClassification"
    # CRF transition scores learn too slowly at an encoder's rate.
    head_lr_factor = 20
    output_formats = ("jsonl", "conll")

    @classmethod
    def config_problems(cls, config: RunConfig) -> list[str]:
        stride, max_length = config.tagging.stride, config.train.max_length
        problems: list[str] = []
        if stride is not None and stride > (max_length - 2) // 2:
            problems.append(
                f"tagging.stride: {stride} is too large for windows of "
                f"{max_length} tokens; use at most {(max_length - 2) // 2}"
            )
        if config.train.class_weights is not None and config.tagging.head != "linear":
            problems.append(
                f"train.class_weights: the {config.tagging.head} head has no per-tag loss to "
                "weigh; use it with tagging.head: linear"
            )
        return problems

    @classmethod
    def label_counts(cls, train: Sequence[Any], n_labels: int) -> np.ndarray:
        """Every word's tag counts, O included: auto weighs the rare entity tags up and O down."""
        return np.bincount([tag for e in train for tag in e.tags], minlength=n_labels)

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
            head=str(settings.get("head") or "linear"),
        )

    @property
    def types(self) -> list[str]:
        """Entity types, in the order of their B- tags (a span head's score channels)."""
        return [name[2:] for name in self.label_names if name.startswith("B-")]

    # ------------------------------------------------------------------ data
    @classmethod
    def read_records(cls, config: RunConfig, path: str) -> Iterable[Record]:
        from bertcli.data.tagging import iter_tagging_records

        return iter_tagging_records(path)

    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        from bertcli.data.tagging import tag_names

        names = tag_names(records, config.data, split.label_names)
        return require_labels(names, split.origin, config)

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        from bertcli.data.tagging import to_tagged_examples

        return to_tagged_examples(records, config.data, names, declared=split.label_names)

    @classmethod
    def check_training(
        cls, config: RunConfig, split: Split, train: list[Any], names: list[str]
    ) -> None:
        """Nested or overlapping spans are only learnable by a span head."""
        if config.tagging.head == "globalpointer":
            return
        for example in train:
            tags = [names[t] for t in example.tags or []]
            if example.entities is not None and len(get_entities(tags)) < len(example.entities):
                raise DataError(
                    f"{example.location}: entities nest or overlap, which tagging.head: "
                    f"{config.tagging.head} cannot represent",
                    "use --head globalpointer (or --set tagging.head=globalpointer)",
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
        """CoNLL column files or token JSON(L)."""
        from bertcli.data.tagging import iter_tagging_records, to_tagged_examples

        records = list(islice(iter_tagging_records(path), limit))
        return to_tagged_examples(records, data, list(label_names or []), with_labels=with_labels)

    @classmethod
    def read_inputs(
        cls, records: Iterator[Record], request: InputRequest, passthrough: deque[dict[str, Any]]
    ) -> Iterator[Any]:
        """A record's text is a line of raw text, split into words by the documented
        pre-tokenizer, or a list of tokens; it is never cleaned, so offsets stay true."""
        from bertcli.data.tagging import text_example, token_example

        text_col, pair_col = request.columns()
        if request.fmt != "text" and not request.text_column:
            text_col = f"{text_col}|tokens|text"  # token lists or raw text lines

        def make(text: Any, pair: Any, location: str) -> Example:
            if isinstance(text, list):
                return token_example(text, location, text_col)
            return text_example(str(text), location)

        return column_examples(records, text_col, pair_col, passthrough, make)

    # ------------------------------------------------------------------ head
    @classmethod
    def head_options(cls, pooling: str, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "crf": settings.get("head") == "crf",
            "spans": settings.get("head") == "globalpointer",
            "bio_constraints": settings.get("bio_constraints", True),
        }

    @classmethod
    def head_modules(
        cls,
        hf_config: Any,
        crf: bool = False,
        spans: bool = False,
        bio_constraints: bool = True,
        **_: Any,
    ) -> tuple[Any, Any]:
        """A linear-chain CRF over the token head's scores, BIO transitions banned if asked; or
        a GlobalPointer span head, one channel per entity type, in place of the token head."""
        if spans:
            from bertcli.modeling.globalpointer import global_pointer_head

            labels = [hf_config.id2label[i] for i in range(hf_config.num_labels)]
            return global_pointer_head(hf_config, sum(n.startswith("B-") for n in labels)), None
        if not crf:
            return None, None
        from bertcli.modeling.crf import CRF, bio_allowed

        labels = [hf_config.id2label[i] for i in range(hf_config.num_labels)]
        allowed, start = bio_allowed(labels) if bio_constraints else (None, None)
        return None, CRF(hf_config.num_labels, allowed=allowed, start_allowed=start)

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        """Cross-entropy on labelled sub-words, the CRF's likelihood over first sub-words, or
        (span scores: `labels` then hold span targets) GlobalPointer's span loss."""
        from bertcli.modeling.heads import token_loss

        if logits.ndim == 4:
            from bertcli.modeling.globalpointer import span_loss

            return span_loss(logits, labels)
        if model.crf is not None:
            from bertcli.modeling.model import first_pieces

            emissions, tags, mask = first_pieces(logits, labels)
            return model.crf(emissions, tags, mask)
        return token_loss(logits, labels, model.class_weights)

    # ------------------------------------------------------------------ windows and decoding
    def windows(self, tokenizer: Any, examples: Sequence[Example]) -> Windows:
        labelled = bool(examples) and examples[0].tags is not None
        windows = make_word_windows(
            tokenizer,
            [e.words or [] for e in examples],
            [e.tags or [] for e in examples] if labelled else None,
            max_length=self.max_length,
            stride=self.stride,
            continuation=self._continuation() if self.label_all_subwords else None,
        )
        if labelled and self.head == "globalpointer":
            windows.spans = self._window_spans(windows, examples)
        return windows

    def _window_spans(
        self, windows: Windows, examples: Sequence[Example]
    ) -> list[list[tuple[int, int, int]]]:
        """Each window's gold spans as (first position, last position, type id): the spans
        whose words all lie in the window (one cut by a window edge is learnt where it is whole)."""
        type_id = {kind: i for i, kind in enumerate(self.types)}
        out = []
        for (start, positions), example in zip(
            windows.words or [], windows.example_index, strict=True
        ):
            out.append(
                [
                    (positions[first - start], positions[last - start], type_id[kind])
                    for kind, first, last in examples[example].entities or []
                    if start <= first and last < start + len(positions)
                ]
            )
        return out

    def batch_transform(self, windows: Windows) -> Any:
        """Span heads: the batch's labels become (batch, seq, seq, types) span targets."""
        if self.head != "globalpointer" or windows.spans is None:
            return None
        from bertcli.modeling.globalpointer import span_targets

        def transform(batch: dict, epoch: int) -> dict:
            index = batch["window_index"].tolist()
            batch["labels"] = span_targets(
                batch["labels"],
                [windows.spans[i] for i in index],
                len(self.types),  # type: ignore[index]
            )
            return batch

        return transform

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
        if self.head == "globalpointer":
            return self._decode_spans(window_logits, windows, examples)
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

    def _decode_spans(
        self, window_logits: Any, windows: Windows, examples: Sequence[Any]
    ) -> list[TaggedWords]:
        """Every (first word, last word, type) scored above 0, read in the window that owns the
        first word (and holds the last one); tags from the entities that do not overlap."""
        from bertcli.data.tagging import spans_to_tags

        found: list[list[tuple[str, int, int, float]]] = [[] for _ in examples]
        for w, scores in enumerate(window_logits):
            start, positions = (windows.words or [])[w]
            owned = [word - start for word, _ in (windows.owned or [])[w]]
            example = windows.example_index[w]
            for first, last, kind, prob in decode_spans(scores, positions, owned):
                found[example].append((self.types[kind], start + first, start + last, prob))
        index = {name: i for i, name in enumerate(self.label_names)}
        out = []
        for example, entities in zip(examples, found, strict=True):
            entities.sort(key=lambda e: (e[1], -e[2], e[0]))
            tags = spans_to_tags([e[:3] for e in entities], len(example.words or []))
            # A word's probability: its entity's (the one its tag shows), 1 outside entities.
            probs = [1.0] * len(tags)
            shown = set(get_entities(tags))
            for kind, first, last, prob in entities:
                if (kind, first, last) in shown:
                    probs[first : last + 1] = [prob] * (last - first + 1)
            out.append(TaggedWords([index[t] for t in tags], probs, entities))
        return out

    @staticmethod
    def decisions(logits: Any) -> np.ndarray:
        """The tag of each position (span heads: whether each span cell is an entity)."""
        if len(logits) and np.asarray(logits[0]).ndim == 3:
            return np.concatenate([(np.asarray(window) > 0).ravel() for window in logits])
        return np.concatenate([window.argmax(-1) for window in logits])

    # ------------------------------------------------------------------ metrics and output
    def tag_names(self, predicted: TaggedWords) -> list[str]:
        return [self.label_names[t] for t in predicted.tags]

    def metrics(self, predictions: Any, examples: Sequence[Example]) -> dict[str, Any]:
        from bertcli.metrics import entity_metrics

        if self.head == "globalpointer":
            from bertcli.metrics.seqeval import span_metrics

            return span_metrics(
                [[e[:3] for e in p.entities or []] for p in predictions],
                [e.entities or [] for e in examples],
            )
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
        predicted = predictions[index]
        spans = example.spans or []
        entities = []
        if getattr(predicted, "entities", None) is not None:  # span head: nested ones too
            found = [(kind, a, b, prob) for kind, a, b, prob in predicted.entities]
        else:
            found = [
                (kind, a, b, sum(predicted.probs[a : b + 1]) / (b - a + 1))
                for kind, a, b in get_entities(self.tag_names(predicted))
            ]
        for kind, first, last, score in found:
            start, end = spans[first][0], spans[last][1]
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

    def text_row(self, output_format: str, predictions: Any, index: int, example: Any) -> str:
        """conll: one `word<TAB>tag` line per word and a blank line after the example."""
        if output_format != "conll":
            return super().text_row(output_format, predictions, index, example)
        return self.conll(predictions, index, example)

    def conll(self, predictions: Any, index: int, example: Example) -> str:
        tags = self.tag_names(predictions[index])
        lines = [f"{w}\t{t}" for w, t in zip(example.words or [], tags, strict=True)]
        return "".join(line + "\n" for line in lines) + "\n"
