"""Each candidate against the baseline: its tests, verdict and comparison record, and the recommendation.

Definitions: ../shared/DESIGN.md "Metric definitions". Input: one row per (execution_id, retriever_id)
with the replay's outcome and score_sessions' columns (score_table.SCORE_TABLE_COLUMNS), and the
session's query_key for query-level inference. The first retriever is the baseline. Choices made
where the contract is silent, so every record is defined and JSON:
- ndcg_delta / recall_delta are completed-only means (sessions both retrievers scored, as DESIGN.md
  says); p_value, confidence_interval, the verdict and the recommendation come from the primary
  estimate, in which failures count against the retriever that failed (inference.py, verdicts.py).
- latency_delta_ms is the mean paired difference over sessions both retrievers replayed
  successfully.
- A candidate's sessions_improved + degraded + neutral count exactly the sessions it and the
  baseline both scored (overall and per taxonomy node; result_metrics.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from eval_pipelines.core.benchmarks.estimators import (
    LOGGED_ORDER,
    EstimatorChoice,
    choose_estimator,
)
from eval_pipelines.core.benchmarks.inference import (
    BOOTSTRAP_DRAWS,
    ESTIMANDS,
    CandidateTest,
    Estimate,
    InferenceSettings,
    estimate,
    taxonomy_estimates,
    taxonomy_verdicts,
)
from eval_pipelines.core.benchmarks.result_metrics import (
    PipelineInfo,
    benchmark_result_list,
    clipping,
    coverage_summary,
    json_number,
    mean_rank_interacted,
)
from eval_pipelines.core.benchmarks.score_table import (
    PRIMARY_CUTOFF,
    PRIMARY_NDCG,
    SEEN_COLUMN,
    ScoreGrid,
    score_grid,
)
from eval_pipelines.core.benchmarks.verdicts import Verdict, decide, recommendation
from eval_pipelines.core.metrics.alignment import CUTOFFS, ndcg_column, recall_column


def benchmark_results(
    scores: pa.Table,
    pipelines: Sequence[PipelineInfo],
    epsilon: float = 0.01,
    settings: InferenceSettings | None = None,
    cutoffs: Sequence[int] = CUTOFFS,
    choice: EstimatorChoice | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(results: one BenchmarkResult per retriever, in order; comparison: the BenchmarkComparison).

    choice: the estimator the metrics and tests use (logged order when None); with the
    counterfactual one, each result also carries the logged-order metrics beside it."""
    settings = settings or InferenceSettings()
    choice = choice or choose_estimator(LOGGED_ORDER, None)
    _check_parameters(pipelines, epsilon, cutoffs)
    ids = [p.retriever_id for p in pipelines]
    grid = score_grid(scores, ids, cutoffs, settings.unit, choice.used)
    results = benchmark_result_list(grid, pipelines, epsilon, cutoffs)
    logged = grid
    if choice.counterfactual:
        logged = score_grid(scores, ids, cutoffs, settings.unit, LOGGED_ORDER)
        for result, other in zip(
            results, benchmark_result_list(logged, pipelines, epsilon, cutoffs), strict=True
        ):
            result["metrics_logged_order"] = other["metrics"]
    for index, result in enumerate(results):
        result["coverage"] = coverage_summary(grid, index)
        if choice.counterfactual:
            result["metrics"]["mean_rank_interacted"] = mean_rank_interacted(scores, ids[index])
    candidates = ids[1:]
    tests = [_candidate_test(grid, index, settings) for index in range(1, len(pipelines))]
    blocked = [
        _not_testable(grid, index, tests[index - 1], choice) for index in range(1, len(pipelines))
    ]
    verdicts = decide(tests, blocked, settings)
    comparisons = [
        {
            **_candidate_comparison(
                grid, index, candidates[index - 1], test, verdict, settings, cutoffs
            ),
            "estimator": choice.used,
            "coverage": {
                "candidate": coverage_summary(grid, index),
                "baseline": coverage_summary(grid, 0),
            },
            "if_unseen_best": _bound_record(test.if_unseen_best),
            "logged_order": {
                "ndcg_delta": _mean_deltas(logged, index, ndcg_column, cutoffs),
                "recall_delta": _mean_deltas(logged, index, recall_column, cutoffs),
            },
        }
        for index, (test, verdict) in enumerate(zip(tests, verdicts, strict=True), start=1)
    ]
    return results, {
        "baseline_retriever_id": pipelines[0].retriever_id,
        "estimator": {**choice.record(), **clipping(scores, ids[0])},
        "comparisons": comparisons,
        "recommendation": _recommendation(grid, pipelines, comparisons, tests, verdicts, settings),
    }


def _mean_deltas(
    grid: ScoreGrid, index: int, column: Callable[[int], str], cutoffs: Sequence[int]
) -> dict[str, float]:
    paired = grid.scored[index] & grid.scored[0]
    deltas = {}
    for k in cutoffs:
        differences = grid.values[column(k)][index][paired] - grid.values[column(k)][0][paired]
        deltas[str(k)] = json_number(differences.mean()) if differences.size else 0.0
    return deltas


