"""Fine-tuning the tiny model end to end through the library API: outputs, learning, resuming."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from bertcli.config import TrainConfig
from bertcli.console import configure
from bertcli.data.load import Example
from bertcli.errors import ConfigError, ModelError
from bertcli.evaluation import evaluate_model
from bertcli.finetune import finetune
from bertcli.infer import Predictor
from bertcli.modeling.model import HEAD_FILE, TaskModel, build_model
from bertcli.optim import make_optimizer, make_schedule
from bertcli.train import Interrupted

TEXTS = [
    "this movie was great",
    "an awful film , really terrible",
    "i think the plot was very good !",
    "boring story . just dull .",
    "",
]


@pytest.fixture(autouse=True)
def _quiet():
    configure(quiet=True)
    yield
    configure(quiet=False)


def examples(texts: list[str]) -> list[Example]:
    return [Example(text) for text in texts]


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def heldout_csv(path: Path) -> Path:
    """Reviews the model never saw: the training's sentiment words in new sentences."""
    rows = [
        ("the script was wonderful , i liked it", "pos"),
        ("the music was lovely and the cast great", "pos"),
        ("excellent acting , amazing ending", "pos"),
        ("a good film , one of the good ones", "pos"),
        ("great story and great scenes", "pos"),
        ("the ending was awful", "neg"),
        ("terrible acting and a horrible script", "neg"),
        ("a dull film , boring from the first scene", "neg"),
        ("bad music , bad story", "neg"),
        ("they thought the plot was horrible", "neg"),
    ]
    lines = ["text,label", *(f'"{text}",{label}' for text, label in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------- output directory


def test_finetune_writes_a_complete_model_directory(trained_model_dir: Path) -> None:
    out = trained_model_dir
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "bertcli.json",
        "metrics.json",
        "train_log.jsonl",
        "config.yaml",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob(".saving-*")), "no staging folder left behind"
    assert not list(out.glob(".*.tmp")), "no temporary file left behind"

    meta = json.loads((out / "bertcli.json").read_text())
    assert meta["labels"] == ["neg", "pos"]
    assert meta["max_length"] == 32
    assert meta["pooling"] == "cls"
    assert meta["task"] == "classification"
    assert {"bertcli", "torch", "transformers", "accelerate"} <= set(meta["versions"])
    assert meta["base_model"]["origin"] == "local"

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 80
    assert 1 <= metrics["best_step"] <= 80
    assert metrics["validation"]["num_examples"] == 15
    assert metrics["precision"] == "no"

    checkpoints = out / "checkpoints"
    assert (checkpoints / "step-000080" / "trainer_state.json").is_file()
    state = json.loads((checkpoints / "step-000080" / "trainer_state.json").read_text())
    assert state["finished"] is True
    assert state["step"] == 80
    assert (checkpoints / "best" / "bertcli.json").is_file()

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train"]["max_steps"] == 80
    assert config == meta["config"], "config.yaml and bertcli.json record the same run"
    assert config["model"]["name"] == meta["base_model"]["requested"]


def test_train_log_has_increasing_steps_and_falling_loss(trained_model_dir: Path) -> None:
    log = read_log(trained_model_dir)
    losses = [(r["step"], r["loss"]) for r in log if "loss" in r]
    steps = [step for step, _ in losses]
    assert steps == list(range(5, 81, 5))
    assert losses[-1][1] < losses[0][1] - 0.2, losses
    evals = [r for r in log if "eval" in r]
    assert evals, "validation ran during training"
    assert evals[-1]["step"] == 80


def test_saved_model_loads_in_a_transformers_pipeline(trained_model_dir: Path) -> None:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(trained_model_dir), device="cpu")
    outputs = classify(TEXTS[:4])
    assert {o["label"] for o in outputs} <= {"neg", "pos"}
    predictor = Predictor(trained_model_dir, precision="no", device="cpu")
    ours = [p for _, p in predictor.predict_stream(examples(TEXTS[:4]))]
    assert [o["label"] for o in outputs] == [p["label"] for p in ours]
    for theirs, mine in zip(outputs, ours, strict=True):
        assert theirs["score"] == pytest.approx(mine["score"], abs=1e-4)


