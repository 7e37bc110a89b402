"""Run files written from rankings: `qid Q0 docno rank score tag` lines, atomically or to a stream."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.storage import atomic_path

DEFAULT_RUN_TAG = "eval_pipelines"

RankingsInput = pa.Array | pa.ChunkedArray | Sequence[Sequence[str]]
ScoresInput = pa.Array | pa.ChunkedArray | Sequence[Sequence[float]]


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
