"""End to end through the real CLI: the embedded MiniLM fine-tuned on real IMDb reviews."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CLI_ENV as ENV
from conftest import run_bertcli as bertcli
from safetensors.torch import load_file

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "imdb"


def write_slice(src: Path, dst: Path, start: int, count: int) -> Path:
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with open(dst, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([rows[0], *rows[1 + start : 1 + start + count]])
    return dst


@pytest.fixture(scope="module")
def imdb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found")
    root = tmp_path_factory.mktemp("imdb")
    return {
        "train": write_slice(DATA / "train.csv", root / "train.csv", 0, 480),
        "test": write_slice(DATA / "test.csv", root / "test.csv", 0, 200),
        "tiny": write_slice(DATA / "train.csv", root / "tiny.csv", 480, 96),
    }


@pytest.fixture(scope="module")
def trained(imdb: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "imdb"
    bertcli(
        "finetune", "imdb", "--model", "minilm", "--train", str(imdb["train"]),
        "--max-steps", "60", "--max-length", "128", "--batch-size", "16", "--lr", "1e-4",
        "--output-dir", str(out), "--set", "train.save_steps=30",
    )  # fmt: skip
    return out


def test_finetune_beats_chance_on_unseen_reviews(trained: Path, imdb: dict[str, Path]) -> None:
    proc = bertcli("eval", "--model", str(trained), "--data", str(imdb["test"]))
    metrics = json.loads(proc.stdout)[str(imdb["test"])]
    assert metrics["num_examples"] == 200
    assert metrics["accuracy"] > 0.65, metrics
    meta = json.loads((trained / "bertcli.json").read_text())
    assert meta["labels"] == ["neg", "pos"]
    assert meta["base_model"]["origin"] == "embedded"
    log = [json.loads(line) for line in (trained / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r][-1] == 60


def test_predict_stdin_and_file_agree_line_by_line(trained: Path, tmp_path: Path) -> None:
    lines = [
        "An absolute masterpiece, moving and beautifully acted. I loved every minute.",
        "",
        "Dreadful. Boring plot, wooden acting, a total waste of two hours.",
        "It was fine.",
    ]
    text = "\n".join(lines) + "\n"
    from_stdin = bertcli("predict", "--model", str(trained), "-", stdin=text).stdout.splitlines()
    path = tmp_path / "reviews.txt"
    path.write_text(text)
    from_file = bertcli("predict", "--model", str(trained), str(path)).stdout.splitlines()
    assert len(from_stdin) == len(lines)
    assert from_stdin == from_file
    first, _, third, _ = (json.loads(line) for line in from_stdin)
    assert first["label"] == "pos" and third["label"] == "neg"
    assert set(first["scores"]) == {"neg", "pos"}


def test_pipeline_loads_the_output_dir(trained: Path) -> None:
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(trained))
    assert clf("A wonderful, touching film.")[0]["label"] in {"neg", "pos"}


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_interrupted_run_resumes_to_the_same_model(imdb: dict[str, Path], tmp_path: Path) -> None:
    args = [
        "finetune", "imdb", "--model", "minilm", "--train", str(imdb["tiny"]),
        "--max-steps", "16", "--max-length", "64", "--batch-size", "8", "--precision", "no",
        "--set", "train.save_steps=4", "--set", "train.keep_checkpoints=10",
    ]  # fmt: skip
    straight = tmp_path / "straight"
    bertcli(*args, "--output-dir", str(straight))

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bertcli", *args, "--output-dir", str(resumed)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A suite started in the background (nohup, `&`) ignores SIGINT, and so would the run,
        # which then finishes instead of stopping: give it Ctrl-C's default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    while not (resumed / "checkpoints" / "step-000004").is_dir():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err
    assert not (resumed / "bertcli.json").exists()

    again = bertcli(*args, "--output-dir", str(resumed))
    assert "resuming from" in again.stderr
    a, b = _final_weights(straight), _final_weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=key)
    log = [json.loads(x) for x in (resumed / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(set(steps)), "a resumed run must not duplicate log lines"


def test_two_process_accelerate_launch(imdb: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "bertcli", "finetune", "imdb", "--model", "minilm", "--train", str(imdb["tiny"]),
        "--max-steps", "6", "--max-length", "64", "--batch-size", "8",
        "--output-dir", str(out), "--set", "train.save_steps=3",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x 2 process(es)" in proc.stderr
    state = json.loads((out / "checkpoints" / "step-000006" / "trainer_state.json").read_text())
    # Each optimizer step saw one batch from each of the two processes.
    assert state["samples"] > 6 * 8 * 1.5
    assert (out / "bertcli.json").is_file()
