"""Accepting a benchmark request, and the benchmark's record as its run writes it: the one path
every door (CLI, launchpad, schedule, request sensor) goes through."""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.benchmarks import record
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore, Status, utc_timestamp
from eval_pipelines.core.run_records import RecordBuilders, RunRecords
from eval_pipelines.core.table_names import BENCHMARKS

KIND = BENCHMARKS

BENCHMARK_RECORDS = RunRecords(
    kind=KIND,
    id_prefix="bench",
    builders=RecordBuilders.of(record),
    stages=(
        ("benchmark_sessions", Status.BUILDING_SESSIONS),
        ("benchmark_replays", Status.REPLAYING),
        ("benchmark_session_scores", Status.COMPUTING_METRICS),
        ("benchmark_comparison", Status.COMPUTING_METRICS),
    ),
)


def benchmark_store(paths: DataPaths) -> RecordStore:
    return BENCHMARK_RECORDS.store(paths)


def new_benchmark_id() -> str:
    return BENCHMARK_RECORDS.new_id()


def accept_request(
    paths: DataPaths, request: BenchmarkRequest, benchmark_id: str | None = None
) -> dict[str, Any]:
    """Store the normalized request and its pending record; a run (any door's) takes it from here."""
    benchmark_id = benchmark_id or new_benchmark_id()
    pending = record.pending_record(request, benchmark_id, utc_timestamp())
    benchmark_store(paths).accept(benchmark_id, pending, request.stored())
    return pending


def load_request(paths: DataPaths, benchmark_id: str) -> BenchmarkRequest:
    """The stored request, read back as the model (the door checked its references)."""
    return BenchmarkRequest.model_validate(benchmark_store(paths).stored_request(benchmark_id))
