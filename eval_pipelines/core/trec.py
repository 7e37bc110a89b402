"""TREC qrels and run files, read and written column-wise (numpy and pyarrow; no per-line Python loop).

qrels: `query_id iteration document_id relevance` (relevance an integer, possibly negative).
run:   `query_id Q0 document_id rank score tag`.
Columns are separated by any run of spaces or tabs; blank lines and a leading UTF-8 byte-order mark
are skipped. iteration, Q0 and tag are not used; rank must be an integer (a swapped rank and score
column is caught) but is not used either: as trec_eval does, read_run orders each query's documents
by score descending, then document id descending (byte order). A (query, document) pair given twice
is refused, as trec_eval refuses it. Bad input raises InvalidInputError listing every bad line as
`file:line: problem`; nothing partial is returned.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.storage import atomic_path

QRELS_FIELDS: tuple[str, ...] = ("query_id", "iteration", "document_id", "relevance")
RUN_FIELDS: tuple[str, ...] = ("query_id", "Q0", "document_id", "rank", "score", "tag")
DEFAULT_RUN_TAG = "eval_pipelines"

_MAX_INTEGER_DIGITS = 18
_INTEGER = rf"^[+-]?[0-9]{{1,{_MAX_INTEGER_DIGITS}}}$"
_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"

_CSV_BLOCK = 16 << 20
_WORD = 8
_MIX = np.uint64(0x9E3779B97F4A7C15)
_TOP_BIT = np.uint64(1 << 63)
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(_WORD + 1)], dtype=np.uint64)

RankingsInput = pa.Array | pa.ChunkedArray | Sequence[Sequence[str]]
ScoresInput = pa.Array | pa.ChunkedArray | Sequence[Sequence[float]]


class _Problems:
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


def read_qrels(path: Path) -> pa.Table:
    """Judgments in file order: query_id (string), document_id (string), relevance (int64)."""
    problems = _Problems(path)
    fields, line = _fields(path, QRELS_FIELDS, problems)
    _check_pattern(fields["relevance"], line, _INTEGER, "relevance", "an integer", problems)
    _check_pairs_once(fields["query_id"], fields["document_id"], line, "judged", problems)
    problems.raise_if_any()
    relevance = pc.replace_substring_regex(fields["relevance"], r"^\+", "")
    return pa.table(
        {
            "query_id": fields["query_id"],
            "document_id": fields["document_id"],
            "relevance": relevance.cast(pa.int64()),
        }
    )


def read_run_table(path: Path, data: bytes | None = None) -> pa.Table:
    """Run rows in file order: query_id, document_id, score (float64)."""
    problems = _Problems(path)
    fields, line = _fields(path, RUN_FIELDS, problems, data)
    _check_pattern(fields["rank"], line, _INTEGER, "rank", "an integer", problems)
    is_number = _check_pattern(fields["score"], line, _DECIMAL, "score", "a number", problems)
    score = np.zeros(len(line), dtype=np.float64)
    score[is_number] = fields["score"].filter(pa.array(is_number)).cast(pa.float64()).to_numpy()
    infinite = is_number & ~np.isfinite(score)
    problems.add(line[infinite], "score is too large to be a finite number")
    _check_pairs_once(fields["query_id"], fields["document_id"], line, "retrieved", problems)
    problems.raise_if_any()
    return pa.table(
        {
            "query_id": fields["query_id"],
            "document_id": fields["document_id"],
            "score": pa.array(score + 0.0),
        }
    )


def read_run(path: Path) -> tuple[pa.Array, pa.ListArray]:
    """Query ids (sorted, byte order) and each query's documents in trec_eval's order."""
    data = _file_bytes(path)
    in_order = _run_in_trec_order(data)
    if in_order is not None:
        return in_order
    table = read_run_table(path, data)
    return trec_ordered(
        table.column("query_id").combine_chunks(),
        table.column("document_id").combine_chunks(),
        table.column("score").to_numpy(),
    )


def _run_in_trec_order(data: bytes) -> tuple[pa.Array, pa.ListArray] | None:
    """The fast path for runs as retrievers write them: each query's lines together, best first.

    Returns None (and the general path reads, sorts and reports) unless every line is well formed
    and no query repeats a document: then the file order already is trec_eval's order, and only
    the queries need sorting. Repeats are screened by fingerprint; a suspect goes the exact way.
    """
    table = _single_spaced_table(
        data,
        RUN_FIELDS,
        {**dict.fromkeys(RUN_FIELDS, pa.string()), "score": pa.float64()},
    )
    if table is None:
        return None
    rank = table.column("rank")
    if not (
        pc.all(pc.ascii_is_decimal(rank)).as_py()
        and pc.max(pc.binary_length(rank)).as_py() <= _MAX_INTEGER_DIGITS
        and all(
            pc.min(pc.binary_length(table.column(name))).as_py() > 0
            for name in ("query_id", "Q0", "document_id", "tag")
        )
    ):
        return None
    score = table.column("score").to_numpy()
    if not np.isfinite(score).all():
        return None
    query_id = table.column("query_id").combine_chunks()
    document_id = table.column("document_id").combine_chunks()
    new_query = pc.not_equal(query_id.slice(1), query_id.slice(0, len(query_id) - 1))
    starts = np.r_[0, np.flatnonzero(new_query.to_numpy(zero_copy_only=False)) + 1]
    group_ids = query_id.take(pa.array(starts))
    if pc.count_distinct(group_ids).as_py() != len(group_ids):
        return None
    step = np.diff(score)
    step[starts[1:] - 1] = -1.0
    if (step > 0).any():
        return None
    tie = np.flatnonzero(step == 0)
    if (
        tie.size
        and not pc.all(
            pc.greater(document_id.take(pa.array(tie)), document_id.take(pa.array(tie + 1)))
        ).as_py()
    ):
        return None
    offsets = np.r_[starts, len(score)]
    if _may_repeat_within_groups(_fingerprints(document_id), offsets):
        return None
    rankings = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), document_id)
    order = pc.array_sort_indices(group_ids)
    if pc.all(pc.equal(order, pa.array(np.arange(len(group_ids))))).as_py():
        return group_ids, rankings
    return group_ids.take(order), rankings.take(order)


def _fingerprints(values: pa.Array) -> np.ndarray:
    """A 64-bit fingerprint per string from its length and its first and last 16 bytes.

    Ids of at most 8 bytes are their own fingerprint (the caller has ruled out NUL bytes). Equal
    strings always get equal fingerprints; unequal ones rarely do (long ids that differ only in the
    middle do), which costs only a detour through the exact path, never a wrong answer. Every word
    is read at a position clamped to its own string's end: a short id at the end of the buffer
    must not index past it, and what lies beyond the end is masked off anyway.
    """
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ].astype(np.int64)
    body = values.buffers()[2]
    padded = np.zeros((0 if body is None else body.size) + _WORD, dtype=np.uint8)
    if body is not None:
        padded[: body.size] = np.frombuffer(body, dtype=np.uint8)
    words_at = np.ndarray(
        shape=(padded.size - _WORD + 1,), dtype="<u8", buffer=padded, strides=(1,)
    )
    start, length = offsets[:-1], np.diff(offsets)
    end = start + length
    longest = int(length.max()) if length.size else 0
    if longest <= _WORD:
        return words_at[start] & _LOW_BYTES[length]
    positions = [start, np.minimum(start + _WORD, end)]
    if longest > 2 * _WORD:
        positions += [np.maximum(end - 2 * _WORD, start), np.maximum(end - _WORD, start)]
    fingerprint = length.astype(np.uint64) * _MIX
    for position in positions:
        remaining = np.minimum(np.maximum(end - position, 0), _WORD)
        fingerprint ^= words_at[position] & _LOW_BYTES[remaining]
        fingerprint *= _MIX
        fingerprint ^= fingerprint >> np.uint64(29)
    return fingerprint


def _may_repeat_within_groups(fingerprint: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether two entries of one group share a fingerprint (groups are offsets[i]:offsets[i+1])."""
    sizes = np.diff(offsets)
    if sizes.size == 0 or sizes.max() < 2:
        return False
    width = int(sizes.max())
    if sizes.size * width <= 2 * fingerprint.size:
        # One row per group, padded with column numbers, which real (top-bit) fingerprints never equal.
        grid = np.tile(np.arange(width, dtype=np.uint64), (sizes.size, 1))
        column = np.arange(fingerprint.size) - np.repeat(offsets[:-1], sizes)
        grid[np.repeat(np.arange(sizes.size), sizes), column] = fingerprint | _TOP_BIT
        grid.sort(axis=1)
        return bool((grid[:, 1:] == grid[:, :-1]).any())
    group = np.repeat(np.arange(sizes.size, dtype=np.uint64), sizes)
    keyed = np.sort((fingerprint ^ group) * _MIX)
    return bool((keyed[1:] == keyed[:-1]).any())


