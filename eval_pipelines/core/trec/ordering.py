"""trec_eval's order over whole columns: queries in byte order, then score descending, then docno descending.

Every sort is a library sort over whole columns (numpy, Arrow; no per-line Python), so the order of
the lines in the file does not matter.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LOW_32 = np.uint64(0xFFFFFFFF)


def trec_ordered(
    query_id: pa.Array, document_id: pa.Array, score: np.ndarray
) -> tuple[pa.Array, pa.ListArray]:
    """Group rows by query (sorted) and order each group by score desc, then document id desc."""
    order, offsets = trec_order(sorted_query_codes(query_id), document_id, score)
    rankings = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), document_id.take(pa.array(order))
    )
    return query_id.take(pa.array(order[offsets[:-1]])), rankings


def trec_order(
    query_rank: np.ndarray, document_id: pa.Array, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The rows in trec_eval's order, and where each query's rows start (plus the end).

    query_rank is each row's query as sorted_query_codes gives it. The rows are first grouped by
    query, then Arrow sorts them by (query, score); document ids are compared only when some query
    ties two scores, since a string sort key costs more than the two numeric ones together.
    """
    if query_rank.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    grouped = grouped_by_query(query_rank)
    grouped_rank, grouped_score = query_rank[grouped], score[grouped]
    by_score = pc.sort_indices(
        pa.table({"query": grouped_rank, "score": grouped_score}),
        sort_keys=[("query", "ascending"), ("score", "descending")],
    ).to_numpy()
    ranked_rank, ranked_score = grouped_rank[by_score], grouped_score[by_score]
    same_query = ranked_rank[1:] == ranked_rank[:-1]
    if (same_query & (ranked_score[1:] == ranked_score[:-1])).any():
        by_score = pc.sort_indices(
            pa.table(
                {
                    "query": grouped_rank,
                    "score": grouped_score,
                    "document_id": document_id.take(pa.array(grouped)),
                }
            ),
            sort_keys=[
                ("query", "ascending"),
                ("score", "descending"),
                ("document_id", "descending"),
            ],
        ).to_numpy()
    offsets = np.r_[0, np.flatnonzero(~same_query) + 1, query_rank.size]
    return grouped[by_score], offsets.astype(np.int64)


def grouped_by_query(query_rank: np.ndarray) -> np.ndarray:
    """Row numbers grouped by query rank, in file order within each query.

    A stable sort on one 64-bit key (rank, row number), which numpy sorts several times faster
    than any stable sort of the ranks alone. Row numbers fit 32 bits: a run's rankings are an
    Arrow list array, whose offsets are 32-bit.
    """
    key = query_rank.astype(np.uint64) << np.uint64(32)
    key |= np.arange(query_rank.size, dtype=np.uint64)
    key.sort()
    return (key & _LOW_32).astype(np.int64)


def sorted_query_codes(query_id: pa.Array) -> np.ndarray:
    """Each query id's rank among the distinct ids, in byte order."""
    encoded = pc.dictionary_encode(query_id)
    distinct = len(encoded.dictionary)
    rank_of_code = np.empty(distinct, dtype=np.int64)
    rank_of_code[pc.array_sort_indices(encoded.dictionary).to_numpy()] = np.arange(distinct)
    return rank_of_code[encoded.indices.to_numpy()]
