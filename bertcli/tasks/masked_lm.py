"""Masked-language modelling (`bertcli pretrain`): further pre-training on the user's own text.

Training text is packed into full windows across documents ([SEP] between them, no padding),
and masked the BERT way: validation and test windows get one fixed, seeded set of masks; training
windows get fresh masks every epoch (dynamic masking), drawn in the collator from (seed, epoch,
window) so a resumed run sees the masks an uninterrupted one would. Scores: masked-token loss,
accuracy and perplexity. `predict` on a line holding the mask token prints the top fills.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bertcli.data.load import Record, clean_text, pick_column
from bertcli.data.masking import NO_WORD, MaskingPlan, mask_tokens, pack_documents
from bertcli.data.windows import Windows, _template
from bertcli.data.word_windows import IGNORE
from bertcli.errors import DataError
from bertcli.tasks.base import InputRequest, Task, column_examples

if TYPE_CHECKING:
    from bertcli.config import DataConfig, RunConfig
    from bertcli.data.load import Split

TOP_K = 5  # fills printed per mask by `predict`
EVAL_STREAM = 2**31 - 1  # the "epoch" of the fixed validation/test masks
SCORES = ("masked_loss", "masked_accuracy", "perplexity", "masked_tokens")


@dataclass
class Document:
    """A piece of unlabelled text (one line, paragraph or row)."""

    text: str
    location: str = ""


@dataclass
class MaskedLine:
    """A `predict` input: text with mask tokens to fill."""

    text: str
    location: str = ""


@dataclass
class MaskedWindows(Windows):
    """Windows plus what masking needs: the original ids, each position's word id, the plan."""

    originals: list[np.ndarray] = field(default_factory=list)
    words: list[np.ndarray] = field(default_factory=list)
    plan: MaskingPlan | None = None
    tokenizer: Any = None  # predict: turns the top ids back into text


