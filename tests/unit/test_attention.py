"""`bertcli attention` on the tiny model: weights, windows, the page, the picture, the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bertcli.attention import attention_samples, explain, read_inputs
from bertcli.attention.extract import Sample, load_encoder
from bertcli.attention.page import page_data, render_page
from bertcli.attention.patterns import Tokens, classify
from bertcli.cli import app
from bertcli.console import configure
from bertcli.errors import DataError

runner = CliRunner()
TEXT, PAIR = "this movie was great", "the plot was boring"


@pytest.fixture(autouse=True)
def _console(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "500")
    yield
    configure(quiet=False, debug=False)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path):
    return load_encoder(str(tiny_model_dir))


def test_the_encoder_runs_eager_attention_and_rows_sum_to_one(encoder) -> None:
    model, tokenizer, _ = encoder
    assert model.config._attn_implementation == "eager"  # SDPA returns no weights
    [sample] = attention_samples(model, tokenizer, [(TEXT, PAIR)])
    layers, heads, n, m = sample.attention.shape
    assert (layers, heads) == (2, 2) and n == m == len(sample.tokens.tokens)
    np.testing.assert_allclose(sample.attention.sum(-1), 1.0, atol=1e-5)
    assert sample.tokens.segments[1] == 0 and sample.tokens.segments[-2] == 1
    assert sample.tokens.tokens[0] == "[CLS]" and sample.tokens.words[0] is None


def test_a_long_text_is_cut_into_windows_one_shown_at_a_time(encoder) -> None:
    model, tokenizer, _ = encoder
    long = " ".join(["this movie was great and the plot was boring"] * 6)
    every = attention_samples(model, tokenizer, [(long, None)], max_length=16)
    assert len(every) > 2 and all(len(s.tokens.tokens) <= 16 for s in every)
    assert [s.window for s in every] == list(range(1, len(every) + 1))
    [second] = attention_samples(model, tokenizer, [(long, None)], max_length=16, window=2)
    assert second.tokens.tokens == every[1].tokens.tokens
    with pytest.raises(DataError, match="--window 99"):
        attention_samples(model, tokenizer, [(long, None)], max_length=16, window=99)


def test_explain_writes_the_page_and_the_picture(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = explain(
        str(tiny_model_dir), [(TEXT, PAIR)], html=tmp_path / "a.html", png=tmp_path / "a.png"
    )
    assert [(h["layer"], h["head"]) for h in result.to_json()["heads"]] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "a.html").read_text()
    for forbidden in ("<script src", "<link", "@import", 'src="http', "url(http"):
        assert forbidden not in page  # self-contained: nothing is fetched
    assert '"segments"' in page and "Model view" in page and "Head view" in page


def test_a_token_that_closes_a_script_cannot_break_the_page() -> None:
    tokens = Tokens(["[CLS]", "</script>", "[SEP]"], [None, 0, None], [None, 0, None])
    attention = np.full((1, 1, 3, 3), 1 / 3)
    sample = Sample("</script>", None, 1, 1, tokens, attention)
    page = render_page("m", [sample], classify([(attention, tokens)]))
    data = page.split('<script id="data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(data)["samples"][0]["tokens"][1] == "</script>"


def test_weights_travel_as_bytes() -> None:
    tokens = Tokens(["[CLS]", "a", "[SEP]"], [None, 0, None], [None, 0, None])
    attention = np.array([[[[1.0, 0, 0], [0, 0.5, 0.5], [0, 0, 1.0]]]])
    data = page_data("m", [Sample("a", None, 1, 1, tokens, attention)], [])
    import base64

    raw = np.frombuffer(base64.b64decode(data["samples"][0]["attention"]), np.uint8)
    assert raw.tolist() == [255, 0, 0, 0, 128, 128, 0, 0, 255]


def test_inputs_from_a_file(tmp_path: Path) -> None:
    lines = tmp_path / "in.txt"
    lines.write_text("one text\nfirst\tits pair\n\n")
    assert read_inputs(lines) == [("one text", None), ("first", "its pair")]
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "a", "pair": "b"}\n{"text": "c"}\n')
    assert read_inputs(jsonl) == [("a", "b"), ("c", None)]
    jsonl.write_text('{"pair": "b"}\n')
    with pytest.raises(DataError, match=r"in\.jsonl:1"):
        read_inputs(jsonl)


# ------------------------------------------------------------------------ CLI


def test_cli_table_on_stderr_json_on_stdout(tiny_model_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "att.html"
    result = runner.invoke(
        app, ["attention", "--model", str(tiny_model_dir), TEXT, PAIR, "--output", str(page)]
    )
    assert result.exit_code == 0, result.stderr
    heads = json.loads(result.stdout)["heads"]
    assert len(heads) == 4 and set(heads[0]) == {"layer", "head", "pattern", "score"}
    assert "attention patterns" in result.stderr and "delim" in result.stderr
    assert page.is_file()


def test_cli_input_file_and_window(tiny_model_dir: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in.txt"
    inputs.write_text(f"{TEXT}\t{PAIR}\n" + " ".join([TEXT] * 20) + "\n")
    result = runner.invoke(
        app,
        [
            "attention",
            "-m",
            str(tiny_model_dir),
            "--input",
            str(inputs),
            "--max-length",
            "16",
            "--window",
            "1",
            "-o",
            str(tmp_path / "p.html"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "p.html").read_text().count('"window": 1') == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one text"),
        (["a text", "--input", "x.txt"], "give one text"),
        (["--input", "missing.txt"], "missing.txt: no such file"),
        (["a text", "--max-length", "4"], "--max-length"),
        (["a text", "--window", "3"], "--window 3"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(
    tiny_model_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app, ["attention", "-m", str(tiny_model_dir), "-o", str(tmp_path / "x.html"), *args]
    )
    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]


def test_cli_a_folder_without_a_model_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["attention", "-m", str(tmp_path), "text"])
    assert result.exit_code == 2
    assert "not a model directory" in result.stderr


def test_a_fine_tuned_run_folder_shows_its_encoder(trained_model_dir: Path) -> None:
    result = explain(str(trained_model_dir), [(TEXT, None)])
    assert len(result.heads) == 4
    assert result.samples[0].attention.shape[:2] == (2, 2)
