"""Ground-truth metrics, exact to trec_eval: per-query P, recall, F1/F2, MAP, nDCG, MRR at k and uncut.

The definitions are the contract in ../shared/DESIGN.md ("Ground-truth metrics (evaluations)") and
equal trec_eval's (checked against pytrec_eval). Choices where trec_eval has no answer:
- A query without relevant judgments (none, or only grades <= 0) gets NaN for every measure except
  the counts num_ret, num_rel, num_rel_ret: the evaluation skips such queries. trec_eval instead
  scores them 0 and averages them in; core/trec_eval.py does that for the trec-eval command.
- A query that retrieved nothing scores 0.
- A document repeated within one ranking counts at its first position only (see judgments.py);
  trec_eval refuses such runs.
- judged_k (named on request) is measured on the ranking as retrieved, also when judged_only
  condenses the rankings for every other measure: it says how much the condensing dropped.
All queries are scored at once (numpy over Arrow columns); see judgments.py for how.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pyarrow as pa

from eval_pipelines.core.metrics.ground_truth.judgments import (
    QRELS_COLUMNS,
    JudgedRankings,
    QueryIdsInput,
    judge_rankings,
    query_id_array,
)
from eval_pipelines.core.metrics.ground_truth.measures import (
    COUNT_MEASURES,
    CUT_FAMILIES,
    DEFAULT_K_VALUES,
    JUDGED,
    NAMED_CUT_FAMILIES,
    UNCUT_MEASURES,
    Measure,
    all_measures,
    checked_cutoffs,
    parse_measure_names,
)
from eval_pipelines.core.metrics.ground_truth.precision_recall import (
    f_beta,
    precision,
    recall,
    relevant_retrieved,
)
from eval_pipelines.core.metrics.ground_truth.ranking import (
    average_precision,
    ndcg,
    reciprocal_rank,
)
from eval_pipelines.core.metrics.rankings import RankingsInput, ranking_lists

__all__ = [
    "COUNT_MEASURES",
    "CUT_FAMILIES",
    "DEFAULT_K_VALUES",
    "JUDGED",
    "NAMED_CUT_FAMILIES",
    "QRELS_COLUMNS",
    "UNCUT_MEASURES",
    "Measure",
    "all_measures",
    "evaluate_rankings",
    "measure_names",
    "parse_measure_names",
]

_Compute = Callable[[JudgedRankings, int | None], np.ndarray]


def judged_share(judged: JudgedRankings, cutoff: int | None) -> np.ndarray:
    """Judged@k: documents with any judgment among the top k, over k (as P_k, a short list counts
    its missing ranks as unjudged)."""
    if judged.judged_query is None or judged.judged_rank is None or cutoff is None:
        raise ValueError("judged_k needs a cutoff and rankings judged with track_judged")
    within = judged.judged_query[judged.judged_rank <= cutoff]
    return judged.per_query(within) / cutoff


def _f(beta: float) -> _Compute:
    return lambda judged, cutoff: f_beta(precision(judged, cutoff), recall(judged, cutoff), beta)


_CUT: dict[str, _Compute] = {
    "P": precision,
    "recall": recall,
    "F1": _f(1.0),
    "F2": _f(2.0),
    "map_cut": average_precision,
    "ndcg_cut": ndcg,
    "recip_rank_cut": reciprocal_rank,
    JUDGED: judged_share,
}
_UNCUT: dict[str, _Compute] = {
    "map": average_precision,
    "ndcg": ndcg,
    "recip_rank": reciprocal_rank,
    "set_P": precision,
    "set_recall": recall,
    "set_F": _f(1.0),
    "set_F2": _f(2.0),
    "num_ret": lambda judged, _: judged.retrieved.astype(np.float64),
    "num_rel": lambda judged, _: judged.relevant.astype(np.float64),
    "num_rel_ret": relevant_retrieved,
}


def measure_names(
    k_values: Sequence[int] = DEFAULT_K_VALUES, measures: Collection[str] | None = None
) -> list[str]:
    """The measure columns evaluate_rankings returns for these arguments, in order."""
    return [m.name for m in _selected(k_values, measures)]


def evaluate_rankings(
    query_ids: QueryIdsInput,
    rankings: RankingsInput,
    qrels: pa.Table,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    measures: Collection[str] | None = None,
    judged_only: bool = False,
) -> pa.Table:
    """One row per query: query_id, then one float64 column per measure (trec_eval names).

    rankings: per query, document ids in the retriever's order (not re-sorted; null = none).
    qrels: query_id, document_id, relevance (integer grade; relevant when >= 1); rows of queries
    not in query_ids are ignored, and a (query, document) judged twice is an error.
    measures: names as in parse_measure_names (a family alone is taken at k_values); None = every
    family at k_values plus every uncut measure (judged_k only when named).
    judged_only: condensed lists, as trec_eval -J (see judgments.py).
    """
    selected = _selected(k_values, measures)
    ids = query_id_array(query_ids)
    judged = judge_rankings(
        ids,
        ranking_lists(rankings, len(ids)),
        qrels,
        track_judged=any(m.family == JUDGED for m in selected),
        judged_only=judged_only,
    )
    undefined = judged.relevant == 0
    columns: dict[str, pa.Array] = {"query_id": ids}
    for measure in selected:
        compute = _UNCUT[measure.family] if measure.cutoff is None else _CUT[measure.family]
        values = compute(judged, measure.cutoff)
        if not measure.is_count:
            values = np.where(undefined, np.nan, values)
        columns[measure.name] = pa.array(values, type=pa.float64())
    return pa.table(columns)


def _selected(k_values: Sequence[int], measures: Collection[str] | None) -> list[Measure]:
    cutoffs = checked_cutoffs(k_values)
    if measures is None:
        return all_measures(cutoffs)
    return parse_measure_names(measures, cutoffs)
