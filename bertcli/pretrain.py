"""`bertcli.pretrain(...)`: a recipe's training text (or text files) in, a masked-LM directory out.

Pre-training is fine-tuning with the `masked_lm` task: the same data lookup, training loop,
checkpoints and output folder. This module only turns a recipe into a pre-training config: its
data source, model and hyper-parameters stay; its labels, test split and task settings go.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertcli.config import (
    RunConfig,
    apply_overrides,
    build,
    check_recipe_keys,
    find_recipe,
    parse_override,
    read_recipe,
)
from bertcli.errors import ConfigError
from bertcli.finetune import FinetuneResult, finetune
from bertcli.tasks.masked_lm import MaskedLMTask

# What a recipe keeps for pre-training: where its text comes from, the model, the loop.
KEPT_DATA = (
    "dataset", "subset", "train", "validation", "text_column", "clean", "validation_fraction",
    "max_train_samples", "max_eval_samples",
)  # fmt: skip
DROPPED_TRAIN = ("metric", "head_lr", "output_dir")


def pretrain_config(
    recipe: str | None,
    text_files: Sequence[str] = (),
    overrides: dict[str, Any] | None = None,
    sets: Sequence[str] = (),
) -> RunConfig:
    """The masked-LM config of a recipe and/or text files (`--text`), then overrides."""
    if not recipe and not text_files:
        raise ConfigError(
            "pretrain: no text to train on",
            "name a recipe (bertcli pretrain imdb) or pass --text FILE",
        )
    data: dict[str, Any] = {}
    if recipe:
        path = find_recipe(recipe)
        full = read_recipe(path)
        check_recipe_keys(path, full)
        data = {
            "name": full.get("name", path.stem),
            "data": {k: v for k, v in (full.get("data") or {}).items() if k in KEPT_DATA},
            "model": full.get("model") or {},
            "train": {k: v for k, v in (full.get("train") or {}).items() if k not in DROPPED_TRAIN},
        }
        data["mlm"] = {"text_files": list(text_files)}
    else:
        data = {
            "name": Path(text_files[0]).stem,
            "data": {"train": text_files[0]},
            "mlm": {"text_files": list(text_files[1:])},
        }
    data["task"] = MaskedLMTask.name
    data.setdefault("train", {})["output_dir"] = f"runs/{data['name']}-mlm"
    merged = dict(overrides or {})
    for text in sets:
        key, value = parse_override(text)
        merged[key] = value
    apply_overrides(data, merged)
    return build(RunConfig, data)


def pretrain(
    config: RunConfig, *, resume: bool | None = None, overwrite: bool = False
) -> FinetuneResult:
    """Masked-LM training of `config` (see `pretrain_config`): a Hugging Face masked-LM folder."""
    if config.task != MaskedLMTask.name:
        raise ConfigError(f"task: pretrain trains {MaskedLMTask.name}, not {config.task!r}")
    return finetune(config, resume=resume, overwrite=overwrite)
