"""CoNLL and token-JSONL readers, tag-scheme detection and conversion, label order."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from bertcli.data.conll import (
    Sentence,
    detect_scheme,
    iter_conll,
    label_set,
    read_conll,
    read_token_jsonl,
    to_iob2,
)
from bertcli.errors import ConfigError, DataError

CONLL2003 = Path(__file__).resolve().parents[3] / "shared" / "data" / "conll2003"
CONLL_LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]

DOC = """\
-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def _write(tmp_path: Path, text: str, name: str = "train.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _tags(text: str) -> list[str]:
    """Space-separated tags, so that aligned hand cases stay readable."""
    return text.split()


# --- CoNLL files -----------------------------------------------------------------------


@pytest.mark.skipif(not (CONLL2003 / "valid.txt").exists(), reason="shared CoNLL-2003 missing")
def test_real_conll2003_valid_counts() -> None:
    sentences = read_conll(CONLL2003 / "valid.txt")
    # Counts from shared/data/README.md: 3,250 sentences, 51,362 tokens, 9 labels.
    assert len(sentences) == 3250
    assert sum(len(s.tokens) for s in sentences) == 51362
    assert label_set(sentences) == CONLL_LABELS
    assert detect_scheme(s.tags for s in sentences) == "IOB2"
    assert not any(s.tokens[0] == "-DOCSTART-" for s in sentences)
    # In IOB2 every entity opens with one B- tag: PER 1,842, LOC 1,837, ORG 1,341, MISC 922.
    starts = Counter(tag[2:] for s in sentences for tag in s.tags if tag.startswith("B-"))
    assert starts == {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}
    first = sentences[0]
    assert first.location.endswith("valid.txt:line 3")
    assert first.tokens[:3] == ["CRICKET", "-", "LEICESTERSHIRE"]
    assert first.tags[:3] == ["O", "O", "B-ORG"]


def test_docstart_lines_are_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, DOC)
    sentences = read_conll(path)
    assert sentences == [
        Sentence(["EU", "rejects"], ["B-ORG", "O"], f"{path}:line 3"),
        Sentence(["Peter", "Blackburn"], ["B-PER", "I-PER"], f"{path}:line 6"),
        Sentence(["BRUSSELS"], ["B-LOC"], f"{path}:line 11"),
    ]


def test_docstart_without_blank_line_still_ends_the_sentence(tmp_path: Path) -> None:
    path = _write(tmp_path, "a O\n-DOCSTART- O\nb B-PER\n\n\n\nc O")  # no final newline
    assert [s.tokens for s in read_conll(path)] == [["a"], ["b"], ["c"]]


def test_columns_crlf_tabs_and_unicode_spaces(tmp_path: Path) -> None:
    # U+00A0 inside a token must not split it; CRLF and tab separators are fine.
    path = _write(tmp_path, "New\u00a0York\tNNP  B-LOC\r\nrains VBZ O\r\n")
    (sentence,) = read_conll(path)
    assert sentence.tokens == ["New\u00a0York", "rains"]
    assert sentence.tags == ["B-LOC", "O"]
    (chunks,) = read_conll(path, tag_column=1)
    assert chunks.tags == ["NNP", "VBZ"]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    lines = ["tok O"] * 16 + ["lonely"]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"train\.txt:line 17: expected at least 2 columns, found 1"
    ):
        read_conll(path)


def test_column_choice_sets_columns_needed(tmp_path: Path) -> None:
    path = _write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ\n")
    with pytest.raises(DataError, match=r"line 2: expected at least 4 columns, found 2"):
        read_conll(path, tag_column=3)
    # Column 1 and column -1 coincide on a 2-column line, so 3 columns are needed.
    with pytest.raises(DataError, match=r"line 2: expected at least 3 columns, found 2"):
        read_conll(path, token_column=1)
    with pytest.raises(ConfigError, match="must differ"):
        read_conll(path, token_column=2, tag_column=2)


def test_blank_token_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "a O\n\u3000 O\n")
    with pytest.raises(DataError, match=r"line 2: empty token"):
        read_conll(path)


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(b"a O\n\nM\xfcller B-PER\n")
    with pytest.raises(DataError, match=r"latin\.txt:line 3: not valid UTF-8 \(byte 0xfc"):
        read_conll(path)


def test_missing_empty_and_sentenceless_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_conll(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is empty"):
        read_conll(_write(tmp_path, ""))
    with pytest.raises(DataError, match="no sentences"):
        read_conll(_write(tmp_path, "-DOCSTART- -X- -X- O\n\n\n"))
    with pytest.raises(DataError, match="is a directory"):
        read_conll(tmp_path)


def test_iter_conll_streams_until_the_bad_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a O\n\nb\n")
    sentences = iter_conll(path)  # path checks only: nothing is read yet
    assert next(sentences).tokens == ["a"]
    with pytest.raises(DataError, match="line 3"):
        next(sentences)


# --- token JSONL -----------------------------------------------------------------------


def test_read_token_jsonl(tmp_path: Path) -> None:
    rows = [{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}, {"tokens": ["x"], "tags": ["O"]}]
    path = _write(tmp_path, "\n".join(json.dumps(r) for r in rows) + "\n\n", "ner.jsonl")
    sentences = read_token_jsonl(path)
    assert [s.tokens for s in sentences] == [["EU", "rejects"], ["x"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O"], ["O"]]
    assert sentences[1].location == f"{path}:line 2"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"tokens": ["a", "b"], "tags": ["O"]}, "line 2: 2 tokens but 1 tags"),
        ({"tokens": ["a"], "tags": [3]}, "line 2: 'tags' must be a list of strings"),
        ({"tokens": ["a"]}, "line 2: no column 'tags'"),
        ({"tokens": [], "tags": []}, "line 2: empty 'tokens' list"),
        ({"tokens": [" "], "tags": ["O"]}, "line 2: empty or blank token"),
    ],
)
def test_token_jsonl_errors_name_the_line(tmp_path: Path, row: dict, message: str) -> None:
    good = json.dumps({"tokens": ["a"], "tags": ["O"]})
    path = _write(tmp_path, f"{good}\n{json.dumps(row)}\n", "ner.jsonl")
    with pytest.raises(DataError, match=message):
        read_token_jsonl(path)


