"""How log files (JSON Lines, CSV, Parquet, OpenSearch UBI) read as records under the contract's names.

sources.py streams files through these rules in bounded batches.

Formats:
- jsonl (.jsonl, .ndjson, .json): one JSON object per line; blank lines are skipped.
- csv (.csv): a header row naming the fields; an empty cell is an absent value. `query_input`,
  `documents`, `taxonomy_node_ids`, `interaction_type` and `metadata` cells that start with `[` or `{`
  are JSON text (e.g. `["d1","d2"]`); any other cell is a plain string. An integer `position` cell is
  read as an integer. A record's line is the line where it starts (the header is line 1).
- parquet (.parquet): one row per record; its line is the 1-based row number. Nested lists and structs
  read as lists and objects, timestamp columns as datetimes.
- ubi (JSON Lines): OpenSearch User Behavior Insights documents, `ubi_queries` for executions and
  `ubi_events` for interactions, mapped by ubi.py (ordinal base, query-level events, sessions).
A file that cannot be parsed at all (unreadable, not UTF-8, broken JSON, a JSON line that is not an
object, a malformed CSV row, not Parquet) raises LogParseError. An empty file holds 0 records.
Valid JSON that Python cannot hold as a value is a problem of its record, not of the file: nesting
deeper than MAX_JSON_DEPTH (checked before parsing, which would recurse) or an integer longer than
sys.get_int_max_str_digits(); so is a Parquet timestamp outside years 1-9999.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.logs.fields import json_type
from eval_pipelines.core.logs.quarantine import (
    BAD_TIMESTAMP,
    DOCUMENT_NOT_SERVED,
    MAX_JSON_DEPTH,
    POSITION_MISMATCH,
    POSITION_OUT_OF_RANGE,
    UNSUPPORTED_VALUE,
    WRONG_TYPE,
    RowRejected,
)
from eval_pipelines.core.paths import shown_field

FORMATS = ("auto", "jsonl", "csv", "parquet", "ubi")
EXTENSION_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}

_CSV_JSON_FIELDS = frozenset(
    {"query_input", "documents", "taxonomy_node_ids", "interaction_type", "metadata"}
)
_INTEGER_TEXT = re.compile(r"^\s*-?\d+\s*$")
_UTF8_BOM = b"\xef\xbb\xbf"
# JSON strings (group 1; group 2 is the colon after an object key) and brackets, for a depth scan.
_JSON_TOKENS = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|[\[\]{}]')
_PYTHON_DATETIMES = (datetime.min, datetime.max)  # years 1-9999, compared as UTC


class LogParseError(InvalidInputError):
    """A file that cannot be parsed at all; the whole ingest stops before writing anything."""

    def __init__(self, file: Path, line: int | None, message: str) -> None:
        location = f"{file}:{line}" if line is not None else f"{file}"
        super().__init__(f"{location}: {message}")
        self.file = file
        self.line = line
        self.message = message


# Rejections about where the document stood: a reader's note on how it read the position applies.
_POSITION_REASONS = frozenset({POSITION_OUT_OF_RANGE, POSITION_MISMATCH, DOCUMENT_NOT_SERVED})


@dataclass(slots=True)
class SourceRecord:
    """One source row: `raw` as read (for the quarantine), `fields` under the contract's names.

    `labels` names fields in messages by their source name; `problem` is set when the reader already
    knows the row breaks the contract (e.g. a CSV cell with broken JSON). `skipped` names a record
    that is no row of this table but belongs in the source (a UBI `on_search` event): counted under
    that name, neither ingested nor quarantined. `remark` is how the reader filled a field the
    source lacks, counted in the report (e.g. a UBI session taken from the query_id). `note` says
    how the reader read the position (a UBI ordinal as written), added to a rejection about it
    (with_note).
    """

    source_file: str
    line: int
    raw: Mapping[str, Any] | str
    fields: Mapping[str, Any]
    labels: Mapping[str, str]
    problem: RowRejected | None = None
    skipped: str | None = None
    remark: str | None = None
    note: str | None = None


def with_note(rejected: RowRejected, note: str | None) -> RowRejected:
    """rejected, with a reader's note on the position when the problem is where the document stood."""
    if note is None or rejected.reason not in _POSITION_REASONS:
        return rejected
    return RowRejected(rejected.reason, f"{rejected.detail} [{note}]")


