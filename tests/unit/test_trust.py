"""Hostile and broken inputs: no foreign code runs, nothing a user owns is lost, every bad input
is exit 2 with one line naming the file and the field."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hostile
import pytest
from conftest import CLI_ENV, sentiment_rows, write_csv
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.console import configure
from bertcli.errors import BertcliError, ConfigError, ModelError
from bertcli.finetune import finetune
from bertcli.modeling.model import TaskModel
from bertcli.run_dir import LOCK_FILE
from bertcli.train import Diverged, Interrupted

runner = CliRunner()


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", "500")  # one message, one line
    yield
    configure(quiet=False, debug=False)


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def error_of(result) -> str:
    """The `error:` line (and hint) of a failed command, whitespace-normalised."""
    return " ".join(result.stderr.split())


def bertcli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bertcli", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=CLI_ENV,
        timeout=300,
    )


FAST = {"train.max_steps": 10, "train.save_steps": 5, "train.eval_steps": 10}


# ------------------------------------------------------------------- foreign code never runs


def test_model_folder_code_never_runs_even_when_stdin_says_yes(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    """transformers used to ask [y/N] on stdout and read the answer from predict's input."""
    marker = tmp_path / "PWNED"
    folder = hostile.remote_code_folder(
        trained_model_dir, tmp_path / "evil", marker, unknown_type=True
    )
    proc = bertcli("predict", "--model", folder, "-", stdin="yes\nyes\ny\n")
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    assert proc.stdout == "", "nothing may be printed on stdout (no prompt, no output)"
    assert "never runs code from a model folder" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_auto_map_on_a_known_model_type_is_ignored(trained_model_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    folder = hostile.remote_code_folder(
        trained_model_dir, tmp_path / "evil", marker, unknown_type=False
    )
    result = invoke("predict", "--model", folder, "-", input="good movie\n")
    assert result.exit_code == 0, result.stderr
    assert not marker.exists()
    assert json.loads(result.stdout)["label"] in ("pos", "neg")


def test_finetune_from_a_remote_code_base_model_exits_2(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "PWNED"
    folder = hostile.remote_code_folder(
        tiny_model_dir, tmp_path / "evil", marker, unknown_type=True
    )
    result = invoke("finetune", "imdb", "--model", folder, "--train", sentiment_csv,
                    "-o", tmp_path / "out", "--set", "data.dataset=null")  # fmt: skip
    assert result.exit_code == 2
    assert not marker.exists()
    assert "own Python code" in error_of(result)


def test_pickle_only_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from bertcli.modeling.model import build_model

    marker = tmp_path / "PWNED"
    folder = hostile.pickle_only_folder(tiny_model_dir, tmp_path / "pickled", marker)
    with pytest.raises(ModelError, match=r"pytorch_model\.bin.*safetensors only"):
        build_model(str(folder), ["neg", "pos"])
    assert not marker.exists()


def test_a_pickle_planted_in_a_checkpoint_never_loads(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config, monkeypatch
) -> None:
    """accelerate's load_state unpickled custom_checkpoint_*.pkl with weights_only=False."""
    out = tmp_path / "run"
    config = run_config(tiny_model_dir, sentiment_csv, out, {**FAST, "train.max_steps": 20})
    interrupt_at(monkeypatch, 8, lambda: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(Interrupted):
        finetune(config)
    monkeypatch.undo()
    checkpoint = out / "checkpoints" / "step-000007"
    assert checkpoint.is_dir()
    assert not list(checkpoint.glob("*.pkl")) and not list(checkpoint.glob("*.bin"))
    marker = tmp_path / "PWNED"
    hostile.pickle_payload(checkpoint / "custom_checkpoint_0.pkl", marker)
    with pytest.raises(ModelError, match=r"custom_checkpoint_0\.pkl: unexpected file"):
        finetune(config)
    assert not marker.exists()


# ------------------------------------------------------------------- nothing is lost


def test_overwrite_refuses_a_folder_bertcli_did_not_write(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work\n")
    result = invoke("finetune", "imdb", "--model", tiny_model_dir, "--train", sentiment_csv,
                    "-o", mine, "--overwrite", "--set", "data.dataset=null")  # fmt: skip
    assert result.exit_code == 2
    assert "not written by bertcli" in error_of(result)
    assert (mine / "chapter1.tex").read_text() == "years of work\n"
    assert sorted(p.name for p in mine.iterdir()) == ["chapter1.tex"]


def test_overwrite_deletes_nothing_when_the_new_run_fails_its_checks(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_model_dir, run)
    before = sorted(p.name for p in run.iterdir())
    result = invoke("finetune", "imdb", "--model", "minilm", "--train", tmp_path / "missing.csv",
                    "-o", run, "--overwrite")  # fmt: skip
    assert result.exit_code == 2
    assert "missing.csv" in error_of(result)
    assert sorted(p.name for p in run.iterdir()) == before
    assert (run / "bertcli.json").is_file()


def test_overwrite_replaces_a_finished_run(
    trained_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_model_dir, run)
    (run / ".saving-abc").mkdir()
    result = finetune(run_config(trained_model_dir.parent / "model", sentiment_csv, run, FAST),
                      overwrite=True)  # fmt: skip
    assert result.steps == 10
    assert not (run / ".saving-abc").exists()
    assert not (run / LOCK_FILE).exists(), "the lock is released"


def test_a_second_run_into_a_folder_in_use_fails_at_once(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(
            json.dumps({"pid": sleeper.pid, "host": os.uname().nodename, "since": 0})
        )
        with pytest.raises(
            ConfigError, match=f"in use by another bertcli run \\(pid {sleeper.pid}"
        ):
            finetune(run_config(tiny_model_dir, sentiment_csv, out, FAST))
    finally:
        sleeper.kill()
        sleeper.wait()
    # The owner is gone now: its stale lock is taken over.
    result = finetune(run_config(tiny_model_dir, sentiment_csv, out, FAST))
    assert result.steps == 10


def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config, monkeypatch
) -> None:
    out = tmp_path / "run"
    config = run_config(tiny_model_dir, sentiment_csv, out, {**FAST, "train.max_steps": 20})
    interrupt_at(monkeypatch, 9, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(Interrupted) as info:
        finetune(config)
    monkeypatch.undo()
    assert info.value.exit_code == 143
    assert "SIGTERM" in str(info.value)
    assert (out / "checkpoints" / "step-000008" / "trainer_state.json").is_file()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is put back"
    result = finetune(config)
    assert result.resumed and result.steps == 20


def test_a_run_killed_before_its_first_checkpoint_restarts_without_overwrite(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    out = tmp_path / "run"
    config = run_config(tiny_model_dir, sentiment_csv, out, FAST)
    finetune(config)
    # What a SIGKILL at step 3 leaves: the config, a log, a half-saved model, no checkpoint.
    shutil.rmtree(out / "checkpoints")
    for name in ("bertcli.json", "model.safetensors"):
        (out / name).unlink()
    (out / ".saving-x1y2").mkdir()
    (out / ".metrics.json.abc.tmp").write_text("{")
    result = finetune(config)
    assert not result.resumed and result.steps == 10
    assert (out / "bertcli.json").is_file()
    assert not (out / ".saving-x1y2").exists() and not (out / ".metrics.json.abc.tmp").exists()


def test_divergence_stops_with_exit_2_and_keeps_the_last_good_checkpoint(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config, monkeypatch
) -> None:
    out = tmp_path / "run"
    config = run_config(tiny_model_dir, sentiment_csv, out, {**FAST, "train.max_steps": 20})
    original = TaskModel.loss
    calls = {"n": 0}

    def nan_loss(self, logits, labels):
        calls["n"] += 1
        loss = original(self, logits, labels)
        return loss * float("nan") if calls["n"] >= 7 else loss

    monkeypatch.setattr(TaskModel, "loss", nan_loss)
    with pytest.raises(Diverged) as info:
        finetune(config)
    assert info.value.exit_code == 2
    assert "diverged at step 7" in str(info.value)
    assert "--lr" in str(info.value)
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-000005"]
    assert not (out / "bertcli.json").exists(), "a diverged run is not saved as a model"


def interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int, action) -> None:
    original = TaskModel.loss
    calls = {"n": 0}

    def loss(self, logits, labels):
        calls["n"] += 1
        if calls["n"] == call:
            action()
        return original(self, logits, labels)

    monkeypatch.setattr(TaskModel, "loss", loss)


def test_export_cleans_a_killed_export_and_writes_a_shareable_folder(
    trained_model_dir: Path, tmp_path: Path
) -> None:
    stale = tmp_path / ".hf.export-99999999-abcd"  # no such process
    stale.mkdir()
    (stale / "model.safetensors").write_text("half")
    old_umask = os.umask(0o022)
    try:
        result = invoke("export", "--model", trained_model_dir, "--format", "hf",
                        "-o", tmp_path / "hf")  # fmt: skip
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.stderr
    assert not stale.exists()
    assert (tmp_path / "hf").stat().st_mode & 0o777 == 0o755


def test_export_without_onnx_installed_names_the_install(
    trained_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    result = invoke("export", "--model", trained_model_dir, "-o", tmp_path / "onnx")
    assert result.exit_code == 2
    assert "pip install" in error_of(result) and "onnxruntime" in error_of(result)


def test_json_output_never_holds_nan() -> None:
    from bertcli.jsonio import dumps
    from bertcli.predict import format_line

    line = format_line({"id": 1}, {"label": "pos", "score": float("nan"), "x": [float("inf")]},
                       "jsonl")  # fmt: skip
    assert json.loads(line) == {"id": 1, "label": "pos", "score": None, "x": [None]}
    assert "NaN" not in dumps({"a": float("-inf")})


# ------------------------------------------------------------------- broken model folders


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda src, out: hostile.truncated_weights(src, out), "model.safetensors: damaged"),
        (
            lambda src, out: hostile.corrupt_file(src, out, "tokenizer.json", '{"model": '),
            "tokenizer.json: corrupt",
        ),
        (lambda src, out: hostile.edit_meta(src, out, task="summarize"), "key 'task'"),
        (lambda src, out: hostile.edit_meta(src, out, labels=["a", "b", "c"]), "lists 3 labels"),
        (
            lambda src, out: hostile.pickle_only_folder(src, out, out.parent / "PWNED"),
            "pytorch_model.bin",
        ),
    ],
    ids=["truncated-safetensors", "corrupt-tokenizer", "unknown-task", "label-count", "pickle"],
)
def test_broken_model_folder_is_exit_2_naming_the_file(
    trained_model_dir: Path, tmp_path: Path, build, named: str
) -> None:
    folder = build(trained_model_dir, tmp_path / "broken")
    result = invoke("predict", "--model", folder, "-", input="good\n")
    assert result.exit_code == 2, result.stderr
    assert named in error_of(result)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / "PWNED").exists()


# ------------------------------------------------------------------- bad input, one line


def test_damaged_parquet_names_the_file_and_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bertcli.data.readers import read_records

    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": [f"row {i} " * 20 for i in range(3000)]}), path,
                   row_group_size=1000, compression="none")  # fmt: skip
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = b"\xff" * 400  # inside the second row group's pages
    path.write_bytes(bytes(data))
    with pytest.raises(BertcliError, match=r"data\.parquet:row \d+: damaged Parquet data"):
        read_records(path)


def test_deeply_nested_json_is_a_data_error(tmp_path: Path) -> None:
    from bertcli.data.readers import read_records

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BertcliError, match=r"deep\.json: JSON nested too deeply"):
        read_records(path)
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"text": "ok"}\n' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "\n")
    with pytest.raises(BertcliError, match=r"deep\.jsonl:line 2: JSON nested too deeply"):
        read_records(lines)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--epochs", "nan"], "train.epochs: expected a finite number"),
        (["--lr", "inf"], "train.lr: expected a finite number"),
    ],
)
def test_non_finite_numbers_are_refused(args: list[str], named: str, tmp_path: Path) -> None:
    result = invoke("finetune", "imdb", "-o", tmp_path / "o", *args)
    assert result.exit_code == 2
    assert named in error_of(result)


