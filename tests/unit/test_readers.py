"""Tests for the streaming input readers and their error messages."""

from __future__ import annotations

import io
import json
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bertcli.data.readers import (
    FORMATS,
    detect_format,
    iter_records,
    read_records,
    require_columns,
)
from bertcli.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


class _CountingStream:
    """A stdin stand-in that hands out lines from a generator and counts them."""

    def __init__(self, lines: int, make: Callable[[int], bytes]) -> None:
        self.consumed = 0
        self._lines = lines
        self._make = make

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self._lines):
            self.consumed += 1
            yield self._make(i)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("-", "text"),
        ("notes", "text"),
        ("a.txt", "text"),
        ("a.TEXT", "text"),
        ("a.csv", "csv"),
        ("a.tsv", "tsv"),
        ("a.tab", "tsv"),
        ("a.json", "json"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.parquet", "parquet"),
        ("dir/a.pq", "parquet"),
    ],
)
def test_detect_format_by_suffix(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt
    assert fmt in FORMATS


def test_detect_format_unknown_suffix_lists_known_ones() -> None:
    with pytest.raises(DataError, match=r"a\.xlsx: unknown file suffix '\.xlsx'") as err:
        detect_format("a.xlsx")
    assert ".csv" in err.value.message
    assert ".jsonl" in err.value.message


def test_text_keeps_blank_lines_and_strips_line_endings(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.txt", "\ufefffirst\r\n\nthird\n\nlast")
    records = read_records(path)
    assert [r["text"] for _, r in records] == ["first", "", "third", "", "last"]
    assert [loc for loc, _ in records][1] == f"{path}:line 2"


def test_csv_round_trip_with_quoted_commas_and_newlines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "reviews.csv",
        'text,label\n"good, really",1\n"two\nlines ""quoted""",0\nplain,1\n',
    )
    records = read_records(path)
    assert [r for _, r in records] == [
        {"text": "good, really", "label": "1"},
        {"text": 'two\nlines "quoted"', "label": "0"},
        {"text": "plain", "label": "1"},
    ]
    # The multi-line record starts on line 3; the next one is on line 5.
    assert [loc for loc, _ in records] == [f"{path}:line {n}" for n in (2, 3, 5)]


def test_csv_strips_bom_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.csv", "\ufefftext,label\r\nx,1\r\n\r\ny,0\r\n")
    records = read_records(path)
    assert [r for _, r in records] == [{"text": "x", "label": "1"}, {"text": "y", "label": "0"}]
    assert records[1][0].endswith(":line 4")


def test_tsv_keeps_quote_characters_like_mrpc(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "train.tsv",
        'Quality\t#1 String\t#2 String\n1\t"Quoted" start\tan "inner\n0\tplain\t"\n',
    )
    records = read_records(path)
    assert [r for _, r in records] == [
        {"Quality": "1", "#1 String": '"Quoted" start', "#2 String": 'an "inner'},
        {"Quality": "0", "#1 String": "plain", "#2 String": '"'},
    ]


def test_ragged_csv_row_reports_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(DataError) as err:
        read_records(path)
    assert err.value.message == f"{path}:line 3: expected 3 fields (header: a, b, c), found 2"


def test_csv_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.csv", 'text,label\n"open,1\nx,0\n')
    with pytest.raises(DataError, match=r"q\.csv:line 2: malformed CSV"):
        read_records(path)


def test_csv_header_only_is_empty_iterator_but_read_records_fails(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.csv", "text,label\n")
    assert list(iter_records(path)) == []
    with pytest.raises(DataError, match="header but no rows"):
        read_records(path)


def test_csv_duplicate_header_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "text,text\n1,2\n")
    with pytest.raises(DataError, match="duplicate header column 'text'"):
        read_records(path)


def test_non_utf8_byte_reports_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.csv", b"text,label\nok,1\ncaf\xe9 au lait,0\n")
    with pytest.raises(DataError) as err:
        list(iter_records(path))
    assert err.value.message == f"{path}:line 3: not valid UTF-8 (byte 0xe9 at column 4)"
    assert err.value.hint is not None
    assert "iconv" in err.value.hint


def test_non_utf8_byte_in_json_reports_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", b'[\n{"text": "ok"},\n{"text": "\xff"}\n]')
    with pytest.raises(DataError, match=r"x\.json:line 3: not valid UTF-8 \(byte 0xff at"):
        read_records(path)


def test_jsonl_round_trip_skips_blank_lines(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": 1}, {"text": "b\nc", "label": 0}]
    path = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows[:1]) + "\n\n")
    with path.open("a") as handle:
        handle.write(json.dumps(rows[1]) + "\n")
    records = read_records(path)
    assert [r for _, r in records] == rows
    assert [loc for loc, _ in records] == [f"{path}:line 1", f"{path}:line 3"]


def test_bad_jsonl_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError, match=r"d\.jsonl:line 2: invalid JSON \(Expecting value"):
        read_records(path)


