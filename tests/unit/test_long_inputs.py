"""Long inputs: truncation strategies, chunked windows and per-document aggregation end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bertcli.config import ConfigError, load_config
from bertcli.data.load import Example
from bertcli.data.windows import make_windows, select_tokens
from bertcli.infer import Predictor
from bertcli.predict import predict_records


def words(n: int, start: int = 0) -> str:
    # Distinct numbers tokenize into predictable pieces in the tiny vocab: digits only.
    return " ".join(str(i % 10) for i in range(start, start + n))


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("head", list(range(0, 6))),
        ("tail", list(range(14, 20))),
        ("head+tail", [0, 1, 2, *range(17, 20)]),
    ],
)
def test_select_tokens_keeps_the_right_tokens(strategy: str, expected: list[int]) -> None:
    assert select_tokens(list(range(20)), 6, strategy, head_tokens=3) == expected


def test_select_tokens_leaves_short_inputs_alone() -> None:
    for strategy in ("head", "tail", "head+tail"):
        assert select_tokens([1, 2, 3], 6, strategy, head_tokens=2) == [1, 2, 3]


def test_head_tail_window_holds_first_and_last_tokens(tiny_tokenizer) -> None:
    text = words(40)
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    w = make_windows(tiny_tokenizer, [text], max_length=12, strategy="head+tail", head_tokens=4)
    window = w.input_ids[0]
    assert len(window) == 12
    assert window[0] == tiny_tokenizer.cls_token_id and window[-1] == tiny_tokenizer.sep_token_id
    assert window[1:-1] == ids[:4] + ids[-6:]


def test_truncation_strategies_keep_the_pair_whole(tiny_tokenizer) -> None:
    pair = "good movie"
    pair_ids = tiny_tokenizer(pair, add_special_tokens=False)["input_ids"]
    for strategy in ("head", "tail", "head+tail"):
        w = make_windows(tiny_tokenizer, [words(50)], [pair], max_length=16, strategy=strategy)
        ids, types = w.input_ids[0], w.token_type_ids[0]
        assert len(ids) == 16
        assert ids[-len(pair_ids) - 1 : -1] == pair_ids
        assert types[-len(pair_ids) - 1 :] == [1] * (len(pair_ids) + 1)


def test_chunk_strategy_respects_max_windows_zero_as_unlimited(tiny_tokenizer) -> None:
    text = words(200)
    capped = make_windows(tiny_tokenizer, [text], max_length=16, strategy="chunk", stride=4,
                          max_windows=3)  # fmt: skip
    free = make_windows(tiny_tokenizer, [text], max_length=16, strategy="chunk", stride=4,
                        max_windows=0)  # fmt: skip
    assert len(capped) == 3
    assert len(free) > 3
    assert free.input_ids[:3] == capped.input_ids


def test_long_inputs_config_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"long_inputs\.strategy"):
        load_config(None, {"long_inputs.strategy": "middle"})
    with pytest.raises(ConfigError, match=r"long_inputs\.stride"):
        load_config(None, {"long_inputs.strategy": "chunk", "long_inputs.stride": 300})


def test_document_aggregation_equals_hand_computation(trained_model_dir: Path) -> None:
    """Pooled probabilities equal softmax(mean/max of each window's logits), computed by hand."""
    docs = [words(90), "good great movie", words(60, start=3)]
    for aggregate in ("mean", "max"):
        predictor = Predictor(
            trained_model_dir,
            precision="no",
            batch_size=2,  # windows of one document land in different batches
            long_inputs={
                "strategy": "chunk",
                "stride": 8,
                "max_windows": 0,
                "aggregate": aggregate,
            },
        )
        task = predictor.task
        windows = task.windows(predictor.tokenizer, [Example(d) for d in docs])
        assert windows.windows_per_example(3)[0] > 2
        scored = predictor.predict_examples([Example(d) for d in docs])
        probs, counts = scored.probs, scored.windows
        model = predictor.model
        for doc in range(3):
            own = [i for i, e in enumerate(windows.example_index) if e == doc]
            logits = []
            for i in own:
                ids = torch.tensor([windows.input_ids[i]])
                types = torch.tensor([windows.token_type_ids[i]])
                with torch.no_grad():
                    logits.append(model(ids, torch.ones_like(ids), types)[0])
            stacked = torch.stack(logits)
            pooled = stacked.mean(0) if aggregate == "mean" else stacked.max(0).values
            calibrated = (pooled / (task.temperature or 1.0)).softmax(-1).numpy()
            np.testing.assert_allclose(probs[doc], calibrated, atol=1e-5, rtol=1e-4)
            assert counts[doc] == len(own)


def test_chunked_predictions_stay_in_input_order(trained_model_dir: Path, tmp_path: Path) -> None:
    """Documents of very different lengths are length-sorted inside; output order must not move."""
    docs = [words(5 + (i * 37) % 120, start=i) for i in range(25)]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(docs)))
    settings = {"strategy": "chunk", "stride": 4, "max_windows": 0}
    lines = list(
        predict_records(
            source, trained_model_dir, batch_size=3, precision="no", long_inputs=settings
        )
    )
    out = [json.loads(line) for line in lines]
    assert [o["id"] for o in out] == list(range(25))
    predictor = Predictor(trained_model_dir, precision="no", long_inputs=settings)
    for i, doc in enumerate(docs):
        alone = predictor.task.format(predictor.predict_examples([Example(doc)]), 0)
        assert out[i]["label"] == alone["label"]
        assert out[i]["windows"] == alone["windows"]
        assert out[i]["score"] == pytest.approx(alone["score"], abs=1e-4)


def test_strategy_is_saved_and_used_by_predict(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    from bertcli.finetune import finetune

    out = tmp_path / "chunked"
    overrides = {"train.max_steps": 6, "long_inputs.strategy": "chunk", "long_inputs.stride": 4}
    finetune(run_config(tiny_model_dir, sentiment_csv, out, overrides))
    meta = json.loads((out / "bertcli.json").read_text())
    assert meta["long_inputs"]["strategy"] == "chunk"
    long_doc = tmp_path / "long.txt"
    long_doc.write_text(words(5000) + "\n")
    [line] = list(predict_records(long_doc, out, precision="no"))
    # A 5,000-word document in windows of 32 tokens (30 of text) sharing 4: by default every
    # token is used, so it takes ceil((5000 - 4) / 26) windows and gives one prediction.
    assert json.loads(line)["windows"] == -(-(5000 - 4) // 26)
    [line] = list(predict_records(long_doc, out, precision="no", long_inputs={"strategy": "head"}))
    assert json.loads(line)["windows"] == 1


def test_prediction_time_stride_is_checked_against_the_saved_window(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    """A stride override that leaves no new tokens is a one-line error, not an internal one."""
    from typer.testing import CliRunner

    from bertcli.cli import app

    source = tmp_path / "in.txt"
    source.write_text("good movie\n")
    result = CliRunner().invoke(
        app,
        ["predict", "--model", str(trained_model_dir), "--long-inputs", "chunk",
         "--stride", "40", str(source)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "long_inputs.stride: 40" in result.output
    assert "internal error" not in result.output