@dataclass
class ReaderTally:
    """What the readers set aside or filled in, for the ingest report: records skipped (no row of
    the table) and rows with a remark, each counted by name; notes on other inputs (a sessions file)."""

    skipped: dict[str, int] = field(default_factory=dict)
    remarks: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        lines = [f"skipped {count}: {name}" for name, count in self.skipped.items()]
        lines.extend(
            f"note: {count} row{'s' * (count != 1)}: {remark}"
            for remark, count in self.remarks.items()
        )
        return lines + [f"note: {note}" for note in self.notes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "skipped": dict(self.skipped),
            "remarks": dict(self.remarks),
            "notes": list(self.notes),
        }


def resolve_format(file: Path, fmt: str) -> str:
    """The concrete format of file: fmt itself, or for "auto" the one its extension names."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    by_extension = EXTENSION_FORMATS.get(file.suffix.lower())
    if by_extension is None:
        raise LogParseError(
            file,
            None,
            f"cannot tell the format from the extension {file.suffix!r}"
            f" (known: {', '.join(EXTENSION_FORMATS)}); pass a format explicitly",
        )
    return by_extension


def read_text(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise LogParseError(file, None, f"cannot read the file ({exc.strerror or exc})") from exc
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LogParseError(
            file, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded)"
        ) from exc


class _LongInteger:
    """Stands for a JSON integer too long for int(); only its digit count is kept."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _int_or_long(text: str) -> int | _LongInteger:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= sys.get_int_max_str_digits() else _LongInteger(digits)


def _long_integer_path(value: Any, path: str) -> tuple[str, int] | None:
    """(path, digits) of the first _LongInteger in a parsed value (depth is bounded by the scan)."""
    if isinstance(value, _LongInteger):
        return path, value.digits
    if isinstance(value, dict):
        inner = [
            (f"{path}.{shown_field(k)}" if path else shown_field(k), v) for k, v in value.items()
        ]
    elif isinstance(value, list):
        inner = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return None
    for item_path, item in inner:
        found = _long_integer_path(item, item_path)
        if found:
            return found
    return None


def _too_deep(text: str) -> str | None:
    """The top-level key open where text nests deeper than MAX_JSON_DEPTH ("" if none), else None.

    A scan of tokens, not a parse: the parser recurses once per level and would fail on the value.
    """
    depth, key = 0, ""
    for token in _JSON_TOKENS.finditer(text):
        string = token.group(1)
        if string is not None:
            if depth == 1 and token.group(2):
                key = shown_field(json.loads(string))
        elif token.group() in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return key
        else:
            depth -= 1
    return None


def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key repeated in one object keeps its first value, as DuckDB's JSON reader does (the ingest's
    fast path), so a line reads the same whichever path takes it."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


def parse_json(text: str, label: str = "") -> Any:
    """json.loads; valid JSON Python cannot hold raises RowRejected naming the field (label or key).

    Syntax errors stay json.JSONDecodeError. The bracket count keeps the depth scan off normal rows.
    """
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        key = _too_deep(text)
        if key is not None:
            field = ".".join(part for part in (label, key) if part) or "the value"
            raise RowRejected(
                UNSUPPORTED_VALUE, f"{field}: JSON nested more than {MAX_JSON_DEPTH} levels deep"
            )
    try:
        return json.loads(text, object_pairs_hook=first_wins)
    except json.JSONDecodeError:
        raise
    except ValueError:
        found = _long_integer_path(
            json.loads(text, parse_int=_int_or_long, object_pairs_hook=first_wins), label
        )
        if found is None:
            raise
        path, digits = found
        raise RowRejected(
            UNSUPPORTED_VALUE,
            f"{path or 'the value'}: an integer of {digits} digits (at most"
            f" {sys.get_int_max_str_digits()} can be read)",
        ) from None


