"""DuckDB as the query layer: one database file holding a view per Parquet table.

No process keeps the file open longer than one short transaction (DuckDB allows one writer process or
many readers), so every function here opens, works and closes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import parquet_files

T = TypeVar("T")

_LOCK_RETRIES = 50


def table_globs(paths: DataPaths) -> dict[str, Path]:
    """View name -> directory whose Parquet files make the table (fixed tables plus one per collection)."""
    tables = {
        "logged_executions": paths.log_table_dir("executions"),
        "interactions": paths.log_table_dir("interactions"),
        "quarantine": paths.log_table_dir("quarantine"),
    }
    if paths.collections_dir.is_dir():
        for collection in sorted(p for p in paths.collections_dir.iterdir() if p.is_dir()):
            tables[f"collection_{collection.name.replace('-', '_')}"] = collection
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


def refresh_views(paths: DataPaths, extra: dict[str, Sequence[Path]] | None = None) -> list[str]:
    """(Re)create one view per table that has files, and drop views whose files are gone."""
    wanted: dict[str, list[Path]] = {}
    for name, directory in table_globs(paths).items():
        files = parquet_files(directory)
        if files:
            wanted[name] = [directory / "*.parquet"]
    executions = (
        sorted(paths.executions_dir.glob("*/*.parquet")) if paths.executions_dir.is_dir() else []
    )
    if executions:
        wanted["executions"] = [paths.executions_dir / "*" / "*.parquet"]
    for name, globs in (extra or {}).items():
        if globs:
            wanted[name] = list(globs)

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
            for name, globs in sorted(wanted.items()):
                sources = "[" + ", ".join(_sql_string(str(g)) for g in globs) + "]"
                con.execute(
                    f'CREATE OR REPLACE VIEW "{name}" AS '
                    f"SELECT * FROM read_parquet({sources}, union_by_name = true)"
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