def trec_ordered(
    query_id: pa.Array, document_id: pa.Array, score: np.ndarray
) -> tuple[pa.Array, pa.ListArray]:
    """Group rows by query (sorted) and order each group by score desc, then document id desc."""
    query_rank = _sorted_query_codes(query_id)
    order = pc.sort_indices(
        pa.table({"query": query_rank, "score": score, "document_id": document_id}),
        sort_keys=[("query", "ascending"), ("score", "descending"), ("document_id", "descending")],
    ).to_numpy()
    ordered_query = query_rank[order]
    boundaries = np.flatnonzero(ordered_query[1:] != ordered_query[:-1]) + 1
    offsets = np.r_[0, boundaries, order.size] if order.size else np.zeros(1, dtype=np.int64)
    rankings = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), document_id.take(pa.array(order))
    )
    return query_id.take(pa.array(order[offsets[:-1]])), rankings


def write_run(
    path: Path,
    query_ids: Sequence[str] | pa.Array,
    rankings: RankingsInput,
    scores: ScoresInput | None = None,
    tag: str = DEFAULT_RUN_TAG,
) -> Path:
    """Write the run to a file atomically (see run_table); never to a device or stream path."""
    table = run_table(query_ids, rankings, scores, tag)
    with atomic_path(path) as tmp:
        _write_run_lines(table, tmp)
    return path


