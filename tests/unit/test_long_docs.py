"""Long documents as one example: attention pooling over windows, and QA normalised across them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import sentiment_rows, tiny_run_config, write_csv
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.console import configure
from bertcli.data.collate import EpochBatches
from bertcli.data.load import Example
from bertcli.errors import ConfigError
from bertcli.finetune import finetune
from bertcli.infer import Predictor
from bertcli.modeling.heads import global_span_loss
from bertcli.tasks.classification import ClassificationTask

ATTENTION = {
    "long_inputs.strategy": "chunk",
    "long_inputs.aggregate": "attention",
    "long_inputs.stride": 4,
    "long_inputs.max_windows": 3,
    "train.max_length": 16,
}


def quietly(config):
    configure(quiet=True)
    try:
        return finetune(config)
    finally:
        configure(quiet=False)


@pytest.fixture(scope="module")
def attention_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model trained with attention pooling on reviews of several 16-token windows."""
    root = tmp_path_factory.mktemp("attention")
    rows = [(f"{text} {text} {text}", label) for text, label in sentiment_rows()]
    train = write_csv(root / "train.csv", rows, ("text", "label"))
    result = quietly(tiny_run_config(tiny_model_dir, train, root / "model", ATTENTION))
    assert result.metrics["validation"]["accuracy"] >= 0.8, result.metrics["validation"]
    return root / "model"


LONG_REVIEW = "the plot was dull and slow . " * 3 + "but the acting was wonderful and great ."


def test_attention_pooling_equals_a_hand_computation(attention_model: Path) -> None:
    """softmax(v . tanh(W h_cls + b) + c) over the windows weighs the windows' pooled [CLS]
    vectors; the classifier of their weighted sum gives the document's logits."""
    predictor = Predictor(attention_model, precision="no")
    example = Example(LONG_REVIEW, None, None, "hand")
    windows = predictor.task.windows(predictor.tokenizer, [example])
    assert len(windows) >= 3
    model = predictor.model
    bert, scorer = model.hf.bert, model.scorer
    vectors, scores = [], []
    with torch.no_grad():
        for ids, types in zip(windows.input_ids, windows.token_type_ids, strict=True):
            hidden = bert(
                input_ids=torch.tensor([ids]), token_type_ids=torch.tensor([types])
            ).last_hidden_state[0]
            vectors.append(bert.pooler.activation(bert.pooler.dense(hidden[0])))
            score = scorer.score.weight[0] @ torch.tanh(
                scorer.dense.weight @ hidden[0] + scorer.dense.bias
            )
            scores.append(float(score + scorer.score.bias[0]))
        weights = np.exp(np.array(scores) - max(scores))
        weights /= weights.sum()
        document = sum(float(w) * v for w, v in zip(weights, vectors, strict=True))
        logits = (model.hf.classifier.weight @ document + model.hf.classifier.bias).numpy()

    predictions = predictor.predict_examples([example])
    np.testing.assert_allclose(predictions.logits[0], logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predictions.weights[0], weights, rtol=1e-4, atol=1e-6)
    row = predictor.task.format(predictions, 0, example)
    assert row["window_weights"] == pytest.approx(weights.tolist(), abs=1e-5)
    assert row["windows"] == len(windows)