def _bound_record(found: Estimate | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"delta": json_number(found.delta), "p_value": _rounded(found.p_value)}


def _check_parameters(
    pipelines: Sequence[PipelineInfo], epsilon: float, cutoffs: Sequence[int]
) -> None:
    if not pipelines:
        raise ValueError("pipelines: at least the baseline is needed")
    ids = [p.retriever_id for p in pipelines]
    if len(set(ids)) != len(ids):
        raise ValueError(f"pipelines: retriever ids repeat: {ids}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon: {epsilon!r} must be finite and >= 0")
    if PRIMARY_CUTOFF not in cutoffs:
        raise ValueError(
            f"cutoffs: {list(cutoffs)} lacks {PRIMARY_CUTOFF} (NDCG@10 drives the tests)"
        )


def _candidate_test(grid: ScoreGrid, index: int, settings: InferenceSettings) -> CandidateTest:
    """The primary (failures count) and completed-only estimates of candidate `index` vs the baseline.

    Every candidate's tests draw the same bootstrap signs (streams 0-3 of the seed), so two
    candidates that rank alike get the same p-values and intervals."""
    ndcg = grid.values[PRIMARY_NDCG]
    both = grid.present[index] & grid.present[0]
    scorable = both & grid.scorable
    outcome = np.where(grid.completed, np.nan_to_num(ndcg), 0.0)
    primary_differences = outcome[index][scorable] - outcome[0][scorable]
    primary, too_few = estimate(
        primary_differences, grid.cluster[scorable], settings, settings.min_clusters, 0
    )
    paired = grid.scored[index] & grid.scored[0]
    completed_only, _ = estimate(
        ndcg[index][paired] - ndcg[0][paired], grid.cluster[paired], settings, 2, 1
    )
    taxonomy_sessions, taxonomy_tests = taxonomy_estimates(
        primary_differences,
        grid.cluster[scorable],
        grid.node[scorable],
        grid.node_names,
        settings,
        2,
    )
    if not (grid.scored[index].any() and grid.scored[0].any()):
        taxonomy_tests = {}  # a side that scored nothing gives no node a win or a loss
    present = both.sum()
    if_unseen_best = None
    if grid.if_unseen_best is not None:
        optimistic = np.where(grid.completed, np.nan_to_num(grid.if_unseen_best), 0.0)
        bound_differences = optimistic[index][scorable] - outcome[0][scorable]
        if primary.delta < 0 and not np.allclose(bound_differences, primary_differences):
            if_unseen_best, _ = estimate(
                bound_differences, grid.cluster[scorable], settings, settings.min_clusters, 3
            )
    seen = grid.coverage.get(SEEN_COLUMN)
    seen_share = None
    if seen is not None:
        known = seen[index][scorable & grid.completed[index]]
        known = known[np.isfinite(known)]
        seen_share = float(known.mean()) if known.size else None

    def failure_rate(row: int) -> float:
        return float((both & ~grid.completed[row]).sum() / present) if present else 0.0

    return CandidateTest(
        primary=primary,
        completed_only=completed_only,
        baseline_mean=float(outcome[0][scorable].mean()) if scorable.any() else 0.0,
        candidate_failure_rate=failure_rate(index),
        baseline_failure_rate=failure_rate(0),
        candidate_scored=int(grid.scored[index].sum()),
        baseline_scored=int(grid.scored[0].sum()),
        failed_sessions=int((both & ~grid.completed[index]).sum()),
        too_few=too_few,
        taxonomy_sessions=taxonomy_sessions,
        taxonomy_tests=taxonomy_tests,
        if_unseen_best=if_unseen_best,
        seen_share=seen_share,
    )


def _not_testable(
    grid: ScoreGrid, index: int, test: CandidateTest, choice: EstimatorChoice
) -> list[str]:
    """Why candidate `index` cannot be tested at all (empty when it can)."""
    if choice.blocked:
        return [f"the counterfactual estimator was requested, but {choice.blocked}"]
    if not grid.scorable.any():
        return ["no session with interactions"]
    if test.seen_share is not None and test.seen_share < choice.min_coverage:
        return [
            f"{100 * (1 - test.seen_share):.0f}% of its top 10 was never shown for these queries"
            f" (coverage {test.seen_share:.2f} < min_coverage {choice.min_coverage:g}): the logs"
            " hold no evidence either way; run an evaluation with judgments instead"
        ]
    for row, who in ((0, "the baseline"), (index, "the candidate")):
        if not grid.scored[row].any():
            failed = int((grid.present[row] & ~grid.completed[row]).sum())
            errors = ", ".join(f"{k} {v}" for k, v in grid.error_summaries[row].items())
            return [
                f"{who} scored no session ({failed} of {int(grid.present[row].sum())} failed"
                f"{': ' + errors if errors else ''})"
            ]
    return list(test.too_few)


