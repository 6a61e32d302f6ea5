"""`bertcli` through CliRunner: exit codes, data on stdout, one-line errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bertcli import __version__
from bertcli.cli import app
from bertcli.console import configure
from bertcli.infer import Predictor

runner = CliRunner()

LINES = [
    "this movie was great",
    "an awful film , really terrible , the plot was boring and the acting was bad too",
    "",
    "good",
    "the worst script",
    "i think the music was very lovely !",
] * 4  # 24 lines: several batches and more than one prediction chunk at --batch-size 2


@pytest.fixture(autouse=True)
def _console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Wide enough that no message wraps, so assertions see whole lines.
    monkeypatch.setenv("COLUMNS", "500")
    yield
    configure(quiet=False, debug=False)  # --quiet/--debug set process-wide state


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def one_line(text: str) -> str:
    return " ".join(text.split())


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# --------------------------------------------------------------------------- basics


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("finetune", "eval", "predict", "recipes"):
        assert command in result.stdout


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bertcli {__version__}"


def test_importing_the_cli_does_not_import_torch_or_transformers() -> None:
    code = "import bertcli.cli, sys; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_recipes_list_shows_every_recipe() -> None:
    result = invoke("recipes", "list")
    assert result.exit_code == 0
    for name in ("imdb", "mrpc", "sst2"):
        assert name in result.stderr
    assert "stanfordnlp/imdb" in result.stderr


def test_recipes_show_prints_yaml_on_stdout() -> None:
    result = invoke("recipes", "show", "imdb")
    assert result.exit_code == 0
    config = yaml.safe_load(result.stdout)
    assert config["name"] == "imdb"
    assert config["data"]["label_names"] == ["neg", "pos"]


def test_unknown_key_exits_2_with_a_one_line_error() -> None:
    result = invoke("recipes", "show", "imdb", "--set", "nope.x=1")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert error_lines(result) == ["error: unknown config key 'nope.x'"]
    assert "train.lr" in result.stderr  # the hint lists the valid keys
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback() -> None:
    result = invoke("--debug", "recipes", "show", "imdb", "--set", "nope.x=1")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert "unknown config key 'nope.x'" in result.stderr


def test_error_stays_on_one_line_when_stderr_is_not_a_terminal(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what rich assumes without a terminal
    texts = tmp_path / "in.txt"
    texts.write_text("good\n")
    result = invoke("predict", str(texts), "--model", str(tiny_model_dir))
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.endswith("may be incomplete")


# ------------------------------------------------------------------ finetune errors


def test_finetune_missing_train_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    result = invoke(
        "finetune", "imdb", "--model", str(tiny_model_dir), "--train", str(missing),
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"{missing}: no such file" in one_line(result.stderr)
    assert "Traceback" not in result.output


def test_finetune_csv_without_the_label_column(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text,sentiment\ngood movie,pos\nbad movie,neg\n", encoding="utf-8")
    result = invoke(
        "finetune", "imdb", "--model", str(tiny_model_dir), "--train", str(train),
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 2
    text = one_line(result.stderr)
    assert "'label'" in text
    assert "text, sentiment" in text
    assert "--set data.label_column=" in text
    assert "NAME NAME" not in text
    assert "Traceback" not in result.output


def test_finetune_non_utf8_train_file_names_the_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_bytes(b"text,label\ngood movie,pos\ncaf\xe9 awful,neg\n")
    result = invoke(
        "finetune", "imdb", "--model", str(tiny_model_dir), "--train", str(train),
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert f"{train}:line 3: not valid UTF-8" in one_line(result.stderr)
    assert "iconv" in result.stderr


def test_finetune_bad_override_exits_2(tmp_path: Path) -> None:
    result = invoke("finetune", "imdb", "--set", "train.batch_size=abc", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "train.batch_size" in result.stderr


def test_finetune_from_a_recipe_file_writes_a_model_and_keeps_stdout_clean(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "reviews.yaml"
    recipe.write_text(
        "# bertcli finetune reviews.yaml\n"
        f"data:\n  train: {sentiment_csv}\n  label_names: [neg, pos]\n"
        f"model:\n  name: {tiny_model_dir}\n"
        "train:\n  max_length: 32\n  batch_size: 8\n  precision: 'no'\n",
        encoding="utf-8",
    )
    out = tmp_path / "model"
    result = invoke("finetune", str(recipe), "--max-steps", "3", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads((out / "bertcli.json").read_text())["recipe"] == "reviews"
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3


# ---------------------------------------------------------------------------- predict


def expected_predictions(model_dir: Path, texts: list[str]) -> list[dict]:
    from bertcli.data.load import Example

    predictor = Predictor(model_dir, precision="no", device="cpu")
    return [p for _, p in predictor.predict_stream(Example(t) for t in texts)]


def assert_same_predictions(lines: list[dict], expected: list[dict]) -> None:
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected, strict=True):
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        assert set(got["scores"]) == {"neg", "pos"}


def test_predict_without_bertcli_json_exits_2(tiny_model_dir: Path, tmp_path: Path) -> None:
    texts = tmp_path / "in.txt"
    texts.write_text("good\n")
    result = invoke("predict", str(texts), "--model", str(tiny_model_dir))
    assert result.exit_code == 2
    assert "no bertcli.json" in result.stderr
    assert "bertcli finetune" in result.stderr
    assert result.stdout == ""


def test_predict_text_file_writes_one_json_line_per_input_line_in_order(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    result = invoke(
        "predict", str(texts), "--model", str(trained_model_dir), "--batch-size", "2",
        "--precision", "no",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert_same_predictions(lines, expected_predictions(trained_model_dir, LINES))
    assert lines[0]["label"] == "pos"
    assert lines[1]["label"] == "neg"


def test_predict_from_stdin_matches_the_file(trained_model_dir: Path) -> None:
    result = invoke(
        "predict", "-", "--model", str(trained_model_dir), "--batch-size", "2",
        "--precision", "no", input="\n".join(LINES) + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert_same_predictions(lines, expected_predictions(trained_model_dir, LINES))


def test_predict_jsonl_passes_the_id_through(trained_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    records = [{"id": f"r{i}", "text": text} for i, text in enumerate(LINES[:6])]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = invoke("predict", str(source), "--model", str(trained_model_dir), "--precision", "no")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in records]
    assert "text" not in lines[0]
    assert_same_predictions(lines, expected_predictions(trained_model_dir, LINES[:6]))


def test_predict_keeps_input_columns_that_share_a_name_with_the_output(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "labelled.csv"
    source.write_text("text,label\nthis movie was great,yes\nawful film,no\n", encoding="utf-8")
    result = invoke("predict", str(source), "--model", str(trained_model_dir))
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["label"] in ("neg", "pos")
    assert "yes" in json.dumps(first), "the gold label the user passed in is kept"
    assert "no" in json.dumps(second)


def test_predict_tsv_output(trained_model_dir: Path, tmp_path: Path) -> None:
    texts = tmp_path / "in.txt"
    texts.write_text("\n".join(LINES[:6]) + "\n", encoding="utf-8")
    result = invoke(
        "predict", str(texts), "--model", str(trained_model_dir), "--format", "tsv",
        "--precision", "no",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    expected = expected_predictions(trained_model_dir, LINES[:6])
    assert [row[0] for row in rows] == [e["label"] for e in expected]
    for (_, score, windows), want in zip(rows, expected, strict=True):
        assert float(score) == pytest.approx(want["score"], abs=1e-5)
        assert len(score.split(".")[1]) == 6
        assert windows == "1"


def test_predict_missing_input_file_exits_2(trained_model_dir: Path, tmp_path: Path) -> None:
    result = invoke("predict", str(tmp_path / "gone.txt"), "--model", str(trained_model_dir))
    assert result.exit_code == 2
    assert "gone.txt: no such file" in one_line(result.stderr)


# ------------------------------------------------------------------------------- eval


def test_eval_prints_metrics_json_on_stdout(trained_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text(
        "text,label\nthis movie was great,pos\nawful film,neg\ngood plot,pos\nboring story,neg\n",
        encoding="utf-8",
    )
    saved = tmp_path / "metrics.json"
    result = invoke(
        "eval", "--model", str(trained_model_dir), "--data", str(data), "-o", str(saved),
        "--precision", "no",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    scores = metrics[str(data)]
    assert scores["num_examples"] == 4
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert scores["confusion_matrix"]["labels"] == ["neg", "pos"]
    assert json.loads(saved.read_text()) == metrics
    assert "accuracy" in result.stderr  # the table goes to stderr


def test_eval_with_an_unseen_label_exits_2(trained_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\ngreat,pos\nfine,neutral\n", encoding="utf-8")
    result = invoke("eval", "--model", str(trained_model_dir), "--data", str(data))
    assert result.exit_code == 2
    text = one_line(result.stderr)
    assert f"{data}:line 3" in text
    assert "'neutral'" in text


def test_quiet_still_reports_errors(tmp_path: Path) -> None:
    """--quiet silences progress and tables, never the reason a command failed."""
    texts = tmp_path / "in.txt"
    texts.write_text("good\n")
    result = invoke("--quiet", "predict", str(texts), "--model", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert "no such model directory" in line
