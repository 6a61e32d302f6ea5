"""Export: ONNX (fp32, int8) and HF directories match PyTorch, and predict runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.data.load import Example
from bertcli.data.windows import make_windows
from bertcli.errors import BertcliError
from bertcli.export import export_model
from bertcli.infer import Predictor
from bertcli.predictor import open_predictor
from bertcli.tokenizer import RustTokenizer

TEXTS = ["good great movie", "bad awful plot", "the film was good but the plot was bad", ""]


@pytest.fixture(scope="module")
def onnx_dir(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "onnx"
    report = export_model(trained_model_dir, out, fmt="onnx")
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-3
    assert report.label_agreement == 1.0
    return out


def test_onnx_predictions_match_pytorch(trained_model_dir: Path, onnx_dir: Path) -> None:
    examples = [Example(t) for t in TEXTS * 5]
    torch_probs = Predictor(trained_model_dir, precision="no").predict_examples(examples).probs
    onnx = open_predictor(onnx_dir, batch_size=3)
    assert type(onnx).__name__ == "OnnxPredictor"
    onnx_probs = onnx.predict_examples(examples).probs
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-5)
    meta = json.loads((onnx_dir / "bertcli.json").read_text())
    assert meta["runtime"] == "onnx" and meta["export"]["samples"] > 0


def test_onnx_predict_path_never_imports_torch(onnx_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    code = (
        "import sys; from bertcli.predict import predict_records; "
        f"lines = list(predict_records({str(source)!r}, {str(onnx_dir)!r})); "
        "print(len(lines), 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(TEXTS)), "False", "False"]


def test_cli_predict_from_onnx_dir_keeps_order(onnx_dir: Path, trained_model_dir: Path) -> None:
    text = "\n".join(TEXTS * 3) + "\n"
    runner = CliRunner()
    a = runner.invoke(app, ["predict", "--model", str(onnx_dir), "-"], input=text)
    b = runner.invoke(
        app, ["predict", "--model", str(trained_model_dir), "--precision", "no", "-"], input=text
    )
    assert a.exit_code == 0 and b.exit_code == 0
    got = [json.loads(x) for x in a.stdout.splitlines()]
    want = [json.loads(x) for x in b.stdout.splitlines()]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    assert [g["score"] for g in got] == pytest.approx([w["score"] for w in want], abs=1e-4)


def test_fused_onnx_keeps_layer_norm_apart_from_the_residual_add(onnx_dir: Path) -> None:
    # onnxruntime's CPU SkipLayerNormalization is 3x slower than Add + LayerNormalization.
    import onnx

    meta = json.loads((onnx_dir / "bertcli.json").read_text())
    graph = {node.op_type for node in onnx.load(str(onnx_dir / "model.onnx")).graph.node}
    assert meta["export"]["fused"] and "Attention" in graph
    assert "LayerNormalization" in graph and "SkipLayerNormalization" not in graph


def test_int8_export_is_smaller_and_agrees(trained_model_dir: Path, onnx_dir: Path, tmp_path):
    report = export_model(trained_model_dir, tmp_path / "int8", fmt="onnx", quantize="int8")
    assert report.label_agreement is not None and report.label_agreement >= 0.9
    assert (tmp_path / "int8" / "model.onnx").stat().st_size < (
        onnx_dir / "model.onnx"
    ).stat().st_size


def test_hf_export_holds_the_model_without_training_state(trained_model_dir: Path, tmp_path):
    out = tmp_path / "hf"
    export_model(trained_model_dir, out, fmt="hf")
    assert (out / "model.safetensors").is_file() and (out / "bertcli.json").is_file()
    assert not (out / "checkpoints").exists()
    probs = Predictor(out, precision="no").predict_examples([Example(TEXTS[0])]).probs
    base = Predictor(trained_model_dir, precision="no").predict_examples([Example(TEXTS[0])]).probs
    np.testing.assert_allclose(probs, base)


def test_export_refuses_a_non_empty_output(trained_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(BertcliError, match="not empty"):
        export_model(trained_model_dir, tmp_path / "x", fmt="onnx")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_partial_or_corrupt_export_gives_a_clear_error(onnx_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(onnx_dir, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    missing = tmp_path / "missing"
    shutil.copytree(onnx_dir, missing)
    (missing / "model.onnx").unlink()
    runner = CliRunner()
    for path, message in ((broken, "cannot load"), (missing, "incomplete ONNX export")):
        result = runner.invoke(app, ["predict", "--model", str(path), "-"], input="good\n")
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("strategy", ["head", "tail", "head+tail", "chunk"])
def test_torch_free_tokenizer_builds_identical_windows(
    tiny_tokenizer, trained_model_dir: Path, strategy: str
) -> None:
    rust = RustTokenizer(trained_model_dir)
    texts = ["good movie " * 30, "bad", "great plot and awful film " * 9]
    pairs = ["the plot", "good", "a film"]
    for p in (None, pairs):
        kwargs = {"max_length": 16, "strategy": strategy, "stride": 3, "max_windows": 0}
        a = make_windows(tiny_tokenizer, texts, p, **kwargs)
        b = make_windows(rust, texts, p, **kwargs)
        assert a.input_ids == b.input_ids
        assert a.token_type_ids == b.token_type_ids
        assert a.example_index == b.example_index
    assert rust.pad_token_id == tiny_tokenizer.pad_token_id
