"""Streaming readers for text, CSV, TSV, JSON, JSONL and Parquet inputs with one-line errors."""

from __future__ import annotations

import contextlib
import csv
import difflib
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from bertcli.errors import DataError

FORMATS = ("text", "csv", "tsv", "json", "jsonl", "parquet")

_SUFFIXES = {
    ".txt": "text",
    ".text": "text",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# What a non-empty input of each format looks like, for "is empty" messages.
_EXPECTED = {
    "text": "expected one input per line",
    "csv": "expected a header and at least one row",
    "tsv": "expected a header and at least one row",
    "json": "expected a list of objects or an object with a 'data' list",
    "jsonl": "expected one JSON object per line",
    "parquet": "expected at least one row",
}

_STDIN_NAME = "<stdin>"
_BOM = "\ufeff"
_PARQUET_BATCH_ROWS = 1024
_TOO_DEEP = "JSON nested too deeply to be a data record (expected flat objects)"
_UTF8_HINT = "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"


def detect_format(path: str | Path) -> str:
    """Return the format implied by a path's suffix; '-' and suffix-less paths are text."""
    name = str(path)
    if name == "-":
        return "text"
    suffix = Path(name).suffix.lower()
    if suffix == "":
        return "text"
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    known = ", ".join(_SUFFIXES)
    raise DataError(
        f"{name}: unknown file suffix '{suffix}' (known: {known})",
        hint=f"rename the file or name the format explicitly, one of: {', '.join(FORMATS)}",
    )


def iter_records(
    source: str | Path, fmt: str | None = None, *, stdin: BinaryIO | None = None
) -> Iterator[tuple[str, dict]]:
    """Return a lazy iterator of (location, record) pairs from a file, or stdin for '-'.

    Path problems (missing, directory, empty file, unknown format) raise here, at call
    time; problems inside the data raise when the offending record is reached.
    Locations count lines, records and rows from 1 and name the path as the user gave it.
    """
    name = str(source)
    fmt = fmt or detect_format(name)
    if fmt not in FORMATS:
        raise DataError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    if name == "-":
        if fmt == "parquet":
            raise DataError(
                "parquet cannot be read from stdin: it needs a seekable file",
                hint="pass the .parquet file path instead of '-'",
            )
        return _dispatch(fmt, _STDIN_NAME, stdin if stdin is not None else sys.stdin.buffer)
    check_file(name, fmt, _EXPECTED[fmt])
    if fmt == "parquet":
        return _parquet_records(name)
    return _dispatch(fmt, name, name)


def read_records(source: str | Path, fmt: str | None = None) -> list[tuple[str, dict]]:
    """Read every record into a list; an input with no records is an error."""
    records = list(iter_records(source, fmt))
    if not records:
        name = _STDIN_NAME if str(source) == "-" else str(source)
        fmt = fmt or detect_format(source)
        if fmt in ("csv", "tsv"):
            raise DataError(f"{name} has a header but no rows: {_EXPECTED[fmt]}")
        raise DataError(f"{name} has no records: {_EXPECTED[fmt]}")
    return records


def require_columns(
    record: dict, location: str, columns: Sequence[str], setting: str | None = None
) -> None:
    """Raise a DataError naming every column in `columns` that `record` lacks.

    `setting` is the config key that names the column (data.text_column); the command that
    reports the error says how to set it.
    """
    missing = [c for c in columns if c not in record]
    if not missing:
        return
    available = ", ".join(str(k) for k in record) or "none"
    quoted = ", ".join(f"'{c}'" for c in missing)
    noun = "column" if len(missing) == 1 else "columns"
    hints = []
    if len(missing) == 1:
        close = difflib.get_close_matches(missing[0], [str(k) for k in record], n=1)
        if close:
            hints.append(f"did you mean '{close[0]}'?")
    raise DataError(
        f"{location}: no {noun} {quoted} (columns: {available})",
        hint=" ".join(hints) or None,
        setting=setting,
    )


def check_file(name: str, kind: str, expected: str) -> None:
    """Turn missing, unreadable and empty paths into one-line errors before reading.

    `kind` names the file type ("csv", "CoNLL"); `expected` says what an empty file lacks.
    """
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError(
            f"{name}: is a directory, expected a {kind} file",
            hint="pass a file inside it",
        )
    if not os.access(name, os.R_OK):
        raise DataError(f"{name}: permission denied")
    # Only regular files have a meaningful size; pipes such as /dev/fd/N report 0.
    if stat.S_ISREG(info.st_mode) and info.st_size == 0:
        raise DataError(f"{name} is empty: {expected}")


def _dispatch(fmt: str, name: str, src: BinaryIO | str) -> Iterator[tuple[str, dict]]:
    """Route a text-based format; `src` is an open binary stream or a path to open."""
    if fmt == "json":
        return _json_records(name, src)
    lines = _decoded_lines(name, fmt, src)
    if fmt == "text":
        return _text_records(name, lines)
    if fmt == "jsonl":
        return _jsonl_records(name, lines)
    return _delimited_records(name, fmt, lines)


def _binary(src: BinaryIO | str) -> AbstractContextManager[BinaryIO]:
    # A caller's stream (stdin) is left open; a path we open is closed.
    return open(src, "rb") if isinstance(src, str) else contextlib.nullcontext(src)


def _decoded_lines(name: str, fmt: str, src: BinaryIO | str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line with its ending) decoding one line at a time.

    Decoding per line rather than through a text wrapper is what lets a bad byte be
    reported with the line it sits on.
    """
    lineno = 0
    with _binary(src) as handle:
        for lineno, raw in enumerate(handle, start=1):
            yield lineno, _decode(raw, name, lineno)
    # A 0-byte regular file was caught earlier; this catches empty pipes and stdin.
    if lineno == 0:
        raise DataError(f"{name} is empty: {_EXPECTED[fmt]}")


def _decode(raw: bytes, name: str, lineno: int) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8")) + 1
        raise DataError(
            f"{name}:line {lineno}: not valid UTF-8 "
            f"(byte 0x{raw[exc.start]:02x} at column {column})",
            hint=_UTF8_HINT,
        ) from None
    return line[1:] if lineno == 1 and line.startswith(_BOM) else line


def _text_records(name: str, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, dict]]:
    # Empty lines are records too: predict writes exactly one output per input line.
    for lineno, line in lines:
        text = line[:-1] if line.endswith("\n") else line
        text = text[:-1] if text.endswith("\r") else text
        yield f"{name}:line {lineno}", {"text": text}


def _jsonl_records(name: str, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, dict]]:
    for lineno, line in lines:
        if not line.strip():
            continue
        location = f"{name}:line {lineno}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{location}: invalid JSON ({exc.msg} at column {exc.colno})",
                hint="each line of a .jsonl file must be one complete JSON object",
            ) from None
        except RecursionError:
            raise DataError(f"{location}: {_TOO_DEEP}") from None
        if not isinstance(value, dict):
            raise DataError(f"{location}: expected a JSON object, found {_kind(value)}")
        yield location, value


def _delimited_records(
    name: str, fmt: str, lines: Iterable[tuple[int, str]]
) -> Iterator[tuple[str, dict]]:
    """Parse CSV (RFC 4180 quoting) or TSV (no quoting, GLUE style) into header-keyed dicts."""
    if fmt == "tsv":
        # MRPC-style TSV has fields starting with '"'; quoting would merge rows.
        reader = csv.reader((line for _, line in lines), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        # strict turns an unclosed quote into an error instead of swallowing the file.
        reader = csv.reader((line for _, line in lines), strict=True)
    header = _next_row(reader, f"{name}:line 1", fmt)
    if header is None:
        return
    _check_header(header, name)
    while True:
        start = reader.line_num + 1
        row = _next_row(reader, f"{name}:line {start}", fmt)
        if row is None:
            return
        if not row:
            continue  # csv yields [] for a blank line
        if len(row) != len(header):
            raise DataError(
                f"{name}:line {start}: expected {_fields(len(header))} "
                f"(header: {_preview(header)}), found {len(row)}",
                hint=_ragged_hint(fmt, header),
            )
        yield f"{name}:line {start}", dict(zip(header, row, strict=True))


def _next_row(reader: Iterator[list[str]], location: str, fmt: str) -> list[str] | None:
    """Next parsed row, None at the end; `location` is where the row starts."""
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        hint = 'close the quote or double embedded quotes ("")'
        if fmt == "csv":
            hint += "; GLUE-style files with bare '\"' in fields should be read as tsv"
        raise DataError(f"{location}: malformed {fmt.upper()} ({exc})", hint=hint) from None


def _check_header(header: list[str], name: str) -> None:
    duplicates = [column for column, count in Counter(header).items() if count > 1]
    if duplicates:
        dup = ", ".join(f"'{c}'" for c in duplicates)
        raise DataError(
            f"{name}:line 1: duplicate header column {dup} (header: {_preview(header)})",
            hint="give every column a unique name",
        )


def _fields(count: int) -> str:
    return f"{count} field" if count == 1 else f"{count} fields"


def _ragged_hint(fmt: str, header: Sequence[str]) -> str:
    if fmt == "csv" and len(header) == 1 and "\t" in header[0]:
        return "the header is tab-separated: read the file as tsv"
    if fmt == "tsv":
        return "separate fields with exactly one tab; a TSV field cannot contain a tab"
    return 'quote fields that contain commas, e.g. "a, b"'


def _preview(header: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(header[:limit])
    return shown + ", ..." if len(header) > limit else shown


def _json_records(name: str, src: BinaryIO | str) -> Iterator[tuple[str, dict]]:
    """Records of a single JSON document; the only format loaded whole, as JSON requires."""
    with _binary(src) as handle:
        data = handle.read()
    if not data:
        raise DataError(f"{name} is empty: {_EXPECTED['json']}")
    document = _parse_json(data, name)
    items = _json_items(document, name)
    for index, item in enumerate(items, start=1):
        location = f"{name}:record {index}"
        if not isinstance(item, dict):
            raise DataError(f"{location}: expected a JSON object, found {_kind(item)}")
        yield location, item


def _parse_json(data: bytes, name: str) -> object:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        raise DataError(
            f"{name}:line {lineno}: not valid UTF-8 "
            f"(byte 0x{data[exc.start]:02x} at column {column})",
            hint=_UTF8_HINT,
        ) from None
    try:
        return json.loads(text.removeprefix(_BOM))
    except RecursionError:
        raise DataError(f"{name}: {_TOO_DEEP}") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{name}:line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})",
            hint="for one object per line, name the file .jsonl",
        ) from None


def _json_items(document: object, name: str) -> list:
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document["data"]
    if isinstance(document, dict):
        keys = ", ".join(str(k) for k in list(document)[:8]) or "none"
        found = f"an object with keys: {keys}"
    else:
        found = _kind(document)
    raise DataError(f"{name}: {_EXPECTED['json']}, found {found}")


def _parquet_records(name: str) -> Iterator[tuple[str, dict]]:
    # Imported here: pyarrow is heavy and most invocations never touch parquet.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(name)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{name}: not a valid Parquet file ({exc})") from None
    row = 0
    with parquet:
        batches = parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS)
        while True:
            try:
                batch = next(batches)
                records = batch.to_pylist()
            except StopIteration:
                return
            except (pa.ArrowException, OSError, ValueError) as exc:
                # A damaged page is found only when its rows are decoded.
                raise DataError(
                    f"{name}:row {row + 1}: damaged Parquet data after row {row} "
                    f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                    hint="re-write the file, or export it again from its source",
                ) from None
            for record in records:
                row += 1
                yield f"{name}:row {row}", record


def _kind(value: object) -> str:
    """Name a JSON value's type the way JSON does, for error messages."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "an object"})
    return names.get(type(value), type(value).__name__)
