"""Where a benchmark partition's tables live: `<data>/benchmarks/<id>/<table>.parquet`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_parquet_atomic, write_text_atomic

TABLES = ("sessions", "session_interactions", "replays", "session_scores")
OUTCOME_FILE = "comparison.json"
SAMPLE_FILE = "sample.json"


def table_path(paths: DataPaths, benchmark_id: str, table: str) -> Path:
    return benchmark_store(paths).folder(benchmark_id) / f"{table}.parquet"


def write_table(paths: DataPaths, benchmark_id: str, table: str, data: pa.Table) -> Path:
    return write_parquet_atomic(data, table_path(paths, benchmark_id, table))


def read_table(paths: DataPaths, benchmark_id: str, table: str) -> pa.Table:
    return pq.read_table(table_path(paths, benchmark_id, table))


def _write_json(paths: DataPaths, benchmark_id: str, name: str, value: dict[str, Any]) -> Path:
    path = benchmark_store(paths).folder(benchmark_id) / name
    return write_text_atomic(json.dumps(value, indent=2) + "\n", path)


def _read_json(paths: DataPaths, benchmark_id: str, name: str) -> dict[str, Any]:
    path = benchmark_store(paths).folder(benchmark_id) / name
    return json.loads(path.read_text(encoding="utf-8"))


def write_sample_facts(paths: DataPaths, benchmark_id: str, facts: dict[str, Any]) -> Path:
    """How the sample came out (matched, sampled, seed, warnings, allocation), for the record."""
    return _write_json(paths, benchmark_id, SAMPLE_FILE, facts)


def read_sample_facts(paths: DataPaths, benchmark_id: str) -> dict[str, Any]:
    return _read_json(paths, benchmark_id, SAMPLE_FILE)


def write_outcome(paths: DataPaths, benchmark_id: str, outcome: dict[str, Any]) -> Path:
    """The comparison asset's output: results, comparison and the sample facts the record shows."""
    return _write_json(paths, benchmark_id, OUTCOME_FILE, outcome)


def read_outcome(paths: DataPaths, benchmark_id: str) -> dict[str, Any]:
    return _read_json(paths, benchmark_id, OUTCOME_FILE)
