"""`bertcli.finetune(config)`: recipe config in, fine-tuned model directory out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bertcli import __version__
from bertcli.config import RunConfig, dump_config
from bertcli.console import info, is_main_process, notice
from bertcli.data.load import (
    Example,
    Split,
    carve_validation,
    check_label_spread,
    infer_label_names,
    load_split,
    looks_like_file,
    raw_labels,
    to_examples,
)
from bertcli.data.readers import iter_records
from bertcli.data.tagging import iter_tagging_records, tag_names, to_tagged_examples
from bertcli.errors import ConfigError, DataError
from bertcli.hub import ModelSource, resolve_model
from bertcli.last_run import remember_last_run
from bertcli.run_dir import RunDir, RunPlan

METRICS_FILE = "metrics.json"


@dataclass
class FinetuneResult:
    output_dir: Path
    metrics: dict[str, Any]
    steps: int
    resumed: bool


@dataclass
class Prepared:
    label_names: list[str]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    sources: dict[str, str]


def load_data(config: RunConfig) -> Prepared:
    """All splits as examples; a validation split is carved from train when none is given."""
    reader, label_names, convert = _task_data(config)
    train_split = load_split(config, "train", reader)
    if train_split is None:
        raise DataError(
            f"{config.name}: no training data",
            "pass --train FILE, or set data.dataset and data.train in the recipe",
        )
    if not train_split.records:
        raise DataError(f"{train_split.origin}: no training rows")
    records = train_split.records
    if config.data.max_train_samples:
        records = records[: config.data.max_train_samples]
    names = label_names(records, train_split)
    if config.task != "qa" and len(names) < 2:  # QA answers are spans, not labels
        raise DataError(
            f"{train_split.origin}: found {len(names)} label(s) ({', '.join(names)}); "
            "need at least 2",
            f"check data.label_column ({config.data.label_column!r})",
        )
    train = convert(train_split, records, names)
    check_label_spread(train, names, train_split.origin)
    if config.task == "qa":
        _check_answerable(config, train)
    sources = {"train": train_split.origin}
    valid_split = _optional_split(config, "validation", reader)
    if valid_split is not None:
        validation = convert(valid_split, _cap(valid_split.records, config), names)
        sources["validation"] = valid_split.origin
    else:
        train, validation = carve_validation(
            train, config.data.validation_fraction, config.train.seed
        )
        sources["validation"] = f"{config.data.validation_fraction:.0%} of train (seeded)"
    if config.task == "qa":
        from bertcli.data.squad import with_negatives

        train = with_negatives(train, config.qa.negatives, config.train.seed)
    test_split = _optional_split(config, "test", reader)
    test = convert(test_split, _cap(test_split.records, config), names) if test_split else []
    if test_split:
        sources["test"] = test_split.origin
    return Prepared(names, train, validation, test, sources)


def _task_data(config: RunConfig) -> tuple[Any, Any, Any]:
    """How this task reads a split's files, finds its label set, and turns records to examples."""
    if config.task == "qa":
        return _qa_data(config)
    if config.task == "tagging":
        return (
            iter_tagging_records,
            lambda records, split: tag_names(records, config.data, split.label_names),
            lambda split, records, names: to_tagged_examples(
                records, config.data, names, declared=split.label_names
            ),
        )
    return (
        iter_records,
        lambda records, split: infer_label_names(
            raw_labels(records, config.data), config.data.label_names, split.label_names
        ),
        lambda split, records, names: to_examples(records, config.data, names),
    )


def _qa_data(config: RunConfig) -> tuple[Any, Any, Any]:
    """SQuAD JSON/JSONL files (read whole, answers checked) or hub rows, as QA examples."""
    from bertcli.data.squad import QAExample, QAReport, read_squad, records_to_examples

    mode = config.qa.on_mismatch

    def checked(report: QAReport, origin: str) -> list[QAExample]:
        if report.notice():
            notice(f"{origin}: {report.notice()}")
        return report.examples

    def read(path: str) -> list:
        return [(e.location, e) for e in checked(read_squad(path, mode), path)]  # type: ignore[arg-type]

    def convert(split: Split, records: list, names: list[str]) -> list:
        if records and isinstance(records[0][1], QAExample):
            return [e for _, e in records]
        rows = [r for _, r in records]  # hub rows, checked here
        return checked(records_to_examples(rows, split.origin, mode), split.origin)  # type: ignore[arg-type]

    return read, lambda records, split: [], convert


