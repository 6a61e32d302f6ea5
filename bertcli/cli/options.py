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


LongInputsOpt = Annotated[
    LongInputs | None,
    typer.Option(
        "--long-inputs",
        help="Texts longer than max_length: keep the head, the tail, head+tail, or chunk into "
        "overlapping windows. eval/predict default: as trained.",
    ),
]
AggregateOpt = Annotated[
    Aggregate | None, typer.Option(help="chunk: pool window logits per text by mean or max.")
]
BatchSizeOpt = Annotated[
    int | None, typer.Option(min=1, help="Windows per batch (default: 64 PyTorch, 16 ONNX).")
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
    int | None, typer.Option(min=0, help="chunk: at most N windows per text (0: no limit).")
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
