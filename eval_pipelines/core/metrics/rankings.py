"""Rankings as one Arrow list array of document ids, whatever form the caller holds them in.

Both metric families (alignment and ground truth) take rankings the same way, through this.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RankingsInput = Sequence[Sequence[str] | None] | pa.Array | pa.ChunkedArray


def ranking_lists(rankings: RankingsInput, query_count: int | None = None) -> pa.Array:
    """One list of document id strings per query (a null list retrieved nothing)."""
    if isinstance(rankings, pa.ChunkedArray):
        rankings = rankings.combine_chunks()
    if not isinstance(rankings, pa.Array):
        rows = list(rankings)
        for index, row in enumerate(rows):
            if isinstance(row, str | bytes):
                raise ValueError(f"rankings[{index}]: is a string, expected a list of document ids")
        try:
            rankings = pa.array(rows, type=pa.list_(pa.string()))
        except (pa.ArrowException, TypeError) as error:
            raise ValueError(f"rankings: not lists of document id strings ({error})") from error
    if not (pa.types.is_list(rankings.type) or pa.types.is_large_list(rankings.type)):
        raise ValueError(f"rankings: Arrow type {rankings.type} is not a list of document ids")
    if query_count is not None and len(rankings) != query_count:
        raise ValueError(f"rankings: {len(rankings)} rankings for {query_count} query ids")
    try:
        return rankings.cast(pa.list_(pa.string()))
    except pa.ArrowException as error:
        raise ValueError(
            f"rankings: values of type {rankings.type.value_type} are not document id strings"
        ) from error


def document_codes(lists: pa.Array, document_ids: pa.Array) -> np.ndarray:
    """Each ranked document's index in document_ids (-1 when absent), flat over all lists."""
    flat = pc.list_flatten(lists)
    if flat.null_count:
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64)
        ends = np.cumsum(lengths)
        entry = int(np.flatnonzero(flat.is_null().to_numpy(zero_copy_only=False))[0])
        session = int(np.searchsorted(ends, entry, side="right"))
        position = entry - int(ends[session] - lengths[session])
        raise ValueError(f"rankings[{session}]: document id at position {position} is null")
    return pc.fill_null(pc.index_in(flat, value_set=document_ids), -1).to_numpy()


def first_ranks(
    lists: pa.Array,
    document_ids: pa.Array,
    keys: np.ndarray,
    depth: int,
    codes: np.ndarray | None = None,
) -> np.ndarray:
    """The 1-based first rank within `depth` of every (session, document) key, else depth + 1.

    keys: sorted session * len(document_ids) + the document's index in document_ids; codes:
    document_codes(lists, document_ids) when the caller already has them."""
    rank = np.full(keys.size, depth + 1, dtype=np.int64)
    if codes is None:
        codes = document_codes(lists, document_ids)
    if keys.size == 0:
        return rank
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy().astype(np.int64)
    entry = np.flatnonzero(codes >= 0)
    session = pc.list_parent_indices(lists).to_numpy()[entry].astype(np.int64)
    position = entry - (np.cumsum(lengths) - lengths)[session]
    within = position < depth
    hit_key = session[within] * len(document_ids) + codes[entry[within]].astype(np.int64)
    slot = np.minimum(np.searchsorted(keys, hit_key), keys.size - 1)
    found = keys[slot] == hit_key
    first_slots, first_entries = np.unique(slot[found], return_index=True)
    rank[first_slots] = position[within][found][first_entries] + 1
    return rank
