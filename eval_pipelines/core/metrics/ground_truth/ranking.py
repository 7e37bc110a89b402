"""Rank-sensitive measures: average precision, nDCG and reciprocal rank, at k or uncut.

trec_eval's definitions: map_cut_k sums precision@rank over relevant documents within k and divides
by all relevant documents; ndcg uses the grade as gain with discount log2(rank + 1), normalised by
the ideal ranking of all judged grades cut at the same k (uncut: all of them); recip_rank is 1 / rank
of the first relevant document (within k for recip_rank_cut_k), else 0. Sums run in rank order, as
trec_eval's do.
"""

from __future__ import annotations

import numpy as np

from eval_pipelines.core.metrics.ground_truth.judgments import JudgedRankings
from eval_pipelines.core.metrics.ground_truth.precision_recall import ratio_or_zero


def average_precision(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    within = _within(judged.hit_rank, cutoff)
    precision_at_hit = judged.hit_relevant_so_far / judged.hit_rank
    summed = judged.per_query(judged.hit_query[within], precision_at_hit[within])
    return ratio_or_zero(summed, judged.relevant.astype(np.float64))


def ndcg(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    within = _within(judged.hit_rank, cutoff)
    gain = judged.hit_grade[within] / np.log2(judged.hit_rank[within] + 1.0)
    dcg = judged.per_query(judged.hit_query[within], gain)
    ideal_within = _within(judged.ideal_rank, cutoff)
    ideal_gain = judged.ideal_grade[ideal_within] / np.log2(judged.ideal_rank[ideal_within] + 1.0)
    ideal_dcg = judged.per_query(judged.ideal_query[ideal_within], ideal_gain)
    return ratio_or_zero(dcg, ideal_dcg)


def reciprocal_rank(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    is_first = judged.hit_relevant_so_far == 1
    first_rank = judged.hit_rank[is_first]
    values = np.zeros(judged.query_count, dtype=np.float64)
    within = _within(first_rank, cutoff)
    values[judged.hit_query[is_first][within]] = 1.0 / first_rank[within]
    return values


def _within(rank: np.ndarray, cutoff: int | None) -> np.ndarray:
    return np.ones(rank.size, dtype=bool) if cutoff is None else rank <= cutoff
