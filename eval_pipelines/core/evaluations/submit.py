"""Accepting an evaluation request: the path the CLI and the launchpad share."""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.datasets import load_dataset
from eval_pipelines.core.evaluations.record import pending_record
from eval_pipelines.core.evaluations.request import EvaluationRequest, parse_evaluation_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore, new_id, utc_timestamp

KIND = "evaluations"
SUMMARY = "summary"


def evaluation_store(paths: DataPaths) -> RecordStore:
    return RecordStore(paths, KIND)


def new_evaluation_id() -> str:
    return new_id("eval")


def accept_request(
    paths: DataPaths, request: EvaluationRequest, evaluation_id: str | None = None
) -> dict[str, Any]:
    evaluation_id = evaluation_id or new_evaluation_id()
    dataset = load_dataset(paths, request.dataset_name)
    record = pending_record(
        request,
        evaluation_id,
        dataset.summary.dataset_id,
        dataset.summary.query_count,
        utc_timestamp(),
    )
    evaluation_store(paths).accept(evaluation_id, record, request.raw)
    return record


def load_request(paths: DataPaths, evaluation_id: str) -> EvaluationRequest:
    return parse_evaluation_request(evaluation_store(paths).stored_request(evaluation_id), paths)
