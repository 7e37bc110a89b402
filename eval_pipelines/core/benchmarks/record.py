"""The BenchmarkResponse record through its lifecycle: pending -> building_sessions -> replaying ->
computing_metrics -> completed, or failed with the reason."""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.benchmarks.request import BenchmarkRequest

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
    return {
        **record,
        "status": "completed",
        "session_count": outcome["sessions_sampled"],
        "results": outcome["results"],
        "comparison": outcome["comparison"],
        "started_at": record["started_at"] or started_at or completed_at,
        "completed_at": completed_at,
        "error_message": None,
        "settings": {**record["settings"], "sessions_matched": outcome["sessions_matched"]},
        "warnings": outcome["warnings"],
    }


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