def test_trained_tiny_model_beats_chance(trained_model_dir: Path, tmp_path: Path) -> None:
    metrics = json.loads((trained_model_dir / "metrics.json").read_text())
    assert metrics["validation"]["accuracy"] >= 0.8
    results = evaluate_model(trained_model_dir, [str(heldout_csv(tmp_path / "heldout.csv"))])
    (scores,) = results.values()
    assert scores["num_examples"] == 10
    assert scores["accuracy"] >= 0.8, scores


def test_predictions_do_not_depend_on_batch_mates(trained_model_dir: Path) -> None:
    predictor = Predictor(trained_model_dir, precision="no", device="cpu")
    alone = predictor.predict_examples(examples(["good movie"]))[0]
    long_text = " ".join(["the plot was boring and the acting was bad"] * 3)
    together = predictor.predict_examples(examples([long_text, "good movie", "awful"]))[0]
    np.testing.assert_allclose(alone[0], together[1], atol=1e-5)


# --------------------------------------------------------------------------- pooling


def test_mean_pooling_head_is_saved_and_reloaded(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    from transformers import AutoModel, AutoTokenizer

    out = tmp_path / "mean"
    finetune(
        run_config(
            tiny_model_dir, sentiment_csv, out, {"model.pooling": "mean", "train.max_steps": 20}
        )
    )
    assert (out / HEAD_FILE).is_file()
    assert json.loads((out / "bertcli.json").read_text())["pooling"] == "mean"

    predictor = Predictor(out, precision="no", device="cpu")
    probs = predictor.predict_examples(examples(TEXTS)).probs

    # The same numbers by hand from the saved files: masked mean of the encoder, then the head.
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    encoder = AutoModel.from_pretrained(str(out)).eval()
    head = load_file(str(out / HEAD_FILE))
    for text, expected in zip(TEXTS, probs, strict=True):
        enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=32)
        with torch.no_grad():
            hidden = encoder(**enc).last_hidden_state[0]  # (seq, hidden)
        logits = hidden.mean(0) @ head["head.classifier.weight"].T + head["head.classifier.bias"]
        np.testing.assert_allclose(logits.softmax(-1).numpy(), expected, atol=1e-5, err_msg=text)

    again = Predictor(out, precision="no", device="cpu").predict_examples(examples(TEXTS))[0]
    np.testing.assert_array_equal(again, probs)

    (out / HEAD_FILE).unlink()
    with pytest.raises(ModelError, match=HEAD_FILE):
        Predictor(out, precision="no", device="cpu")


# ---------------------------------------------------------------------------- resume


RESUME = {
    "train.max_steps": 20,
    "train.save_steps": 5,
    "train.keep_checkpoints": 10,
    "train.log_steps": 1,
    "train.eval_steps": 20,  # evaluate (and save `best`) only at the end: best = the last step
    "train.lr": 5e-3,
}