def _check_answerable(config: RunConfig, train: list) -> None:
    if config.qa.version_2:
        return
    unanswerable = next((e for e in train if e.impossible), None)
    if unanswerable is not None:
        raise DataError(
            f"{unanswerable.location}: question has no answer",
            "set qa.version_2: true (SQuAD v2) to train on unanswerable questions",
        )


def _optional_split(config: RunConfig, split: str, reader: Any) -> Split | None:
    """Validation and test may be skipped when only the hub has them and it is unreachable."""
    try:
        return load_split(config, split, reader)
    except DataError as exc:
        if looks_like_file(getattr(config.data, split) or ""):
            raise
        what = "carving validation from train" if split == "validation" else "no test scores"
        notice(f"{split} split unavailable ({exc.message}); {what} (pass --{split} FILE)")
        return None


def _cap(records: list, config: RunConfig) -> list:
    return records[: config.data.max_eval_samples] if config.data.max_eval_samples else records


def _versions() -> dict[str, str]:
    import accelerate
    import torch
    import transformers

    return {
        "bertcli": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
    }


def model_meta(
    config: RunConfig,
    source: ModelSource,
    labels: list[str],
    metrics: dict[str, Any],
    null_threshold: float | None = None,
) -> dict[str, Any]:
    """bertcli.json: everything eval/predict need to rebuild the task around the saved model."""
    return {
        "format": 1,
        "task": config.task,
        "labels": labels,
        "max_length": config.train.max_length,
        "pooling": config.model.pooling,
        "clean": config.data.clean,
        "text_column": config.data.text_column,
        "pair_column": config.data.pair_column,
        "long_inputs": asdict(config.long_inputs.fitted(config.train.max_length)),
        "tagging": asdict(config.tagging) if config.task == "tagging" else None,
        "qa": {**asdict(config.qa), "null_threshold": null_threshold}
        if config.task == "qa"
        else None,
        "recipe": config.name,
        "base_model": {"requested": source.requested, "origin": source.origin, "path": source.path},
        "metrics": metrics,
        "config": config.to_dict(),
        "versions": _versions(),
    }


def make_task(config: RunConfig, label_names: list[str]) -> Any:
    """The task object for a recipe, built from its own config section."""
    from bertcli.tasks import TASK_TYPES

    task = TASK_TYPES[config.task]
    settings = asdict(getattr(config, task.section))
    return task.build(label_names, config.train.max_length, settings)


def head_lr(config: RunConfig) -> float:
    """The head's learning rate: as set, else 20x the encoder's for tagging heads."""
    if config.train.head_lr is not None:
        return config.train.head_lr
    return config.train.lr * (20 if config.task == "tagging" else 1)


def finetune(
    config: RunConfig, *, resume: bool | None = None, overwrite: bool = False
) -> FinetuneResult:
    """Fine-tune `config.model.name` on the recipe's data; resumes from checkpoints when present."""
    out_dir = config.output_dir
    with RunDir(out_dir, owner=is_main_process()) as run:
        plan = run.plan(config, resume, overwrite)
        return _run(config, run, plan)


