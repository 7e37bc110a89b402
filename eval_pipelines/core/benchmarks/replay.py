"""Replay sampled sessions' queries through the baseline and every candidate.

One failing call fails that session for that pipeline only (its status and error type are kept);
every call is stored as an execution, so any replayed ranking can be inspected later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution import Execution
from eval_pipelines.core.retrieval.execution_store import write_executions
from eval_pipelines.core.retrieval.registry import open_retrievers

CHUNK_SIZE = 1000

REPLAYS_SCHEMA = pa.schema(
    [
        ("benchmark_id", pa.string()),
        ("execution_id", pa.string()),
        ("pipeline_id", pa.string()),
        ("replay_execution_id", pa.string()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error", pa.string()),
        ("ranking", pa.list_(pa.string())),
        ("latency_ms", pa.float64()),
        ("stage_latencies_json", pa.string()),
    ]
)


def _rows(
    benchmark_id: str, logged_ids: Sequence[str], executions: Sequence[Execution]
) -> dict[str, list[Any]]:
    return {
        "benchmark_id": [benchmark_id] * len(executions),
        "execution_id": list(logged_ids),
        "pipeline_id": [e.retriever_id for e in executions],
        "replay_execution_id": [e.execution_id for e in executions],
        "status": [e.status for e in executions],
        "error_type": [e.error_type for e in executions],
        "error": [e.error for e in executions],
        "ranking": [e.document_ids if e.status == "completed" else [] for e in executions],
        "latency_ms": [e.total_time_ms for e in executions],
        "stage_latencies_json": [
            json.dumps({name: s.duration_ms for name, s in e.stages.items()}) for e in executions
        ],
    }


def replay_sessions(
    paths: DataPaths,
    benchmark_id: str,
    sessions: pa.Table,
    pipeline_ids: Sequence[str],
    depth: int,
    progress: Callable[[str], None] | None = None,
) -> pa.Table:
    """Every (session, pipeline) replay as one row of REPLAYS_SCHEMA, sessions in sample order."""
    logged_ids = sessions.column("execution_id").to_pylist()
    query_inputs = [json.loads(q) for q in sessions.column("query_input").to_pylist()]
    parts: list[pa.Table] = []
    with open_retrievers(paths, list(pipeline_ids)) as retrievers:
        for pipeline_id in pipeline_ids:
            retriever = retrievers[pipeline_id]
            for chunk, start in enumerate(range(0, len(query_inputs), CHUNK_SIZE)):
                chunk_inputs = query_inputs[start : start + CHUNK_SIZE]
                executions = retriever.search_many(chunk_inputs, limit=depth)
                write_executions(
                    paths, executions, batch_id=f"benchmark-{benchmark_id}-{chunk:04d}"
                )
                parts.append(
                    pa.table(
                        _rows(benchmark_id, logged_ids[start : start + CHUNK_SIZE], executions),
                        schema=REPLAYS_SCHEMA,
                    )
                )
                if progress:
                    done = min(start + CHUNK_SIZE, len(query_inputs))
                    failed = sum(e.status != "completed" for e in executions)
                    progress(
                        f"{pipeline_id}: replayed {done}/{len(query_inputs)} sessions ({failed} failed in this chunk)"
                    )
    return pa.concat_tables(parts) if parts else REPLAYS_SCHEMA.empty_table()
