"""Replay sampled sessions' queries through the baseline and every candidate.

One failing call fails that session for that pipeline only (its status and error type are kept);
every call is stored as an execution, so any replayed ranking can be inspected later.

Work is done in chunks of sessions per pipeline. Given a resume directory, each finished chunk's
rows are kept there (atomically, after its executions), so a run killed halfway and launched again
loads them instead of calling the retriever again. A chunk file's name holds a digest of everything
its rows depend on (the sample, the depth, the retriever's definition and, for a pipeline retriever,
the content of the collection it searches), so nothing else ever reuses it.

A replay has a deadline: past it no call starts, and the calls left fail with error_type "deadline".
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.gc_pause import gc_paused
from eval_pipelines.core.paths import DataPaths, validate_id
from eval_pipelines.core.retrieval.config import RetrieverConfig
from eval_pipelines.core.retrieval.execution import CallRecorder, Execution, Retriever
from eval_pipelines.core.retrieval.execution_store import executions_table, write_executions_table
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.retrieval.registry import open_retrievers
from eval_pipelines.core.storage import parquet_files, write_parquet_atomic

CHUNK_SIZE = 1000
CHUNK_SIZE_ENV = "EVAL_PIPELINES_REPLAY_CHUNK_SIZE"
ERROR_DEADLINE = "deadline"
# The default deadline lets every remote call time out twice (calls spread over its concurrency),
# gives a local pipeline LOCAL_QUERY_BUDGET_S per query, and is never under MIN_DEADLINE_S.
TIMEOUTS_PER_CALL = 2
LOCAL_QUERY_BUDGET_S = 0.1
MIN_DEADLINE_S = 60.0

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


def chunk_size() -> int:
    """CHUNK_SIZE, or EVAL_PIPELINES_REPLAY_CHUNK_SIZE: smaller chunks lose less to a crash."""
    configured = os.environ.get(CHUNK_SIZE_ENV)
    if not configured:
        return CHUNK_SIZE
    if not configured.isdigit() or int(configured) < 1:
        raise InvalidInputError(
            f"{CHUNK_SIZE_ENV}: expected a positive integer, got {configured!r}"
        )
    return int(configured)


def worst_call_s(config: RetrieverConfig) -> float | None:
    """The longest one remote call can take (every attempt timing out, every wait before a retry
    at backoff_max_s, which also caps a Retry-After); None for a local pipeline, which waits on
    nothing."""
    if config.http is None:
        return None
    http = config.http
    return (http.max_retries + 1) * http.timeout_s + http.max_retries * http.backoff_max_s


def default_replay_deadline_s(session_count: int, configs: Sequence[RetrieverConfig]) -> float:
    """A deadline a healthy replay never meets, derived from sessions x pipelines x timeout / concurrency."""
    budget = 0.0
    for config in configs:
        if config.http is None:
            budget += session_count * LOCAL_QUERY_BUDGET_S
        else:
            rounds = math.ceil(session_count / config.http.concurrency)
            budget += TIMEOUTS_PER_CALL * rounds * config.http.timeout_s
    return max(MIN_DEADLINE_S, budget)


def replay_rows(
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


def ranking_inputs(retriever: Retriever) -> list[str]:
    """What a retriever's rankings depend on: its definition and, for a pipeline, its collection's
    content (a collection re-ingested under the same name must not be served from old chunks)."""
    if isinstance(retriever, PipelineRetriever):
        return [retriever.config.pipeline_hash, retriever.collection.content_digest]
    return [retriever.config.pipeline_hash]


def chunk_file(
    resume_dir: Path,
    benchmark_id: str,
    retriever: Retriever,
    depth: int,
    chunk: int,
    logged_ids: Sequence[str],
) -> Path:
    """Where a finished chunk's rows are kept, named by a digest of what they depend on."""
    key = json.dumps(
        [str(REPLAYS_SCHEMA), benchmark_id, ranking_inputs(retriever), depth, list(logged_ids)],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    config = retriever.config
    return resume_dir / validate_id(config.id, "retriever_id") / f"{chunk:04d}-{digest}.parquet"


def _discard_stale_chunks(directory: Path, wanted: set[Path]) -> None:
    """Chunk files no chunk of this replay can use (another sample, depth or retriever definition)."""
    for file in parquet_files(directory):
        if file not in wanted:
            file.unlink(missing_ok=True)


def discard_replay_chunks(resume_dir: Path) -> None:
    """Once a replay's rows are stored whole, its chunks would only serve a later run stale rows."""
    shutil.rmtree(resume_dir, ignore_errors=True)


def _deadline_failure(config: RetrieverConfig, query_input: Any, deadline_s: float) -> Execution:
    call = CallRecorder(config.id, config.pipeline_hash, query_input)
    message = f"{config.id}: not called, the replay deadline of {deadline_s:g} s had passed"
    return call.failed(ERROR_DEADLINE, message, attempts=0)


def _search_before(
    retriever: Retriever,
    query_inputs: Sequence[Any],
    depth: int,
    deadline: float,
    deadline_s: float,
) -> list[Execution]:
    """search_many, in rounds that surely end by the deadline; calls left when it passes fail.

    A round holds as many calls as the time left allows at one worst-case call per concurrency
    slot, and at least one call per slot, so a replay ends at most one worst-case call late.
    """
    config = retriever.config
    worst = worst_call_s(config)
    executions: list[Execution] = []
    start = 0
    while start < len(query_inputs):
        left = deadline - time.monotonic()
        if left <= 0:
            executions += [_deadline_failure(config, q, deadline_s) for q in query_inputs[start:]]
            break
        size = len(query_inputs) - start
        if worst is not None and config.http is not None:
            size = min(size, max(1, int(left // worst)) * config.http.concurrency)
        executions += retriever.search_many(query_inputs[start : start + size], limit=depth)
        start += size
    return executions


def _store_chunk(
    paths: DataPaths, stored: pa.Table, batch_id: str, rows: pa.Table, finished: Path | None
) -> None:
    """The executions first, so a kept chunk never names an execution that was not stored."""
    write_executions_table(paths, stored, batch_id)
    if finished is not None:
        write_parquet_atomic(rows, finished)


def replay_sessions(
    paths: DataPaths,
    benchmark_id: str,
    sessions: pa.Table,
    pipeline_ids: Sequence[str],
    depth: int,
    progress: Callable[[str], None] | None = None,
    *,
    resume_dir: Path | None = None,
    deadline_s: float | None = None,
) -> pa.Table:
    """Every (session, pipeline) replay as one row of REPLAYS_SCHEMA, sessions in sample order.

    resume_dir: where finished chunks are kept and, on a re-run, loaded (None keeps none).
    deadline_s: the whole replay's deadline (default: default_replay_deadline_s). A chunk with
    deadline failures is not kept, so a re-run calls those sessions again.

    A chunk's Parquet file is encoded on a writer thread while the next chunk is searched (that
    work releases the GIL; building the table here does not, and would slow the calls down).
    Automatic cyclic GC is paused: a chunk holds one object per ranked document until it is
    stored, and full collections rescanning them took ~15% of a replay over HTTP. Cycles (a timed
    out call leaves a few) are collected after every chunk, once the chunk's objects are freed.
    """
    logged_ids = sessions.column("execution_id").to_pylist()
    query_inputs = [json.loads(q) for q in sessions.column("query_input").to_pylist()]
    size = chunk_size()
    starts = range(0, len(query_inputs), size)
    parts: list[pa.Table] = []
    writes: list[Future[None]] = []
    with (
        open_retrievers(paths, list(pipeline_ids)) as retrievers,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-writer") as writer,
        gc_paused(),
    ):
        if deadline_s is None:
            configs = [retrievers[p].config for p in pipeline_ids]
            deadline_s = default_replay_deadline_s(len(query_inputs), configs)
        deadline = time.monotonic() + deadline_s
        for pipeline_id in pipeline_ids:
            retriever = retrievers[pipeline_id]
            finished_files = [
                None
                if resume_dir is None
                else chunk_file(
                    resume_dir,
                    benchmark_id,
                    retriever,
                    depth,
                    chunk,
                    logged_ids[start : start + size],
                )
                for chunk, start in enumerate(starts)
            ]
            if resume_dir is not None:
                _discard_stale_chunks(
                    resume_dir / pipeline_id, {f for f in finished_files if f is not None}
                )
            for chunk, start in enumerate(starts):
                done = min(start + size, len(query_inputs))
                finished = finished_files[chunk]
                if finished is not None and finished.is_file():
                    parts.append(pq.read_table(finished, schema=REPLAYS_SCHEMA))
                    if progress:
                        progress(
                            f"{pipeline_id}: resumed {done}/{len(query_inputs)} sessions"
                            " (this chunk was finished by an earlier run)"
                        )
                    continue
                executions = _search_before(
                    retriever, query_inputs[start : start + size], depth, deadline, deadline_s
                )
                stored = executions_table(executions)
                rows = replay_rows(
                    benchmark_id, logged_ids[start : start + size], executions, stored
                )
                late = sum(e.error_type == ERROR_DEADLINE for e in executions)
                if writes:
                    writes[-1].result()
                batch_id = f"benchmark-{benchmark_id}-{chunk:04d}"
                writes.append(
                    writer.submit(
                        _store_chunk, paths, stored, batch_id, rows, None if late else finished
                    )
                )
                parts.append(rows)
                if progress:
                    failed = sum(e.status != "completed" for e in executions)
                    progress(
                        f"{pipeline_id}: replayed {done}/{len(query_inputs)} sessions ({failed} failed in this chunk"
                        + (f", {late} past the {deadline_s:g} s deadline)" if late else ")")
                    )
                del executions, stored
                gc.collect(generation=1)
        for write in writes:
            write.result()
    return pa.concat_tables(parts) if parts else REPLAYS_SCHEMA.empty_table()
