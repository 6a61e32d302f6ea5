"""The run report, the error tables, the model card and the trackers of a fine-tuning run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.console import configure
from bertcli.data.load import Example
from bertcli.errors import ConfigError
from bertcli.hub import ModelSource
from bertcli.model_card import front_matter
from bertcli.report import read_run, write_run_report
from bertcli.report.mistakes import classification_mistakes, qa_mistakes, tagging_mistakes

runner = CliRunner()


@pytest.fixture(autouse=True)
def _console(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "500")
    yield
    configure(quiet=False, debug=False)


def front(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


# ------------------------------------------------------------------ a finished run


def test_a_finished_run_has_a_report_a_model_card_and_its_errors(trained_model_dir: Path) -> None:
    out = trained_model_dir
    for name in ("report.html", "README.md", "errors.json", "loss_lr.png", "validation.png"):
        assert (out / name).is_file(), name
    assert (out / "confusion_matrix.png").is_file()
    page = (out / "report.html").read_text()
    for text in ("Training", "Confusion matrix", "best step", "validation"):
        assert text in page
    assert "http://" not in page and "https://" not in page  # nothing fetched
    errors = json.loads((out / "errors.json").read_text())
    assert errors["columns"] == ["confidence", "true", "predicted", "text"]
    assert errors["of"] > 0


def test_the_model_card_reads_right_on_a_hub(trained_model_dir: Path) -> None:
    card = (trained_model_dir / "README.md").read_text()
    meta = front(card)
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-classification"
    assert "bertcli" in meta["tags"]
    assert "base_model" not in meta  # a local directory is no hub id
    for heading in ("## Data", "## Metrics", "## Hyper-parameters", "## How it was made"):
        assert heading in card
    assert "| validation | accuracy |" in card


def test_the_card_quotes_the_bertcli_command_only() -> None:
    from bertcli.model_card import command_line

    assert command_line(["/venv/bin/bertcli", "finetune", "imdb", "--set", "a=b c"]) == (
        "bertcli finetune imdb --set 'a=b c'"
    )
    assert command_line(["/x/bertcli/__main__.py", "finetune", "sst2"]) == "bertcli finetune sst2"
    assert command_line(["/x/pytest/__main__.py", "-q"]) is None


def test_an_embedded_base_model_names_its_hub_original(run_config, tmp_path: Path) -> None:
    config = run_config(Path("x"), Path("t.csv"), tmp_path, {"data.dataset": "imdb"})
    meta = front_matter(
        config, ModelSource("/m", "embedded", "minilm"), {"validation": {"f1": 1.0}}
    )
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["imdb"]
    assert meta["metrics"] == ["f1"]


def test_report_rebuilds_a_run_that_is_still_training(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_model_dir, run)
    for name in ("metrics.json", "errors.json", "report.html", "model.safetensors"):
        (run / name).unlink(missing_ok=True)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(run / "report.html")
    page = (run / "report.html").read_text()
    assert "still training" in page
    assert "Confusion matrix" in page  # from the best checkpoint's scores
    assert read_run(run).best_eval() is not None


def test_report_of_a_folder_that_is_no_run_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a run folder" in result.stderr


def test_report_survives_a_truncated_log_line(trained_model_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_model_dir, run)
    with open(run / "train_log.jsonl", "a") as handle:
        handle.write('{"step": 99, "lo')
    assert write_run_report(run).is_file()


def test_eval_report_writes_the_error_view(trained_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "held.csv"
    data.write_text('text,label\n"great film",pos\n"awful film",pos\n"dull",neg\n')
    page = tmp_path / "eval.html"
    result = runner.invoke(
        app, ["eval", "--model", str(trained_model_dir), "--data", str(data), "--report", str(page)]
    )
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    assert "Most confident wrong predictions" in html
    assert "awful film" in html  # labelled pos, so the model gets it wrong
    assert (tmp_path / "eval-1-confusion_matrix.png").is_file()


# ------------------------------------------------------------------ error tables


class _Labels:
    name = "classification"
    label_names = ("neg", "pos")


def test_classification_mistakes_are_the_most_confident_first() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    examples = [
        Example("a", label=1),
        Example("b", label=0),
        Example("c", label=0),
        Example("d", label=1),
    ]
    table = classification_mistakes(_Labels(), (probs, [1] * 4), examples)
    assert [row[3] for row in table["rows"]] == ["a", "b", "c"]
    assert table["rows"][0][:3] == [0.9, "pos", "neg"]
    assert (table["total"], table["of"]) == (3, 4)


class _Tags:
    name = "tagging"
    label_names = ("O", "B-PER", "I-PER", "B-LOC")

    def tag_names(self, predicted):
        return [self.label_names[t] for t in predicted]


def test_tagging_mistakes_show_missed_and_spurious_entities_in_context() -> None:
    words = ["yesterday", "john", "smith", "went", "to", "paris"]
    example = Example(" ".join(words), words=words, tags=[0, 1, 2, 0, 0, 3], location="f:1")
    predicted = [0, 1, 2, 0, 3, 0]  # john smith right; "to" spurious LOC; paris missed
    table = tagging_mistakes(_Tags(), [predicted], [example])
    kinds = {(row[0], row[1], row[2]["mark"]) for row in table["rows"]}
    assert kinds == {("missed", "LOC", "paris"), ("spurious", "LOC", "to")}
    missed = next(row for row in table["rows"] if row[0] == "missed")
    assert missed[2]["before"].strip().endswith("went to")


class _Answer:
    def __init__(self, text: str) -> None:
        self.text = text


class _QA:
    def __init__(self, question: str, answers: list[str]) -> None:
        self.question, self.answers = question, answers


def test_qa_mistakes_put_wrong_answers_beside_the_gold() -> None:
    examples = [_QA("who?", ["Ada"]), _QA("where?", ["in Paris"]), _QA("none?", [])]
    answers = [_Answer("Ada"), _Answer("Paris France"), _Answer("maybe")]
    table = qa_mistakes(None, answers, examples)
    assert [row[1:] for row in table["rows"]] == [
        ["none?", "maybe", "(no answer)"],
        ["where?", "Paris France", "in Paris"],
    ]


# ------------------------------------------------------------------ trackers


def test_an_unknown_tracker_is_a_config_error(run_config, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="report_to"):
        run_config(Path("x"), Path("t.csv"), tmp_path, {"train.report_to": "comet"})


def test_a_missing_tracker_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    from bertcli.trackers import accelerator_options

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(ConfigError) as caught:
        accelerator_options("wandb", tmp_path)
    assert caught.value.hint == "pip install 'bertcli[wandb]'"


def test_tensorboard_gets_the_training_log(
    tiny_model_dir: Path, sentiment_csv: Path, run_config, tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    from bertcli.finetune import finetune

    out = tmp_path / "tb"
    configure(quiet=True)
    finetune(
        run_config(
            tiny_model_dir,
            sentiment_csv,
            out,
            {"train.max_steps": 6, "train.log_steps": 2, "train.report_to": "tensorboard"},
        )
    )
    events = list((out / "logs").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    assert "train/loss" in scalars and "eval/accuracy" in scalars
