"""Rankings matched to graded judgments: the relevant documents each ranking retrieved, and the ideal.

Every measure needs only these sparse hits (relevant documents retrieved, with rank and grade) plus
per-query counts, so the string work happens once, here: one hash join of the retrieved (query,
document) pairs with the relevant judgments, then integer work on the few hits. There is no
per-query loop.

As in trec_eval, a document is relevant when its grade is >= 1, its gain is its grade, and
documents judged 0 or negative, or not judged at all, are non-relevant with gain 0.
A document repeated within one ranking counts at its first position; later copies stay in the
ranking (they take their ranks and count in num_ret) but are non-relevant. trec_eval refuses such
runs outright (read_run does too); checking every retrieved id for repeats would cost a hash of
all of them, several times the cost of the whole evaluation.

Judged documents (grade >= 0: trec_eval reads a negative grade as not judged, -1 "not in the pool")
are matched only when asked: for judged_k (ir_measures' Judged@k, on the ranking as retrieved) and
for condensed lists (judged_only, trec_eval -J: unjudged documents are removed from each ranking
before any measure, so ranks, num_ret and the cutoffs count judged documents only; the ideal
ranking is unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.arrow_text import first_null, string_array

QRELS_COLUMNS: tuple[str, ...] = ("query_id", "document_id", "relevance")
RELEVANT_GRADE = 1
# trec_eval reads a negative grade as "not in the pool" (-1) or "unjudged" (-2), so -J drops it.
JUDGED_GRADE = 0
_LISTED_PROBLEMS = 10

QueryIdsInput = Sequence[str] | pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class JudgedRankings:
    """Per-query counts, the relevant hits in ranking order, and each query's ideal ranking.

    hit_* arrays have one entry per relevant document retrieved (first copy only), sorted by query
    then rank. ideal_* arrays have one entry per relevant judgment, sorted by query then grade
    descending, so ideal_rank is the rank that judgment takes in the ideal ranking.
    """

    retrieved: np.ndarray
    relevant: np.ndarray
    hit_query: np.ndarray
    hit_rank: np.ndarray
    hit_grade: np.ndarray
    hit_relevant_so_far: np.ndarray
    ideal_query: np.ndarray
    ideal_rank: np.ndarray
    ideal_grade: np.ndarray
    judged_query: np.ndarray | None = None
    judged_rank: np.ndarray | None = None

    @property
    def query_count(self) -> int:
        return int(self.retrieved.size)

    def per_query(self, query: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of weights (or count) per query, as float64 over all queries."""
        return np.bincount(query, weights=weights, minlength=self.query_count).astype(np.float64)


def query_id_array(query_ids: QueryIdsInput) -> pa.Array:
    """Query ids as a string array, checked to be non-null and distinct."""
    if isinstance(query_ids, pa.ChunkedArray):
        query_ids = query_ids.combine_chunks()
    if not isinstance(query_ids, pa.Array):
        query_ids = list(query_ids)
        for index, query_id in enumerate(query_ids):
            if not isinstance(query_id, str):
                raise ValueError(f"query_ids[{index}]: {query_id!r} is not a string")
        query_ids = pa.array(query_ids, type=pa.string())
    ids = string_array(query_ids, "query_ids")
    if ids.null_count:
        raise ValueError(f"query_ids[{first_null(ids)}]: is null")
    encoded = pc.dictionary_encode(ids)
    if len(encoded.dictionary) != len(ids):
        counts = np.bincount(encoded.indices.to_numpy(), minlength=len(encoded.dictionary))
        repeated = encoded.dictionary.take(np.flatnonzero(counts > 1)[:_LISTED_PROBLEMS])
        raise ValueError(f"query_ids: repeated ids {repeated.to_pylist()}")
    return ids


def judge_rankings(
    query_ids: pa.Array,
    lists: pa.Array,
    qrels: pa.Table,
    *,
    track_judged: bool = False,
    judged_only: bool = False,
) -> JudgedRankings:
    """Match every ranking against the judgments of its query (qrels of other queries are ignored).

    track_judged: also keep where each judged document stands in the ranking as retrieved
    (judged_query, judged_rank; first copies only). judged_only: condense each ranking to its
    judged documents first (trec_eval -J).
    """
    query_count = len(query_ids)
    judged_query, judged_document, grade = _judgments_of(query_ids, qrels)
    relevant_row = grade >= RELEVANT_GRADE
    relevant_query = judged_query[relevant_row]
    relevant_grade = grade[relevant_row].astype(np.float64)
    relevant_document = judged_document.filter(pa.array(relevant_row))

    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    flat = pc.list_flatten(lists)
    if flat.null_count:
        entry = first_null(flat)
        query = int(np.searchsorted(starts + lengths, entry, side="right"))
        raise ValueError(
            f"rankings[{query}] (query {query_ids[query].as_py()!r}): document id at position"
            f" {entry - int(starts[query])} is null"
        )

    parent = pc.list_parent_indices(lists).to_numpy()
    tracked_query = tracked_rank = None
    if track_judged or judged_only:
        judged_row = grade >= JUDGED_GRADE
        judged_entry, _ = _relevant_entries(
            flat, parent, judged_query[judged_row], judged_document.filter(pa.array(judged_row))
        )
        tracked_query = parent[judged_entry].astype(np.int64)
        tracked_rank = judged_entry - starts[tracked_query] + 1
        if judged_only:
            flat = flat.take(pa.array(judged_entry, pa.int64()))
            parent = tracked_query
            lengths = np.bincount(parent, minlength=query_count).astype(np.int64)
            starts = np.cumsum(lengths) - lengths
    hit_entry, hit_slot = _relevant_entries(flat, parent, relevant_query, relevant_document)
    hit_query = parent[hit_entry].astype(np.int64)
    hit_rank = hit_entry - starts[hit_query] + 1
    ideal_query, ideal_rank, ideal_grade = _ideal_rankings(relevant_query, relevant_grade)
    return JudgedRankings(
        retrieved=lengths,
        relevant=np.bincount(relevant_query, minlength=query_count).astype(np.int64),
        hit_query=hit_query,
        hit_rank=hit_rank,
        hit_grade=relevant_grade[hit_slot],
        hit_relevant_so_far=_position_in_group(hit_query) + 1,
        ideal_query=ideal_query,
        ideal_rank=ideal_rank,
        ideal_grade=ideal_grade,
        judged_query=tracked_query,
        judged_rank=tracked_rank,
    )