def stream_run(
    stream: BinaryIO,
    query_ids: Sequence[str] | pa.Array,
    rankings: RankingsInput,
    scores: ScoresInput | None = None,
    tag: str = DEFAULT_RUN_TAG,
) -> None:
    """Write the run to an open binary stream (e.g. stdout), for `export` without --output."""
    _write_run_lines(run_table(query_ids, rankings, scores, tag), stream)


def _write_run_lines(table: pa.Table, destination: Path | BinaryIO) -> None:
    pa_csv.write_csv(
        table,
        destination,
        pa_csv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none"),
    )


def run_table(
    query_ids: Sequence[str] | pa.Array,
    rankings: RankingsInput,
    scores: ScoresInput | None = None,
    tag: str = DEFAULT_RUN_TAG,
) -> pa.Table:
    """`qid Q0 docno rank score tag` rows; rank is the 1-based list position.

    scores: per query, one score per document. None writes descending scores (n, n-1, ..., 1) so that
    trec_eval keeps the given order exactly. Given scores are written as they are: where they tie,
    trec_eval reorders by document id.
    """
    if not tag or any(c.isspace() for c in tag):
        raise InvalidInputError(f"tag: {tag!r} must be non-empty and contain no whitespace")
    lists = _list_column(rankings, pa.string(), "rankings")
    ids = query_ids if isinstance(query_ids, pa.Array) else pa.array(list(query_ids), pa.string())
    if len(ids) != len(lists):
        raise InvalidInputError(f"rankings: {len(lists)} rankings for {len(ids)} query ids")
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64)
    parent = pc.list_parent_indices(lists).to_numpy()
    rank = np.arange(parent.size, dtype=np.int64) - (np.cumsum(lengths) - lengths)[parent] + 1
    if scores is None:
        score_values = (lengths[parent] - rank + 1).astype(np.float64)
    else:
        score_lists = _list_column(scores, pa.float64(), "scores")
        if len(score_lists) != len(lists):
            raise InvalidInputError(
                f"scores: {len(score_lists)} score lists for {len(lists)} rankings"
            )
        score_lengths = pc.fill_null(pc.list_value_length(score_lists), 0).to_numpy()
        mismatched = np.flatnonzero(score_lengths != lengths)
        if mismatched.size:
            query = int(mismatched[0])
            raise InvalidInputError(
                f"scores[{query}] (query {ids[query].as_py()!r}): {int(score_lengths[query])}"
                f" scores for {int(lengths[query])} documents"
            )
        score_values = pc.list_flatten(score_lists).to_numpy(zero_copy_only=False)
        if not np.isfinite(score_values).all():
            raise InvalidInputError("scores: every score must be a finite number")
    table = pa.table(
        {
            "query_id": _field_values(ids.take(pa.array(parent)), "query id"),
            "Q0": pa.repeat(pa.scalar("Q0"), parent.size),
            "document_id": _field_values(pc.list_flatten(lists), "document id"),
            "rank": pa.array(rank),
            "score": pa.array(score_values, pa.float64()),
            "tag": pa.repeat(pa.scalar(tag), parent.size),
        }
    )
    return table


def _fields(
    path: Path, names: Sequence[str], problems: _Problems, data: bytes | None = None
) -> tuple[dict[str, pa.Array], np.ndarray]:
    """The well-formed lines' fields (strings) by name, and their 1-based line numbers."""
    data = _file_bytes(path) if data is None else data
    single_spaced = _single_spaced_fields(data, names)
    if single_spaced is not None:
        return single_spaced
    lines = _lines(path, data)
    trimmed = pc.ascii_trim_whitespace(lines)
    blank = pc.equal(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)
    fields = pc.ascii_split_whitespace(trimmed)
    counts = pc.list_value_length(fields).to_numpy()
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
    kept = fields.filter(pa.array(well_formed))
    columns = {name: pc.list_element(kept, i).cast(pa.string()) for i, name in enumerate(names)}
    return columns, line[well_formed]


