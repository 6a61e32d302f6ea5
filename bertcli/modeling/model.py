"""Encoder + task head; saved as a plain Hugging Face directory plus bertcli extras.

The model *is* a transformers task model (the task's `auto_class`, e.g.
`AutoModelForSequenceClassification` for [CLS] classification), so the saved directory loads as-is
in `transformers.pipeline`. bertcli-only parts - a mean-pooling head, a CRF - live in
`bertcli_head.safetensors` beside it, and bertcli.json says how to rebuild them. What the head is,
its logits and its loss are the task's to say (`bertcli.tasks`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from bertcli.config import DEFAULT_TASK
from bertcli.data.word_windows import IGNORE
from bertcli.errors import BertcliError, ModelError
from bertcli.jsonio import finite_json
from bertcli.modeling.crf import CRF
from bertcli.modeling.loading import load_pretrained, load_tokenizer, model_error
from bertcli.modeling.traits import ModelTraits, model_traits
from bertcli.predictor import META_FILE, read_meta
from bertcli.tasks import HEAD_FILE, get_task, head_file, saved_task


def _auto_class(task: str) -> Any:
    import transformers

    return getattr(transformers, get_task(task).auto_class)


class TaskModel(nn.Module):
    """A transformers task model plus optional bertcli extras (a head replacing the model's own,
    e.g. mean pooling; a CRF), as the task's `head_modules(**options)` makes them.

    `forward` returns the task's logits - (batch, labels) for classification, (batch, seq, labels)
    for tagging, (batch, seq, 2) start/end scores for QA - and, given `labels`, `(loss, logits)`:
    the loss is computed inside forward so that under DistributedDataParallel every parameter,
    the CRF's included, takes part in the wrapped call.
    """

    def __init__(self, hf_model: nn.Module, task: str = DEFAULT_TASK, **options: Any) -> None:
        super().__init__()
        self.hf = hf_model
        self.task = task
        self.kind = get_task(task)
        self.traits: ModelTraits = model_traits(hf_model)
        self.traits.report()
        if self.traits.native_pooling:
            # A family that pools itself (ModernBERT's classifier_pooling) needs no bertcli head.
            options = {**options, "pooling": "cls"}
        self.head: nn.Module | None
        self.crf: CRF | None
        self.head, self.crf = self.kind.head_modules(hf_model.config, **options)
        # A score per window beside the logits (attention pooling's weights, QA's ranker).
        self.scorer: nn.Module | None = self.kind.window_scorer(hf_model.config, **options)
        # Loss weight per label (train.class_weights); a buffer so it follows the model's device.
        self.class_weights: torch.Tensor | None
        self.register_buffer("class_weights", None, persistent=False)
        # Source weights saved back beside the model's own (see `carry_base_weights`).
        self.carried: dict[str, torch.Tensor] = {}

    def carry_base_weights(self, source: str | Path) -> None:
        """Keep the base-model tensors of `source` that this model has no place for, to save
        them with it: a masked-LM model has no pooler, yet a classifier fine-tuned from the
        saved folder should start from the pooler the source came with."""
        if not self.kind.carries_base_weights or not Path(source).is_dir():
            return
        from safetensors import safe_open

        prefix, have = self.hf.base_model_prefix + ".", set(self.hf.state_dict())
        for file in sorted(Path(source).glob("*.safetensors")):
            with safe_open(str(file), "pt") as weights:
                keys = list(weights.keys())
                bare = not any(k.startswith(prefix) for k in keys)  # a base model's own file
                for key in keys:
                    name = prefix + key if bare else key
                    if name.startswith(prefix) and name not in have:
                        self.carried[name] = weights.get_tensor(key).contiguous()

    @property
    def config(self) -> Any:
        return self.hf.config

    def extra_modules(self) -> tuple[tuple[str, nn.Module | None], ...]:
        """bertcli's own modules by the prefix of their keys in bertcli_head.safetensors."""
        return (("head.", self.head), ("crf.", self.crf), ("scorer.", self.scorer))

    def extras(self) -> dict[str, torch.Tensor]:
        """The state that transformers does not save: pooling head, CRF, window scorer."""
        state = {}
        for prefix, module in self.extra_modules():
            if module is not None:
                state.update({prefix + k: v.contiguous() for k, v in module.state_dict().items()})
        return state

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Everything outside the pretrained encoder: classifier, pooling head, CRF."""
        encoder = {id(p) for p in self.hf.base_model.parameters()}
        return (p for p in self.parameters() if id(p) not in encoder)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> Any:
        segments = {"token_type_ids": token_type_ids} if self.traits.takes_token_type_ids else {}
        if self.scorer is not None:
            segments["output_hidden_states"] = True
        if self.head is None:
            with self.kind.sparse_logits(self.hf, labels):
                out = self.hf(input_ids=input_ids, attention_mask=attention_mask, **segments)
            logits = self.kind.logits(out)  # (batch, labels), (batch, seq, labels|2)
            hidden = out.hidden_states[-1] if self.scorer is not None else None
        else:
            hidden = self.hf.base_model(
                input_ids=input_ids, attention_mask=attention_mask, **segments
            ).last_hidden_state  # (batch, seq, hidden)
            logits = self.head(hidden, attention_mask)
        if self.scorer is not None:
            # The window's score becomes the last channel, at every position of token-level
            # logits: one array per window still carries everything the task pools or ranks.
            score = self.scorer(hidden, attention_mask).to(logits.dtype)  # (batch, 1)
            shape = (score.shape[0],) + (1,) * (logits.ndim - 2) + (1,)
            logits = torch.cat((logits, score.view(shape).expand(*logits.shape[:-1], 1)), -1)
        if labels is None:
            return logits
        return self.loss(logits, labels), logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.kind.loss(self, logits, labels)


def first_pieces(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compact the labelled positions of each row to the front, for a CRF over words.

    (batch, seq, tags) emissions and (batch, seq) labels with IGNORE between words ->
    (batch, words, tags) emissions, (batch, words) tags and a prefix mask; one gather, no loop.
    """
    keep = labels != IGNORE
    # A stable sort of "not kept" puts kept positions first, in their original order.
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    width = max(int(keep.sum(1).max()), 1)
    order = order[:, :width]
    emissions = logits.gather(1, order.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    tags = labels.gather(1, order)
    mask = keep.gather(1, order)
    # A row without any labelled word (possible only for an empty window) still needs mask[:, 0].
    mask[:, 0] = True
    return emissions, tags.clamp(min=0), mask


def quiet_transformers() -> None:
    """bertcli draws its own progress; transformers' per-file bars would interleave with it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def build_model(
    path: str,
    label_names: Sequence[str],
    *,
    task: str = DEFAULT_TASK,
    dropout: float | None = None,
    attention_dropout: float | None = None,
    local_files_only: bool = True,
    **head_options: Any,
) -> tuple[TaskModel, Any]:
    """A pretrained encoder with a freshly initialised task head, and its tokenizer;
    `head_options` are the task's (see `Task.head_options`), e.g. `crf=True` for tagging."""
    from transformers import AutoConfig

    quiet_transformers()  # "Some weights were newly initialized" is expected: we train the head.
    tokenizer = load_tokenizer(path, local_files_only=local_files_only)
    try:
        config = AutoConfig.from_pretrained(
            str(path), local_files_only=local_files_only, trust_remote_code=False
        )
    except Exception as exc:  # same one-line errors as the model's own loading
        raise model_error(path, exc) from None
    # Dropout and pooling under the family's own config keys (DistilBERT and ModernBERT spell
    # them differently from BERT), set on the config: some keys are read but never declared.
    extra = ModelTraits.from_config(config).overrides(
        dropout=dropout,
        attention_dropout=attention_dropout,
        pooling=head_options.get("pooling", "cls"),
    )
    extra.update(get_task(task).head_config(label_names))
    for key, value in extra.items():
        setattr(config, key, value)
    hf_model = load_pretrained(
        _auto_class(task), path, local_files_only=local_files_only, config=config
    )
    model = TaskModel(hf_model, task, **head_options)
    model.carry_base_weights(path)
    return model, tokenizer


def model_options(meta: dict[str, Any]) -> dict[str, Any]:
    """TaskModel's constructor options as a saved bertcli.json records them."""
    task = saved_task(meta)
    settings = meta.get(task.section) or {}
    return {"task": task.name, **task.head_options(meta.get("pooling", "cls"), settings)}


def load_model(model_dir: str | Path) -> tuple[TaskModel, Any, dict[str, Any]]:
    """Load a directory written by `save_model` (or a checkpoint's model folder)."""
    from safetensors.torch import load_file

    meta = read_meta(model_dir)
    options = model_options(meta)
    quiet_transformers()
    tokenizer = load_tokenizer(model_dir)
    hf_model = load_pretrained(_auto_class(options["task"]), model_dir)
    labels = meta.get("labels") or []
    outputs = getattr(hf_model.config, "num_labels", None)
    if labels and outputs != len(labels):
        raise ModelError(
            f"{Path(model_dir) / META_FILE}: lists {len(labels)} labels but the model's head "
            f"(config.json) has {outputs} outputs",
            "the folder mixes files of two models: re-save or re-train it",
        )
    model = TaskModel(hf_model, **options)
    model.carry_base_weights(model_dir)
    expected = model.extras()
    if expected:
        head_path = head_file(model_dir, "mean-pooling head, CRF or window scorer")
        try:
            state = load_file(str(head_path))
        except (OSError, SafetensorError) as exc:
            raise ModelError(f"{head_path}: damaged or truncated ({exc})") from None
        if set(state) != set(expected):
            raise ModelError(f"{head_path}: does not match the model described in {META_FILE}")
        for prefix, module in model.extra_modules():
            if module is not None:
                module.load_state_dict(
                    {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                )
    model.eval()
    return model, tokenizer, meta


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename; NaN/Infinity become null (they are not
    JSON, and most readers refuse them)."""
    path = Path(path)
    if path.is_dir():
        raise BertcliError(f"{path}: is a folder; name a file to write the JSON to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise BertcliError(f"{path}: cannot write ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(finite_json(data), handle, indent=2, ensure_ascii=False, allow_nan=False)
        handle.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; model files are meant to be shared
    os.replace(tmp, path)


def save_model(model: TaskModel, tokenizer: Any, out_dir: Path, meta: dict[str, Any]) -> None:
    """Write model, tokenizer and bertcli.json into `out_dir` without ever leaving it half-written.

    Everything is written to a temporary sibling folder first, then moved file by file with atomic
    renames; bertcli.json goes last, so its presence marks a complete model.
    """
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".saving-"))
    try:
        model.hf.save_pretrained(staging, safe_serialization=True)
        _add_carried(model, staging / "model.safetensors")
        tokenizer.save_pretrained(staging)
        extras = model.extras()
        if extras:
            save_file(extras, str(staging / HEAD_FILE))
        write_json_atomic(staging / META_FILE, meta)
        publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, out_dir: Path) -> None:
    """Move a staged model into `out_dir` by atomic renames: the old bertcli.json goes first and
    the new one comes last, so its presence always marks a complete model."""
    (out_dir / META_FILE).unlink(missing_ok=True)
    for item in sorted(staging.iterdir(), key=lambda path: (path.name == META_FILE, path.name)):
        destination = out_dir / item.name
        if item.is_dir():
            shutil.rmtree(destination, ignore_errors=True)
        else:
            os.chmod(item, 0o644)
        os.replace(item, destination)


def _add_carried(model: TaskModel, weights: Path) -> None:
    """Write the model's carried source tensors into its (single-file) weights."""
    if not model.carried or not weights.is_file():
        return
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    save_file({**model.carried, **tensors}, str(weights), metadata={"format": "pt"})
