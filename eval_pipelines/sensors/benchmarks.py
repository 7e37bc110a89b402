"""Benchmark requests and records: the benchmark Lifecycle and its two sensors."""

from typing import Any

from eval_pipelines.assets.benchmarks import (
    benchmark_comparison,
    benchmark_replays,
    benchmark_session_scores,
    benchmark_sessions,
)
from eval_pipelines.core.benchmarks import record as benchmark_record
from eval_pipelines.core.benchmarks.submit import KIND, OUTCOME, benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.jobs import run_benchmark_job
from eval_pipelines.lifecycle import Lifecycle
from eval_pipelines.partitions import benchmark_partitions
from eval_pipelines.sensors.factories import record_sensor, request_sensor


def _completed(
    paths: DataPaths,
    benchmark_id: str,
    record: dict[str, Any],
    started_at: str | None,
    completed_at: str,
) -> dict[str, Any]:
    outcome = benchmark_store(paths).read_json(benchmark_id, OUTCOME)
    return benchmark_record.completed_record(record, outcome, started_at, completed_at)


benchmark_lifecycle = Lifecycle(
    kind=KIND,
    partitions=benchmark_partitions,
    stages=(
        (benchmark_sessions.key, "building_sessions"),
        (benchmark_replays.key, "replaying"),
        (benchmark_session_scores.key, "computing_metrics"),
        (benchmark_comparison.key, "computing_metrics"),
    ),
    in_progress=benchmark_record.in_progress,
    completed=_completed,
    failed=benchmark_record.failed_record,
)

benchmark_request_sensor = request_sensor(benchmark_lifecycle, run_benchmark_job)
benchmark_record_sensor = record_sensor(benchmark_lifecycle)
