"""How much a replayed ranking agrees with the ranking users saw: the share of the logged top k it
keeps in its own top k, for every session at once.

A production baseline replayed today should reproduce its own logs; when it does not, the index or
the ranker drifted since, and interaction metrics (which credit only what users were shown) are
biased toward the logged ranking.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.metrics.rankings import RankingsInput, ranking_lists


def _top_k_pairs(rankings: pa.Array, k: int) -> tuple[np.ndarray, pa.Array]:
    """(row, document) of every document in each row's top k (the first occurrence counts)."""
    sliced = pc.list_slice(rankings, 0, k)
    rows = pc.list_parent_indices(sliced).to_numpy(zero_copy_only=False)
    return rows, pc.list_flatten(sliced)


def top_k_overlap(rankings: RankingsInput, references: RankingsInput, k: int = 10) -> np.ndarray:
    """|top k of ranking ∩ top k of reference| / min(k, |reference|) per row; NaN where the
    reference is empty or the ranking is null (a failed replay)."""
    if k < 1:
        raise ValueError(f"k: {k} must be >= 1")
    ranked = ranking_lists(rankings)
    logged = ranking_lists(references, len(ranked))
    ranked_rows, ranked_docs = _top_k_pairs(ranked, k)
    logged_rows, logged_docs = _top_k_pairs(logged, k)
    vocabulary = pc.unique(logged_docs)  # a ranked document outside it cannot be shared
    width = len(vocabulary) + 1

    def keys(rows: np.ndarray, documents: pa.Array) -> np.ndarray:
        codes = pc.index_in(documents, value_set=vocabulary).to_numpy(zero_copy_only=False)
        known = ~np.isnan(codes) if codes.dtype.kind == "f" else codes >= 0
        found = np.sort(rows[known].astype(np.int64) * width + codes[known].astype(np.int64))
        return found[np.r_[True, found[1:] != found[:-1]]] if found.size else found

    reference = keys(logged_rows, logged_docs)
    candidate = keys(ranked_rows, ranked_docs)
    slot = np.minimum(np.searchsorted(reference, candidate), max(reference.size - 1, 0))
    shared = candidate[reference[slot] == candidate] if reference.size else candidate[:0]
    hits = np.bincount(shared // width, minlength=len(ranked)).astype(np.float64)
    reference_size = np.minimum(pc.list_value_length(logged).fill_null(0).to_numpy(), k)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = hits / reference_size
    missing = (reference_size == 0) | ranked.is_null().to_numpy(zero_copy_only=False)
    return np.where(missing, np.nan, overlap)
