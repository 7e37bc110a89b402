"""TREC text split into named string columns, every malformed line reported with its number."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from eval_pipelines.core.errors import InvalidInputError

QRELS_FIELDS: tuple[str, ...] = ("query_id", "iteration", "document_id", "relevance")
RUN_FIELDS: tuple[str, ...] = ("query_id", "Q0", "document_id", "rank", "score", "tag")

MAX_INTEGER_DIGITS = 18
INTEGER = rf"^[+-]?[0-9]{{1,{MAX_INTEGER_DIGITS}}}$"
DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"

_CSV_BLOCK = 16 << 20


class Problems:
    """Problems found in one file, by 1-based line number; raised together, in line order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.by_line: dict[int, list[str]] = {}

    def add(self, line_numbers: np.ndarray, describe: list[str] | str) -> None:
        texts = [describe] * len(line_numbers) if isinstance(describe, str) else describe
        for line, text in zip(line_numbers.tolist(), texts, strict=True):
            self.by_line.setdefault(int(line), []).append(text)

    def messages(self) -> list[str]:
        return [
            f"{self.path}:{line}: {'; '.join(texts)}"
            for line, texts in sorted(self.by_line.items())
        ]

    def raise_if_any(self) -> None:
        if self.by_line:
            raise InvalidInputError(bad_lines_message(self.path, self.messages()))


def bad_lines_message(path: Path, messages: list[str]) -> str:
    return f"{path}: {len(messages)} bad line(s), nothing was read:\n" + "\n".join(messages)


def fields(
    path: Path, names: Sequence[str], problems: Problems, data: bytes | None = None
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """The well-formed lines' fields (strings) by name, and their 1-based line numbers."""
    data = file_bytes(path) if data is None else data
    single_spaced = single_spaced_fields(data, names)
    if single_spaced is not None:
        return single_spaced
    lines = _lines(path, data)
    trimmed = pc.ascii_trim_whitespace(lines)
    blank = pc.equal(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)
    split = pc.ascii_split_whitespace(trimmed)
    counts = pc.list_value_length(split).to_numpy()
    line = np.arange(1, len(lines) + 1, dtype=np.int64)
    wrong = ~blank & (counts != len(names))
    problems.add(
        line[wrong],
        [
            f"expected {len(names)} columns ({' '.join(names)}), found {count}"
            for count in counts[wrong].tolist()
        ],
    )
    well_formed = ~blank & ~wrong
    kept = split.filter(pa.array(well_formed))
    columns = {name: pc.list_element(kept, i).cast(pa.string()) for i, name in enumerate(names)}
    return columns, line[well_formed]


def single_spaced_fields(
    data: bytes, names: Sequence[str]
) -> tuple[dict[str, pa.Array], np.ndarray] | None:
    """The fast path for the common layouts: one space (or one tab) between columns, no blank line.

    Returns None unless every line parses to exactly the fields (and line numbers) the general
    path would find; then the general path runs and reports whatever is wrong.
    """
    table = single_spaced_table(data, names, dict.fromkeys(names, pa.string()))
    if table is None:
        return None
    columns = {name: table.column(name).combine_chunks() for name in names}
    if any(pc.min(pc.binary_length(column)).as_py() == 0 for column in columns.values()):
        return None
    return columns, np.arange(1, table.num_rows + 1, dtype=np.int64)


def single_spaced_table(
    data: bytes, names: Sequence[str], types: dict[str, pa.DataType]
) -> pa.Table | None:
    """Every line as one row of len(names) columns of the given types, or None if any line is not.

    A blank line is a row of one column, so it fails too. Arrow's multi-threaded CSV reader does
    the splitting and the number parsing; empty values are left for the caller to check.
    """
    if not data or b"\v" in data or b"\f" in data or b"\0" in data:
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    if b"\t" not in data:
        delimiter = " "
    elif b" " not in data:
        delimiter = "\t"
    else:
        return None
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=pa_csv.ReadOptions(column_names=list(names), block_size=_CSV_BLOCK),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, quote_char=False, escape_char=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, strings_can_be_null=False, null_values=[]
            ),
        )
    except pa.ArrowInvalid:
        return None
    return table


def file_bytes(path: Path) -> bytes:
    """The file's bytes, without a leading UTF-8 byte-order mark."""
    try:
        return path.read_bytes().removeprefix(codecs.BOM_UTF8)
    except FileNotFoundError as error:
        raise InvalidInputError(f"{path}: no such file") from error
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot be read ({error.strerror})") from error


def _lines(path: Path, data: bytes) -> pa.Array:
    """The file's lines (newline kept) as one large_string array over the file's own bytes."""
    newline = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n")) + 1
    ends = newline if newline.size and newline[-1] == len(data) else np.r_[newline, len(data)]
    offsets = np.r_[0, ends].astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data)
    )
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        bad = [
            f"{path}:{number}: is not valid UTF-8"
            for number, raw in enumerate(data.split(b"\n"), start=1)
            if not _is_utf8(raw)
        ]
        raise InvalidInputError(bad_lines_message(path, bad)) from None
    return lines


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_pattern(
    values: pa.Array,
    line: np.ndarray,
    pattern: str,
    field: str,
    expected: str,
    problems: Problems,
) -> np.ndarray:
    """Mask of values matching pattern; the others are reported with their line."""
    matches = pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~matches)
    problems.add(
        line[bad],
        [f"{field} {text!r} is not {expected}" for text in values.take(pa.array(bad)).to_pylist()],
    )
    return matches
