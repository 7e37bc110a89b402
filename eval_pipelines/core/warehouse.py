"""DuckDB as the query layer: one database file holding a view per Parquet table.

No process keeps the file open longer than one short transaction (DuckDB allows one writer process or
many readers), so every function here opens, works and closes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from eval_pipelines.core.paths import DataPaths

T = TypeVar("T")

_LOCK_RETRIES = 50


def table_globs(paths: DataPaths) -> dict[str, str]:
    """View name -> glob (relative to the data directory) of the Parquet files that make the table."""
    tables = {
        "logged_executions": "logs/executions/*.parquet",
        "interactions": "logs/interactions/*.parquet",
        "quarantine": "logs/quarantine/*.parquet",
        "executions": "executions/*/*.parquet",
        "benchmark_sessions": "benchmarks/*/sessions.parquet",
        "benchmark_session_interactions": "benchmarks/*/session_interactions.parquet",
        "benchmark_replays": "benchmarks/*/replays.parquet",
        "benchmark_session_scores": "benchmarks/*/session_scores.parquet",
        "evaluation_queries": "evaluations/*/queries.parquet",
        "evaluation_runs": "evaluations/*/runs.parquet",
        "evaluation_query_metrics": "evaluations/*/query_metrics.parquet",
    }
    if paths.collections_dir.is_dir():
        for collection in sorted(p for p in paths.collections_dir.iterdir() if p.is_dir()):
            tables[f"collection_{collection.name.replace('-', '_').replace('.', '_')}"] = (
                f"collections/{collection.name}/*.parquet"
            )
    return tables


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _with_lock_retry(action: Callable[[], T]) -> T:
    """Another process may hold the write lock for a moment: retry with bounded, jittered backoff."""
    for attempt in range(_LOCK_RETRIES):
        try:
            return action()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == _LOCK_RETRIES - 1:
                raise
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")


def refresh_views(paths: DataPaths) -> list[str]:
    """(Re)create one view per table that has files, and drop views whose files are gone."""
    wanted = {
        name: paths.root / pattern
        for name, pattern in table_globs(paths).items()
        if any(not f.name.startswith(".") for f in paths.root.glob(pattern))
    }

    def apply() -> list[str]:
        paths.root.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(paths.warehouse)) as con:
            existing = {
                row[0]
                for row in con.execute(
                    "SELECT view_name FROM duckdb_views() WHERE NOT internal"
                ).fetchall()
            }
            con.execute("BEGIN")
            for stale in sorted(existing - set(wanted)):
                con.execute(f'DROP VIEW IF EXISTS "{stale}"')
            for name, pattern in sorted(wanted.items()):
                con.execute(
                    f'CREATE OR REPLACE VIEW "{name}" AS '
                    f"SELECT * FROM read_parquet({_sql_string(str(pattern))}, union_by_name = true)"
                )
            con.execute("COMMIT")
        return sorted(wanted)

    return _with_lock_retry(apply)


def query(paths: DataPaths, sql: str, parameters: Sequence[Any] | None = None) -> pa.Table:
    """Run one read-only query against the warehouse views; values go in as parameters only."""

    def run() -> pa.Table:
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            return con.sql(sql, params=list(parameters or [])).to_arrow_table()

    return _with_lock_retry(run)
