"""The fast path for well-formed runs, in any line order: Arrow parses, checks and sorts whole columns.

Runs as retrievers write them (each query's lines together, best first) skip the sort; any other
order is sorted by Arrow (ordering.py). Either way repeated documents are screened by fingerprint.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.trec.columns import MAX_INTEGER_DIGITS, RUN_FIELDS, single_spaced_table
from eval_pipelines.core.trec.ordering import sorted_query_codes, trec_order

_WORD = 8
_MIX = np.uint64(0x9E3779B97F4A7C15)
_TOP_BIT = np.uint64(1 << 63)
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(_WORD + 1)], dtype=np.uint64)

Columns = tuple[pa.Array, pa.Array, np.ndarray]


def run_in_any_order(data: bytes) -> tuple[pa.Array, pa.ListArray] | None:
    """Query ids (sorted) and rankings in trec_eval's order, whatever the order of the lines.

    Returns None (and the general path reads, sorts and reports) unless every line is well formed
    and no query repeats a document (screened by fingerprint; a suspect goes the exact way).
    """
    return _read(data, sort=True)


def run_in_trec_order(data: bytes) -> tuple[pa.Array, pa.ListArray] | None:
    """As run_in_any_order, but None unless the file order already is trec_eval's order."""
    return _read(data, sort=False)


def _read(data: bytes, sort: bool) -> tuple[pa.Array, pa.ListArray] | None:
    columns = well_formed_columns(data)
    if columns is None:
        return None
    query_id, document_id, score = columns
    query_rank = sorted_query_codes(query_id)
    offsets = _offsets_in_file_order(query_rank, document_id, score)
    rows = None
    if offsets is None:
        if not sort:
            return None
        rows, offsets = trec_order(query_rank, document_id, score)
        document_id = document_id.take(pa.array(rows))
    if _may_repeat_within_groups(fingerprints(document_id), offsets):
        return None
    first_rows = offsets[:-1] if rows is None else rows[offsets[:-1]]
    rankings = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), document_id)
    order = np.argsort(query_rank[first_rows])
    query_ids = query_id.take(pa.array(first_rows[order]))
    if (order == np.arange(order.size)).all():
        return query_ids, rankings
    return query_ids, rankings.take(pa.array(order))


def well_formed_columns(data: bytes) -> Columns | None:
    """query_id, document_id and score of every line, or None unless every line is well formed.

    Well formed as the general path would find it: six non-empty fields, an unsigned rank of at
    most MAX_INTEGER_DIGITS digits and a finite score; anything else is for the general path to
    judge and report.
    """
    table = single_spaced_table(
        data,
        RUN_FIELDS,
        {**dict.fromkeys(RUN_FIELDS, pa.string()), "score": pa.float64()},
    )
    if table is None:
        return None
    rank = table.column("rank")
    if not (
        pc.all(pc.ascii_is_decimal(rank)).as_py()
        and pc.max(pc.binary_length(rank)).as_py() <= MAX_INTEGER_DIGITS
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
    return query_id, document_id, score + 0.0


def _offsets_in_file_order(
    query_rank: np.ndarray, document_id: pa.Array, score: np.ndarray
) -> np.ndarray | None:
    """Where each query's lines start (plus the end), if the file order is trec_eval's within
    each query and each query's lines are together; else None."""
    starts = np.r_[0, np.flatnonzero(query_rank[1:] != query_rank[:-1]) + 1]
    if starts.size != int(query_rank.max()) + 1:
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
    return np.r_[starts, len(score)].astype(np.int64)


def fingerprints(values: pa.Array) -> np.ndarray:
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
