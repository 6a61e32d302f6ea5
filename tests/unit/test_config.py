"""Recipes and --set overrides: shipped recipes validate; bad input is one clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bertcli.cli import app
from bertcli.config import (
    RunConfig,
    all_keys,
    dump_config,
    list_recipes,
    load_config,
    parse_override,
)
from bertcli.errors import ConfigError

RECIPES = sorted(list_recipes())


def test_recipes_are_shipped() -> None:
    assert {"imdb", "mrpc", "sst2", "conll2003", "squad", "squad_v2"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_every_shipped_recipe_loads_and_validates(name: str) -> None:
    config = load_config(name)
    assert isinstance(config, RunConfig)
    assert config.name == name
    # The first line of a recipe is the exact command that runs it.
    first = list_recipes()[name].read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# bertcli finetune {name}"
    assert config.data.dataset, "a shipped recipe names its hub dataset"
    if config.task not in ("qa", "regression"):  # spans and scores, not labels
        assert config.data.label_names and len(config.data.label_names) >= 2
    # The recipe uses only known keys, and every key round-trips through the resolved config.
    assert yaml.safe_load(dump_config(config)) == config.to_dict()


def test_dotted_overrides_coerce_to_the_field_types() -> None:
    config = load_config(
        "imdb", sets=["train.lr=3e-5", "train.max_steps=10", "train.group_by_length=false"]
    )
    assert config.train.lr == pytest.approx(3e-5)
    assert type(config.train.lr) is float
    assert config.train.max_steps == 10
    assert type(config.train.max_steps) is int
    assert config.train.group_by_length is False


def test_overrides_win_over_the_recipe_and_leave_other_keys_alone() -> None:
    base = load_config("imdb")
    config = load_config("imdb", {"train.batch_size": 4}, ["data.clean=html,whitespace"])
    assert config.train.batch_size == 4
    assert config.data.clean == ["html", "whitespace"]
    assert config.train.lr == base.train.lr
    assert config.data.label_names == base.data.label_names


def test_integer_field_rejects_a_fraction() -> None:
    with pytest.raises(ConfigError, match=r"train\.max_steps"):
        load_config(None, sets=["train.max_steps=1.5"])


def test_unknown_override_key_lists_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("imdb", sets=["train.learning_rate=1e-4"])
    text = str(info.value)
    assert "train.learning_rate" in text
    for key in ("train.lr", "train.batch_size", "model.pooling", "data.label_column"):
        assert key in text


def test_unknown_override_key_with_empty_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        load_config("imdb", sets=["train.lrr="])


def test_override_without_equals_sign_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_override("train.lr")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("train.batch_size=abc", "train.batch_size"),
        ("train.precision=fp8", "train.precision"),
        ("model.pooling=max", "model.pooling"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.group_by_length=maybe", "train.group_by_length"),
        ("data.validation_fraction=1.5", "data.validation_fraction"),
        ("data.clean=lowercase", "data.clean"),
        ("task=ner", "task"),
        ("qa.ranker=true", "qa.ranker"),
        ("qa.join_contexts=3", "qa.join_contexts"),
        ("qa.join_contexts=0", "qa.join_contexts"),
    ],
)
def test_bad_value_is_a_config_error_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("squad" if key.startswith("qa.") else "imdb", sets=[override])
    assert key in str(info.value)
    assert "Traceback" not in str(info.value)


def test_problems_in_different_sections_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("imdb", sets=["train.batch_size=abc", "model.pooling=max"])
    text = str(info.value)
    assert "train.batch_size" in text
    assert "model.pooling" in text


def test_all_problems_in_one_section_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            "imdb",
            sets=[
                "train.batch_size=abc",
                "train.precision=fp8",
                "train.lr=-1",
                "model.pooling=max",
            ],
        )
    text = str(info.value)
    for key in ("train.batch_size", "train.precision", "train.lr", "model.pooling"):
        assert key in text


def test_unknown_key_in_a_recipe_file_lists_valid_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("train:\n  learning_rate: 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(recipe))
    text = str(info.value)
    assert "learning_rate" in text
    assert "train.lr" in text


def test_every_unknown_key_in_a_recipe_file_is_reported(tmp_path: Path) -> None:
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("train:\n  learning_rate: 0.1\n  batchsize: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(recipe))
    assert "learning_rate" in str(info.value)
    assert "batchsize" in str(info.value)


def test_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("name: broken\ntrain:\n  lr: 1.0e-5\n   batch_size: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(str(recipe))
    text = str(info.value)
    assert str(recipe) in text
    assert "line 4" in text


def test_recipe_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(recipe))


def test_unknown_recipe_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("imbd")
    for name in RECIPES:
        assert name in str(info.value)


def test_recipe_file_name_becomes_the_default_run_name(tmp_path: Path) -> None:
    recipe = tmp_path / "reviews.yaml"
    recipe.write_text("train:\n  epochs: 1\n", encoding="utf-8")
    config = load_config(str(recipe))
    assert config.name == "reviews"
    assert config.output_dir == Path("runs/reviews")


def test_every_config_key_has_help_text() -> None:
    keys = all_keys()
    assert "train.lr" in keys
    assert all(text for text in keys.values()), [k for k, t in keys.items() if not t]


def test_recipes_show_prints_the_resolved_config() -> None:
    result = CliRunner().invoke(app, ["recipes", "show", "imdb", "--set", "train.lr=3e-5"])
    assert result.exit_code == 0, result.output
    expected = load_config("imdb", sets=["train.lr=3e-5"])
    assert result.stdout == dump_config(expected)
    assert yaml.safe_load(result.stdout)["train"]["lr"] == pytest.approx(3e-5)
