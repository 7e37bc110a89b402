"""The BenchmarkResponse record through its lifecycle: pending -> building_sessions -> replaying ->
computing_metrics -> completed, or failed with the reason.

A completed record never lets a placeholder pass for a measurement or a verdict: `warnings` name each
pipeline that scored no session (its zeros are placeholders) and each comparison that is not
testable, with why. Each comparison's own `verdict_reasons` and `taxonomy_untested` (nodes with too
few sessions or queries for a win or loss) come from the comparison itself.
"""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.benchmarks.health import MIN_BASELINE_AGREEMENT
from eval_pipelines.core.benchmarks.inference import InferenceSettings
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.verdicts import NOT_TESTABLE
from eval_pipelines.core.records import Status


def statistics_settings(settings: InferenceSettings, query_key: str) -> dict[str, Any]:
    """How the comparisons are tested, as the record's settings show it."""
    return {
        "alpha": settings.alpha,
        "power": settings.power,
        "inference_unit": settings.unit,
        "query_key": query_key,
        "min_clusters": settings.min_clusters,
        "min_node_sessions": settings.min_node_sessions,
        "max_failure_excess": settings.max_failure_excess,
    }


REPLAY_ENGINE = "replay_engine"


def replay_engine_setting(engine: dict[str, Any] | None) -> dict[str, Any]:
    """Where the replay ran, as settings.replay_engine; nothing for replays stored before it was
    kept (their record stays as it was)."""
    return {} if engine is None else {REPLAY_ENGINE: engine}


PROGRESS_STATUSES = (
    Status.PENDING,
    Status.BUILDING_SESSIONS,
    Status.REPLAYING,
    Status.COMPUTING_METRICS,
)


def pending_record(request: BenchmarkRequest, benchmark_id: str, created_at: str) -> dict[str, Any]:
    return {
        "benchmark_id": benchmark_id,
        "benchmark_name": request.benchmark_name,
        "baseline_retriever_id": request.baseline_retriever_id,
        "candidate_retriever_ids": list(request.candidate_retriever_ids),
        "session_filter": request.session_filter_record(),
        "session_count": request.session_count,
        "status": Status.PENDING.value,
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
            **statistics_settings(request.inference_settings, request.query_key),
            "estimator": request.estimator,
            "min_coverage": request.min_coverage,
            "propensity_clip": request.propensity_clip,
        },
        "warnings": [],
    }


def in_progress(record: dict[str, Any], status: str, started_at: str) -> dict[str, Any]:
    if status not in PROGRESS_STATUSES:
        raise ValueError(f"status: {status!r} is not a progress status")
    return {
        **record,
        "status": str(status),
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
    """outcome: the benchmark_comparison asset's output (results, comparison, sampling facts, and
    where the replay ran)."""
    results = outcome["results"]
    comparison = outcome["comparison"]
    return {
        **record,
        "status": Status.COMPLETED.value,
        "session_count": outcome["sessions_sampled"],
        "results": results,
        "comparison": comparison,
        "started_at": record["started_at"] or started_at or completed_at,
        "completed_at": completed_at,
        "error_message": None,
        "settings": {
            **record["settings"],
            "sessions_matched": outcome["sessions_matched"],
            **replay_engine_setting(outcome.get(REPLAY_ENGINE)),
        },
        "warnings": [
            *outcome["warnings"],
            *_statistics_warnings(results, comparison, outcome["sessions_sampled"]),
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
    agreement = (results[0].get("replay_agreement") or {}).get("logged_overlap_at_10")
    if agreement is not None and agreement < MIN_BASELINE_AGREEMENT:
        warnings.append(
            f"the baseline {baseline} replayed today keeps only {100 * agreement:.0f}% of the"
            " logged top 10 (below"
            f" {100 * MIN_BASELINE_AGREEMENT:.0f}%): the index or ranker drifted since the logs,"
            " and interaction metrics, which credit only what users were shown, favour rankings"
            " that resemble the logged ones"
        )
    for item in comparison["comparisons"]:
        candidate = item["candidate_retriever_id"]
        if item["verdict"] == NOT_TESTABLE and not {baseline, candidate} & unscored:
            warnings.append(
                f"{candidate}: not testable against the baseline {baseline}"
                f" ({'; '.join(item['verdict_reasons'])}): no verdict, never promoted"
            )
    return warnings


def has_verdict(record: dict[str, Any]) -> bool:
    """A completed benchmark answers its question only if every candidate could be tested."""
    comparisons = (record.get("comparison") or {}).get("comparisons") or []
    return (
        record["status"] == "completed"
        and bool(comparisons)
        and all(item["verdict"] != NOT_TESTABLE for item in comparisons)
    )


def failed_record(
    record: dict[str, Any], error_message: str, started_at: str | None, completed_at: str
) -> dict[str, Any]:
    return {
        **record,
        "status": Status.FAILED.value,
        "results": None,
        "comparison": None,
        "started_at": record["started_at"] or started_at,
        "completed_at": completed_at,
        "error_message": error_message,
    }