def test_a_document_split_across_batches_predicts_as_one(attention_model: Path) -> None:
    examples = [Example(LONG_REVIEW, None, None, "a"), Example("great fun", None, None, "b")]
    whole = Predictor(attention_model, precision="no", batch_size=64).predict_examples(examples)
    split = Predictor(attention_model, precision="no", batch_size=1).predict_examples(examples)
    np.testing.assert_allclose(split.probs, whole.probs, rtol=1e-5)
    for a, b in zip(split.weights, whole.weights, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    assert [len(w) for w in whole.weights] == whole.windows  # every window, none capped


def test_a_document_longer_than_a_batch_trains_as_one_example() -> None:
    """Its windows stay in one step (never split between batches); max_windows caps how many,
    a random choice drawn again each epoch."""
    groups = [[0, 1, 2, 3, 4], [5], [6, 7]]
    lengths = [16] * 8
    seen = []
    for epoch in range(3):
        sampler = EpochBatches(
            lengths, 2, shuffle=True, group_by_length=True, seed=0, groups=groups, group_limit=3
        )
        sampler.set_epoch(epoch)
        batches = sampler.batches()
        assert len(sampler) == len(batches)
        long = next(b for b in batches if set(b) & set(groups[0]))
        assert len(long) == 3 and long == sorted(long) and set(long) <= set(groups[0])
        assert sorted(i for b in batches for i in b if i >= 5) == [5, 6, 7]
        seen.append(tuple(long))
    assert len(set(seen)) > 1  # a fresh draw per epoch

    # Long and short documents share batches: batches sorted by document size (long ones
    # together, a few per step) trained attention pooling 7 points worse on long reviews.
    groups = [list(range(4 * i, 4 * i + 4)) for i in range(4)] + [[i] for i in range(16, 32)]
    sampler = EpochBatches([16] * 32, 8, shuffle=True, group_by_length=True, seed=0, groups=groups)
    assert any(min(b) < 16 <= max(b) for b in sampler.batches())

    # The loss pools each document's windows wherever they sit in the batch.
    model = SimpleNamespace(scorer=object(), class_weights=None)  # what the loss reads
    logits = torch.tensor([[1.0, -1.0, 0.5], [0.0, 2.0, -0.5], [3.0, 1.0, 2.0], [0.5, 0.5, 1.0]])
    labels = torch.tensor([[0, 7], [1, 3], [0, 7], [1, 3]])
    loss = ClassificationTask.loss(model, logits, labels)
    expected = []
    for rows, label in (([0, 2], 0), ([1, 3], 1)):
        w = torch.softmax(logits[rows, 2], 0)
        pooled = (w[:, None] * logits[rows, :2]).sum(0)
        expected.append(-torch.log_softmax(pooled, 0)[label])
    # ... plus every window's own loss against its document's label.
    windows = torch.nn.functional.cross_entropy(logits[:, :2], labels[:, 0])
    assert float(loss) == pytest.approx(float(sum(expected) / 2 + windows), rel=1e-6)
    shuffled = ClassificationTask.loss(model, logits[[3, 0, 1, 2]], labels[[3, 0, 1, 2]])
    assert float(shuffled) == pytest.approx(float(loss), rel=1e-6)


def test_attention_settings_are_checked(attention_model: Path, tiny_model_dir: Path) -> None:
    from bertcli.config import load_config

    with pytest.raises(ConfigError, match="strategy: chunk"):
        load_config(None, {"long_inputs.aggregate": "attention"})
    with pytest.raises(ConfigError, match="single-label classification"):
        load_config(None, {"task": "regression", **ATTENTION})
    with pytest.raises(ConfigError, match="trained with --aggregate attention"):
        Predictor(attention_model, long_inputs={"aggregate": "mean"})
    result = CliRunner().invoke(
        app, ["predict", "--model", str(attention_model), "--aggregate", "max", "-"], input="ok\n"
    )
    assert result.exit_code == 2 and "leave --aggregate out" in result.output
    assert "Traceback" not in result.output


def brute_force_loss(logits: torch.Tensor, labels: torch.Tensor, ranker: bool) -> float:
    """Per question: concatenate its windows' real positions, one log-softmax over them."""
    total, ranked, questions = 0.0, [], sorted(set(labels[:, 2].tolist()))
    for question in questions:
        rows = [i for i in range(len(labels)) if labels[i, 2] == question]
        holds = [i for i in rows if labels[i, 0] > 0]
        for channel in (0, 1):
            flat, targets, offset = [], [], 0
            for i in rows:
                n = int(labels[i, 3])
                flat += logits[i, :n, channel].tolist()
                if i in holds or not holds:
                    targets.append(offset + int(labels[i, channel]))
                offset += n
            log_p = np.array(flat) - np.log(np.exp(flat).sum())
            total -= math.log(sum(math.exp(log_p[t]) for t in targets)) / 2
        if ranker and holds:
            rank = np.array([float(logits[i, 0, 2]) for i in rows])
            p = np.exp(rank) / np.exp(rank).sum()
            ranked.append(-math.log(sum(p[rows.index(i)] for i in holds)))
    loss = total / len(questions)
    return loss + (sum(ranked) / len(ranked) if ranked else 0.0)


@pytest.mark.parametrize("ranker", [False, True])
def test_the_global_softmax_equals_a_brute_force_softmax(ranker: bool) -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 9, 3 if ranker else 2) * 3
    logits[..., 2:] = logits[:, :1, 2:]  # the ranker's score is the window's, at every position
    # (start, end, question, length): question 4 is answered in windows 0 and 3 (the overlap),
    # question 9's answer is in no window (its [CLS]s are the target).
    labels = torch.tensor([[2, 3, 4, 9], [0, 0, 9, 6], [0, 0, 4, 7], [5, 6, 4, 8], [0, 0, 9, 9]])
    loss = global_span_loss(logits, labels, ranker=ranker)
    assert float(loss) == pytest.approx(brute_force_loss(logits, labels, ranker), rel=1e-5)
    # Padding never counts: what lies past a window's length changes nothing.
    padded = logits.clone()
    padded[1, 6:] = 50.0
    assert float(global_span_loss(padded, labels, ranker=ranker)) == pytest.approx(float(loss))
    # bf16 logits (autocast on a CPU or GPU) give the float32 loss of the same values.
    half = logits.bfloat16()
    assert global_span_loss(half, labels, ranker=ranker).dtype == torch.float32
    expected = global_span_loss(half.float(), labels, ranker=ranker)
    assert float(global_span_loss(half, labels, ranker=ranker)) == pytest.approx(float(expected))


