"""Set measures: precision, recall and F-beta, at a cutoff k or over the whole retrieved list.

trec_eval's definitions: P_k divides by k even when fewer than k were retrieved (missing ranks are
non-relevant); set_P divides by the number retrieved (0 when nothing was). Values are 0 where the
denominator is 0; the engine marks queries without relevant documents separately.
"""

from __future__ import annotations

import numpy as np

from eval_pipelines.core.metrics.ground_truth.judgments import JudgedRankings


def relevant_retrieved(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    """Relevant documents within the top `cutoff` (all retrieved when None), per query."""
    if cutoff is None:
        return judged.per_query(judged.hit_query)
    return judged.per_query(judged.hit_query[judged.hit_rank <= cutoff])


def precision(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    """P_k = relevant in top k / k; uncut, set_P = relevant retrieved / retrieved."""
    denominator = (
        judged.retrieved.astype(np.float64)
        if cutoff is None
        else np.full(judged.query_count, cutoff)
    )
    return ratio_or_zero(relevant_retrieved(judged, cutoff), denominator)


def recall(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    """recall_k = relevant in top k / relevant; uncut, set_recall over everything retrieved."""
    return ratio_or_zero(relevant_retrieved(judged, cutoff), judged.relevant.astype(np.float64))


def f_beta(precision_values: np.ndarray, recall_values: np.ndarray, beta: float) -> np.ndarray:
    """(1 + beta^2) P R / (beta^2 P + R), 0 when P and R are both 0."""
    beta_squared = beta * beta
    return ratio_or_zero(
        (1.0 + beta_squared) * precision_values * recall_values,
        beta_squared * precision_values + recall_values,
    )


def ratio_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (trec_eval leaves such values at 0)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
