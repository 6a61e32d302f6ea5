"""Speed settings a user can see: padded batch shapes, train.compile, fused AdamW, token counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertcli.compiling import _missing_toolchain, pad_multiple, use_compile
from bertcli.config import TrainConfig
from bertcli.data.collate import Collator
from bertcli.data.windows import Windows
from bertcli.errors import ConfigError
from bertcli.optim import make_optimizer
from tests.conftest import sentiment_rows, write_csv


def windows(lengths: list[int], token_labels: bool = False) -> Windows:
    ids = [[101, *range(1000, 1000 + n - 2), 102] for n in lengths]
    labels = [[0] * n for n in lengths] if token_labels else [0] * len(lengths)
    return Windows(
        input_ids=ids,
        token_type_ids=[[0] * n for n in lengths],
        labels=labels,
        example_index=list(range(len(lengths))),
    )


@pytest.mark.parametrize(
    ("lengths", "multiple", "limit", "width"),
    [
        ([30, 12], 1, None, 30),  # plain dynamic padding
        ([30, 12], 64, 100, 64),
        ([70, 12], 64, 100, 100),  # rounding up would pass max_length: stop there
        ([64], 64, 100, 64),
        ([9], 8, None, 16),
    ],
)
def test_batches_pad_to_a_multiple_but_never_past_max_length(
    lengths: list[int], multiple: int, limit: int | None, width: int
) -> None:
    w = windows(lengths, token_labels=True)
    batch = Collator(w, pad_id=0, multiple=multiple, limit=limit)(list(range(len(lengths))))
    assert batch["input_ids"].shape == (len(lengths), width)
    assert batch["labels"].shape == (len(lengths), width), "token labels padded alike"
    assert batch["attention_mask"].sum(1).tolist() == lengths, "padding is masked out"
    assert (batch["labels"][0, lengths[0] :] == -100).all()


def test_pad_multiple_defaults() -> None:
    assert pad_multiple(None, compiled=True, device_type="cpu") == 64
    assert pad_multiple(None, compiled=False, device_type="cuda") == 8
    assert pad_multiple(None, compiled=False, device_type="cpu") == 1
    assert pad_multiple(16, compiled=True, device_type="cuda") == 16


def test_compile_auto_is_off_where_it_measured_slower() -> None:
    assert use_compile("auto", "cpu") is False
    assert use_compile("auto", "cuda") is False
    assert use_compile(False, "cuda") is False


def test_compile_true_without_a_compiler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import bertcli.compiling

    monkeypatch.setattr(bertcli.compiling.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match=r"train\.compile: .*C\+\+ compiler") as info:
        use_compile(True, "cpu")
    assert "train.compile=false" in (info.value.hint or "")


def test_compile_and_pad_settings_are_validated() -> None:
    from bertcli.config import load_config

    with pytest.raises(ConfigError, match=r"train\.compile"):
        load_config(None, {"train.compile": "sometimes"})
    with pytest.raises(ConfigError, match=r"train\.pad_to_multiple_of"):
        load_config(None, {"train.pad_to_multiple_of": 0})
    assert load_config(None, {"train.compile": "true"}).train.compile is True
    assert load_config(None, {}).train.compile == "auto"


def test_fused_adamw_is_asked_for_only_when_wanted(tiny_model_dir: Path) -> None:
    model = torch.nn.Linear(4, 2)
    assert make_optimizer(model, TrainConfig(), fused=True).defaults["fused"] is True
    assert not make_optimizer(model, TrainConfig()).defaults["fused"]


def test_metrics_count_the_real_tokens_trained_on(
    tiny_model_dir: Path, tiny_tokenizer, tmp_path: Path, run_config
) -> None:
    """One epoch over a known train file: train_tokens is the sum of its encoded lengths, however
    the batches were padded (here to multiples of 64)."""
    from bertcli.console import configure
    from bertcli.finetune import finetune

    rows = sentiment_rows(24)
    train = write_csv(tmp_path / "train.csv", rows, ("text", "label"))
    valid = write_csv(tmp_path / "valid.csv", sentiment_rows(8, seed=1), ("text", "label"))
    config = run_config(
        tiny_model_dir,
        train,
        tmp_path / "out",
        {
            "data.validation": str(valid),
            "train.max_steps": None,
            "train.epochs": 1,
            "train.pad_to_multiple_of": 64,
            "train.max_length": 100,
        },
    )
    configure(quiet=True)
    try:
        finetune(config)
    finally:
        configure(quiet=False)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected = sum(len(tiny_tokenizer(text)["input_ids"]) for text, _ in rows)
    assert metrics["train_tokens"] == expected
    assert metrics["train_tokens_per_second"] > 0
    assert metrics["peak_memory_mb"] > 0


@pytest.mark.skipif(
    _missing_toolchain("cpu") is not None, reason="torch.compile on a CPU needs a C++ compiler"
)
def test_compiled_training_matches_eager_and_saves_plain_weights(
    tiny_model_dir: Path, tmp_path: Path, run_config
) -> None:
    """train.compile=true trains the same model as eager (same losses within float error) and
    writes a model folder without torch.compile's wrapper names in its weights. Dropout is off:
    compiled kernels draw their dropout masks differently."""
    import shutil

    from safetensors import safe_open

    from bertcli.console import configure
    from bertcli.finetune import finetune

    model_dir = tmp_path / "no-dropout"
    shutil.copytree(tiny_model_dir, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["hidden_dropout_prob"] = 0.0
    (model_dir / "config.json").write_text(json.dumps(config))
    train = write_csv(tmp_path / "train.csv", sentiment_rows(24), ("text", "label"))
    losses = {}
    for compiled in (False, True):
        out = tmp_path / f"compiled-{compiled}"
        settings = {"train.max_steps": 6, "train.log_steps": 2, "train.compile": compiled}
        configure(quiet=True)
        try:
            finetune(run_config(model_dir, train, out, settings))
        finally:
            configure(quiet=False)
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        losses[compiled] = [r["loss"] for r in log if "loss" in r]
        with safe_open(str(out / "model.safetensors"), "pt") as f:
            assert not any("_orig_mod" in k for k in f.keys())  # noqa: SIM118
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_token_count_survives_ctrl_c_between_log_lines(
    tiny_model_dir: Path, tmp_path: Path, run_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens are read every log_steps; Ctrl-C in between must still put the finished steps'
    tokens into the checkpoint, so a resumed run reports what an uninterrupted one does."""
    from bertcli.console import configure
    from bertcli.finetune import finetune
    from bertcli.train import Interrupted
    from tests.unit.test_training import interrupt_at_forward

    train = write_csv(tmp_path / "train.csv", sentiment_rows(40), ("text", "label"))
    settings = {"train.max_steps": 12, "train.log_steps": 4, "train.save_steps": 100}
    configure(quiet=True)
    try:
        finetune(run_config(tiny_model_dir, train, tmp_path / "straight", settings))
        config = run_config(tiny_model_dir, train, tmp_path / "resumed", settings)
        with monkeypatch.context() as patch:
            interrupt_at_forward(patch, 11)  # steps 9 and 10 not yet read
            with pytest.raises(Interrupted):
                finetune(config)
        finetune(config)
    finally:
        configure(quiet=False)

    def tokens(name: str) -> int:
        return json.loads((tmp_path / name / "metrics.json").read_text())["train_tokens"]

    assert tokens("resumed") == tokens("straight") > 0


