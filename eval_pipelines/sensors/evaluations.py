"""Evaluation requests and records: the evaluation Lifecycle and its two sensors."""

from typing import Any

from eval_pipelines.assets.evaluations import (
    evaluation_queries,
    evaluation_query_metrics,
    evaluation_runs,
    evaluation_summary,
)
from eval_pipelines.core.evaluations import record as evaluation_record
from eval_pipelines.core.evaluations.submit import KIND, SUMMARY, evaluation_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.jobs import run_evaluation_job
from eval_pipelines.lifecycle import Lifecycle
from eval_pipelines.partitions import evaluation_partitions
from eval_pipelines.sensors.factories import record_sensor, request_sensor


def _completed(
    paths: DataPaths,
    evaluation_id: str,
    record: dict[str, Any],
    started_at: str | None,
    completed_at: str,
) -> dict[str, Any]:
    summary = evaluation_store(paths).read_json(evaluation_id, SUMMARY)
    return evaluation_record.completed_record(record, summary, started_at, completed_at)


evaluation_lifecycle = Lifecycle(
    kind=KIND,
    partitions=evaluation_partitions,
    stages=tuple(
        (asset.key, "in_progress")
        for asset in (
            evaluation_queries,
            evaluation_runs,
            evaluation_query_metrics,
            evaluation_summary,
        )
    ),
    in_progress=evaluation_record.in_progress,
    completed=_completed,
    failed=evaluation_record.failed_record,
)

evaluation_request_sensor = request_sensor(evaluation_lifecycle, run_evaluation_job)
evaluation_record_sensor = record_sensor(evaluation_lifecycle)