def test_negative_threads_are_refused(trained_model_dir: Path) -> None:
    result = invoke("predict", "--model", trained_model_dir, "--threads", "-3", "-", input="x\n")
    assert result.exit_code == 2
    assert "--threads" in result.stderr


def test_output_dir_that_is_a_file_or_under_a_file(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, named in ((afile, "is a file, not a folder"), (afile / "sub", "cannot create")):
        result = invoke("finetune", "imdb", "--model", tiny_model_dir, "--train", sentiment_csv,
                        "-o", out, "--set", "data.dataset=null")  # fmt: skip
        assert result.exit_code == 2
        assert named in error_of(result)
    assert afile.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_dir(tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "ro"
    out.mkdir(mode=0o555)
    result = invoke("finetune", "imdb", "--model", tiny_model_dir, "--train", sentiment_csv,
                    "-o", out, "--set", "data.dataset=null")  # fmt: skip
    assert result.exit_code == 2
    assert "not writable" in error_of(result)


def test_eval_output_into_a_missing_folder_is_created(
    trained_model_dir: Path, sentiment_csv: Path, tmp_path: Path
) -> None:
    target = tmp_path / "reports" / "today" / "metrics.json"
    result = invoke("eval", "--model", trained_model_dir, "--data", sentiment_csv, "-o", target)
    assert result.exit_code == 0, result.stderr
    assert "accuracy" in json.loads(target.read_text())[str(sentiment_csv)]
    result = invoke("eval", "--model", trained_model_dir, "--data", sentiment_csv, "-o", tmp_path)
    assert result.exit_code == 2
    assert "is a folder" in error_of(result)


def test_conll_tag_error_names_file_and_line(tmp_path: Path) -> None:
    from bertcli.data.tagging import iter_tagging_records, tag_names

    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
                    "Peter NNP B-NP B-\n\n")  # fmt: skip
    from bertcli.config import DataConfig

    with pytest.raises(BertcliError, match=r"train\.txt:line 6, token 1: unknown tag 'B-'"):
        tag_names(list(iter_tagging_records(path)), DataConfig(text_column="tokens"), None)


def test_unknown_recipe_key_names_the_recipe_file_and_line(tmp_path: Path) -> None:
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("name: mine\ntrain:\n  epochs: 1\n  lerning_rate: 0.1\n")
    result = invoke("finetune", recipe)
    assert result.exit_code == 2
    assert f"{recipe}:line 4: unknown key 'train.lerning_rate'" in error_of(result)


def test_a_recipe_path_that_is_a_folder(tmp_path: Path) -> None:
    result = invoke("finetune", tmp_path)
    assert result.exit_code == 2
    assert "is a folder, expected a recipe YAML file" in error_of(result)


def test_training_on_a_single_class_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [(text, "pos") for text, _ in sentiment_rows()]
    train = write_csv(tmp_path / "pos.csv", rows, ("text", "label"))
    result = invoke("finetune", "imdb", "--model", tiny_model_dir, "--train", train,
                    "-o", tmp_path / "o", "--set", "data.dataset=null")  # fmt: skip
    assert result.exit_code == 2
    assert "every training row has the label 'pos'" in error_of(result)


def test_mixed_label_ids_and_names_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = [
        (text, "1" if i % 3 == 0 else label) for i, (text, label) in enumerate(sentiment_rows())
    ]
    train = write_csv(tmp_path / "mixed.csv", rows, ("text", "label"))
    result = invoke("finetune", "imdb", "--model", tiny_model_dir, "--train", train,
                    "-o", tmp_path / "o", "--set", "data.dataset=null",
                    "--set", "data.label_names=null")  # fmt: skip
    assert result.exit_code == 2
    assert "mixes label ids and label names" in error_of(result)
    assert "mixed.csv:line" in error_of(result)


# ------------------------------------------------------------------- the card's own usage


def test_predict_without_model_uses_the_last_finished_run(
    tiny_model_dir: Path, sentiment_csv: Path, tmp_path: Path, run_config
) -> None:
    result = invoke("predict", "-", input="good\n")
    assert result.exit_code == 2
    assert "no finished `bertcli finetune` run yet" in error_of(result)
    out = tmp_path / "run"
    finetune(run_config(tiny_model_dir, sentiment_csv, out, FAST))
    text = tmp_path / "in.txt"
    text.write_text("a great movie\nan awful film\n")
    result = invoke("predict", text)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert f"using the last finished run: {out.resolve()}" in error_of(result)


def test_predict_reads_a_piped_stdin_without_a_dash(trained_model_dir: Path) -> None:
    proc = bertcli("predict", "--model", trained_model_dir, stdin="a great movie\nawful\n")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["label"] for line in proc.stdout.splitlines()] != []
    assert len(proc.stdout.splitlines()) == 2


def test_column_hints_name_the_flags_of_the_command_that_failed(
    trained_model_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_csv(tmp_path / "d.csv", [("good", "pos"), ("bad", "neg")], ("review", "label"))
    finetune_run = invoke("finetune", "imdb", "--model", tiny_model_dir, "--train", data,
                          "-o", tmp_path / "o", "--set", "data.dataset=null")  # fmt: skip
    eval_run = invoke("eval", "--model", trained_model_dir, "--data", data)
    for result in (finetune_run, eval_run):
        assert result.exit_code == 2
        assert "no column 'text'" in error_of(result)
    assert "--set data.text_column=NAME" in error_of(finetune_run)
    assert "--text-column NAME" in error_of(eval_run)
    assert "--set" not in error_of(eval_run), "eval has no --set"
