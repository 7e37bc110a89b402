"""The EvaluationRecord through its lifecycle: pending -> in_progress -> completed, or failed."""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines.core.records import utc_timestamp

LOCAL_NAMESPACE = "local"


def pending_record(
    request: EvaluationRequest,
    evaluation_id: str,
    dataset_id: str,
    query_count: int,
    created_at: str,
) -> dict[str, Any]:
    return {
        "evaluation_id": evaluation_id,
        "retriever_id": request.retriever_id,
        "dataset_id": dataset_id,
        "dataset_name": request.dataset_name,
        "config": request.config,
        "status": "pending",
        "created_at": created_at,
        "updated_at": created_at,
        "completed_at": None,
        "namespace_id": LOCAL_NAMESPACE,
        "internal_id": LOCAL_NAMESPACE,
        "query_count": query_count,
        "overall_metrics": None,
        "metrics_by_k": None,
        "total_queries": None,
        "evaluated_queries": None,
        "skipped_queries": None,
        "skipped_reasons": None,
        "error_message": None,
    }


def in_progress(record: dict[str, Any], status: str, started_at: str) -> dict[str, Any]:
    return {
        **record,
        "status": "in_progress",
        "updated_at": utc_timestamp(),
        "completed_at": None,
        "overall_metrics": None,
        "metrics_by_k": None,
        "error_message": None,
    }


def completed_record(
    record: dict[str, Any], summary: dict[str, Any], started_at: str | None, completed_at: str
) -> dict[str, Any]:
    """summary: the evaluation_summary asset's output."""
    return {
        **record,
        "status": "completed",
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
    }


def failed_record(
    record: dict[str, Any], error_message: str, started_at: str | None, completed_at: str
) -> dict[str, Any]:
    return {
        **record,
        "status": "failed",
        "updated_at": completed_at,
        "completed_at": None,
        "overall_metrics": None,
        "metrics_by_k": None,
        "error_message": error_message,
    }