def _run(config: RunConfig, run: RunDir, plan: RunPlan) -> FinetuneResult:
    """Load and check everything, then (only then) prepare the folder and train."""
    out_dir = config.output_dir
    source = resolve_model(config.model.name, fallback=config.model.offline_fallback)
    data = load_data(config)
    if not data.train or not data.validation:
        raise DataError(f"{data.sources['train']}: too few rows to train and validate")
    info(
        f"model {source.requested} ({source.origin}: {source.path}); "
        f"{len(data.train)} train / {len(data.validation)} validation / {len(data.test)} test "
        "examples" + (f"; labels {', '.join(data.label_names)}" if data.label_names else "")
    )

    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from bertcli.modeling.model import build_model, save_model
    from bertcli.precision import resolve_precision
    from bertcli.train import Trainer, checkpoint_dirs

    device_type = "cuda" if _cuda() else "cpu"
    precision = resolve_precision(config.train.precision, device_type)
    accelerator = Accelerator(
        mixed_precision=precision,
        gradient_accumulation_steps=config.train.grad_accum,
        cpu=device_type == "cpu",
    )
    set_seed(config.train.seed)
    model, tokenizer = build_model(
        source.path,
        data.label_names,
        task=config.task,
        crf=config.task == "tagging" and config.tagging.head == "crf",
        bio_constraints=config.tagging.bio_constraints,
        pooling=config.model.pooling,
        dropout=config.model.dropout,
        attention_dropout=config.model.attention_dropout,
        local_files_only=source.local_files_only,
    )
    positions = model.traits.max_length  # RoBERTa-style: max_position_embeddings - 2
    if positions and config.train.max_length > positions:
        raise ConfigError(
            f"train.max_length: {config.train.max_length} exceeds the {positions} tokens "
            f"{source.requested} can hold",
            f"use --max-length {positions} or less",
        )
    task = make_task(config, data.label_names)
    train_windows = task.windows(tokenizer, data.train)
    eval_windows = task.windows(tokenizer, data.validation)

    # Everything has been checked: only now may an earlier run's files go.
    run.start(plan, dump_config(config))
    accelerator.wait_for_everyone()
    resuming = plan.resume

    def save_best(unwrapped: Any, path: Path, metrics: dict[str, Any]) -> None:
        save_model(
            unwrapped,
            tokenizer,
            path,
            model_meta(config, source, data.label_names, metrics, metrics.get("null_threshold")),
        )

    trainer = Trainer(
        accelerator=accelerator,
        task=task,
        model=model,
        pad_id=tokenizer.pad_token_id or 0,
        train_windows=train_windows,
        eval_windows=eval_windows,
        eval_examples=data.validation,
        cfg=config.train,
        out_dir=out_dir,
        save_best=save_best,
        head_lr=head_lr(config),
    )
    if resuming:
        trainer.resume_from(checkpoint_dirs(out_dir)[-1])
    state = trainer.state if trainer.state.finished else trainer.train()

    accelerator.wait_for_everyone()
    metrics: dict[str, Any] = {}
    if accelerator.is_main_process:
        metrics = _finalize(config, source, data, task, tokenizer, model, state, accelerator)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        remember_last_run(out_dir)
    return FinetuneResult(out_dir, metrics, state.step, resuming)


def _finalize(
    config: RunConfig,
    source: ModelSource,
    data: Prepared,
    task: Any,
    tokenizer: Any,
    model: Any,
    state: Any,
    accelerator: Any,
) -> dict[str, Any]:
    """Score the best model on validation (and test), then write it as the run's final model."""
    from bertcli.evaluation import evaluate_examples
    from bertcli.infer import window_logits
    from bertcli.modeling.model import load_model, save_model, write_json_atomic

    out_dir = config.output_dir
    best = out_dir / "checkpoints" / "best"
    final_model = load_model(best)[0] if best.is_dir() else accelerator.unwrap_model(model)
    final_model.to(accelerator.device)  # a reloaded best model starts on the CPU
    task.bind(final_model)
    precision = accelerator.mixed_precision
    metrics: dict[str, Any] = {
        "best_step": state.best_step,
        "steps": state.step,
        "train_samples": state.samples,
        "train_seconds": round(state.train_seconds, 2),
        "train_samples_per_second": round(state.samples / max(state.train_seconds, 1e-9), 3),
        "precision": precision,
    }
    logits_fn = partial(
        window_logits,
        final_model,
        pad_id=tokenizer.pad_token_id or 0,
        batch_size=config.train.eval_batch_size,
        device=accelerator.device,
        precision=precision,
    )
    for split, examples in (("validation", data.validation), ("test", data.test)):
        if examples:
            metrics[split] = evaluate_examples(
                logits_fn, tokenizer, task, examples, title=f"{config.name} {split}"
            )
            if split == "validation" and "null_threshold" in metrics[split]:
                # SQuAD v2: the threshold tuned on validation is applied to test and saved.
                task.null_threshold = metrics[split]["null_threshold"]
    threshold = getattr(task, "null_threshold", None)
    meta = model_meta(config, source, data.label_names, metrics, threshold)
    save_model(final_model, tokenizer, out_dir, meta)
    write_json_atomic(out_dir / METRICS_FILE, metrics)
    info(f"[green]saved[/] fine-tuned model to {out_dir}")
    return metrics


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