@pytest.fixture(scope="module")
def global_norm_qa(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny QA model trained with global normalisation and the ranker, on questions whose
    paragraphs are also joined to others (qa.negatives)."""
    from test_qa_run import squad_file

    root = tmp_path_factory.mktemp("global-qa")
    settings = {
        "task": "qa",
        "data.validation": str(squad_file(root / "dev.json", 40, 1)),
        "train.max_length": 48,
        "train.max_steps": 200,
        "train.batch_size": 16,
        "qa.stride": 8,
        "qa.max_question_tokens": 12,
        "qa.negatives": 0.5,
        "qa.global_norm": True,
        "qa.ranker": True,
    }
    train = squad_file(root / "train.json", 200, 0)
    result = quietly(tiny_run_config(tiny_model_dir, train, root / "model", settings))
    assert result.metrics["validation"]["f1"] >= 60.0, result.metrics["validation"]
    return root / "model"


def test_an_answer_in_the_last_of_60_windows_wins_with_global_norm(global_norm_qa: Path) -> None:
    """Only the last of 60+ windows holds the answer; its span wins, and the ranker puts that
    window first."""
    from test_qa_run import FILLER

    from bertcli.data.squad import QAExample
    from bertcli.predict import answer_question

    context = FILLER * 150 + "carol lives in lima ."
    predictor = Predictor(global_norm_qa, precision="no")
    example = QAExample("", "where does carol live ?", context, [], [], "test")
    windows = predictor.task.windows(predictor.tokenizer, [example])
    assert len(windows) >= 60
    ranks = [float(window[0, 2]) for window in predictor.window_logits(windows)]
    assert int(np.argmax(ranks)) == len(windows) - 1
    answer = json.loads(answer_question(global_norm_qa, "where does carol live ?", context))
    assert answer["answer"] == "lima"
    assert context[answer["start"] : answer["end"]] == "lima"


def test_predict_reports_window_weights_and_onnx_pools_them_the_same(
    attention_model: Path, tmp_path: Path
) -> None:
    """The ONNX graph scores each window (logits + attention score); numpy pools them, like a
    CRF's Viterbi, so an export needs no torch and says the same as the PyTorch model."""
    from bertcli.export import export_model
    from bertcli.predict import predict_records

    source = tmp_path / "reviews.txt"
    source.write_text(f"{LONG_REVIEW}\ngreat fun\n", encoding="utf-8")
    rows = [json.loads(line) for line in predict_records(source, attention_model, precision="no")]
    assert [len(r["window_weights"]) for r in rows] == [r["windows"] for r in rows]
    assert rows[0]["windows"] >= 3 and rows[1]["window_weights"] == [1.0]
    assert sum(rows[0]["window_weights"]) == pytest.approx(1.0, abs=1e-5)

    configure(quiet=True)
    try:
        export_model(attention_model, tmp_path / "onnx", fmt="onnx")
    finally:
        configure(quiet=False)
    exported = [json.loads(line) for line in predict_records(source, tmp_path / "onnx")]
    for torch_row, onnx_row in zip(rows, exported, strict=True):
        assert onnx_row["label"] == torch_row["label"]
        assert onnx_row["score"] == pytest.approx(torch_row["score"], abs=1e-4)
        assert onnx_row["window_weights"] == pytest.approx(torch_row["window_weights"], abs=1e-4)


def test_a_ranked_qa_model_exports_to_onnx(global_norm_qa: Path, tmp_path: Path) -> None:
    from bertcli.export import export_model
    from bertcli.predict import answer_question

    configure(quiet=True)
    try:
        export_model(global_norm_qa, tmp_path / "onnx", fmt="onnx")
    finally:
        configure(quiet=False)
    context = "the film was good . " * 40 + "dave lives in berlin ."
    for model in (global_norm_qa, tmp_path / "onnx"):
        answer = json.loads(answer_question(model, "where does dave live ?", context))
        assert answer["answer"] == "berlin"


def test_gradient_checkpointing_recomputes_and_trains_the_same(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.gradient_checkpointing runs each layer again in the backward pass (one extra
    forward per training step) and gives the same losses."""
    import bertcli.finetune

    build, calls = bertcli.finetune._build_model, []

    def counting_build(*args, **kwargs):
        model, tokenizer = build(*args, **kwargs)
        layer = model.hf.bert.encoder.layer[0].intermediate  # a hook inside the checkpoint
        layer.register_forward_hook(lambda *_: calls.append(1))
        return model, tokenizer

    monkeypatch.setattr(bertcli.finetune, "_build_model", counting_build)
    rows = [(f"{text} {text}", label) for text, label in sentiment_rows(24)]
    train = write_csv(tmp_path / "train.csv", rows, ("text", "label"))
    losses, forwards = {}, {}
    for checkpointing in (False, True):
        out = tmp_path / f"checkpointing-{checkpointing}"
        settings = {**ATTENTION, "train.max_steps": 6, "train.log_steps": 2,
                    "train.gradient_checkpointing": checkpointing}  # fmt: skip
        calls.clear()
        quietly(tiny_run_config(tiny_model_dir, train, out, settings))
        forwards[checkpointing] = len(calls)
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        losses[checkpointing] = [r["loss"] for r in log if "loss" in r]
    assert forwards[True] - forwards[False] == 6
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)