def _relevant_entries(
    flat: pa.Array, parent: np.ndarray, relevant_query: np.ndarray, relevant_document: pa.Array
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of retrieved relevant documents (first copy per ranking) and their judgment rows.

    One hash join on (query, document id); Arrow's join beats a string lookup per document.
    """
    empty = np.zeros(0, dtype=np.int64)
    if relevant_query.size == 0 or len(flat) == 0:
        return empty, empty
    retrieved = pa.table(
        {
            "query": pa.array(parent, pa.int64()),
            "document_id": flat,
            "entry": pa.array(np.arange(len(flat), dtype=np.int64)),
        }
    )
    judged = pa.table(
        {
            "query": pa.array(relevant_query, pa.int64()),
            "document_id": relevant_document,
            "slot": pa.array(np.arange(relevant_query.size, dtype=np.int64)),
        }
    )
    matched = retrieved.join(judged, keys=["query", "document_id"], join_type="inner")
    entry = matched.column("entry").to_numpy()
    slot = matched.column("slot").to_numpy()
    order = np.argsort(entry)
    entry, slot = entry[order], slot[order]
    _, first_copy = np.unique(slot, return_index=True)
    first_copy.sort()
    return entry[first_copy], slot[first_copy]


def _ideal_rankings(
    query: np.ndarray, grade: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((-grade, query))
    query, grade = query[order], grade[order]
    return query, _position_in_group(query) + 1, grade


def _position_in_group(sorted_group: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal values."""
    index = np.arange(sorted_group.size, dtype=np.int64)
    if sorted_group.size == 0:
        return index
    starts = np.r_[True, sorted_group[1:] != sorted_group[:-1]]
    return index - np.maximum.accumulate(np.where(starts, index, 0))


def _judgments_of(query_ids: pa.Array, qrels: pa.Table) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """The qrels rows of the evaluated queries: query index, document id, grade; checked for repeats."""
    missing = [c for c in QRELS_COLUMNS if c not in qrels.column_names]
    if missing:
        raise ValueError(f"qrels: missing columns {missing} (expected {list(QRELS_COLUMNS)})")
    query_column = string_array(qrels.column("query_id"), "qrels.query_id")
    document_column = string_array(qrels.column("document_id"), "qrels.document_id")
    relevance = qrels.column("relevance").combine_chunks()
    if not pa.types.is_integer(relevance.type):
        raise ValueError(f"qrels.relevance: type {relevance.type} is not an integer column")
    for name, column in (
        ("query_id", query_column),
        ("document_id", document_column),
        ("relevance", relevance),
    ):
        if column.null_count:
            raise ValueError(f"qrels.{name}: row {first_null(column)} is null")

    query_index = pc.index_in(query_column, value_set=query_ids)
    kept = query_index.is_valid()
    rows = np.flatnonzero(kept.to_numpy(zero_copy_only=False))
    judged_query = query_index.filter(kept).to_numpy().astype(np.int64)
    judged_document = document_column.filter(kept)
    grade = relevance.filter(kept).to_numpy().astype(np.int64)
    _check_judged_once(judged_query, judged_document, rows, query_ids)
    return judged_query, judged_document, grade


def _check_judged_once(
    query: np.ndarray, document: pa.Array, rows: np.ndarray, query_ids: pa.Array
) -> None:
    pairs = pa.table({"query": pa.array(query, pa.int64()), "document_id": document})
    if pairs.group_by(["query", "document_id"]).aggregate([]).num_rows == pairs.num_rows:
        return
    encoded = pc.dictionary_encode(document)
    key = query * max(len(encoded.dictionary), 1) + encoded.indices.to_numpy()
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    repeat = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if repeat.size == 0:
        return
    problems = [
        f"qrels row {int(rows[order[i + 1]])}: query {query_ids[int(query[order[i]])].as_py()!r}"
        f" judges document {document[int(order[i])].as_py()!r} again"
        f" (also at row {int(rows[order[i]])})"
        for i in repeat[:_LISTED_PROBLEMS]
    ]
    more = f"; and {repeat.size - _LISTED_PROBLEMS} more" if repeat.size > _LISTED_PROBLEMS else ""
    raise ValueError("; ".join(problems) + more)
