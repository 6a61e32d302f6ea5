"""Family differences the windowing and model code must follow, one check per known failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertcli.config import ConfigError, load_config
from bertcli.console import configure
from bertcli.data.qa_windows import make_qa_windows
from bertcli.data.windows import make_windows
from bertcli.data.word_windows import make_word_windows
from bertcli.errors import BertcliError
from bertcli.finetune import finetune
from bertcli.tokenizer import RustTokenizer
from families.factories import FAMILIES

WORDS = ["Angela", "Merkel", "visited", "Paris", "?", "we", "saw", "Dave", "in", "Lima", "."]
CONTEXT = "the film was good  and Angela Merkel lives in  Paris .\n\tthe music was great . " * 3


def tokenizers(model_dir: Path) -> list:
    from transformers import AutoTokenizer

    return [AutoTokenizer.from_pretrained(str(model_dir)), RustTokenizer(model_dir)]


@pytest.mark.parametrize("family", FAMILIES)
def test_words_tokenize_as_they_do_inside_the_sentence(family, family_model) -> None:
    """Byte-level BPE words carry their leading-space marker (`Ġ`) as in running text, the first
    one included (what `add_prefix_space=True` does)."""
    from bertcli.modeling.traits import tokenizer_traits

    byte_level = family in ("roberta", "modernbert")
    for tokenizer in tokenizers(family_model(family)):
        assert tokenizer_traits(tokenizer).word_prefix == (" " if byte_level else "")
        windows = make_word_windows(tokenizer, [WORDS], max_length=64, stride=8)
        text = (" " if byte_level else "") + " ".join(WORDS)
        assert windows.input_ids == [tokenizer(text)["input_ids"]]


@pytest.mark.parametrize("family", FAMILIES)
def test_qa_context_positions_never_cover_a_blank_edge(family, family_model) -> None:
    """DeBERTa-v3 and ModernBERT offsets include the space before a word; RoBERTa has lone
    space tokens: no context position may start or end on a blank."""
    for tokenizer in tokenizers(family_model(family)):
        windows = make_qa_windows(
            tokenizer, ["where does Angela Merkel live ?"], [CONTEXT], max_length=32, stride=8,
            max_question_tokens=12, answers=[(CONTEXT.index("Paris"), CONTEXT.index("Paris") + 5)],
        )  # fmt: skip
        assert len(windows) > 2
        for w, offsets in enumerate(windows.offsets):
            spans = [CONTEXT[s:e] for s, e in filter(None, offsets)]
            assert spans and all(span == span.strip() and span for span in spans)
            start, end = windows.labels[w]
            if start:
                assert CONTEXT[offsets[start][0] : offsets[end][1]] == "Paris"


@pytest.mark.parametrize("family", FAMILIES)
def test_chunked_pairs_whose_pair_leaves_less_than_stride(family, family_model) -> None:
    """Used to end in a tokenizers PanicException (every family, BERT included)."""
    for tokenizer in tokenizers(family_model(family)):
        windows = make_windows(
            tokenizer, ["the film was good " * 10, "bad"], ["and the music was great " * 10] * 2,
            max_length=24, strategy="chunk", stride=8, max_windows=0,
        )  # fmt: skip
        assert windows.example_index[0] == 0 and windows.example_index[-1] == 1
        assert max(windows.lengths()) <= 24


def test_traits_of_each_family(family_model) -> None:
    from transformers import AutoModel

    from bertcli.modeling.traits import model_traits

    traits = {f: model_traits(AutoModel.from_pretrained(str(family_model(f)))) for f in FAMILIES}
    assert traits["roberta"].max_length == traits["xlm-roberta"].max_length == 128
    assert traits["roberta"].position_offset == 2 and traits["bert"].position_offset == 0
    segmented = {f for f, t in traits.items() if t.takes_token_type_ids}
    assert segmented == {"bert", "electra", "albert", "deberta-v2"}
    assert traits["distilbert"].attention_dropout_key == "attention_dropout"
    assert traits["modernbert"].native_pooling and traits["modernbert"].local_attention == 16
    assert traits["deberta-v3"].classifier_dropout_keys == ("cls_dropout",)
    assert {f for f, t in traits.items() if t.onnx_fusable} == {
        "bert", "roberta", "xlm-roberta", "electra"
    }  # fmt: skip


def test_roberta_window_longer_than_its_real_positions_is_refused(family_model, tmp_path):
    """max_position_embeddings is 130 here, but positions start after the padding index."""
    train = tmp_path / "t.csv"
    train.write_text("text,label\n" + "a good film,pos\nbad,neg\n" * 8)
    settings = {
        "model.name": str(family_model("roberta")),
        "data.train": str(train),
        "train.output_dir": str(tmp_path / "out"),
        "train.max_length": 130,
        "train.max_steps": 1,
        "train.precision": "no",
    }
    with pytest.raises(ConfigError, match="128"):
        finetune(load_config(None, settings))


def _trained_short(family_model, tmp_path: Path) -> Path:
    """A BERT trained 2 steps on 32-token windows (the default chunk stride, 128, cannot fit)."""
    train = tmp_path / "t.csv"
    train.write_text("text,label\n" + "a good film,pos\nbad,neg\n" * 8)
    settings = {
        "model.name": str(family_model("bert")),
        "data.train": str(train),
        "train.output_dir": str(tmp_path / "out"),
        "train.max_length": 32,
        "train.max_steps": 2,
        "train.precision": "no",
    }
    configure(quiet=True)
    try:
        return finetune(load_config(None, settings)).output_dir
    finally:
        configure(quiet=False)


def test_a_model_trained_short_predicts_in_chunks(family_model, tmp_path) -> None:
    """The default stride (128) did not fit the model's 32-token windows: predict refused it."""
    from bertcli.predict import predict_records

    out = _trained_short(family_model, tmp_path)
    meta = json.loads((out / "bertcli.json").read_text())
    assert meta["long_inputs"]["stride"] < 32 - 3
    source = tmp_path / "in.txt"
    source.write_text("a good film " * 40 + "\n")
    (row,) = [
        json.loads(x) for x in predict_records(source, out, long_inputs={"strategy": "chunk"})
    ]
    assert row["windows"] > 1


