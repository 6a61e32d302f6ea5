"""Split loading and label handling: where data comes from, and how labels become ids."""

from __future__ import annotations

from pathlib import Path

import pytest

import bertcli.hub
from bertcli.config import DataConfig, load_config
from bertcli.data.load import (
    Example,
    carve_validation,
    clean_text,
    infer_label_names,
    load_split,
    raw_labels,
    to_examples,
)
from bertcli.data.readers import read_records
from bertcli.data.splits import load_data
from bertcli.errors import DataError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- labels


def test_string_labels_are_sorted() -> None:
    assert infer_label_names(["ok", "bad", "good", "bad", ""], None, None) == ["bad", "good", "ok"]


def test_integer_labels_become_a_range() -> None:
    assert infer_label_names(["1", "0", "1"], None, None) == ["0", "1"]
    assert infer_label_names([2, 0], None, None) == ["0", "1", "2"]


def test_recipe_label_names_win_over_the_data() -> None:
    assert infer_label_names(["0", "1"], ["neg", "pos"], ["a", "b"]) == ["neg", "pos"]
    assert infer_label_names(["0", "1"], None, ["a", "b"]) == ["a", "b"]


def test_integer_like_labels_map_onto_label_names(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\ngood film,1\nbad film,0\nfine,1\n")
    data = DataConfig(label_names=["neg", "pos"])
    names = infer_label_names(raw_labels(read_records(path), data), data.label_names, None)
    examples = to_examples(read_records(path), data, names)
    assert [e.label for e in examples] == [1, 0, 1]
    assert [names[e.label] for e in examples] == ["pos", "neg", "pos"]


def test_label_names_also_match_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\ngood film,pos\nbad film,neg\n")
    examples = to_examples(read_records(path), DataConfig(), ["neg", "pos"])
    assert [e.label for e in examples] == [1, 0]
    assert examples[0].location == f"{path}:line 2"


def test_unseen_label_names_its_location_and_the_known_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "eval.csv", "text,label\ngood,pos\nmeh,neutral\n")
    with pytest.raises(DataError) as info:
        to_examples(read_records(path), DataConfig(), ["neg", "pos"])
    text = str(info.value)
    assert f"{path}:line 3" in text
    assert "'neutral'" in text
    assert "neg, pos" in text


def test_out_of_range_integer_label_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "eval.csv", "text,label\ngood,1\nodd,2\n")
    with pytest.raises(DataError, match=r"line 3.*'2'"):
        to_examples(read_records(path), DataConfig(), ["neg", "pos"])


def test_empty_label_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "eval.csv", "text,label\ngood,1\nodd,\n")
    with pytest.raises(DataError, match=r"line 3.*'label' is empty"):
        to_examples(read_records(path), DataConfig(), ["neg", "pos"])


def test_missing_text_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "review,label\ngood,1\n")
    with pytest.raises(DataError) as info:
        to_examples(read_records(path), DataConfig(), ["0", "1"])
    assert "'text'" in str(info.value)
    assert "review, label" in str(info.value)


def test_column_alternatives_pick_the_one_present(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "Quality\t#1 String\t#2 String\n1\tgood\tgreat\n")
    data = DataConfig(
        text_column="sentence1|#1 String",
        pair_column="sentence2|#2 String",
        label_column="label|Quality",
    )
    (example,) = to_examples(read_records(path), data, ["no", "yes"])
    assert (example.text, example.pair, example.label) == ("good", "great", 1)


# ------------------------------------------------------------------- carving and text


def test_carve_validation_is_seeded_disjoint_and_complete() -> None:
    examples = [Example(f"text {i}", label=i % 2) for i in range(50)]
    train, valid = carve_validation(examples, 0.2, seed=7)
    again_train, again_valid = carve_validation(examples, 0.2, seed=7)
    assert [e.text for e in train] == [e.text for e in again_train]
    assert [e.text for e in valid] == [e.text for e in again_valid]
    assert len(valid) == 10
    assert len(train) == 40
    assert {e.text for e in train}.isdisjoint({e.text for e in valid})
    assert {e.text for e in train} | {e.text for e in valid} == {e.text for e in examples}
    _, other = carve_validation(examples, 0.2, seed=8)
    assert {e.text for e in other} != {e.text for e in valid}
    # Not simply the first or last rows.
    assert {e.text for e in valid} != {e.text for e in examples[:10]}
    assert {e.text for e in valid} != {e.text for e in examples[-10:]}


def test_carve_validation_holds_out_at_least_one() -> None:
    _, valid = carve_validation([Example("a"), Example("b"), Example("c")], 0.01, seed=0)
    assert len(valid) == 1


def test_clean_text_html_strips_line_breaks_and_entities() -> None:
    raw = "Great film.<br /><br />The <i>acting</i> &amp; music<BR>were   fun."
    assert clean_text(raw, ["html"]) == "Great film. The acting & music were fun."
    assert clean_text(raw, []) == raw
    assert clean_text("  a \n\t b ", ["whitespace"]) == "a b"