def _single_spaced_fields(
    data: bytes, names: Sequence[str]
) -> tuple[dict[str, pa.Array], np.ndarray] | None:
    """The fast path for the common layouts: one space (or one tab) between columns, no blank line.

    Returns None unless every line parses to exactly the fields (and line numbers) the general
    path would find; then the general path runs and reports whatever is wrong.
    """
    table = _single_spaced_table(data, names, dict.fromkeys(names, pa.string()))
    if table is None:
        return None
    columns = {name: table.column(name).combine_chunks() for name in names}
    if any(pc.min(pc.binary_length(column)).as_py() == 0 for column in columns.values()):
        return None
    return columns, np.arange(1, table.num_rows + 1, dtype=np.int64)


def _single_spaced_table(
    data: bytes, names: Sequence[str], types: dict[str, pa.DataType]
) -> pa.Table | None:
    """Every line as one row of len(names) columns of the given types, or None if any line is not.

    A blank line is a row of one column, so it fails too. Arrow's multi-threaded CSV reader does the splitting and the number parsing; empty values are
    left for the caller to check.
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


def _file_bytes(path: Path) -> bytes:
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


def _check_pattern(
    values: pa.Array,
    line: np.ndarray,
    pattern: str,
    field: str,
    expected: str,
    problems: _Problems,
) -> np.ndarray:
    """Mask of values matching pattern; the others are reported with their line."""
    matches = pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~matches)
    problems.add(
        line[bad],
        [f"{field} {text!r} is not {expected}" for text in values.take(pa.array(bad)).to_pylist()],
    )
    return matches


def _check_pairs_once(
    query_id: pa.Array, document_id: pa.Array, line: np.ndarray, verb: str, problems: _Problems
) -> None:
    """Report every line repeating a (query, document) pair, with the line that first gave it."""
    if len(query_id) < 2:
        return
    query = _sorted_query_codes(query_id)
    order = pc.sort_indices(
        pa.table({"query": query, "document_id": document_id}),
        sort_keys=[("query", "ascending"), ("document_id", "ascending")],
    ).to_numpy()
    ordered_query = query[order]
    ordered_documents = document_id.take(pa.array(order))
    same = (ordered_query[1:] == ordered_query[:-1]) & pc.equal(
        ordered_documents.slice(1), ordered_documents.slice(0, len(order) - 1)
    ).to_numpy(zero_copy_only=False)
    repeat = np.flatnonzero(same) + 1
    if repeat.size == 0:
        return
    run_start = np.maximum.accumulate(np.where(np.r_[True, ~same], np.arange(order.size), 0))
    again, first = order[repeat], order[run_start[repeat]]
    problems.add(
        line[again],
        [
            f"query {q!r} {verb} document {d!r} again (first at line {first_line})"
            for q, d, first_line in zip(
                query_id.take(pa.array(again)).to_pylist(),
                document_id.take(pa.array(again)).to_pylist(),
                line[first].tolist(),
                strict=True,
            )
        ],
    )


def _sorted_query_codes(query_id: pa.Array) -> np.ndarray:
    """Each query id's rank among the distinct ids, in byte order."""
    encoded = pc.dictionary_encode(query_id)
    distinct = len(encoded.dictionary)
    rank_of_code = np.empty(distinct, dtype=np.int64)
    rank_of_code[pc.array_sort_indices(encoded.dictionary).to_numpy()] = np.arange(distinct)
    return rank_of_code[encoded.indices.to_numpy()]


def _list_column(
    values: RankingsInput | ScoresInput, value_type: pa.DataType, field: str
) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(list(values), type=pa.list_(value_type))
        except (pa.ArrowException, TypeError) as error:
            raise InvalidInputError(f"{field}: not lists of {value_type} ({error})") from error
    try:
        return values.cast(pa.list_(value_type))
    except pa.ArrowException as error:
        raise InvalidInputError(
            f"{field}: Arrow type {values.type} is not a list of {value_type}"
        ) from error


def _field_values(values: pa.Array, what: str) -> pa.Array:
    """Values that can stand as one whitespace-free TREC column."""
    values = values.cast(pa.string())
    if values.null_count:
        raise InvalidInputError(f"run: a {what} is null")
    unusable = pc.or_(
        pc.equal(pc.binary_length(values), 0), pc.match_substring_regex(values, r"[\t\n\v\f\r ]")
    ).to_numpy(zero_copy_only=False)
    if unusable.any():
        examples = values.filter(pa.array(unusable)).to_pylist()[:10]
        raise InvalidInputError(
            f"run: {int(unusable.sum())} {what}(s) are empty or contain whitespace, which a TREC"
            f" file cannot hold: {examples}"
        )
    return values
