"""`bertcli export`: a fine-tuned model as a Hugging Face directory or ONNX (optionally int8).

An ONNX export checks itself before it is kept: the exported graph and the PyTorch model run on the
same sample windows, and the largest logit difference and the label agreement must stay within
tolerance. Everything is written to a staging folder and renamed into place at the end.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertcli.console import info
from bertcli.data.windows import Windows, _template
from bertcli.errors import BertcliError, ModelError
from bertcli.modeling.traits import ModelTraits, debug
from bertcli.predictor import ONNX_FILE
from bertcli.run_dir import pid_alive
from bertcli.tasks import HEAD_FILE, saved_task, task_from_meta

FORMATS = ("hf", "onnx")
QUANTIZATIONS = ("int8", "int8-static")
CHECK_TEXTS = 64
# The 99.999th percentile is a tail statistic: on 128 IMDb reviews, label agreement with fp32 swung
# from 98.5% to 99.6% with the choice of reviews; from 256 on it held at 99.0-99.2%.
CALIBRATION_TEXTS = 256
# fp32 ONNX must reproduce PyTorch to float rounding; int8 trades exact logits for speed, so only
# its decisions are held to a bar.
FP32_MAX_DIFF = 1e-3
INT8_MIN_AGREEMENT = 0.9
HF_FILES_SKIP = {"checkpoints", "train_log.jsonl", "config.yaml"}


@dataclass
class ExportReport:
    output: str
    format: str
    quantize: str | None
    samples: int = 0
    max_abs_diff: float | None = None
    label_agreement: float | None = None
    checked_on: str = ""
    size_mb: float = 0.0
    fused: bool = False


def sample_windows(tokenizer: Any, max_length: int, n: int = 64, seed: int = 0) -> Windows:
    """Deterministic windows of varied lengths from the vocabulary, pairs included, laid out by
    the tokenizer's own template ([CLS] a [SEP] b [SEP], <s> a </s></s> b </s>, ...)."""
    rng = random.Random(seed)
    specials = set(tokenizer.all_special_ids)
    vocab = [i for i in range(len(tokenizer)) if i not in specials]
    template = _template(tokenizer)
    windows = Windows()
    for i in range(n):
        pair = i % 4 == 3  # every 4th a sentence pair
        length = rng.randint(1, max_length - template.specials(pair))
        first = [rng.choice(vocab) for _ in range(length)]
        if pair and length > 4:
            cut = length // 2
            ids, types = template.build(first[:cut], first[cut:])
        else:
            ids, types = template.build(first[: max_length - template.specials(False)], None)
        windows.add(ids, types, i, None)
    return windows