# --- tag schemes -----------------------------------------------------------------------


def test_iob1_to_iob2() -> None:
    iob1 = _tags("I-PER I-PER B-PER I-PER O I-LOC I-ORG O B-MISC I-MISC")
    iob2 = _tags("B-PER I-PER B-PER I-PER O B-LOC B-ORG O B-MISC I-MISC")
    assert detect_scheme([iob1]) == "IOB1"
    assert to_iob2(iob1, "IOB1") == iob2


def test_bioes_to_iob2() -> None:
    bioes = _tags("S-PER S-PER B-LOC I-LOC E-LOC B-LOC E-LOC O S-ORG B-PER E-PER")
    iob2 = _tags("B-PER B-PER B-LOC I-LOC I-LOC B-LOC I-LOC O B-ORG B-PER I-PER")
    assert detect_scheme([["O"], bioes]) == "BIOES"
    assert to_iob2(bioes, "BIOES") == iob2


def test_iob2_is_detected_and_left_unchanged() -> None:
    tags = _tags("B-PER I-PER B-PER O B-LOC")
    assert detect_scheme([tags, ["O", "O"]]) == "IOB2"
    assert to_iob2(tags, "IOB2") == tags


def _iob2_to_iob1(tags: list[str]) -> list[str]:
    """Reference inverse: B-X stays B-X only where an X entity ends just before it."""
    out = []
    for i, tag in enumerate(tags):
        after_same = i > 0 and tags[i - 1] != "O" and tags[i - 1][2:] == tag[2:]
        out.append("I" + tag[1:] if tag.startswith("B-") and not after_same else tag)
    return out


def _iob2_to_bioes(tags: list[str]) -> list[str]:
    """Reference inverse: an entity's last token is E-, a one-token entity is S-."""
    out = []
    for i, tag in enumerate(tags):
        ends = i + 1 == len(tags) or tags[i + 1] != "I" + tag[1:]
        if tag != "O" and ends:
            tag = ("S" if tag.startswith("B-") else "E") + tag[1:]
        out.append(tag)
    return out


def _random_iob2(rng: random.Random, length: int) -> list[str]:
    tags: list[str] = []
    while len(tags) < length:
        if rng.random() < 0.4:
            tags.append("O")
            continue
        kind = rng.choice("AB")
        tags += [f"B-{kind}"] + [f"I-{kind}"] * rng.randrange(3)
    return tags[:length]


def test_conversions_invert_random_encodings() -> None:
    rng = random.Random(0)
    for _ in range(300):
        iob2 = _random_iob2(rng, rng.randrange(1, 12))
        assert to_iob2(_iob2_to_iob1(iob2), "IOB1") == iob2
        assert to_iob2(_iob2_to_bioes(iob2), "BIOES") == iob2


@pytest.mark.parametrize(
    ("tags", "scheme", "message"),
    [
        (["O", "X-PER"], "IOB1", r"token 2: unknown tag 'X-PER'"),
        (["PER"], "IOB2", r"token 1: unknown tag 'PER'"),
        (["B-"], "BIOES", r"token 1: unknown tag 'B-'"),
        (["S-PER"], "IOB2", r"f\.txt:line 4, token 1: tag 'S-PER' is not valid IOB2"),
        (["B-PER", "E-PER"], "IOB1", r"token 2: tag 'E-PER' is not valid IOB1"),
    ],
)
def test_bad_tags_are_data_errors(tags: list[str], scheme: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        to_iob2(tags, scheme, location="f.txt:line 4")


def test_unknown_scheme_and_unknown_prefix_in_detection() -> None:
    with pytest.raises(ConfigError, match="known: IOB1, IOB2, BIOES"):
        to_iob2(["O"], "BILOU")
    with pytest.raises(DataError, match="sentence 2, token 1: unknown tag 'U-PER'"):
        detect_scheme([["O"], ["U-PER"]])


def test_label_set_order_is_fixed() -> None:
    sentences = [
        Sentence(["a", "b"], ["I-ZOO", "O"], "x:line 1"),
        Sentence(["c", "d", "e"], ["B-PER", "B-ANIMAL", "I-PER"], "x:line 4"),
    ]
    expected = ["O", "B-ANIMAL", "I-ANIMAL", "B-PER", "I-PER", "B-ZOO", "I-ZOO"]
    assert label_set(sentences) == expected
    assert label_set(reversed(sentences)) == expected
    assert label_set([Sentence(["a"], ["O"], "x:line 1")]) == ["O"]


def test_label_set_rejects_unconverted_tags() -> None:
    with pytest.raises(DataError, match=r"x:line 9, token 2: tag 'S-PER' is not valid IOB2"):
        label_set([Sentence(["a", "b"], ["O", "S-PER"], "x:line 9")])
