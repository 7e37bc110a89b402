"""A BenchmarkResult per retriever: alignment metrics (overall, per node), latency, replay agreement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.benchmarks.score_table import (
    CF_CLIPPED_COLUMN,
    CF_RANK_SUM_COLUMN,
    CF_RANK_WEIGHT_COLUMN,
    CF_WEIGHTED_COLUMN,
    COMPLETED,
    PRIMARY_NDCG,
    RETRIEVER_COLUMN,
    SEEN_COLUMN,
    SHOWN_COLUMN,
    ScoreGrid,
)
from eval_pipelines.core.metrics.alignment import ndcg_column, recall_column


@dataclass(frozen=True)
class PipelineInfo:
    """How a record names a retriever."""

    retriever_id: str
    retriever_name: str
    pipeline_hash: str


def benchmark_result_list(
    grid: ScoreGrid, pipelines: Sequence[PipelineInfo], epsilon: float, cutoffs: Sequence[int]
) -> list[dict[str, Any]]:
    """The BenchmarkResult of each retriever, in order; sessions_improved / degraded / neutral are
    the baseline's against the logged ranking, each candidate's against the baseline.

    A session counts for a retriever's metrics when it replayed it successfully and it has at
    least one interacted document. With no such session, means are 0.0 (every k key present),
    mean_rank_clicked is 0.0 without clicked documents, and mean_rank_purchased is None without
    purchases; scored_sessions 0 says the metrics are placeholders. taxonomy_deltas holds every
    node of the benchmark's sessions (sorted), {} when no session has one."""
    one_group = np.zeros(len(grid.execution_ids), dtype=np.int64)
    baseline_ndcg = np.where(grid.scored[0], grid.values[PRIMARY_NDCG][0], np.nan)
    results = []
    for index, pipeline in enumerate(pipelines):
        reference = grid.logged_ndcg if index == 0 else baseline_ndcg
        overall = _alignment_metrics(grid, index, reference, one_group, 1, epsilon, cutoffs)
        by_node = _alignment_metrics(
            grid, index, reference, grid.node, len(grid.node_names), epsilon, cutoffs
        )
        results.append(
            {
                "retriever_id": pipeline.retriever_id,
                "retriever_name": pipeline.retriever_name,
                "pipeline_hash": pipeline.pipeline_hash,
                "metrics": overall[0],
                "taxonomy_deltas": dict(zip(grid.node_names, by_node, strict=True)),
                "latency": _latency_metrics(grid, index),
                "failed_sessions": int((grid.present[index] & ~grid.completed[index]).sum()),
                "error_summary": grid.error_summaries[index],
                "scored_sessions": int(grid.scored[index].sum()),
                "replay_agreement": _replay_agreement(grid, index),
            }
        )
    return results


def _alignment_metrics(
    grid: ScoreGrid,
    index: int,
    reference_ndcg: np.ndarray,
    group: np.ndarray,
    group_count: int,
    epsilon: float,
    cutoffs: Sequence[int],
) -> list[dict[str, Any]]:
    """AlignmentMetrics of retriever `index` for each session group (group -1: in no group)."""
    scored = grid.scored[index] & (group >= 0)
    sessions = group[scored]

    def total(name: str) -> np.ndarray:
        return np.bincount(
            sessions, weights=grid.values[name][index][scored], minlength=group_count
        )

    def counted(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group[scored & mask], minlength=group_count)

    session_count = np.bincount(sessions, minlength=group_count)
    ndcg = {k: _ratio(total(ndcg_column(k)), session_count) for k in cutoffs}
    recall = {k: _ratio(total(recall_column(k)), session_count) for k in cutoffs}
    clicked = total("clicked_count")
    clicked_rank = _ratio(total("clicked_rank_sum"), clicked)
    purchased = total("purchased_count")
    purchased_rank = _ratio(total("purchased_rank_sum"), purchased)
    position_delta = _ratio(total("position_delta_sum"), total("interacted_count"))
    promoted = total("promoted")
    demoted = total("demoted")
    own_ndcg = np.where(grid.scored[index], grid.values[PRIMARY_NDCG][index], np.nan)
    with np.errstate(invalid="ignore"):
        delta = own_ndcg - reference_ndcg
    paired = ~np.isnan(delta)
    improved = counted(paired & (delta > epsilon))
    degraded = counted(paired & (delta < -epsilon))
    neutral = counted(paired & (np.abs(delta) <= epsilon))
    return [
        {
            "ndcg_at_k": {str(k): json_number(ndcg[k][g]) for k in cutoffs},
            "recall_at_k": {str(k): json_number(recall[k][g]) for k in cutoffs},
            "mean_rank_clicked": json_number(clicked_rank[g]),
            "mean_rank_purchased": json_number(purchased_rank[g]) if purchased[g] > 0 else None,
            "avg_position_delta": json_number(position_delta[g]),
            "items_promoted": int(np.rint(promoted[g])),
            "items_demoted": int(np.rint(demoted[g])),
            "sessions_improved": int(improved[g]),
            "sessions_degraded": int(degraded[g]),
            "sessions_neutral": int(neutral[g]),
        }
        for g in range(group_count)
    ]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0 (a metric over nothing)."""
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, 0.0)


def json_number(value: float) -> float:
    """A plain, finite Python float for a JSON record (-0.0 becomes 0.0)."""
    number = float(value) + 0.0
    if not math.isfinite(number):
        raise ValueError(f"internal error: metric value {number} is not finite")
    return number


def _replay_agreement(grid: ScoreGrid, index: int) -> dict[str, Any]:
    """How much of the logged top 10 the retriever's replays keep (None where nothing says)."""
    overlap = grid.logged_overlap[index]
    known = overlap[~np.isnan(overlap)]
    return {
        "logged_overlap_at_10": json_number(known.mean()) if known.size else None,
        "sessions": int(known.size),
    }