def interrupt_at_forward(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Raise KeyboardInterrupt (Ctrl-C) at the `call`-th training loss computation."""
    original = TaskModel.loss
    calls = {"n": 0}

    def loss(self, logits, labels):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, logits, labels)

    monkeypatch.setattr(TaskModel, "loss", loss)


def test_ctrl_c_saves_a_checkpoint_and_rerun_resumes_to_the_end(
    tiny_model_dir: Path,
    sentiment_csv: Path,
    tmp_path: Path,
    run_config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "run"
    config = run_config(tiny_model_dir, sentiment_csv, out, RESUME)
    with monkeypatch.context() as patch:
        interrupt_at_forward(patch, 13)
        with pytest.raises(Interrupted) as info:
            finetune(config)
    assert info.value.exit_code == 130
    assert "step 12" in str(info.value)
    assert (out / "checkpoints" / "step-000012" / "trainer_state.json").is_file()
    assert not (out / "bertcli.json").exists(), "an interrupted run is not a finished model"

    result = finetune(config)
    assert result.resumed is True
    assert result.steps == 20
    assert (out / "bertcli.json").is_file()
    steps = [r["step"] for r in read_log(out) if "loss" in r]
    assert steps == list(range(1, 21)), "the log holds every step exactly once"

    changed = run_config(tiny_model_dir, sentiment_csv, out, {**RESUME, "train.lr": 1e-4})
    with pytest.raises(ConfigError, match=r"train\.lr"):
        finetune(changed)


def test_non_empty_output_dir_without_checkpoint_is_refused(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match="--overwrite"):
        finetune(run_config(tiny_model_dir, sentiment_csv, out, {"train.max_steps": 2}))
    assert (out / "notes.txt").read_text() == "mine\n"


def test_resumed_run_ends_exactly_where_an_uninterrupted_run_does(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    straight, resumed = tmp_path / "a", tmp_path / "b"
    finetune(run_config(tiny_model_dir, sentiment_csv, straight, RESUME))
    config = run_config(tiny_model_dir, sentiment_csv, resumed, RESUME)
    finetune(config)
    # Make run B look as if it had died between steps 10 and 15: checkpoints 5 and 10 survive.
    for path in resumed.iterdir():
        if path.is_file() and path.name not in ("config.yaml", "train_log.jsonl"):
            path.unlink()
    for name in ("step-000015", "step-000020", "best"):
        shutil.rmtree(resumed / "checkpoints" / name)
    result = finetune(config)
    assert result.resumed

    def losses(out: Path) -> list:
        return [(r["step"], r.get("loss"), r.get("eval")) for r in read_log(out)]

    assert losses(resumed) == losses(straight)
    for name in ("checkpoints/step-000020/model.safetensors", "model.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(resumed / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-6), f"{name}: {key}"


# --------------------------------------------------------------------- optimizer, schedule


def test_no_weight_decay_on_biases_and_layer_norm(tiny_model_dir: Path) -> None:
    model, _ = build_model(str(tiny_model_dir), ["neg", "pos"])
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.05, lr=1e-3))
    by_param = {
        id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]
    }
    names = dict(model.named_parameters())
    assert len(by_param) == len(names), "every trainable parameter is optimised once"
    for name, param in names.items():
        no_decay = name.endswith(".bias") or "LayerNorm" in name
        assert by_param[id(param)] == (0.0 if no_decay else 0.05), name
    assert any("LayerNorm.weight" in n for n in names)
    assert all(group["lr"] == 1e-3 for group in optimizer.param_groups)


def test_schedule_warms_up_then_decays_to_zero() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    schedule = make_schedule(optimizer, total=10, warmup_ratio=0.2)
    lrs = [schedule.get_last_lr()[0]]
    for _ in range(10):
        optimizer.step()
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(1.0)
    assert peak == 2
    assert all(a < b for a, b in pairwise(lrs[: peak + 1])), lrs
    assert all(a > b for a, b in pairwise(lrs[peak:])), lrs
    assert lrs[0] > 0, "the first step already learns"
    assert lrs[-1] == 0.0


def test_schedule_without_warmup_starts_at_the_peak() -> None:
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    schedule = make_schedule(optimizer, total=4, warmup_ratio=0.0)
    assert schedule.get_last_lr()[0] == pytest.approx(0.5)


def test_attention_dropout_defaults_off_and_can_keep_the_models_value(tiny_model_dir: Path) -> None:
    from bertcli.config import ConfigError, load_config
    from bertcli.modeling.model import build_model

    assert load_config(None).model.attention_dropout == 0.0
    off, _ = build_model(str(tiny_model_dir), ["a", "b"], attention_dropout=0.0)
    kept, _ = build_model(str(tiny_model_dir), ["a", "b"], attention_dropout=None)
    assert off.config.attention_probs_dropout_prob == 0.0
    assert kept.config.attention_probs_dropout_prob == 0.1  # BertConfig's default
    with pytest.raises(ConfigError, match=r"model\.attention_dropout"):
        load_config(None, {"model.attention_dropout": 1.5})
