"""Shared fixtures: a tiny BERT built in code, a separable sentiment CSV, and no network."""

from __future__ import annotations

import csv
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest

OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# Set before any test module is imported: huggingface_hub and datasets read these once, at import,
# and some test modules import them at collection time, before any fixture runs.
os.environ.update(dict.fromkeys(OFFLINE_ENV, "1"))
os.environ.pop("BERTCLI_DATA_DIR", None)
# bertcli remembers the last finished run under $XDG_STATE_HOME: never the developer's own.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="bertcli-test-state-")

ASSETS = Path(__file__).resolve().parent / "assets"
VOCAB = ASSETS / "vocab.txt"

POSITIVE = ("good", "great", "excellent", "wonderful", "amazing", "lovely")
NEGATIVE = ("bad", "awful", "terrible", "boring", "horrible", "dull")
SUBJECTS = ("movie", "film", "plot", "story", "acting", "music", "ending", "script")
FRAMES = (
    "this {s} was {w}",
    "the {s} is {w} and {w2}",
    "a {w} {s} , really {w2}",
    "i think the {s} was very {w} !",
    "{w} {s} . just {w2} .",
)


def sentiment_rows(n: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """`n` short reviews, half pos (good/great words) and half neg (bad/awful words), shuffled."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = POSITIVE if label == "pos" else NEGATIVE
        frame = FRAMES[i % len(FRAMES)]
        text = frame.format(s=rng.choice(SUBJECTS), w=rng.choice(words), w2=rng.choice(words))
        rows.append((text, label))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# The real CLI in a subprocess, offline (integration tests).
CLI_ENV = {**os.environ, **dict.fromkeys(OFFLINE_ENV, "1"), "PYTHONUNBUFFERED": "1"}


def run_bertcli(*args: str, stdin: str | None = None, check: bool = True) -> Any:
    """`python -m bertcli ARGS` with `stdin`; fails the test with bertcli's stderr on error."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "bertcli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=CLI_ENV,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"bertcli {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may reach the network, see the developer's data folder or bertcli state."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    for name in OFFLINE_ENV:
        monkeypatch.setenv(name, "1")  # restored after tests that probe a local fake hub
    monkeypatch.delenv("BERTCLI_DATA_DIR", raising=False)
    import bertcli.hub

    # The reachability probe is cached per process; every test decides afresh (offline).
    monkeypatch.setattr(bertcli.hub, "_reachable", None)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """The tiny model is latency-bound: one thread avoids stalls on a busy 2-core machine."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer, hidden-32 BERT plus a fast tokenizer on tests/assets."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert")
    # transformers 5 takes the vocab file as `vocab`; `vocab_file=` silently builds a 5-token vocab.
    tokenizer = BertTokenizerFast(vocab=str(VOCAB), do_lower_case=True)
    assert len(tokenizer) == len(VOCAB.read_text(encoding="utf-8").split())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True)


def tiny_run_config(
    model_dir: Path, train: Path, out: Path, overrides: dict[str, Any] | None = None
) -> Any:
    """A RunConfig that trains the tiny model in about a second, in fp32 for exact comparisons."""
    from bertcli.config import load_config

    settings: dict[str, Any] = {
        "model.name": str(model_dir),
        "data.train": str(train),
        "data.validation_fraction": 0.25,
        "train.output_dir": str(out),
        "train.max_steps": 80,
        "train.lr": 3e-3,
        "train.batch_size": 8,
        "train.max_length": 32,
        "train.precision": "no",
        "train.save_steps": 1000,
        "train.log_steps": 5,
    }
    settings.update(overrides or {})
    return load_config(None, settings)


@pytest.fixture(scope="session")
def run_config():
    """`run_config(model_dir, train_csv, out_dir, {"train.max_steps": 20})` -> RunConfig."""
    return tiny_run_config


@pytest.fixture(scope="session")
def trained_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fine-tuned once (80 steps, [CLS] pooling) on the separable sentiment data.

    Shared by several modules: tests must only read it.
    """
    from bertcli.console import configure
    from bertcli.finetune import finetune

    root = tmp_path_factory.mktemp("trained")
    train = write_csv(root / "train.csv", sentiment_rows(), ("text", "label"))
    configure(quiet=True)
    try:
        finetune(tiny_run_config(tiny_model_dir, train, root / "model"))
    finally:
        configure(quiet=False)
    return root / "model"


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    """60 rows of text,label; pos and neg reviews differ only in their sentiment words."""
    return write_csv(tmp_path / "sentiment.csv", sentiment_rows(), ("text", "label"))


@pytest.fixture
def shared_data() -> Path:
    """The real datasets in /work/shared/data (a sibling of the repository)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path