def _latency_metrics(grid: ScoreGrid, index: int) -> dict[str, Any]:
    """Successful calls only: a failure's wall time (often a timeout) says nothing about speed."""
    latency = grid.latency[index]
    measured = latency[~np.isnan(latency)]
    if measured.size:
        p50, p90, p99 = np.percentile(measured, [50, 90, 99])
        mean = measured.mean()
    else:
        p50 = p90 = p99 = mean = 0.0
    stages = {}
    for stage, matrix in grid.stage_latency.items():
        reported = matrix[index][~np.isnan(matrix[index])]
        if reported.size:
            stages[stage] = json_number(reported.mean())
    return {
        "p50_ms": json_number(p50),
        "p90_ms": json_number(p90),
        "p99_ms": json_number(p99),
        "mean_ms": json_number(mean),
        "stage_latencies": stages,
    }


def coverage_summary(grid: ScoreGrid, index: int) -> dict[str, Any]:
    """How much of retriever `index`'s top 10 has evidence: shown to the session's user, and ever
    shown to anyone for the query (None where the scores carry no coverage)."""
    completed = grid.completed[index]
    summary: dict[str, Any] = {"sessions": int(completed.sum())}
    for name, key in ((SHOWN_COLUMN, "shown_to_user_at_10"), (SEEN_COLUMN, "ever_shown_at_10")):
        matrix = grid.coverage.get(name)
        known = matrix[index][completed] if matrix is not None else np.array([])
        known = known[np.isfinite(known)]
        summary[key] = json_number(known.mean()) if known.size else None
    return summary


def mean_rank_interacted(scores: pa.Table, retriever_id: str) -> float | None:
    """The counterfactual mean rank of what users interact with: ranks weighted by each document's
    position-corrected interaction evidence (absent documents at the replay depth + 1)."""
    if CF_RANK_SUM_COLUMN not in scores.column_names:
        return None
    rows = scores.filter(
        pc.and_(
            pc.equal(scores.column(RETRIEVER_COLUMN), retriever_id),
            pc.equal(scores.column("status"), COMPLETED),
        )
    )
    weight = pc.sum(rows.column(CF_RANK_WEIGHT_COLUMN)).as_py() or 0.0
    if weight <= 0:
        return None
    return json_number(pc.sum(rows.column(CF_RANK_SUM_COLUMN)).as_py() / weight)


def clipping(scores: pa.Table, baseline: str) -> dict[str, int]:
    """How many inverse-propensity weights the sample used and how many were clipped (once per
    session: the baseline's rows carry the session's counts); {} under the logged order."""
    if CF_CLIPPED_COLUMN not in scores.column_names:
        return {}
    rows = scores.filter(pc.equal(scores.column(RETRIEVER_COLUMN), baseline))
    return {
        "weights": int(pc.sum(rows.column(CF_WEIGHTED_COLUMN)).as_py() or 0),
        "weights_clipped": int(pc.sum(rows.column(CF_CLIPPED_COLUMN)).as_py() or 0),
    }
