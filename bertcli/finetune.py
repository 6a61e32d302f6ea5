"""`bertcli.finetune(config)`: recipe config in, fine-tuned model directory out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bertcli.compiling import compile_model, pad_multiple, use_compile
from bertcli.config import RunConfig, TrainConfig, dump_config
from bertcli.console import info, is_main_process
from bertcli.data.splits import Prepared, load_data
from bertcli.errors import ConfigError, DataError
from bertcli.hub import ModelSource, resolve_model
from bertcli.last_run import remember_last_run
from bertcli.model_meta import model_meta
from bertcli.run_dir import RunDir, RunPlan
from bertcli.tasks import Task, get_task, task_from_config

METRICS_FILE = "metrics.json"


@dataclass
class FinetuneResult:
    output_dir: Path
    metrics: dict[str, Any]
    steps: int
    resumed: bool


def head_lr(config: RunConfig) -> float:
    """The head's learning rate: as set, else the task's multiple of the encoder's."""
    if config.train.head_lr is not None:
        return config.train.head_lr
    return config.train.lr * get_task(config.task).head_lr_factor


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

    from accelerate.utils import set_seed

    from bertcli.modeling.model import save_model
    from bertcli.train import Trainer, checkpoint_dirs

    accelerator = _accelerator(config)
    set_seed(config.train.seed)
    model, tokenizer = _build_model(config, source, data.label_names)
    if config.train.gradient_checkpointing:
        _checkpoint_activations(model.hf)
    device_type = accelerator.device.type
    compiled = use_compile(config.train.compile, device_type)
    if compiled:
        compile_model(model)
    task = task_from_config(config, data.label_names)
    _set_class_weights(config, model, data)
    train_windows = task.windows(tokenizer, data.train)
    eval_windows = task.windows(tokenizer, data.validation)

    # Everything has been checked: only now may an earlier run's files go.
    run.start(plan, dump_config(config))
    from bertcli.trackers import start as start_trackers  # after run.start may clear the folder

    start_trackers(accelerator, config.name, config.to_dict())
    accelerator.wait_for_everyone()
    resuming = plan.resume

    def save_best(unwrapped: Any, path: Path, metrics: dict[str, Any]) -> None:
        save_model(
            unwrapped, tokenizer, path, model_meta(config, source, task, data.label_names, metrics)
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
        pad_multiple=pad_multiple(config.train.pad_to_multiple_of, compiled, device_type),
    )
    if resuming:
        trainer.resume_from(checkpoint_dirs(out_dir)[-1])
    with _cpu_training_speedups(config.train, model, accelerator, compiled):
        state = trainer.state if trainer.state.finished else trainer.train()

    accelerator.wait_for_everyone()
    metrics: dict[str, Any] = {}
    if accelerator.is_main_process:
        metrics = _finalize(config, source, data, task, tokenizer, model, state, accelerator)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        remember_last_run(out_dir)
    return FinetuneResult(out_dir, metrics, state.step, resuming)


@contextmanager
def _cpu_training_speedups(
    cfg: TrainConfig, model: Any, accelerator: Any, compiled: bool
) -> Iterator[None]:
    """train.byte_dropout and train.fp32_attention: eager CPU training only (a compiled model
    gets inductor's own kernels; a GPU's dropout and bf16 attention are fast already)."""
    if accelerator.device.type != "cpu" or compiled:
        yield
        return
    from bertcli.modeling.cpu_attention import fp32_training_attention
    from bertcli.modeling.dropout import use_byte_dropout

    if cfg.byte_dropout:
        use_byte_dropout(model)
    fp32 = cfg.fp32_attention and accelerator.mixed_precision == "bf16"
    with fp32_training_attention() if fp32 else nullcontext():
        yield


def _checkpoint_activations(hf_model: Any) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them."""
    # transformers 5 renamed it (the old name warns until v6); non-reentrant checkpointing
    # works with inputs that need no gradient and under torch.compile.
    enable = getattr(hf_model, "activation_checkpointing_enable", None)
    if enable is None:
        enable = hf_model.gradient_checkpointing_enable
    enable({"use_reentrant": False})


def _set_class_weights(config: RunConfig, model: Any, data: Prepared) -> None:
    """train.class_weights into the model's loss, said on stderr (and kept in metrics)."""
    import torch

    from bertcli.class_weights import resolve_class_weights

    names = data.label_names
    counts = get_task(config.task).label_counts(data.train, len(names))
    weights = resolve_class_weights(config.train.class_weights, counts, names)
    if weights is not None:
        model.class_weights = torch.tensor(weights, dtype=torch.float32)
        shown = ", ".join(f"{n} {w:.3g}" for n, w in zip(names, weights, strict=True))
        info(f"class weights: {shown}")


