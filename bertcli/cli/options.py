"""Command-line options shared by several subcommands."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer


class Precision(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    no = "no"


PrecisionOpt = Annotated[
    Precision,
    typer.Option(help="auto picks bf16 on GPUs and on CPUs with AVX-512 BF16/AMX; no = fp32."),
]


class LongInputs(str, Enum):
    head = "head"
    tail = "tail"
    head_tail = "head+tail"
    chunk = "chunk"


class Aggregate(str, Enum):
    mean = "mean"
    max = "max"
    attention = "attention"


LongInputsOpt = Annotated[
    LongInputs | None,
    typer.Option(
        "--long-inputs",
        help="Texts longer than max_length: keep the head, the tail, head+tail, or chunk into "
        "overlapping windows. eval/predict default: as trained.",
    ),
]
AggregateOpt = Annotated[
    Aggregate | None,
    typer.Option(
        help="chunk: pool window logits per text by mean, max, or attention (learned window "
        "weights; a model trained with attention keeps it)."
    ),
]
BatchSizeOpt = Annotated[
    int | None, typer.Option(min=1, help="Windows per batch (default: 64 PyTorch, 4 ONNX).")
]
StrideOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Tokens shared by consecutive windows: of a long text (chunk), a long sentence "
        "(tagging) or a context (QA doc stride).",
    ),
]
MaxWindowsOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="chunk: at most N windows per text (0: no limit); attention: per text and "
        "training step (eval and predict read all).",
    ),
]


def long_input_settings(
    strategy: LongInputs | None,
    aggregate: Aggregate | None,
    stride: int | None,
    max_windows: int | None,
) -> dict[str, Any]:
    """The long-input flags the user gave, as `long_inputs` config keys."""
    given = {
        "strategy": strategy.value if strategy else None,
        "aggregate": aggregate.value if aggregate else None,
        "stride": stride,
        "max_windows": max_windows,
    }
    return {key: value for key, value in given.items() if value is not None}


# The training flags `finetune` and `pretrain` share.
ModelOpt = Annotated[
    str | None,
    typer.Option(help="Hub model name, local model directory, or 'minilm' (embedded)."),
]
EpochsOpt = Annotated[float | None, typer.Option(help="Training epochs.")]
MaxStepsOpt = Annotated[int | None, typer.Option(help="Stop after N optimizer steps.")]
BatchSizeOpt = Annotated[int | None, typer.Option(help="Examples per device per step.")]
LrOpt = Annotated[float | None, typer.Option(help="Peak learning rate.")]
MaxLengthOpt = Annotated[int | None, typer.Option(help="Tokens per window.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed.")]
TrainPrecisionOpt = Annotated[
    Precision | None,
    typer.Option(help="auto picks bf16 on GPUs and on CPUs with AVX-512 BF16/AMX."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any recipe key: dotted.key=value (repeatable)."),
]
ResumeOpt = Annotated[
    bool | None,
    typer.Option(
        "--resume/--no-resume",
        help="Resume from the last checkpoint (default: when the output dir has one).",
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option(help="Replace an earlier run in the output directory and start over.")
]


def training_overrides(**flags: Any) -> dict[str, Any]:
    """The shared training flags as dotted config keys (the ones given)."""
    keys = {
        "model": "model.name",
        "epochs": "train.epochs",
        "max_steps": "train.max_steps",
        "batch_size": "train.batch_size",
        "lr": "train.lr",
        "max_length": "train.max_length",
        "seed": "train.seed",
        "precision": "train.precision",
    }
    out = {keys[name]: value for name, value in flags.items() if value is not None}
    if "train.precision" in out:
        out["train.precision"] = out["train.precision"].value
    if flags.get("model"):
        # A model the user names is never swapped for the embedded one when offline.
        out["model.offline_fallback"] = False
    return out
