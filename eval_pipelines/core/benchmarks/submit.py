"""Accepting a benchmark request: the one path every door (CLI, UI launch, schedule) goes through."""

from __future__ import annotations

from typing import Any

from eval_pipelines.core.benchmarks.record import pending_record
from eval_pipelines.core.benchmarks.request import BenchmarkRequest, parse_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore, new_id, utc_timestamp

KIND = "benchmarks"
ID_PREFIX = "bench"
# JSON files beside the partition tables: how the sample came out, and the comparison's output.
SAMPLE = "sample"
OUTCOME = "comparison"


def benchmark_store(paths: DataPaths) -> RecordStore:
    return RecordStore(paths, KIND)


def new_benchmark_id() -> str:
    return new_id(ID_PREFIX)


def accept_request(
    paths: DataPaths, request: BenchmarkRequest, benchmark_id: str | None = None
) -> dict[str, Any]:
    """Store the validated request and its pending record; the request sensor takes it from here."""
    benchmark_id = benchmark_id or new_benchmark_id()
    record = pending_record(request, benchmark_id, utc_timestamp())
    benchmark_store(paths).accept(benchmark_id, record, request.raw)
    return record


def load_request(paths: DataPaths, benchmark_id: str) -> BenchmarkRequest:
    return parse_request(benchmark_store(paths).stored_request(benchmark_id), paths)
