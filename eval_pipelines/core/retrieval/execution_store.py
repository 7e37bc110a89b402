"""Executions on disk: `<data>/executions/<retriever_id>/<batch_id>.parquet`, read back with DuckDB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.retrieval.execution import Execution, ScoredDocument, StageStatistics
from eval_pipelines.core.storage import parquet_files, write_parquet_atomic

DOCUMENT_TYPE = pa.struct([("document_id", pa.string()), ("score", pa.float64())])
TIMESTAMP = pa.timestamp("us", tz="UTC")
EXECUTIONS_SCHEMA = pa.schema(
    [
        ("execution_id", pa.string()),
        ("retriever_id", pa.string()),
        ("status", pa.string()),
        ("query_input", pa.string()),
        ("documents", pa.list_(DOCUMENT_TYPE)),
        ("stage_statistics", pa.string()),
        ("total_time_ms", pa.float64()),
        ("created_at", TIMESTAMP),
        ("completed_at", TIMESTAMP),
        ("error", pa.string()),
        ("error_type", pa.string()),
        ("pipeline_hash", pa.string()),
        ("total_stages", pa.int32()),
        ("attempts", pa.int32()),
    ]
)


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_DOCUMENT_ID = attrgetter("document_id")
_SCORE = attrgetter("score")


def _json(value: Any) -> str:
    return _CANONICAL_JSON.encode(value)


def executions_table(executions: Sequence[Execution]) -> pa.Table:
    """Executions as rows of EXECUTIONS_SCHEMA (documents built column-wise, not per dict)."""
    counts = np.fromiter(
        (len(e.documents) for e in executions), dtype=np.int32, count=len(executions)
    )
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int32)
    all_documents = list(chain.from_iterable(e.documents for e in executions))
    documents = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays(
            [
                pa.array(list(map(_DOCUMENT_ID, all_documents)), pa.string()),
                pa.array(list(map(_SCORE, all_documents)), pa.float64()),
            ],
            fields=list(DOCUMENT_TYPE),
        ),
    )
    columns = {
        "execution_id": [e.execution_id for e in executions],
        "retriever_id": [e.retriever_id for e in executions],
        "status": [e.status for e in executions],
        "query_input": [_json(e.query_input) for e in executions],
        "documents": documents,
        "stage_statistics": [
            _COMPACT_JSON.encode({name: s.to_dict() for name, s in e.stages.items()})
            for e in executions
        ],
        "total_time_ms": [e.total_time_ms for e in executions],
        "created_at": [e.created_at for e in executions],
        "completed_at": [e.completed_at for e in executions],
        "error": [e.error for e in executions],
        "error_type": [e.error_type for e in executions],
        "pipeline_hash": [e.pipeline_hash for e in executions],
        "total_stages": [
            e.total_stages if e.total_stages is not None else len(e.stages) for e in executions
        ],
        "attempts": [e.attempts for e in executions],
    }
    return pa.table(
        [
            value
            if isinstance(value, pa.Array)
            else pa.array(value, EXECUTIONS_SCHEMA.field(name).type)
            for name, value in columns.items()
        ],
        schema=EXECUTIONS_SCHEMA,
    )


def write_executions(
    paths: DataPaths, executions: Sequence[Execution], batch_id: str
) -> list[Path]:
    """One Parquet file per retriever for this batch (rewritten atomically if the batch exists)."""
    validate_id(batch_id, "batch_id")
    return write_executions_table(paths, executions_table(executions), batch_id)


def write_executions_table(paths: DataPaths, table: pa.Table, batch_id: str) -> list[Path]:
    """write_executions for rows already in EXECUTIONS_SCHEMA, for callers that reuse the table.

    Encoding Parquet releases the GIL, so a caller may run this on a thread beside live calls.
    """
    validate_id(batch_id, "batch_id")
    execution_ids = table.column("execution_id")
    if pc.count_distinct(execution_ids).as_py() != table.num_rows:
        counts = pc.value_counts(execution_ids).to_pylist()
        twice = next(c["values"] for c in counts if c["counts"] > 1)
        raise ValueError(f"execution_id: {twice!r} appears twice in the batch")
    retriever_ids = table.column("retriever_id")
    distinct = pc.unique(retriever_ids).to_pylist()
    written = []
    for retriever_id in distinct:
        group = table if len(distinct) == 1 else table.filter(pc.equal(retriever_ids, retriever_id))
        written.append(
            write_parquet_atomic(
                group, paths.retriever_executions_dir(retriever_id) / f"{batch_id}.parquet"
            )
        )
    return written


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def execution_from_record(record: dict[str, Any]) -> Execution:
    """Rebuild an Execution from one stored row (as a dict of Python values)."""
    stages = json.loads(record["stage_statistics"] or "{}")
    return Execution(
        execution_id=record["execution_id"],
        retriever_id=record["retriever_id"],
        query_input=json.loads(record["query_input"] or "{}"),
        status=record["status"],
        documents=[ScoredDocument(d["document_id"], d["score"]) for d in record["documents"] or []],
        stages={name: StageStatistics.from_dict(s) for name, s in stages.items()},
        total_time_ms=record["total_time_ms"],
        created_at=_utc(record["created_at"]),
        completed_at=_utc(record["completed_at"]),
        error=record["error"],
        error_type=record["error_type"],
        pipeline_hash=record["pipeline_hash"],
        total_stages=record.get("total_stages"),
        attempts=record.get("attempts") or 1,
    )


def find_execution(paths: DataPaths, retriever_id: str, execution_id: str) -> Execution | None:
    """One DuckDB query over the retriever's files; None when no file holds the id."""
    files = parquet_files(paths.retriever_executions_dir(retriever_id))
    if not files:
        return None
    with duckdb.connect() as connection:
        table = connection.sql(
            "SELECT * FROM read_parquet(?, union_by_name = true) WHERE execution_id = ? LIMIT 1",
            params=[[str(f) for f in files], execution_id],
        ).to_arrow_table()
    if table.num_rows == 0:
        return None
    return execution_from_record(table.to_pylist()[0])


def get_execution(paths: DataPaths, retriever_id: str, execution_id: str) -> dict[str, Any] | None:
    """The stored execution as an ExecutionDetail dict, or None."""
    execution = find_execution(paths, retriever_id, execution_id)
    return None if execution is None else execution.to_detail()
