"""qrels and run files read into Arrow columns, in trec_eval's order, with every bad line reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.trec.columns import (
    DECIMAL,
    INTEGER,
    QRELS_FIELDS,
    RUN_FIELDS,
    Problems,
    check_pattern,
    fields,
    file_bytes,
)
from eval_pipelines.core.trec.ordering import sorted_query_codes, trec_ordered
from eval_pipelines.core.trec.presorted import run_in_any_order


def read_qrels(path: Path) -> pa.Table:
    """Judgments in file order: query_id (string), document_id (string), relevance (int64)."""
    problems = Problems(path)
    columns, line = fields(path, QRELS_FIELDS, problems)
    check_pattern(columns["relevance"], line, INTEGER, "relevance", "an integer", problems)
    _check_pairs_once(columns["query_id"], columns["document_id"], line, "judged", problems)
    problems.raise_if_any()
    relevance = pc.replace_substring_regex(columns["relevance"], r"^\+", "")
    return pa.table(
        {
            "query_id": columns["query_id"],
            "document_id": columns["document_id"],
            "relevance": relevance.cast(pa.int64()),
        }
    )


def read_run_table(path: Path, data: bytes | None = None) -> pa.Table:
    """Run rows in file order: query_id, document_id, score (float64)."""
    problems = Problems(path)
    columns, line = fields(path, RUN_FIELDS, problems, data)
    check_pattern(columns["rank"], line, INTEGER, "rank", "an integer", problems)
    is_number = check_pattern(columns["score"], line, DECIMAL, "score", "a number", problems)
    score = np.zeros(len(line), dtype=np.float64)
    score[is_number] = columns["score"].filter(pa.array(is_number)).cast(pa.float64()).to_numpy()
    infinite = is_number & ~np.isfinite(score)
    problems.add(line[infinite], "score is too large to be a finite number")
    _check_pairs_once(columns["query_id"], columns["document_id"], line, "retrieved", problems)
    problems.raise_if_any()
    return pa.table(
        {
            "query_id": columns["query_id"],
            "document_id": columns["document_id"],
            "score": pa.array(score + 0.0),
        }
    )


def read_run(path: Path) -> tuple[pa.Array, pa.ListArray]:
    """Query ids (sorted, byte order) and each query's documents in trec_eval's order."""
    data = file_bytes(path)
    fast = run_in_any_order(data)
    if fast is not None:
        return fast
    table = read_run_table(path, data)
    return trec_ordered(
        table.column("query_id").combine_chunks(),
        table.column("document_id").combine_chunks(),
        table.column("score").to_numpy(),
    )


def _check_pairs_once(
    query_id: pa.Array, document_id: pa.Array, line: np.ndarray, verb: str, problems: Problems
) -> None:
    """Report every line repeating a (query, document) pair, with the line that first gave it."""
    if len(query_id) < 2:
        return
    query = sorted_query_codes(query_id)
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
