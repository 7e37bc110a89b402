"""The EvaluationRecord through its lifecycle: pending -> in_progress -> completed, or failed.

Fields mean one thing in every state: `query_count` is the number of queries evaluated (0 until the
evaluation completes), `total_queries` the dataset's queries (known from the start), and
`completed_at` when the evaluation ended, completed or failed (as for benchmarks). A completed record
whose metrics are placeholders says so in `warnings`. `settings` (an extension key) holds the
request's extension settings (judged_only); metrics_by_k holds judged@k beside the requested metrics.
"""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.evaluations.pipeline import SKIP_FAILED_EXECUTION
from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines.core.records import Status, utc_timestamp

LOCAL_NAMESPACE = "local"
TASK_TYPE = "retriever.evaluation"


def pending_record(
    request: EvaluationRequest,
    evaluation_id: str,
    dataset_id: str,
    dataset_queries: int,
    created_at: str,
) -> dict[str, Any]:
    return {
        "evaluation_id": evaluation_id,
        "retriever_id": request.retriever_id,
        "dataset_id": dataset_id,
        "dataset_name": request.dataset_name,
        "config": request.config,
        "settings": request.settings,
        "status": Status.PENDING.value,
        "created_at": created_at,
        "updated_at": created_at,
        "completed_at": None,
        "namespace_id": LOCAL_NAMESPACE,
        "internal_id": LOCAL_NAMESPACE,
        "query_count": 0,
        "overall_metrics": None,
        "metrics_by_k": None,
        "total_queries": dataset_queries,
        "evaluated_queries": None,
        "skipped_queries": None,
        "skipped_reasons": None,
        "error_message": None,
        "warnings": [],
    }


def in_progress(record: dict[str, Any], status: str, started_at: str) -> dict[str, Any]:
    return {
        **record,
        "status": Status.IN_PROGRESS.value,
        "updated_at": utc_timestamp(),
        "completed_at": None,
        "query_count": 0,
        "overall_metrics": None,
        "metrics_by_k": None,
        "evaluated_queries": None,
        "skipped_queries": None,
        "skipped_reasons": None,
        "error_message": None,
        "warnings": [],
    }


def completed_record(
    record: dict[str, Any], summary: dict[str, Any], started_at: str | None, completed_at: str
) -> dict[str, Any]:
    """summary: the evaluation_summary asset's output."""
    return {
        **record,
        "status": Status.COMPLETED.value,
        "updated_at": completed_at,
        "completed_at": completed_at,
        "query_count": summary["evaluated_queries"],
        "overall_metrics": summary["overall_metrics"],
        "metrics_by_k": summary["metrics_by_k"],
        "total_queries": summary["total_queries"],
        "evaluated_queries": summary["evaluated_queries"],
        "skipped_queries": summary["skipped_queries"],
        "skipped_reasons": summary["skipped_reasons"],
        "error_message": None,
        "warnings": summary_warnings(summary),
    }


def summary_warnings(summary: dict[str, Any]) -> list[str]:
    """What in a completed evaluation is a placeholder or a partial measurement, in words."""
    total, evaluated = summary["total_queries"], summary["evaluated_queries"]
    reasons = ", ".join(f"{reason} {count}" for reason, count in summary["skipped_reasons"].items())
    if evaluated == 0:
        return [
            f"no query could be evaluated ({total} of {total} skipped"
            f"{': ' + reasons if reasons else ''}): every metric is a placeholder (0), not a"
            " measurement"
        ]
    failed = summary["skipped_reasons"].get(SKIP_FAILED_EXECUTION, 0)
    if not failed:
        return []
    errors = ", ".join(
        f"{kind} {count}" for kind, count in summary.get("failed_error_types", {}).items()
    )
    return [
        f"{failed} of {total} queries failed to run ({errors}); the metrics are means over the"
        f" {evaluated} queries evaluated, so they describe the retriever only where it answered"
    ]


def has_verdict(record: dict[str, Any]) -> bool:
    """A completed evaluation answers its question only if at least one query was evaluated."""
    return record["status"] == "completed" and (record.get("evaluated_queries") or 0) > 0


def start_response(record: dict[str, Any]) -> dict[str, Any]:
    """The seed's StartEvaluationResponse for an accepted request: the evaluation is its own task."""
    return {
        "task_id": record["evaluation_id"],
        "evaluation_id": record["evaluation_id"],
        "task_type": TASK_TYPE,
        "status": record["status"],
        "created_at": record["created_at"],
    }


def failed_record(
    record: dict[str, Any], error_message: str, started_at: str | None, completed_at: str
) -> dict[str, Any]:
    return {
        **record,
        "status": Status.FAILED.value,
        "updated_at": completed_at,
        "completed_at": completed_at,
        "query_count": 0,
        "overall_metrics": None,
        "metrics_by_k": None,
        "evaluated_queries": None,
        "skipped_queries": None,
        "skipped_reasons": None,
        "error_message": error_message,
        "warnings": [],
    }