def test_skipped_speed_defaults_say_so_in_debug(capsys) -> None:
    from transformers import ModernBertConfig

    from bertcli.modeling.traits import ModelTraits

    traits = ModelTraits.from_config(ModernBertConfig(), object)
    traits = ModelTraits(**{**traits.__dict__, "attention_dropout_key": None})
    configure(debug=True)
    try:
        assert traits.overrides(dropout=None, attention_dropout=0.0, pooling="cls") == {
            "classifier_pooling": "cls"
        }
    finally:
        configure()
    assert "no attention dropout" in capsys.readouterr().err


def test_a_model_saved_with_an_unfitted_stride_still_predicts_in_chunks(
    family_model, tmp_path
) -> None:
    """Models saved before strides were fitted hold stride 128 for 32-token windows."""
    from bertcli.predict import predict_records

    out = _trained_short(family_model, tmp_path)
    meta = json.loads((out / "bertcli.json").read_text())
    meta["long_inputs"]["stride"] = 128  # as an older bertcli saved it
    (out / "bertcli.json").write_text(json.dumps(meta))
    source = tmp_path / "in.txt"
    source.write_text("a good film " * 40 + "\n")
    (row,) = [
        json.loads(x) for x in predict_records(source, out, long_inputs={"strategy": "chunk"})
    ]
    assert row["windows"] > 1
    with pytest.raises(BertcliError, match="stride"):  # a stride the user asks for is checked
        list(predict_records(source, out, long_inputs={"strategy": "chunk", "stride": 40}))
