"""Executions on disk: `<data>/executions/<retriever_id>/<batch_id>.parquet`, read back with DuckDB.

Stage statistics are a typed column, map<stage name, STAGE_TYPE>, so SQL reads them without
parsing text (`stage_statistics['retrieve'].duration_ms`); only a stage's free-form metadata stays
JSON text, since its keys differ from stage to stage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eval_pipelines.core.object_store import connect_duckdb
from eval_pipelines.core.paths import DataPath, DataPaths, validate_id
from eval_pipelines.core.retrieval.execution import Execution, ScoredDocument, StageStatistics
from eval_pipelines.core.storage import parquet_files, write_parquet_atomic
from eval_pipelines.core.warehouse import parquet_select

DOCUMENT_TYPE = pa.struct([("document_id", pa.string()), ("score", pa.float64())])
STAGE_TYPE = pa.struct(
    [
        ("input_count", pa.int64()),
        ("output_count", pa.int64()),
        ("duration_ms", pa.float64()),
        ("efficiency", pa.float64()),
        ("cache_hit", pa.bool_()),
        ("error", pa.string()),
        ("metadata", pa.string()),
    ]
)
STAGES_TYPE = pa.map_(pa.string(), STAGE_TYPE)
TIMESTAMP = pa.timestamp("us", tz="UTC")
EXECUTIONS_SCHEMA = pa.schema(
    [
        ("execution_id", pa.string()),
        ("retriever_id", pa.string()),
        ("status", pa.string()),
        ("query_input", pa.string()),
        ("documents", pa.list_(DOCUMENT_TYPE)),
        ("stage_statistics", STAGES_TYPE),
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


def _offsets(counts: Sequence[int]) -> pa.Array:
    """List offsets for rows of the given lengths."""
    lengths = np.fromiter(counts, dtype=np.int32, count=len(counts))
    return pa.array(np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32))


def documents_column(executions: Sequence[Execution]) -> pa.ListArray:
    """Each execution's ranking as list<DOCUMENT_TYPE>, built column-wise (not one dict per document)."""
    all_documents = list(chain.from_iterable(e.documents for e in executions))
    return pa.ListArray.from_arrays(
        _offsets([len(e.documents) for e in executions]),
        pa.StructArray.from_arrays(
            [
                pa.array(list(map(_DOCUMENT_ID, all_documents)), pa.string()),
                pa.array(list(map(_SCORE, all_documents)), pa.float64()),
            ],
            fields=list(DOCUMENT_TYPE),
        ),
    )


def stages_column(executions: Sequence[Execution]) -> pa.MapArray:
    """Each execution's stages as map<name, STAGE_TYPE>, in the order the stages ran."""
    names = list(chain.from_iterable(e.stages for e in executions))
    stages = list(chain.from_iterable(e.stages.values() for e in executions))
    items = pa.StructArray.from_arrays(
        [
            pa.array([s.input_count for s in stages], pa.int64()),
            pa.array([s.output_count for s in stages], pa.int64()),
            pa.array([s.duration_ms for s in stages], pa.float64()),
            pa.array([s.efficiency for s in stages], pa.float64()),
            pa.array([s.cache_hit for s in stages], pa.bool_()),
            pa.array([s.error for s in stages], pa.string()),
            pa.array(
                [_COMPACT_JSON.encode(s.metadata) if s.metadata else None for s in stages],
                pa.string(),
            ),
        ],
        fields=list(STAGE_TYPE),
    )
    return pa.MapArray.from_arrays(
        _offsets([len(e.stages) for e in executions]), pa.array(names, pa.string()), items
    )


def executions_table(executions: Sequence[Execution]) -> pa.Table:
    """Executions as rows of EXECUTIONS_SCHEMA."""
    columns: dict[str, pa.Array | list[Any]] = {
        "execution_id": [e.execution_id for e in executions],
        "retriever_id": [e.retriever_id for e in executions],
        "status": [e.status for e in executions],
        "query_input": [_json(e.query_input) for e in executions],
        "documents": documents_column(executions),
        "stage_statistics": stages_column(executions),
        "total_time_ms": [e.total_time_ms for e in executions],
        "created_at": [e.created_at for e in executions],
        "completed_at": [e.completed_at for e in executions],
        "error": [e.error for e in executions],
        "error_type": [e.error_type for e in executions],
        "pipeline_hash": [e.pipeline_hash for e in executions],
        "total_stages": [_total_stages(e) for e in executions],
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


def _total_stages(execution: Execution) -> int:
    return execution.total_stages if execution.total_stages is not None else len(execution.stages)


def write_executions(
    paths: DataPaths, executions: Sequence[Execution], batch_id: str
) -> list[DataPath]:
    """One Parquet file per retriever for this batch (rewritten atomically if the batch exists)."""
    validate_id(batch_id, "batch_id")
    return write_executions_table(paths, executions_table(executions), batch_id)


def write_executions_table(paths: DataPaths, table: pa.Table, batch_id: str) -> list[DataPath]:
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
    return Execution(
        execution_id=record["execution_id"],
        retriever_id=record["retriever_id"],
        query_input=json.loads(record["query_input"] or "{}"),
        status=record["status"],
        documents=[ScoredDocument(d["document_id"], d["score"]) for d in record["documents"] or []],
        stages=stored_stages(record["stage_statistics"]),
        total_time_ms=record["total_time_ms"],
        created_at=_utc(record["created_at"]),
        completed_at=_utc(record["completed_at"]),
        error=record["error"],
        error_type=record["error_type"],
        pipeline_hash=record["pipeline_hash"],
        total_stages=record.get("total_stages"),
        attempts=record.get("attempts") or 1,
    )


def stored_stages(value: Any) -> dict[str, StageStatistics]:
    """Stages from the typed column (a list of (name, struct) pairs, as Arrow gives a map)."""
    stages = {}
    for name, stored in value or ():
        metadata = stored["metadata"]
        stages[name] = StageStatistics.from_dict(
            {**stored, "metadata": json.loads(metadata) if metadata else {}}
        )
    return stages


def find_execution(paths: DataPaths, retriever_id: str, execution_id: str) -> Execution | None:
    """One DuckDB query over the retriever's files; None when no file holds the id."""
    files = parquet_files(paths.retriever_executions_dir(retriever_id))
    if not files:
        return None
    with connect_duckdb(paths.root) as connection:
        table = connection.sql(
            f"SELECT * FROM ({parquet_select(files)}) WHERE execution_id = ? LIMIT 1",
            params=[execution_id],
        ).to_arrow_table()
    if table.num_rows == 0:
        return None
    return execution_from_record(table.to_pylist()[0])


def get_execution(paths: DataPaths, retriever_id: str, execution_id: str) -> dict[str, Any] | None:
    """The stored execution as an ExecutionDetail dict, or None."""
    execution = find_execution(paths, retriever_id, execution_id)
    return None if execution is None else execution.to_detail()