@dataclass
class MaskedLMTask(Task):
    """Predict masked tokens of the text itself: no labels, the model's own MLM head."""

    max_length: int
    probability: float = 0.15
    mask: float = 0.8
    random: float = 0.1
    whole_word: bool = False
    seed: int = 0

    name = "masked_lm"
    section = "mlm"
    main_metric = "masked_accuracy"
    token_level = True
    auto_class = "AutoModelForMaskedLM"
    carries_base_weights = True
    # Runtimes score a whole vocabulary per position: nothing an ONNX self-check could hold to a
    # bar, and not what bertcli exports models for (serving a fine-tuned head).
    exports_onnx = False
    activity = "pre-training"

    @classmethod
    def build(
        cls,
        label_names: list[str],
        max_length: int,
        settings: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        model_dir: Any = None,
    ) -> MaskedLMTask:
        from bertcli.config import MaskedLMConfig, build

        checked = vars(build(MaskedLMConfig, dict(settings), "mlm."))
        masking = ("probability", "mask", "random", "whole_word", "seed")  # reading is done
        return cls(int(max_length), **{key: checked[key] for key in masking})

    # ------------------------------------------------------------------ data
    @classmethod
    def read_records(cls, config: RunConfig, path: str) -> Iterable[Record]:
        return _text_records(path, config.mlm.format)

    @classmethod
    def label_set(cls, config: RunConfig, records: Sequence[Record], split: Split) -> list[str]:
        return []

    @classmethod
    def to_examples(
        cls, config: RunConfig, split: Split, records: Sequence[Record], names: list[str]
    ) -> list[Any]:
        return _documents(records, config.data)

    @classmethod
    def augment_training(cls, config: RunConfig, train: list[Any]) -> list[Any]:
        """`pretrain --text` files beside the recipe's training text (all of it trains)."""
        for path in config.mlm.text_files:
            train = train + _documents(list(_text_records(path, config.mlm.format)), config.data)
        return train

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
        records = _text_records(str(path), "lines")
        return _documents(list(islice(records, limit)), data)

    @classmethod
    def read_inputs(
        cls, records: Iterator[Record], request: InputRequest, passthrough: deque[dict[str, Any]]
    ) -> Iterator[Any]:
        text_col, _ = request.columns()
        return column_examples(
            records, text_col, None, passthrough, lambda text, _, where: MaskedLine(text, where)
        )

    # ------------------------------------------------------------------ head
    @classmethod
    def head_config(cls, label_names: Sequence[str]) -> dict[str, Any]:
        return {}  # the vocabulary is the output

    @staticmethod
    def loss(model: Any, logits: Any, labels: Any) -> Any:
        import torch.nn.functional as F

        labels = labels.flatten()  # (batch x seq) ids, IGNORE where nothing was masked
        if logits.dim() == 2:  # (masked, vocab): only the masked positions were scored
            return F.cross_entropy(logits.float(), labels[labels != IGNORE])
        return F.cross_entropy(logits.flatten(0, 1).float(), labels, ignore_index=IGNORE)

    @staticmethod
    @contextmanager
    def sparse_logits(hf_model: Any, labels: Any) -> Iterator[None]:
        """Score only the masked positions in training (about 15%): the vocabulary projection
        is most of a small model's compute, and the loss reads nothing else. The projection's
        input rows are picked by a hook, so every family's own head code runs unchanged."""
        import torch

        decoder = hf_model.get_output_embeddings()
        if labels is None or not isinstance(decoder, torch.nn.Linear):
            yield
            return
        keep = (labels != IGNORE).flatten()

        def pick(module: Any, args: tuple) -> tuple:
            return (args[0].flatten(0, -2)[keep], *args[1:])  # (masked, hidden)

        handle = decoder.register_forward_pre_hook(pick)
        try:
            yield
        finally:
            handle.remove()

    @staticmethod
    def kept_outputs(logits: Any, labels: Any) -> Any:
        """(batch, seq, vocab) is far too large to gather over a whole split: keep, per
        position, (argmax, loss, masked?) when labels are known, else the top fills."""
        import torch

        logits = logits.float()
        if labels is None:
            top = logits.softmax(-1).topk(TOP_K, dim=-1)
            return torch.cat([top.indices.float(), top.values], -1)  # (batch, seq, 2 x TOP_K)
        masked = labels != IGNORE
        nll = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels.clamp(min=0), reduction="none"
        )  # (batch, seq)
        guess = logits.argmax(-1).float()
        return torch.stack([guess, nll * masked, masked.float()], -1)  # (batch, seq, 3)

    # ------------------------------------------------------------------ windows
    def plan(self, tokenizer: Any) -> MaskingPlan:
        if tokenizer.mask_token_id is None:
            raise DataError(f"{tokenizer.name_or_path}: the tokenizer has no mask token")
        special = set(tokenizer.all_special_ids)
        normal = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
        return MaskingPlan(
            self.probability, self.mask, self.random, self.whole_word,
            tokenizer.mask_token_id, normal,
        )  # fmt: skip

    def windows(self, tokenizer: Any, examples: Sequence[Any]) -> MaskedWindows:
        if examples and isinstance(examples[0], MaskedLine):
            return self._line_windows(tokenizer, examples)
        template = _template(tokenizer)
        budget = self.max_length - template.specials(pair=False)
        encoded = tokenizer([doc.text for doc in examples], add_special_tokens=False)
        documents = [(encoded["input_ids"][i], encoded.word_ids(i)) for i in range(len(examples))]
        separator = tokenizer.sep_token_id
        packed = pack_documents(documents, budget, NO_WORD if separator is None else separator)
        out, labels_of = MaskedWindows(plan=self.plan(tokenizer)), []
        specials = np.array(tokenizer.all_special_ids, dtype=np.int64)
        for n, (ids, words) in enumerate(zip(packed.ids, packed.words, strict=True)):
            full = [*template.single_prefix, *ids, *template.single_suffix]
            word_ids = [NO_WORD] * len(template.single_prefix) + words
            word_ids += [NO_WORD] * len(template.single_suffix)
            original, word_array = np.array(full, dtype=np.int64), np.array(word_ids)
            word_array[np.isin(original, specials)] = NO_WORD  # [UNK] inside the text too
            masked, labels = self.masks(original, word_array, out.plan, EVAL_STREAM, n)
            out.add(masked.tolist(), [0] * len(full), packed.first_document[n], None)
            labels_of.append(labels.tolist())
            out.originals.append(original)
            out.words.append(word_array)
        out.labels = labels_of
        return out

    def masks(
        self, ids: np.ndarray, words: np.ndarray, plan: Any, epoch: int, window: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The masks of one window in one epoch: the same on every run with this seed."""
        return mask_tokens(ids, words, plan, np.random.default_rng([self.seed, epoch, window]))

    def batch_transform(self, windows: Windows) -> Callable[[dict, int], dict] | None:
        """Fresh masks for every training batch, a pure function of (seed, epoch, window)."""
        import torch

        def remask(batch: dict[str, Any], epoch: int) -> dict[str, Any]:
            ids, labels = batch["input_ids"].clone(), batch["labels"].clone()
            for row, window in enumerate(batch["window_index"].tolist()):
                original = windows.originals[window]  # type: ignore[attr-defined]
                words = windows.words[window]  # type: ignore[attr-defined]
                masked, target = self.masks(original, words, windows.plan, epoch, window)  # type: ignore[attr-defined]
                ids[row, : len(masked)] = torch.from_numpy(masked)
                labels[row, : len(target)] = torch.from_numpy(target)
            return {**batch, "input_ids": ids, "labels": labels}

        return remask

    def _line_windows(self, tokenizer: Any, lines: Sequence[MaskedLine]) -> MaskedWindows:
        """One window per line (cut at max_length), unmasked: the user placed the masks."""
        out = MaskedWindows(tokenizer=tokenizer)
        for n, line in enumerate(lines):
            text = line.text.replace("[MASK]", tokenizer.mask_token)  # the family's own token
            ids = tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"]
            out.add(ids, [0] * len(ids), n, None)
        return out

    # ------------------------------------------------------------------ decoding
    def predict(self, window_logits: Any, windows: Windows, examples: Sequence[Any]) -> Any:
        if isinstance(windows, MaskedWindows) and windows.tokenizer is not None:
            return self._fills(window_logits, windows)
        # Scoring: sum over every masked position of every window.
        rows = [np.asarray(w).reshape(-1, 3) for w in window_logits]
        labels = [np.asarray(lab) for lab in windows.labels or []]
        masked = sum(float(r[:, 2].sum()) for r in rows)
        loss = sum(float(r[:, 1].sum()) for r in rows)
        correct = sum(
            float(((r[:, 0] == lab) & (r[:, 2] > 0)).sum())
            for r, lab in zip(rows, labels, strict=True)
        )
        return {"masked": masked, "loss": loss, "correct": correct}

    def _fills(self, window_logits: Any, windows: MaskedWindows) -> list[list[list[dict]]]:
        tokenizer, mask_id = windows.tokenizer, windows.tokenizer.mask_token_id
        fills = []
        for ids, out in zip(windows.input_ids, window_logits, strict=True):
            out = np.asarray(out)
            masks = [i for i, token in enumerate(ids) if token == mask_id]
            fills.append(
                [
                    [
                        {"token": tokenizer.decode([int(t)]).strip(), "score": round(float(p), 6)}
                        for t, p in zip(out[i, :TOP_K], out[i, TOP_K:], strict=True)
                    ]
                    for i in masks
                ]
            )
        return fills

    @staticmethod
    def decisions(logits: Any) -> np.ndarray:
        return np.concatenate([np.asarray(w)[:, 0].ravel() for w in logits])

    # ------------------------------------------------------------------ metrics and output
    def metrics(self, predictions: Any, examples: Sequence[Any]) -> dict[str, Any]:
        count = max(predictions["masked"], 1.0)
        loss = predictions["loss"] / count
        return {
            "masked_loss": round(loss, 5),
            "masked_accuracy": round(predictions["correct"] / count, 5),
            "perplexity": round(float(np.exp(min(loss, 50.0))), 3),
            "masked_tokens": int(predictions["masked"]),
        }

    def report(self, metrics: dict[str, Any], title: str) -> Any:
        from rich.table import Table

        table = Table(title=title)
        for key in SCORES:
            table.add_column(key.replace("_", " "), justify="right")
        table.add_row(*(str(metrics[key]) for key in SCORES))
        return table

    def format(self, predictions: Any, index: int, example: Any) -> dict[str, Any]:
        masks = predictions[index]
        return {"fills": masks, "filled": _filled(example.text, masks)}


def _filled(text: str, masks: list[list[dict]]) -> str:
    """The line with each mask token replaced by its best fill, in order."""
    for fills in masks:
        for token in ("[MASK]", "<mask>"):
            if token in text:
                text = text.replace(token, fills[0]["token"] if fills else token, 1)
                break
    return text


def _text_records(path: str, fmt: str) -> Iterator[Record]:
    """Records of a text file (a document per line, or per blank-line-separated paragraph) or of
    any table format the other tasks read (`data.text_column` names the text)."""
    from bertcli.data.readers import detect_format, iter_records

    records = iter_records(path)
    if detect_format(path) != "text" or fmt == "lines":
        return (r for r in records if not _blank(r))
    return _paragraphs(records)


def _blank(record: Record) -> bool:
    text = record[1].get("text")
    return isinstance(text, str) and not text.strip()


def _paragraphs(records: Iterable[Record]) -> Iterator[Record]:
    lines: list[str] = []
    where = ""
    for location, record in records:
        line = record["text"]
        if line.strip():
            where = where or location
            lines.append(line.strip())
        elif lines:
            yield where, {"text": " ".join(lines)}
            lines, where = [], ""
    if lines:
        yield where, {"text": " ".join(lines)}


def _documents(records: Sequence[Record], data: DataConfig) -> list[Document]:
    """Texts of records (labels ignored); a tagging file's word lists are joined with spaces."""
    docs = []
    column = None
    for location, record in records:
        column = column or pick_column(data.text_column, record, location, "data.text_column")
        value = record.get(column)  # type: ignore[arg-type]
        if value is None:
            raise DataError(f"{location}: field {column!r} is missing or empty")
        text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        docs.append(Document(clean_text(text, data.clean), location))
    return docs