def jsonl_record(file: Path, number: int, line: str) -> SourceRecord | None:
    """One JSON line as a record (None when blank); LogParseError when it is not a JSON object."""
    if not line.strip():
        return None
    try:
        value = parse_json(line)
    except json.JSONDecodeError as exc:
        raise LogParseError(
            file, number, f"invalid JSON ({exc.msg} at column {exc.colno})"
        ) from exc
    except RowRejected as rejected:
        if not line.lstrip().startswith("{"):
            raise LogParseError(file, number, "expected a JSON object per line") from None
        return SourceRecord(str(file), number, line, {}, {}, rejected)
    if not isinstance(value, dict):
        raise LogParseError(
            file, number, f"expected a JSON object per line, got {json_type(value)}"
        )
    return SourceRecord(str(file), number, value, value, {})


def decode_csv_cell(name: str, cell: str) -> Any:
    if cell == "":
        return None
    if name in _CSV_JSON_FIELDS and cell.lstrip()[:1] in ("[", "{"):
        try:
            return parse_json(cell, name)
        except json.JSONDecodeError as exc:
            raise RowRejected(
                WRONG_TYPE,
                f"{name}: the CSV cell starts like JSON but is not valid JSON"
                f" ({exc.msg} at character {exc.pos})",
            ) from exc
    if name == "position" and _INTEGER_TEXT.match(cell):
        digits = len(cell.strip().lstrip("-"))
        if digits > sys.get_int_max_str_digits():
            raise RowRejected(
                UNSUPPORTED_VALUE,
                f"position: an integer of {digits} digits (at most"
                f" {sys.get_int_max_str_digits()} can be read)",
            )
        return int(cell)
    return cell


def csv_columns(file: Path, header: list[str] | None) -> list[str] | None:
    """The header's column names (None for an empty file); a blank or repeated name is refused."""
    if header is None:
        return None
    columns = [column.strip() for column in header]
    if any(not column for column in columns):
        raise LogParseError(file, 1, "the CSV header has an empty column name")
    duplicates = sorted({column for column in columns if columns.count(column) > 1})
    if duplicates:
        raise LogParseError(file, 1, f"the CSV header repeats {', '.join(duplicates)}")
    return columns


def python_timestamps(
    column: pa.ChunkedArray, name: str, problems: dict[int, RowRejected]
) -> pa.ChunkedArray:
    """A timestamp column as Python can hold it: microseconds, in UTC when zoned (no local overflow).

    A value outside years 1-9999 (UTC) is nulled and its row gets a bad_timestamp problem.
    """
    kind = column.type
    target = pa.timestamp("us", tz="UTC" if kind.tz else None)
    if kind.unit == "ns":  # always within years 1677-2262; sub-microseconds are dropped
        return column.cast(target, safe=False)
    low, high = (pa.scalar(bound, type=pa.timestamp(kind.unit)) for bound in _PYTHON_DATETIMES)
    plain = column.cast(pa.timestamp(kind.unit))
    outside = pc.fill_null(pc.or_(pc.less(plain, low), pc.greater(plain, high)), False)
    if pc.any(outside).as_py():
        counts = plain.cast(pa.int64())
        for index in pc.indices_nonzero(outside).to_pylist():
            problems.setdefault(
                index,
                RowRejected(
                    BAD_TIMESTAMP,
                    f"{shown_field(name)}: {counts[index].as_py()} {kind.unit} since 1970-01-01"
                    " is outside years 1-9999 (UTC)",
                ),
            )
        column = pc.if_else(outside, pa.scalar(None, kind), column)
    return column.cast(target)
