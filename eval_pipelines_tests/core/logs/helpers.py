"""Shared fixtures-as-functions for the log ingestion tests: write real inputs, read real outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import parquet_files

EXECUTION: dict[str, Any] = {
    "execution_id": "exec_1",
    "retriever_id": "prod",
    "session_id": "s1",
    "user_id": "u1",
    "query_input": {"text": "red sofa", "filters": {"color": "red"}},
    "documents": ["d1", "d2", "d3"],
    "taxonomy_node_ids": ["furniture"],
    "created_at": "2026-10-01T12:00:00Z",
}

INTERACTION: dict[str, Any] = {
    "execution_id": "exec_1",
    "document_id": "d2",
    "interaction_type": "click",
    "position": 1,
    "timestamp": "2026-10-01T12:00:05Z",
}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def stored_rows(paths: DataPaths, table: str) -> list[dict[str, Any]]:
    """Every row of a normalized table, read back through DuckDB in file + row order."""
    files = parquet_files(paths.log_table_dir(table))
    if not files:
        return []
    with duckdb.connect() as con:
        result = con.execute(
            "SELECT * EXCLUDE (filename, file_row_number) FROM read_parquet(?, filename = true,"
            " file_row_number = true) ORDER BY filename, file_row_number",
            [[str(f) for f in files]],
        )
        columns = [d[0] for d in result.description]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def parquet_parts(paths: DataPaths) -> dict[str, list[str]]:
    """Part file names per log table: what an ingest left on disk."""
    return {
        table: [f.name for f in parquet_files(paths.log_table_dir(table))]
        for table in ("executions", "interactions", "quarantine")
    }
