"""DuckDB as the query layer: a view per Parquet table, over the files as they are when it is read.

Nothing here holds a DuckDB file lock another process could trip over: `query` builds its views in an
in-memory database, and the warehouse file (for DuckDB clients outside the project) is rebuilt under a
temporary name and renamed into place, so its readers never see it half-made and never block a writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from eval_pipelines.core.paths import DataPaths, is_valid_id
from eval_pipelines.core.storage import atomic_path, directory_lock


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
        # Only folders named as collections can be (a view name is SQL text, never a value).
        for collection in sorted(
            p for p in paths.collections_dir.iterdir() if p.is_dir() and is_valid_id(p.name)
        ):
            tables[f"collection_{collection.name.replace('-', '_').replace('.', '_')}"] = (
                f"collections/{collection.name}/*.parquet"
            )
    return tables


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def view_definitions(paths: DataPaths) -> dict[str, str]:
    """View name -> its SELECT, for each table with at least one finished (not temporary) file."""
    return {
        name: f"SELECT * FROM read_parquet({_sql_string(str(paths.root / pattern))}, "
        "union_by_name = true)"
        for name, pattern in sorted(table_globs(paths).items())
        if any(not f.name.startswith(".") for f in paths.root.glob(pattern))
    }


def _create_views(con: duckdb.DuckDBPyConnection, definitions: dict[str, str]) -> None:
    for name, select in definitions.items():
        con.execute(f'CREATE VIEW "{name}" AS {select}')


def refresh_views(paths: DataPaths) -> list[str]:
    """Rebuild the warehouse file with one view per table that has files; returns the view names.

    One rebuild at a time, so the file renamed in last was made from the newest listing of files.
    """
    with directory_lock(paths.root):
        definitions = view_definitions(paths)
        with atomic_path(paths.warehouse) as tmp:
            tmp.unlink()  # DuckDB creates its database file itself; it refuses an empty one
            with duckdb.connect(str(tmp)) as con:
                _create_views(con, definitions)
                con.execute("CHECKPOINT")
    return list(definitions)


def query(paths: DataPaths, sql: str, parameters: Sequence[Any] | None = None) -> pa.Table:
    """Run one query against the views, built afresh in memory; values go in as parameters only."""
    with duckdb.connect(":memory:") as con:
        _create_views(con, view_definitions(paths))
        return con.sql(sql, params=list(parameters or [])).to_arrow_table()
