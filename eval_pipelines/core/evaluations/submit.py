"""Accepting an evaluation request, and the evaluation's record as its run writes it: the path the
CLI, the launchpad and the request sensor share."""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.evaluations import record
from eval_pipelines.core.evaluations.request import EvaluationRequest
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore, Status, utc_timestamp
from eval_pipelines.core.run_records import RecordBuilders, RunRecords
from eval_pipelines.core.table_names import EVALUATIONS

KIND = EVALUATIONS

EVALUATION_RECORDS = RunRecords(
    kind=KIND,
    id_prefix="eval",
    builders=RecordBuilders.of(record),
    stages=(
        ("evaluation_queries", Status.IN_PROGRESS),
        ("evaluation_runs", Status.IN_PROGRESS),
        ("evaluation_query_metrics", Status.IN_PROGRESS),
        ("evaluation_summary", Status.IN_PROGRESS),
    ),
)


def evaluation_store(paths: DataPaths) -> RecordStore:
    return EVALUATION_RECORDS.store(paths)


def new_evaluation_id() -> str:
    return EVALUATION_RECORDS.new_id()


def accept_request(
    paths: DataPaths, request: EvaluationRequest, evaluation_id: str | None = None
) -> dict[str, Any]:
    evaluation_id = evaluation_id or new_evaluation_id()
    dataset = load_dataset(paths, request.dataset_name)
    pending = record.pending_record(
        request,
        evaluation_id,
        dataset.summary.dataset_id,
        dataset.summary.query_count,
        utc_timestamp(),
    )
    evaluation_store(paths).accept(evaluation_id, pending, request.stored())
    return pending


def load_request(paths: DataPaths, evaluation_id: str) -> EvaluationRequest:
    """The stored request, read back as the model (the door checked its references)."""
    return EvaluationRequest.model_validate(evaluation_store(paths).stored_request(evaluation_id))
