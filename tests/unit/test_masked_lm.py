"""Masked-LM pre-training: masking rates, whole words, packing, resume, and the saved folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_bertcli, sentiment_rows

from bertcli.config import MaskedLMConfig, RunConfig
from bertcli.console import configure
from bertcli.data.masking import NO_WORD, MaskingPlan, mask_tokens, pack_documents
from bertcli.data.word_windows import IGNORE
from bertcli.errors import ConfigError
from bertcli.pretrain import pretrain, pretrain_config
from bertcli.tasks.masked_lm import MaskedLMTask

VOCAB, MASK_ID, SPECIALS = 1000, 3, (0, 1, 2, 3)


@pytest.fixture(autouse=True)
def _quiet():
    configure(quiet=True)
    yield
    configure(quiet=False)


def plan(**changes) -> MaskingPlan:
    settings = {"probability": 0.15, "mask": 0.8, "random": 0.1, "whole_word": False}
    settings.update(changes)
    normal = np.array([i for i in range(VOCAB) if i not in SPECIALS])
    return MaskingPlan(**settings, mask_id=MASK_ID, normal_ids=normal)


def test_masking_rates_are_bert_s_15_percent_and_80_10_10() -> None:
    rng = np.random.default_rng(0)
    n = 400_000
    ids = rng.integers(4, VOCAB, n)
    ids[::50] = 1  # special tokens scattered through the text
    words = np.where(ids == 1, NO_WORD, np.arange(n))
    out, labels = mask_tokens(ids, words, plan(), np.random.default_rng(1))
    chosen = labels != IGNORE
    assert not chosen[ids == 1].any(), "special tokens are never chosen"
    assert (labels[chosen] == ids[chosen]).all(), "labels are the original tokens"
    assert (out[~chosen] == ids[~chosen]).all(), "tokens not chosen stay as they are"
    candidates = int((ids != 1).sum())
    assert abs(chosen.sum() / candidates - 0.15) < 0.003
    masked = (out == MASK_ID) & chosen
    unchanged = (out == ids) & chosen
    replaced = chosen & ~masked & ~unchanged
    assert abs(masked.sum() / chosen.sum() - 0.8) < 0.01
    # A random token equals the original once in |vocab| draws: counted as unchanged.
    assert abs(replaced.sum() / chosen.sum() - 0.1) < 0.006
    assert abs(unchanged.sum() / chosen.sum() - 0.1) < 0.006
    assert not np.isin(out[replaced], SPECIALS).any(), "random tokens are never special"


def test_custom_rates_are_followed() -> None:
    ids = np.random.default_rng(0).integers(4, VOCAB, 200_000)
    words = np.arange(len(ids))
    out, labels = mask_tokens(
        ids, words, plan(probability=0.4, mask=1.0, random=0.0), np.random.default_rng(2)
    )
    chosen = labels != IGNORE
    assert abs(chosen.mean() - 0.4) < 0.005
    assert (out[chosen] == MASK_ID).all()


def test_whole_word_masking_never_splits_a_word() -> None:
    rng = np.random.default_rng(3)
    pieces = rng.integers(1, 5, 20_000)  # words of 1-4 pieces
    words = np.repeat(np.arange(len(pieces)), pieces)
    ids = rng.integers(4, VOCAB, len(words))
    _, labels = mask_tokens(ids, words, plan(whole_word=True), np.random.default_rng(4))
    chosen = labels != IGNORE
    per_word = np.bincount(words, weights=chosen)
    assert set(np.unique(per_word / pieces)) == {0.0, 1.0}, "a word is chosen whole or not at all"
    assert abs((per_word > 0).mean() - 0.15) < 0.01, "15% of words are chosen"


def test_packing_keeps_every_token_once_with_a_separator_between_documents() -> None:
    rng = np.random.default_rng(5)
    docs = [list(rng.integers(10, 99, rng.integers(0, 40))) for _ in range(60)]
    documents = [(d, list(range(len(d)))) for d in docs]
    packed = pack_documents(documents, budget=16, separator=7)
    assert all(len(w) == 16 for w in packed.ids[:-1]), "every window but the last is full"
    stream = [t for w in packed.ids for t in w]
    non_empty = [d for d in docs if d]
    expected = [t for i, d in enumerate(non_empty) for t in ([7] if i else []) + d]
    assert stream == expected
    words = [w for ws in packed.words for w in ws]
    real = [w for w in words if w != NO_WORD]
    assert sorted(set(real)) == real and len(real) == sum(map(len, docs)), "word ids unique"


def test_windows_mask_no_special_token_and_masks_are_the_same_every_run(tiny_tokenizer) -> None:
    task = MaskedLMTask(max_length=24, probability=0.5)
    from bertcli.tasks.masked_lm import Document

    docs = [Document(text) for text, _ in sentiment_rows(20)]
    first, second = task.windows(tiny_tokenizer, docs), task.windows(tiny_tokenizer, docs)
    assert first.input_ids == second.input_ids and first.labels == second.labels
    specials = set(tiny_tokenizer.all_special_ids) - {tiny_tokenizer.mask_token_id}
    for original, labels in zip(first.originals, first.labels, strict=True):
        assert len(original) <= 24
        for token, label in zip(original, labels, strict=True):
            if token in specials:
                assert label == IGNORE
    assert all(len(ids) == 24 for ids in first.input_ids[:-1]), "packed windows are full"
    transform = task.batch_transform(first)
    import torch

    batch = {
        "input_ids": torch.tensor(first.input_ids[:2]),
        "labels": torch.tensor(first.labels[:2]),
        "window_index": torch.tensor([0, 1]),
    }
    epoch0, epoch1 = transform(batch, 0), transform(batch, 1)
    assert not torch.equal(epoch0["labels"], epoch1["labels"]), "new masks every epoch"
    assert torch.equal(epoch0["labels"], transform(batch, 0)["labels"]), "seeded per epoch"


def text_file(path: Path) -> Path:
    path.write_text("\n".join(text for text, _ in sentiment_rows(60)) + "\n", encoding="utf-8")
    return path


def mlm_config(model: Path, text: Path, out: Path, **extra) -> RunConfig:
    settings = {
        "model.name": str(model),
        "train.output_dir": str(out),
        "train.max_length": 32,
        "train.batch_size": 8,
        "train.precision": "no",
        "train.lr": 5e-3,
        "data.validation_fraction": 0.25,
        **extra,
    }
    return pretrain_config(None, [str(text)], settings)


def log(out: Path) -> list:
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("loss"), r.get("eval")) for r in rows]


def test_resumed_pretraining_follows_the_uninterrupted_loss_curve(tiny_model_dir, tmp_path) -> None:
    text = text_file(tmp_path / "text.txt")
    settings = {
        "train.max_steps": 12,
        "train.save_steps": 4,
        "train.keep_checkpoints": 10,
        "train.log_steps": 1,
        "train.eval_steps": 12,
    }
    straight, resumed = tmp_path / "a", tmp_path / "b"
    pretrain(mlm_config(tiny_model_dir, text, straight, **settings))
    config = mlm_config(tiny_model_dir, text, resumed, **settings)
    pretrain(config)
    for path in resumed.iterdir():  # as if it had died between steps 8 and 12
        if path.is_file() and path.name not in ("config.yaml", "train_log.jsonl"):
            path.unlink()
    for name in ("step-000012", "best"):
        shutil.rmtree(resumed / "checkpoints" / name)
    assert pretrain(config).resumed
    assert log(resumed) == log(straight)
    assert len({loss for _, loss, _ in log(straight) if loss}) > 3, "the loss moved"


def test_output_is_a_fill_mask_folder_that_finetunes_and_predicts(tiny_model_dir, tmp_path) -> None:
    from transformers import pipeline

    text = text_file(tmp_path / "text.txt")
    out = tmp_path / "mlm"
    result = pretrain(mlm_config(tiny_model_dir, text, out, **{"train.max_steps": 30}))
    scores = result.metrics["validation"]
    assert scores["masked_tokens"] > 0 and 0 <= scores["masked_accuracy"] <= 1
    assert scores["perplexity"] == pytest.approx(np.exp(scores["masked_loss"]), rel=1e-3)
    fills = pipeline("fill-mask", model=str(out))("the movie was [MASK] .")
    assert len(fills) == 5 and all(f["sequence"].startswith("the movie was") for f in fills)

    line = "the movie was [MASK] ."
    proc = run_bertcli("predict", "--model", str(out), "-", stdin=line + "\n")
    row = json.loads(proc.stdout)
    assert len(row["fills"]) == 1 and len(row["fills"][0]) == 5
    assert row["filled"] == f"the movie was {row['fills'][0][0]['token']} ."

    from bertcli.errors import BertcliError
    from bertcli.export import export_model

    with pytest.raises(BertcliError, match="no ONNX export"):
        export_model(out, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()

    # The folder is a base model for fine-tuning; the source's pooler came along with it.
    from safetensors import safe_open

    keys = set(safe_open(str(out / "model.safetensors"), "pt").keys())
    assert {"bert.pooler.dense.weight", "bert.pooler.dense.bias"} <= keys
    from conftest import tiny_run_config, write_csv

    from bertcli.finetune import finetune

    train = write_csv(tmp_path / "train.csv", sentiment_rows(), ("text", "label"))
    finetuned = finetune(tiny_run_config(out, train, tmp_path / "clf", {"train.max_steps": 5}))
    assert (finetuned.output_dir / "bertcli.json").is_file()


def test_pretrain_config_keeps_a_recipe_s_text_and_drops_its_labels() -> None:
    config = pretrain_config("imdb", ["extra.txt"], {"train.max_steps": 3})
    assert config.task == "masked_lm" and config.data.test is None
    assert config.data.clean == ["html"] and config.mlm.text_files == ["extra.txt"]
    assert str(config.output_dir) == "runs/imdb-mlm" and config.train.metric is None
    with pytest.raises(ConfigError, match="no text"):
        pretrain_config(None, [])
    with pytest.raises(ConfigError, match=r"mlm\.mask \+ mlm\.random"):
        MaskedLMConfig(mask=0.9, random=0.2)


def test_cli_bad_masking_setting_is_a_one_line_error(tmp_path) -> None:
    text = text_file(tmp_path / "t.txt")
    proc = run_bertcli("pretrain", "--text", str(text), "--set", "mlm.probability=1.5", check=False)
    assert proc.returncode == 2
    assert "mlm.probability" in proc.stderr and "Traceback" not in proc.stderr


def test_chinese_whole_word_masking_treats_each_character_as_a_word(tmp_path) -> None:
    from transformers import BertTokenizerFast

    from bertcli.tasks.masked_lm import Document

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"我爱北京天安门"]))
    tokenizer = BertTokenizerFast(vocab=str(vocab))
    task = MaskedLMTask(max_length=16, whole_word=True)
    windows = task.windows(tokenizer, [Document("我爱北京天安门"), Document("我爱 x")])
    words = windows.words[0].tolist()
    tokens = tokenizer.convert_ids_to_tokens(windows.originals[0].tolist())
    chars = [w for w, t in zip(words, tokens, strict=True) if t in "我爱北京天安门"]
    assert len(chars) == len(set(chars)) == 9, "one word per character"
    assert all(w == NO_WORD for w, t in zip(words, tokens, strict=True) if t.startswith("["))


def test_sparse_masked_scoring_gives_the_loss_and_gradients_of_full_scoring(
    tiny_model_dir,
) -> None:
    import torch

    from bertcli.modeling.model import build_model

    model, _ = build_model(str(tiny_model_dir), [], task="masked_lm")
    ids = torch.randint(5, 100, (3, 12))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, IGNORE)
    labels[:, ::4] = ids[:, ::4]
    sparse_loss, sparse_logits = model(ids, mask, labels=labels)
    assert sparse_logits.shape == (int((labels != IGNORE).sum()), model.config.vocab_size)
    sparse_grad = torch.autograd.grad(sparse_loss, model.hf.get_output_embeddings().weight)[0]
    full = model(ids, mask)  # no labels: every position scored, (batch, seq, vocab)
    full_loss = torch.nn.functional.cross_entropy(full.transpose(1, 2), labels)
    full_grad = torch.autograd.grad(full_loss, model.hf.get_output_embeddings().weight)[0]
    assert torch.allclose(sparse_loss, full_loss, atol=1e-6)
    assert torch.allclose(sparse_grad, full_grad, atol=1e-6)