def _accelerator(config: RunConfig) -> Any:
    """CUDA when present, else the CPU, at the recipe's precision (auto: bf16 where fast)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    from bertcli.precision import resolve_precision
    from bertcli.trackers import accelerator_options

    # One process may fine-tune several times (--seeds, notebooks, tests): accelerate keeps the
    # first run's precision for the process and refuses another, so its per-run state is dropped
    # here. The process group (PartialState) stays, so `accelerate launch` runs are unaffected.
    AcceleratorState._reset_state(reset_partial_state=False)
    device_type = "cuda" if _cuda() else "cpu"
    return Accelerator(
        mixed_precision=resolve_precision(config.train.precision, device_type),
        gradient_accumulation_steps=config.train.grad_accum,
        cpu=device_type == "cpu",
        **accelerator_options(config.train.report_to, config.output_dir),  # --report-to
    )


def _build_model(config: RunConfig, source: ModelSource, label_names: list[str]) -> Any:
    """The pretrained encoder with the task's fresh head (options from the task's section)."""
    from bertcli.modeling.model import build_model

    task = get_task(config.task)
    settings = asdict(getattr(config, task.section))
    model, tokenizer = build_model(
        source.path,
        label_names,
        task=config.task,
        dropout=config.model.dropout,
        attention_dropout=config.model.attention_dropout,
        local_files_only=source.local_files_only,
        **task.head_options(config.model.pooling, settings),
    )
    positions = model.traits.max_length  # RoBERTa-style: max_position_embeddings - 2
    if positions and config.train.max_length > positions:
        raise ConfigError(
            f"train.max_length: {config.train.max_length} exceeds the {positions} tokens "
            f"{config.model.name} can hold",
            f"use --max-length {positions} or less",
        )
    return model, tokenizer


def _finalize(
    config: RunConfig,
    source: ModelSource,
    data: Prepared,
    task: Task,
    tokenizer: Any,
    model: Any,
    state: Any,
    accelerator: Any,
) -> dict[str, Any]:
    """Score the best model on validation (and test), then write it as the run's final model."""
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
        "train_tokens": state.tokens,
        "train_tokens_per_second": round(state.tokens / max(state.train_seconds, 1e-9), 1),
        "peak_memory_mb": peak_memory_mb(accelerator.device),
        "precision": precision,
    }
    weights = accelerator.unwrap_model(model).class_weights
    if weights is not None:  # the run summary says what the loss weighed
        metrics["class_weights"] = dict(zip(data.label_names, weights.tolist(), strict=True))
    logits_fn = partial(
        window_logits,
        final_model,
        pad_id=tokenizer.pad_token_id or 0,
        batch_size=config.train.eval_batch_size,
        device=accelerator.device,
        precision=precision,
    )
    predictions: dict[str, Any] = {}  # kept for the report's error table
    metrics.update(_score(config, data, task, tokenizer, logits_fn, predictions))
    meta = model_meta(config, source, task, data.label_names, metrics)
    save_model(final_model, tokenizer, out_dir, meta)
    write_json_atomic(out_dir / METRICS_FILE, metrics)
    info(f"[green]saved[/] model to {out_dir}")
    from bertcli.run_extras import finish_run

    finish_run(config, source, data, task, predictions, metrics, accelerator)
    return metrics


def _score(
    config: RunConfig,
    data: Prepared,
    task: Task,
    tokenizer: Any,
    logits_fn: Any,
    predictions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validation and test metrics; what validation tunes (QA's threshold) applies to test."""
    from bertcli.evaluation import evaluate_examples

    metrics: dict[str, Any] = {}
    for split, examples in (("validation", data.validation), ("test", data.test)):
        if examples:
            metrics[split] = evaluate_examples(
                logits_fn,
                tokenizer,
                task,
                examples,
                title=f"{config.name} {split}",
                on_predictions=None
                if predictions is None
                else partial(predictions.__setitem__, split),
            )
            if split == "validation":
                task.adopt(metrics[split])
    return metrics


def peak_memory_mb(device: Any) -> float:
    """The most memory training held: allocated GPU memory on CUDA, else the process's peak RSS
    (model, data and Python included)."""
    import torch

    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
