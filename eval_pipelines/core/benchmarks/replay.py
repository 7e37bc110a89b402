"""Replay sampled sessions' queries through the baseline and every candidate.

One failing call fails that session for that pipeline only (its status and error type are kept);
every call is stored as an execution, so any replayed ranking can be inspected later.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution import Execution
from eval_pipelines.core.retrieval.execution_store import executions_table, write_executions_table
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


@contextmanager
def _automatic_gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _rows(
    benchmark_id: str,
    logged_ids: Sequence[str],
    executions: Sequence[Execution],
    stored: pa.Table,
) -> pa.Table:
    """Replay rows, reusing the columns of the chunk's stored executions (a failed call has none)."""
    documents = stored.column("documents").combine_chunks()
    return pa.table(
        {
            "benchmark_id": pa.repeat(benchmark_id, len(executions)),
            "execution_id": pa.array(logged_ids, pa.string()),
            "pipeline_id": stored.column("retriever_id"),
            "replay_execution_id": stored.column("execution_id"),
            "status": stored.column("status"),
            "error_type": stored.column("error_type"),
            "error": stored.column("error"),
            "ranking": pa.ListArray.from_arrays(
                documents.offsets, documents.values.field("document_id")
            ),
            "latency_ms": stored.column("total_time_ms"),
            "stage_latencies_json": [
                json.dumps({name: s.duration_ms for name, s in e.stages.items()})
                for e in executions
            ],
        },
        schema=REPLAYS_SCHEMA,
    )


def replay_sessions(
    paths: DataPaths,
    benchmark_id: str,
    sessions: pa.Table,
    pipeline_ids: Sequence[str],
    depth: int,
    progress: Callable[[str], None] | None = None,
) -> pa.Table:
    """Every (session, pipeline) replay as one row of REPLAYS_SCHEMA, sessions in sample order.

    A chunk's Parquet file is encoded on a writer thread while the next chunk is searched (that
    work releases the GIL; building the table here does not, and would slow the calls down).
    Automatic cyclic GC is paused: a chunk holds one object per ranked document until it is
    stored, and full collections rescanning them took ~15% of a replay over HTTP. Cycles (a timed
    out call leaves a few) are collected after every chunk, once the chunk's objects are freed.
    """
    logged_ids = sessions.column("execution_id").to_pylist()
    query_inputs = [json.loads(q) for q in sessions.column("query_input").to_pylist()]
    parts: list[pa.Table] = []
    writes: list[Future[list[Path]]] = []
    with (
        open_retrievers(paths, list(pipeline_ids)) as retrievers,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-writer") as writer,
        _automatic_gc_paused(),
    ):
        for pipeline_id in pipeline_ids:
            retriever = retrievers[pipeline_id]
            for chunk, start in enumerate(range(0, len(query_inputs), CHUNK_SIZE)):
                executions = retriever.search_many(
                    query_inputs[start : start + CHUNK_SIZE], limit=depth
                )
                stored = executions_table(executions)
                if writes:
                    writes[-1].result()
                batch_id = f"benchmark-{benchmark_id}-{chunk:04d}"
                writes.append(writer.submit(write_executions_table, paths, stored, batch_id))
                parts.append(
                    _rows(benchmark_id, logged_ids[start : start + CHUNK_SIZE], executions, stored)
                )
                if progress:
                    done = min(start + CHUNK_SIZE, len(query_inputs))
                    failed = sum(e.status != "completed" for e in executions)
                    progress(
                        f"{pipeline_id}: replayed {done}/{len(query_inputs)} sessions ({failed} failed in this chunk)"
                    )
                del executions, stored
                gc.collect(generation=1)
        for write in writes:
            write.result()
    return pa.concat_tables(parts) if parts else REPLAYS_SCHEMA.empty_table()
