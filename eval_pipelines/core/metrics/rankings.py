"""Rankings as one Arrow list array of document ids, whatever form the caller holds them in.

Both metric families (alignment and ground truth) take rankings the same way, through this.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

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
