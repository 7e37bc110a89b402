"""The BenchmarkResponse record through its lifecycle: pending -> building_sessions -> replaying ->
computing_metrics -> completed, or failed with the reason.

A completed record never lets a placeholder pass for a measurement or a verdict: `warnings` name each
pipeline that scored no session (its zeros are placeholders) and each comparison with too few paired
sessions for a test, and each comparison lists in `taxonomy_untested` the taxonomy nodes with too few
paired sessions for a win or loss (node -> paired sessions).
"""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.benchmarks.comparison import (
    DEFAULT_ALPHA,
    MIN_NODE_SESSIONS,
    untested_taxonomy_nodes,
)
from eval_pipelines.core.benchmarks.request import BenchmarkRequest

STATISTICS_SETTINGS = {"alpha": DEFAULT_ALPHA, "min_node_sessions": MIN_NODE_SESSIONS}

PROGRESS_STATUSES = ("pending", "building_sessions", "replaying", "computing_metrics")


def pending_record(request: BenchmarkRequest, benchmark_id: str, created_at: str) -> dict[str, Any]:
    return {
        "benchmark_id": benchmark_id,
        "benchmark_name": request.benchmark_name,
        "baseline_retriever_id": request.baseline_retriever_id,
        "candidate_retriever_ids": list(request.candidate_retriever_ids),
        "session_filter": request.session_filter_record(),
        "session_count": request.session_count,
        "status": "pending",
        "results": None,
        "comparison": None,
        "created_at": created_at,
        "started_at": None,
        "completed_at": None,
        "error_message": None,
        "settings": {
            "seed": request.seed,
            "replay_depth": request.replay_depth,
            "epsilon": request.epsilon,
            "sessions_requested": request.session_count,
            **STATISTICS_SETTINGS,
        },
        "warnings": [],
    }


def in_progress(record: dict[str, Any], status: str, started_at: str) -> dict[str, Any]:
    if status not in PROGRESS_STATUSES:
        raise ValueError(f"status: {status!r} is not a progress status")
    return {
        **record,
        "status": status,
        "results": None,
        "comparison": None,
        "started_at": record["started_at"] or started_at,
        "completed_at": None,
        "error_message": None,
    }


def completed_record(
    record: dict[str, Any],
    outcome: dict[str, Any],
    started_at: str | None,
    completed_at: str,
) -> dict[str, Any]:
    """outcome: the benchmark_comparison asset's output (results, comparison, sampling facts)."""
    results = outcome["results"]
    comparison = outcome["comparison"]
    return {
        **record,
        "status": "completed",
        "session_count": outcome["sessions_sampled"],
        "results": results,
        "comparison": _with_untested_nodes(comparison, results),
        "started_at": record["started_at"] or started_at or completed_at,
        "completed_at": completed_at,
        "error_message": None,
        "settings": {
            **record["settings"],
            **STATISTICS_SETTINGS,
            "sessions_matched": outcome["sessions_matched"],
        },
        "warnings": [
            *outcome["warnings"],
            *_statistics_warnings(results, comparison, outcome["sessions_sampled"]),
        ],
    }


def _with_untested_nodes(
    comparison: dict[str, Any], results: list[dict[str, Any]]
) -> dict[str, Any]:
    result_of = {result["retriever_id"]: result for result in results}
    return {
        **comparison,
        "comparisons": [
            {
                **item,
                "taxonomy_untested": untested_taxonomy_nodes(
                    result_of[item["candidate_retriever_id"]]
                ),
            }
            for item in comparison["comparisons"]
        ],
    }


def _statistics_warnings(
    results: list[dict[str, Any]], comparison: dict[str, Any], sessions: int
) -> list[str]:
    """What in the results is a placeholder rather than a measurement, or untested, in words."""
    if sessions == 0:
        return ["no session was sampled: every metric is a placeholder (0) and nothing was tested"]
    warnings = []
    unscored = set()
    for position, result in enumerate(results):
        scored = result.get("scored_sessions")
        if scored is None or scored > 0:
            continue
        unscored.add(result["retriever_id"])
        failed = result["failed_sessions"]
        errors = ", ".join(f"{kind} {count}" for kind, count in result["error_summary"].items())
        placeholders = "metrics and latency are" if failed == sessions else "metrics are"
        consequence = (
            "no candidate could be compared with it"
            if position == 0
            else "it was not compared and cannot be recommended"
        )
        warnings.append(
            f"{result['retriever_id']} scored no session ({failed} of {sessions} failed"
            f"{': ' + errors if errors else ''}): its {placeholders} placeholders (0), not"
            f" measurements, and {consequence}"
        )
    baseline = comparison["baseline_retriever_id"]
    for item in comparison["comparisons"]:
        candidate = item["candidate_retriever_id"]
        if item["p_value"] is None and not {baseline, candidate} & unscored:
            warnings.append(
                f"{candidate}: only {item['paired_sessions']} session(s) scored by both it and the"
                f" baseline {baseline}; a paired test needs 2, so there is no p-value, interval or"
                " verdict"
            )
    return warnings


def has_verdict(record: dict[str, Any]) -> bool:
    """A completed benchmark answers its question only if every candidate could be tested."""
    comparisons = (record.get("comparison") or {}).get("comparisons") or []
    return (
        record["status"] == "completed"
        and bool(comparisons)
        and all(item["p_value"] is not None for item in comparisons)
    )


def failed_record(
    record: dict[str, Any], error_message: str, started_at: str | None, completed_at: str
) -> dict[str, Any]:
    return {
        **record,
        "status": "failed",
        "results": None,
        "comparison": None,
        "started_at": record["started_at"] or started_at,
        "completed_at": completed_at,
        "error_message": error_message,
    }