def test_jsonl_line_must_be_an_object(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", '{"text": "a"}\n["a"]\n')
    with pytest.raises(DataError, match=r"line 2: expected a JSON object, found an array"):
        read_records(path)


@pytest.mark.parametrize("wrap", [False, True])
def test_json_list_or_data_key(tmp_path: Path, wrap: bool) -> None:
    rows = [{"text": "a"}, {"text": "b"}]
    path = _write(tmp_path / "x.json", json.dumps({"data": rows} if wrap else rows))
    records = read_records(path)
    assert records == [(f"{path}:record 1", rows[0]), (f"{path}:record 2", rows[1])]


def test_json_wrong_shapes(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.json", json.dumps({"version": 1, "rows": []}))
    with pytest.raises(DataError, match="found an object with keys: version, rows"):
        read_records(path)
    _write(path, json.dumps([{"text": "a"}, "b"]))
    with pytest.raises(
        DataError, match=r"x\.json:record 2: expected a JSON object, found a string"
    ):
        read_records(path)
    _write(path, "[{]")
    with pytest.raises(DataError, match=r"x\.json:line 1: invalid JSON"):
        read_records(path)


def test_parquet_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": [0, 1, 0]}), path, row_group_size=2)
    records = read_records(path)
    assert [r for _, r in records] == [
        {"text": "a", "label": 0},
        {"text": "b", "label": 1},
        {"text": "c", "label": 0},
    ]
    assert records[2][0] == f"{path}:row 3"


def test_parquet_invalid_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.parquet", "not parquet at all")
    with pytest.raises(DataError, match=r"x\.parquet: not a valid Parquet file"):
        read_records(path)


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"e{suffix}", b"")
    with pytest.raises(DataError, match=r"e\.\w+ is empty"):
        iter_records(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        iter_records("reviews.csv")
    assert err.value.message == "reviews.csv: no such file"
    with pytest.raises(DataError, match="is a directory"):
        iter_records(tmp_path, "csv")


def test_location_uses_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "in.txt", "hello\n")
    assert read_records("in.txt") == [("in.txt:line 1", {"text": "hello"})]


def test_unknown_explicit_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown format 'xml'"):
        iter_records(_write(tmp_path / "a.txt", "x"), "xml")


def test_stdin_text_and_jsonl() -> None:
    records = list(iter_records("-", stdin=io.BytesIO(b"a\n\nc\n")))
    assert records == [
        ("<stdin>:line 1", {"text": "a"}),
        ("<stdin>:line 2", {"text": ""}),
        ("<stdin>:line 3", {"text": "c"}),
    ]
    jsonl = list(iter_records("-", "jsonl", stdin=io.BytesIO(b'{"text": "x"}\n')))
    assert jsonl == [("<stdin>:line 1", {"text": "x"})]


def test_stdin_bad_byte_and_empty() -> None:
    with pytest.raises(DataError, match=r"<stdin>:line 2: not valid UTF-8 \(byte 0xe9"):
        list(iter_records("-", stdin=io.BytesIO(b"ok\n\xe9\n")))
    with pytest.raises(DataError, match="<stdin> is empty"):
        list(iter_records("-", stdin=io.BytesIO(b"")))
    with pytest.raises(DataError, match="parquet cannot be read from stdin"):
        iter_records("-", "parquet", stdin=io.BytesIO(b""))


@pytest.mark.parametrize(
    ("fmt", "pulled", "make"),
    [
        ("text", 1, lambda i: f"line {i}\n".encode()),
        ("csv", 2, lambda i: f"line,{i}\n".encode()),
        ("jsonl", 1, lambda i: json.dumps({"text": str(i)}).encode() + b"\n"),
    ],
)
def test_records_are_streamed_not_read_whole(
    fmt: str, pulled: int, make: Callable[[int], bytes]
) -> None:
    # A million-line stream: reading it whole would show in `consumed` (and in the runtime).
    stream = _CountingStream(1_000_000, make)
    records = iter_records("-", fmt, stdin=stream)  # type: ignore[arg-type]
    assert isinstance(records, types.GeneratorType)
    assert stream.consumed == 0
    next(records)
    assert stream.consumed == pulled


def test_require_columns_lists_available_columns() -> None:
    record = {"text": "x", "label": "1"}
    require_columns(record, "r.csv:line 2", ["text", "label"])
    with pytest.raises(DataError) as err:
        require_columns(record, "reviews.csv:line 2", ["txt"], "data.text_column")
    assert err.value.message == "reviews.csv:line 2: no column 'txt' (columns: text, label)"
    assert err.value.hint == "did you mean 'text'?"
    assert err.value.setting == "data.text_column"
    with pytest.raises(DataError, match=r"no columns 'a', 'b' \(columns: text, label\)$"):
        require_columns(record, "reviews.csv:line 2", ["a", "b", "text"])


@pytest.mark.skipif(not (SHARED_DATA / "mrpc" / "train.tsv").exists(), reason="no shared data")
def test_reads_real_mrpc_train() -> None:
    records = read_records(SHARED_DATA / "mrpc" / "train.tsv")
    assert len(records) == 3669
    assert all(len(r) == 5 for _, r in records)
    assert list(records[0][1]) == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    assert sum(r["#1 String"].startswith('"') or r["#2 String"].startswith('"') for _, r in records)