@pytest.mark.skipif(
    _missing_toolchain("cpu") is not None, reason="torch.compile on a CPU needs a C++ compiler"
)
def test_compiled_prediction_gives_the_same_answers(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    from bertcli.predict import predict_records

    texts = [row[0] for row in sentiment_rows(12, seed=3)]
    source = tmp_path / "reviews.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")

    def run(compile_: bool) -> list[dict]:
        lines = predict_records(source, trained_model_dir, precision="no", compile=compile_)
        return [json.loads(line) for line in lines]

    eager, compiled = run(False), run(True)
    assert [r["label"] for r in compiled] == [r["label"] for r in eager]
    for a, b in zip(eager, compiled, strict=True):
        assert b["score"] == pytest.approx(a["score"], abs=1e-4)


def test_predict_compile_on_an_onnx_export_exits_2(
    trained_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from typer.testing import CliRunner

    from bertcli.cli import app
    from bertcli.predictor import ONNX_FILE

    export = tmp_path / "onnx"
    shutil.copytree(trained_model_dir, export, ignore=shutil.ignore_patterns("checkpoints"))
    meta = json.loads((export / "bertcli.json").read_text())
    (export / "bertcli.json").write_text(json.dumps({**meta, "runtime": "onnx"}))
    (export / ONNX_FILE).write_bytes(b"")
    monkeypatch.setenv("COLUMNS", "500")  # the error on one line, however wide the terminal
    result = CliRunner().invoke(app, ["predict", "--model", str(export), "--compile", "-"], "good")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--compile" in errors[0] and "ONNX export" in errors[0]


def test_a_cpu_run_updates_with_fused_adamw(tiny_model_dir: Path, tmp_path: Path, run_config):
    """One kernel per update instead of a dozen per parameter: 0.074 -> 0.017 s per MiniLM step
    on an AMX CPU. The checkpoint's optimizer settings say which AdamW ran."""
    from bertcli.console import configure
    from bertcli.finetune import finetune

    train = write_csv(tmp_path / "train.csv", sentiment_rows(24), ("text", "label"))
    config = run_config(
        tiny_model_dir, train, tmp_path / "out", {"train.max_steps": 4, "train.save_steps": 4}
    )
    configure(quiet=True)
    try:
        finetune(config)
    finally:
        configure(quiet=False)
    (saved,) = (tmp_path / "out" / "checkpoints").glob("step-*/optimizer.json")
    groups = json.loads(saved.read_text())["param_groups"]
    assert groups and all(group["fused"] is True for group in groups)


def test_bf16_prediction_runs_the_encoder_in_bf16_and_keeps_fp32_labels(
    trained_model_dir: Path,
) -> None:
    """bf16 predict casts the encoder's weights (faster than autocast over fp32 weights on a
    CPU), keeps the task's head in fp32, and predicts what fp32 does."""
    from bertcli.data.load import Example
    from bertcli.infer import Predictor

    reviews = ["this movie was great", "an awful film , really terrible", "boring story .", ""]
    texts = [Example(t) for t in reviews]
    fp32 = Predictor(trained_model_dir, precision="no").predict_examples(texts).probs
    predictor = Predictor(trained_model_dir, precision="bf16")
    assert {p.dtype for p in predictor.model.hf.base_model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in predictor.model.head_parameters()} == {torch.float32}
    bf16 = predictor.predict_examples(texts).probs
    assert bf16.dtype == fp32.dtype
    assert (bf16.argmax(-1) == fp32.argmax(-1)).all()
    assert abs(bf16 - fp32).max() < 0.05