# ------------------------------------------------------------------------ load_split


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    write(root / "imdb" / "train.csv", "text,label\nfrom data dir,1\n")
    write(root / "imdb" / "test.csv", "text,label\ndata dir test,0\n")
    write(root / "mrpc" / "dev.tsv", "Quality\t#1 String\t#2 String\n1\ta\tb\n")
    monkeypatch.setenv("BERTCLI_DATA_DIR", str(root))
    return root


def test_explicit_file_wins_over_the_data_dir(tmp_path: Path, data_dir: Path) -> None:
    explicit = write(tmp_path / "mine.csv", "text,label\nexplicit,0\n")
    split = load_split(load_config("imdb", {"data.train": str(explicit)}), "train")
    assert split.origin == str(explicit)
    assert split.records[0][1]["text"] == "explicit"


def test_data_dir_wins_over_the_hub(data_dir: Path) -> None:
    config = load_config("imdb")
    train = load_split(config, "train")
    assert train.origin == str(data_dir / "imdb" / "train.csv")
    assert train.records[0][1]["text"] == "from data dir"
    assert load_split(config, "test").records[0][1]["text"] == "data dir test"


def test_data_dir_finds_dev_tsv_for_validation(data_dir: Path) -> None:
    split = load_split(load_config("mrpc"), "validation")
    assert split.origin == str(data_dir / "mrpc" / "dev.tsv")


def test_split_not_configured_and_not_in_data_dir_is_none(data_dir: Path) -> None:
    assert load_split(load_config("imdb"), "validation") is None


def test_hub_split_name_is_not_mistaken_for_a_directory_in_cwd(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "test").mkdir(parents=True)  # a very common folder in a project checkout
    monkeypatch.chdir(project)
    split = load_split(load_config("imdb"), "test")
    assert split is not None
    assert split.records[0][1]["text"] == "data dir test"


def test_hub_only_split_offline_is_a_data_error_naming_the_data_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bertcli.hub, "_reachable", False)
    with pytest.raises(DataError) as info:
        load_split(load_config("imdb"), "train")
    text = str(info.value)
    assert "BERTCLI_DATA_DIR" in text
    assert "stanfordnlp/imdb" in text
    assert "--train" in text


def test_hub_only_split_offline_says_where_it_looked(data_dir: Path) -> None:
    # conftest sets HF_HUB_OFFLINE=1 and resets the cached probe, so the hub counts as offline.
    with pytest.raises(DataError) as info:
        load_split(load_config("sst2"), "train")
    assert str(data_dir) in str(info.value)
    assert "sst2" in str(info.value)


# ------------------------------------------------------------------------- load_data


def test_load_data_carves_validation_and_names_labels(tmp_path: Path) -> None:
    rows = "".join(f"text {i},{'pos' if i % 3 else 'neg'}\n" for i in range(40))
    path = write(tmp_path / "train.csv", "text,label\n" + rows)
    config = load_config(None, {"data.train": str(path), "data.validation_fraction": 0.25})
    prepared = load_data(config)
    assert prepared.label_names == ["neg", "pos"]
    assert len(prepared.train) == 30
    assert len(prepared.validation) == 10
    assert prepared.test == []
    assert "25%" in prepared.sources["validation"]


def test_load_data_with_one_label_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "text,label\na,pos\nb,pos\nc,pos\n")
    with pytest.raises(DataError, match=r"1 label\(s\) \(pos\); need at least 2"):
        load_data(load_config(None, {"data.train": str(path)}))


def test_load_data_caps_training_rows(tmp_path: Path) -> None:
    rows = "".join(f"t{i},{i % 2}\n" for i in range(100))
    path = write(tmp_path / "train.csv", "text,label\n" + rows)
    config = load_config(None, {"data.train": str(path), "data.max_train_samples": 20})
    prepared = load_data(config)
    assert len(prepared.train) + len(prepared.validation) == 20


def test_shared_mrpc_loads_from_the_data_dir(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (shared_data / "mrpc" / "train.tsv").is_file():
        pytest.skip("no shared MRPC data")
    monkeypatch.setenv("BERTCLI_DATA_DIR", str(shared_data))
    prepared = load_data(load_config("mrpc"))
    assert prepared.label_names == ["not_equivalent", "equivalent"]
    assert len(prepared.train) == 3669
    assert len(prepared.validation) == 407
    assert prepared.test == []  # hub-only, offline: skipped with a notice
    assert all(e.pair for e in prepared.train)
    assert {e.label for e in prepared.train} == {0, 1}


def test_shared_imdb_is_cleaned_of_html(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_data / "imdb" / "test.csv").is_file():
        pytest.skip("no shared IMDb data")
    monkeypatch.setenv("BERTCLI_DATA_DIR", str(shared_data))
    config = load_config("imdb")
    split = load_split(config, "test")
    assert split.origin.endswith("imdb/test.csv")
    assert any("<br" in record["text"] for _, record in split.records)
    examples = to_examples(split.records, config.data, config.data.label_names)
    assert len(examples) == 2084
    assert not any("<br" in e.text.lower() for e in examples)
    assert {e.label for e in examples} == {0, 1}