def _rounded(value: float | None) -> float | None:
    return None if value is None else json_number(value)


def _interval(found: Estimate) -> list[float] | None:
    if found.ci_low is None or found.ci_high is None:
        return None
    return [json_number(found.ci_low), json_number(found.ci_high)]


def _candidate_comparison(
    grid: ScoreGrid,
    index: int,
    retriever_id: str,
    test: CandidateTest,
    verdict: Verdict,
    settings: InferenceSettings,
    cutoffs: Sequence[int],
) -> dict[str, Any]:
    """PipelineComparison of candidate `index` with the baseline, with its verdict and evidence."""
    paired = grid.scored[index] & grid.scored[0]

    def mean_difference(name: str) -> float:
        differences = grid.values[name][index][paired] - grid.values[name][0][paired]
        return json_number(differences.mean()) if differences.size else 0.0

    both_completed = grid.completed[index] & grid.completed[0]
    latency_differences = grid.latency[index][both_completed] - grid.latency[0][both_completed]
    primary, completed_only = test.primary, test.completed_only
    if not (test.candidate_scored and test.baseline_scored):
        # A side that scored nothing leaves no ranking to judge: its zeros are no evidence.
        primary = replace(primary, p_value=None, ci_low=None, ci_high=None)
    wins, losses = taxonomy_verdicts(test.taxonomy_tests, settings.alpha)
    relative = primary.delta / test.baseline_mean if test.baseline_mean > 0 else None
    standardized = primary.delta / primary.spread if primary.spread else None
    return {
        "candidate_retriever_id": retriever_id,
        "ndcg_delta": {str(k): mean_difference(ndcg_column(k)) for k in cutoffs},
        "recall_delta": {str(k): mean_difference(recall_column(k)) for k in cutoffs},
        "latency_delta_ms": (
            json_number(latency_differences.mean()) if latency_differences.size else 0.0
        ),
        "p_value": _rounded(primary.p_value),
        "p_value_adjusted": _rounded(verdict.p_adjusted),
        "confidence_interval": _interval(primary),
        "taxonomy_wins": wins,
        "taxonomy_losses": losses,
        "taxonomy_untested": {
            name: count
            for name, count in sorted(test.taxonomy_sessions.items())
            if name not in test.taxonomy_tests
        },
        "paired_sessions": int(paired.sum()),
        "verdict": verdict.verdict,
        "verdict_reasons": verdict.reasons,
        "effect": {
            "estimand": "intention_to_treat",
            "delta": json_number(primary.delta),
            "confidence_interval": _interval(primary),
            "relative_change": _rounded(relative),
            "standardized": _rounded(standardized),
            "minimum_detectable_effect": _rounded(verdict.minimum_detectable_effect),
            "power": settings.power,
            "design_effect": _rounded(primary.design_effect),
        },
        "completed_only": {
            "delta": json_number(completed_only.delta),
            "confidence_interval": _interval(completed_only),
            "p_value": _rounded(completed_only.p_value),
            "sessions": completed_only.sessions,
        },
        "failures": {
            "candidate_rate": json_number(test.candidate_failure_rate),
            "baseline_rate": json_number(test.baseline_failure_rate),
            "tolerance": settings.max_failure_excess,
        },
        "inference": {
            "unit": settings.unit,
            "method": primary.method,
            "clusters": primary.clusters,
            "sessions": primary.sessions,
            "bootstrap_draws": BOOTSTRAP_DRAWS if primary.testable else None,
            "seed": settings.seed,
            "standard_error": _rounded(primary.standard_error),
            "degrees_of_freedom": _rounded(primary.degrees_of_freedom),
            "estimand": ESTIMANDS[settings.unit],
        },
    }


def _recommendation(
    grid: ScoreGrid,
    pipelines: Sequence[PipelineInfo],
    comparisons: Sequence[dict[str, Any]],
    tests: Sequence[CandidateTest],
    verdicts: Sequence[Verdict],
    settings: InferenceSettings,
) -> str:
    """A deterministic sentence: the candidate to promote, or why the baseline stays."""
    baseline = pipelines[0].retriever_id
    if not tests:
        return f"Keep the baseline {baseline}: there is no candidate to compare."
    if not grid.execution_ids:
        return f"No verdict: the benchmark has no session, so nothing was compared with {baseline}."
    if not grid.scored[0].any():
        sessions = int(grid.present[0].sum())
        failed = int((grid.present[0] & ~grid.completed[0]).sum())
        return (
            f"No verdict: the baseline {baseline} scored no session ({failed} of {sessions}"
            " failed), so no candidate could be compared with it."
        )
    return recommendation(
        baseline,
        [p.retriever_id for p in pipelines[1:]],
        tests,
        verdicts,
        [c["latency_delta_ms"] for c in comparisons],
        settings,
    )
