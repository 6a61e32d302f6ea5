"""`finetune --seeds N`: a sub-folder per seed, the best on validation is the run, mean +- std."""

from __future__ import annotations

import json
import math

import pytest
from conftest import CLI_ENV, sentiment_rows, write_csv
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.console import configure
from bertcli.errors import ConfigError
from bertcli.seeds import finetune_seeds, spread


def test_spread_is_mean_and_sample_std_of_numbers_every_seed_has() -> None:
    out = spread(
        {
            0: {"f1": 1.0, "n": 4, "num_examples": 9, "name": "x", "only": 2.0},
            1: {"f1": 3.0, "n": 4, "num_examples": 9},
        }
    )
    assert out["f1"] == {"mean": 2.0, "std": round(math.sqrt(2), 4), "values": {"0": 1.0, "1": 3.0}}
    assert out["n"]["std"] == 0.0
    assert "name" not in out and "only" not in out and "num_examples" not in out


def test_seeds_run_in_sub_folders_and_the_best_on_validation_is_the_run(
    tiny_model_dir, tmp_path, run_config
) -> None:
    from bertcli.predict import predict_records

    train = write_csv(tmp_path / "train.csv", sentiment_rows(), ("text", "label"))
    test = write_csv(tmp_path / "test.csv", sentiment_rows(20, seed=3), ("text", "label"))
    out = tmp_path / "run"
    config = run_config(
        tiny_model_dir, train, out, {"train.max_steps": 15, "train.seed": 7, "data.test": str(test)}
    )
    configure(quiet=True)
    try:
        result = finetune_seeds(config, 3)
    finally:
        configure(quiet=False)
    assert list(result.runs) == [7, 8, 9]
    validation = {s: r.metrics["validation"]["accuracy"] for s, r in result.runs.items()}
    assert result.best_seed == max(validation, key=validation.get)
    for seed, run in result.runs.items():
        assert (out / f"seed-{seed}" / "bertcli.json").is_file()
        assert (
            json.loads((out / f"seed-{seed}" / "bertcli.json").read_text())["config"]["train"][
                "seed"
            ]
            == seed
        )
        assert result.summary["accuracy"]["values"][str(seed)] == run.metrics["test"]["accuracy"]
    # the run folder holds the best seed's model: same weights' predictions, its bertcli.json
    best = out / f"seed-{result.best_seed}"
    root_meta = json.loads((out / "bertcli.json").read_text())
    assert root_meta == json.loads((best / "bertcli.json").read_text())
    assert not (out / "checkpoints").exists()
    rows = list(predict_records(test, out, precision="no"))
    assert rows == list(predict_records(test, best, precision="no"))
    record = json.loads((out / "seeds.json").read_text())
    assert record["best_seed"] == result.best_seed and record["split"] == "test"
    accuracies = [r.metrics["test"]["accuracy"] for r in result.runs.values()]
    assert record["summary"]["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 3, abs=1e-4)
    assert json.loads((out / "metrics.json").read_text())["seeds"]["best_seed"] == result.best_seed


def test_seeds_refuse_a_folder_bertcli_did_not_write(tiny_model_dir, tmp_path, run_config) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    config = run_config(tiny_model_dir, tmp_path / "train.csv", out)
    with pytest.raises(ConfigError, match="not a bertcli run folder"):
        finetune_seeds(config, 2)
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_cli_seeds_prints_mean_and_std(tiny_model_dir, tmp_path) -> None:
    train = write_csv(tmp_path / "train.csv", sentiment_rows(), ("text", "label"))
    args = f"finetune imdb --model {tiny_model_dir} --train {train} --max-steps 5 --seeds 2"
    args += f" --max-length 32 --precision no -o {tmp_path / 'run'} --set data.dataset=null"
    result = CliRunner().invoke(app, args.split(), env=CLI_ENV)
    assert result.exit_code == 0, result.stderr
    assert "mean ± std" in result.stderr and "seed 43" in result.stderr
    one = CliRunner().invoke(app, ["finetune", "imdb", "--seeds", "1"], env=CLI_ENV)
    assert one.exit_code == 2