def _export_onnx(model: Any, path: Path, max_length: int, token_level: bool = False) -> None:
    import torch

    class Logits(torch.nn.Module):
        """Positional inputs and a single output: what the ONNX graph's signature should be."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids, attention_mask, token_type_ids)

    # Traced as eager attention (explicit matmul/softmax): ONNX Runtime recognises that pattern
    # and fuses it into one Attention op; the SDPA trace stays a chain of small ops (30% slower).
    if hasattr(model.hf, "set_attn_implementation"):
        model.hf.set_attn_implementation("eager")
    wrapper = Logits(model).eval()
    ids = torch.ones((2, min(16, max_length)), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, -4:] = 0  # trace the padding path too
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    with torch.no_grad():
        # Token-level heads score every position (span heads every pair of positions): each
        # axis between the batch and the labels grows with the sequence.
        ndim = wrapper(ids, mask, torch.zeros_like(ids)).ndim if token_level else 2
    sequence_axes = {axis: "sequence" for axis in range(1, ndim - 1)}
    with torch.no_grad(), warnings.catch_warnings():
        # Tracer and deprecation warnings concern shapes we do not vary (encoder-only masks).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (ids, mask, torch.zeros_like(ids)),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch", **sequence_axes}},
            opset_version=17,
            dynamo=False,
        )


def _optimize(path: Path, config: Any, traits: ModelTraits) -> bool:
    """Fuse attention, LayerNorm and GELU with ONNX Runtime's transformer optimizer, in place.

    Only BERT-style graphs are fused; anything the optimizer cannot handle keeps the plain graph
    (the export self-check judges whichever graph is kept).
    """
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    if not traits.onnx_fusable or not heads:
        debug(f"{traits.model_type}: onnxruntime cannot fuse this graph; kept unfused")
        return False
    try:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        options = FusionOptions("bert")
        # onnxruntime's CPU SkipLayerNormalization ran 0.94 ms against 0.30 ms for Add + Add +
        # LayerNormalization (4 x 256 x 384, 2 threads): residual and bias stay separate adds
        # (and the session is told not to fuse them back; see onnx_runtime.py).
        options.enable_skip_layer_norm = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimized = optimize_model(
                str(path),
                model_type="bert",
                num_heads=int(heads),
                hidden_size=int(hidden),
                optimization_options=options,
            )
        fused = path.with_suffix(".fused.onnx")
        optimized.save_model_to_file(str(fused))
    except Exception:  # an optimizer failure costs speed, not correctness
        return False
    os.replace(fused, path)
    return True


def _quantize(path: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    # onnxruntime logs "consider pre-processing" on the root logger: advice for static CNNs.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        # Per-channel weight scales (per-tensor flipped 4.5% of IMDb labels, per-channel 1.5%),
        # and only the matrix products (MatMul and fused Attention): quantizing the embedding
        # lookups as well costs another 0.5% of labels for no speed.
        quantize_dynamic(
            str(path),
            str(quantized),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            # Fused ops live in the com.microsoft domain, where shape inference gives no types.
            extra_options={"DefaultTensorType": 1},  # FLOAT
        )
    finally:
        root.setLevel(level)
    os.replace(quantized, path)


def _quantize_static(path: Path, feeds: Iterable[dict[str, np.ndarray]]) -> None:
    """Static int8: the dynamic graph with activation scales calibrated on `feeds`."""
    from bertcli.onnx_static import calibrate, make_static

    ranges = calibrate(path, feeds)
    _quantize(path)
    make_static(path, ranges)


def calibration_feeds(
    tokenizer: Any, meta: dict[str, Any], model_dir: str | Path, check_data: str | Path | None
) -> Iterator[dict[str, np.ndarray]]:
    """Padded batches of up to CALIBRATION_TEXTS texts of the training file (else of
    `check_data`), after the first CHECK_TEXTS that the self-check reads when the two files are
    the same. The texts are read (and a missing file reported) now; the batches, with a progress
    bar, as they are consumed."""
    from bertcli.console import progress
    from bertcli.data.batching import pad_windows, sorted_batches

    train = _training_file(meta)
    source = train if train and Path(train).is_file() else check_data
    if not source:
        raise BertcliError(
            f"{model_dir}: static int8 calibrates on real texts, and the model's training file "
            f"({train or 'not recorded'}) is not there",
            "pass --check-data FILE with texts like the ones it will see, or use --quantize int8",
        )
    windows, texts = _read_windows(tokenizer, meta, source, CALIBRATION_TEXTS, skip=CHECK_TEXTS)
    pad = tokenizer.pad_token_id or 0
    batches = sorted_batches(windows.lengths(), 16)
    info(f"calibrating int8 activation scales on {texts} texts of {source}")

    def feeds() -> Iterator[dict[str, np.ndarray]]:
        with progress() as bar:
            task = bar.add_task("calibrating", total=len(batches))
            for batch in batches:
                yield pad_windows(windows, batch, pad)
                bar.advance(task)

    return feeds()


def check_windows(
    tokenizer: Any, meta: dict[str, Any], check_data: str | Path | None, n: int = CHECK_TEXTS
) -> tuple[Windows, str]:
    """Windows to compare runtimes on: real texts (`check_data`, else the model's training file)
    when readable, else random token windows. int8 decisions are only meaningful on real text:
    random tokens sit near the decision boundary, where tiny logit changes flip labels.
    """
    from bertcli.errors import DataError

    source = check_data or _training_file(meta)
    if source and Path(source).is_file():
        try:
            return _read_windows(tokenizer, meta, source, n)[0], str(source)
        except DataError:
            if check_data:
                raise
    return sample_windows(tokenizer, int(meta["max_length"]), n), "random token windows"


def _training_file(meta: dict[str, Any]) -> str | None:
    return meta.get("config", {}).get("data", {}).get("train")


def _read_windows(
    tokenizer: Any, meta: dict[str, Any], source: str | Path, n: int, skip: int = 0
) -> tuple[Windows, int]:
    """The windows of `n` texts of `source` after its first `skip` (all of them when it holds
    no more than `skip`), and how many texts that is."""
    from bertcli.predictor import input_columns, task_from_meta

    task = task_from_meta(meta, None)
    examples = task.read_file(
        source, input_columns(meta), meta.get("labels"), with_labels=False, limit=skip + n
    )
    examples = examples[skip:] or examples
    return task.windows(tokenizer, examples), len(examples)


def _flat(logits: Any) -> np.ndarray:
    if isinstance(logits, list):
        return np.concatenate([window.ravel() for window in logits])
    return np.asarray(logits).ravel()


def _check(
    report: ExportReport, model: Any, tokenizer: Any, staging: Path, meta: dict, check_data: Any
) -> None:
    from bertcli.infer import window_logits
    from bertcli.onnx_runtime import OnnxPredictor

    windows, report.checked_on = check_windows(tokenizer, meta, check_data)
    expected = window_logits(model, windows, pad_id=tokenizer.pad_token_id or 0)
    got = OnnxPredictor(staging).window_logits(windows)
    report.samples = len(windows)
    # What each runtime decides (labels, tags, answer starts and ends) must mostly agree.
    decisions = task_from_meta(meta, None, staging).decisions
    report.max_abs_diff = float(np.abs(_flat(expected) - _flat(got)).max())
    report.label_agreement = float((decisions(expected) == decisions(got)).mean())
    if report.quantize is None and report.max_abs_diff > FP32_MAX_DIFF:
        raise ModelError(
            f"ONNX export differs from PyTorch by {report.max_abs_diff:.2e} "
            f"(tolerance {FP32_MAX_DIFF:.0e}); nothing was written"
        )
    if report.quantize and report.label_agreement < INT8_MIN_AGREEMENT:
        raise ModelError(
            f"int8 export agrees with PyTorch on only {report.label_agreement:.1%} of sample "
            f"inputs (needs {INT8_MIN_AGREEMENT:.0%}); nothing was written",
            "export without --quantize",
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_staging(output: Path) -> Path:
    """A fresh staging folder beside `output`, named after this process; the folders of
    exports whose process is gone (killed mid-export) are removed first."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        for old in output.parent.glob(f".{output.name}.export-*"):
            pid = old.name.rsplit(".export-", 1)[1].split("-", 1)[0]
            if not (pid.isdigit() and pid_alive(int(pid))):
                shutil.rmtree(old, ignore_errors=True)
        prefix = f".{output.name}.export-{os.getpid()}-"
        return Path(tempfile.mkdtemp(dir=output.parent, prefix=prefix))
    except OSError as exc:
        raise BertcliError(
            f"{output}: cannot write there ({exc.strerror})", "choose another --output"
        ) from None


def require_onnx() -> None:
    """ONNX export and ONNX predict need onnx and onnxruntime (part of the normal install)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise BertcliError(
            f"ONNX support needs {' and '.join(missing)}, which is not installed",
            "pip install 'onnx>=1.16' 'onnxruntime>=1.18'",
        )


def export_model(
    model_dir: str | Path,
    output: str | Path,
    *,
    fmt: str = "onnx",
    quantize: str | None = None,
    check_data: str | Path | None = None,
) -> ExportReport:
    """Write `model_dir` to `output` as `fmt` ("hf" or "onnx"), checked, atomically."""
    from bertcli.modeling.model import load_model, write_json_atomic

    if fmt not in FORMATS:
        raise BertcliError(f"unknown export format {fmt!r} (use {' or '.join(FORMATS)})")
    if quantize not in (None, *QUANTIZATIONS):
        raise BertcliError(f"unknown quantization {quantize!r} (use {' or '.join(QUANTIZATIONS)})")
    if quantize and fmt != "onnx":
        raise BertcliError(f"--quantize {quantize} needs --format onnx")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        what = "is a file" if not output.is_dir() else "exists and is not empty"
        raise BertcliError(f"{output} {what}", "choose another --output")
    if fmt == "onnx":
        require_onnx()
        from bertcli.predictor import read_meta

        task = saved_task(read_meta(model_dir), model_dir)
        if not task.exports_onnx:
            raise BertcliError(
                f"{model_dir}: a {task.name} model has no ONNX export",
                "it is a Hugging Face folder as it is: fine-tune from it "
                "(bertcli finetune RECIPE --model FOLDER) and export that",
            )
    model, tokenizer, meta = load_model(model_dir)
    report = ExportReport(str(output), fmt, quantize)
    staging = make_staging(output)
    try:
        if fmt == "hf":
            for item in Path(model_dir).iterdir():
                if item.name not in HF_FILES_SKIP and item.is_file():
                    shutil.copy2(item, staging / item.name)
        else:
            info(f"exporting {model_dir} to ONNX{f' ({quantize})' if quantize else ''}")
            token_level = saved_task(meta, model_dir).token_level
            _export_onnx(model, staging / ONNX_FILE, int(meta["max_length"]), token_level)
            report.fused = _optimize(staging / ONNX_FILE, model.config, model.traits)
            if quantize == "int8-static":
                feeds = calibration_feeds(tokenizer, meta, model_dir, check_data)
                _quantize_static(staging / ONNX_FILE, feeds)
            elif quantize:
                _quantize(staging / ONNX_FILE)
            tokenizer.save_pretrained(staging)
            shutil.copy2(Path(model_dir) / "config.json", staging / "config.json")
            if model.crf is not None:
                # The graph computes emission scores; Viterbi decodes with these transitions.
                shutil.copy2(Path(model_dir) / HEAD_FILE, staging / HEAD_FILE)
            meta = {**meta, "runtime": "onnx", "quantize": quantize}
            write_json_atomic(staging / "bertcli.json", meta)
            _check(report, model, tokenizer, staging, meta, check_data)
            meta["export"] = asdict(report)
            write_json_atomic(staging / "bertcli.json", meta)
        report.size_mb = sum(f.stat().st_size for f in staging.iterdir()) / 2**20
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; an export is for sharing
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report
