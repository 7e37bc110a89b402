"""Run queries through a retriever in chunks, before a deadline, resuming from finished chunks.

The one way replay and evaluation run queries. Each chunk's calls are stored as executions (a
batch `<batch_prefix>-<chunk>`) and described by rows of QUERY_ROWS_SCHEMA, which the run projects
onto its caller's table (replays, evaluation runs) before keeping and returning them.

Given a resume directory, each finished chunk's rows are kept there (atomically, after its
executions), so a run killed halfway and launched again loads them instead of calling the retriever
again. A chunk file's name holds a digest of everything its rows depend on (the run's owner, the
query ids, the depth, the retriever's definition and, for a pipeline retriever, the content of the
collection it searches), so nothing else ever reuses it.

Past the deadline no call starts: the calls left fail with error_type "deadline", and their chunk
is not kept, so a re-run calls them again.
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from eval_pipelines.core.gc_pause import gc_paused
from eval_pipelines.core.paths import DataPath, DataPaths, validate_id
from eval_pipelines.core.retrieval.config import RetrieverConfig
from eval_pipelines.core.retrieval.execution import COMPLETED, CallRecorder, Execution, Retriever
from eval_pipelines.core.retrieval.execution_store import executions_table, write_executions_table
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.storage import parquet_files, write_parquet_atomic

ERROR_DEADLINE = "deadline"
LATENCIES_TYPE = pa.map_(pa.string(), pa.float64())
QUERY_ROWS_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("retriever_id", pa.string()),
        ("execution_id", pa.string()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error", pa.string()),
        ("ranking", pa.list_(pa.string())),
        ("scores", pa.list_(pa.float64())),
        ("latency_ms", pa.float64()),
        ("stage_latencies", LATENCIES_TYPE),
    ]
)


@dataclass(frozen=True)
class Deadline:
    """A monotonic moment past which no call starts; `what` names it in the failures it causes."""

    seconds: float
    at: float
    what: str = "replay"

    @classmethod
    def after(cls, seconds: float, what: str = "replay") -> Deadline:
        return cls(seconds, time.monotonic() + seconds, what)

    def left(self) -> float:
        return self.at - time.monotonic()


def _same_rows(rows: pa.Table) -> pa.Table:
    return rows


@dataclass(frozen=True)
class QueryRun:
    """What to run: the queries (ids and inputs) and how (depth, chunks, deadline, resume), and
    the caller's table (project turns QUERY_ROWS_SCHEMA rows into rows of schema)."""

    owner_id: str
    batch_prefix: str
    query_ids: Sequence[str]
    query_inputs: Sequence[Any]
    chunk_size: int
    depth: int | None = None
    deadline: Deadline | None = None
    resume_dir: DataPath | None = None
    schema: pa.Schema = QUERY_ROWS_SCHEMA
    project: Callable[[pa.Table], pa.Table] = _same_rows


@dataclass(frozen=True)
class ChunkDone:
    """One chunk's outcome, for progress: done and total count the retriever's queries so far,
    count this chunk's."""

    retriever_id: str
    done: int
    total: int
    failed: int
    late: int
    resumed: bool
    count: int = 0


def query_rows(query_ids: Sequence[str], stored: pa.Table) -> pa.Table:
    """QUERY_ROWS_SCHEMA rows from the chunk's stored executions (column to column, no Python rows)."""
    documents = stored.column("documents").combine_chunks()
    stages = stored.column("stage_statistics").combine_chunks()
    return pa.table(
        {
            "query_id": pa.array(query_ids, pa.string()),
            "retriever_id": stored.column("retriever_id"),
            "execution_id": stored.column("execution_id"),
            "status": stored.column("status"),
            "error_type": stored.column("error_type"),
            "error": stored.column("error"),
            "ranking": pa.ListArray.from_arrays(
                documents.offsets, documents.values.field("document_id")
            ),
            "scores": pa.ListArray.from_arrays(documents.offsets, documents.values.field("score")),
            "latency_ms": stored.column("total_time_ms"),
            "stage_latencies": pa.MapArray.from_arrays(
                stages.offsets, stages.keys, stages.items.field("duration_ms")
            ),
        },
        schema=QUERY_ROWS_SCHEMA,
    )


def ranking_inputs(retriever: Retriever) -> list[str]:
    """What a retriever's rankings depend on: its definition and, for a pipeline, its collection's
    content (a collection re-ingested under the same name must not be served from old chunks)."""
    if isinstance(retriever, PipelineRetriever):
        return [retriever.config.pipeline_hash, retriever.collection.content_digest]
    return [retriever.config.pipeline_hash]


def chunk_file(
    resume_dir: DataPath,
    owner_id: str,
    retriever: Retriever,
    depth: int | None,
    chunk: int,
    query_ids: Sequence[str],
    schema: pa.Schema = QUERY_ROWS_SCHEMA,
) -> DataPath:
    """Where a finished chunk's rows (of schema) are kept, named by a digest of what they depend on."""
    key = json.dumps(
        [str(schema), owner_id, ranking_inputs(retriever), depth, list(query_ids)],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    retriever_id = validate_id(retriever.config.id, "retriever_id")
    return resume_dir / retriever_id / f"{chunk:04d}-{digest}.parquet"


def worst_call_s(config: RetrieverConfig) -> float | None:
    """The longest one remote call can take (every attempt timing out, every wait before a retry
    at backoff_max_s, which also caps a Retry-After); None for a local pipeline, which waits on
    nothing."""
    if config.http is None:
        return None
    http = config.http
    return (http.max_retries + 1) * http.timeout_s + http.max_retries * http.backoff_max_s


def _deadline_failure(config: RetrieverConfig, query_input: Any, deadline: Deadline) -> Execution:
    call = CallRecorder(config.id, config.pipeline_hash, query_input)
    message = f"{config.id}: not called, the {deadline.what} deadline of {deadline.seconds:g} s had passed"
    return call.failed(ERROR_DEADLINE, message, attempts=0)


def search_before(
    retriever: Retriever,
    query_inputs: Sequence[Any],
    depth: int | None,
    deadline: Deadline | None,
) -> list[Execution]:
    """search_many, in rounds that surely end by the deadline; calls left when it passes fail.

    A round holds as many calls as the time left allows at one worst-case call per concurrency
    slot, and at least one call per slot, so a run ends at most one worst-case call late.
    """
    if deadline is None:
        return retriever.search_many(query_inputs, limit=depth)
    config = retriever.config
    worst = worst_call_s(config)
    executions: list[Execution] = []
    start = 0
    while start < len(query_inputs):
        left = deadline.left()
        if left <= 0:
            executions += [_deadline_failure(config, q, deadline) for q in query_inputs[start:]]
            break
        size = len(query_inputs) - start
        if worst is not None and config.http is not None:
            size = min(size, max(1, int(left // worst)) * config.http.concurrency)
        executions += retriever.search_many(query_inputs[start : start + size], limit=depth)
        start += size
    return executions


def store_chunk(
    paths: DataPaths, stored: pa.Table, batch_id: str, rows: pa.Table, finished: DataPath | None
) -> None:
    """The one way a chunk is written to the data root (read back by load_chunk), each file whole
    (renamed into place, or one object PUT).

    The executions first, so a kept chunk never names an execution that was not stored. Both names
    depend only on the chunk, and each write replaces its file whole, so a chunk run twice (a
    worker lost after writing) leaves one batch and one chunk file, never two.
    """
    write_executions_table(paths, stored, batch_id)
    if finished is not None:
        write_parquet_atomic(rows, finished)


def load_chunk(finished: DataPath | str, schema: pa.Schema) -> pa.Table:
    """A finished chunk's rows, as store_chunk kept them."""
    return pq.read_table(str(finished), schema=schema)


class ChunkWriter:
    """Stores chunks on one writer thread, one at a time, while the next chunk is searched.

    Encoding Parquet releases the GIL; building the table on the caller's thread does not, and
    would slow the calls down. Cyclic GC is paused while it is open: a chunk holds one object per
    ranked document until it is stored, and full collections rescanning them took ~15% of a replay
    over HTTP. Cycles (a timed out call leaves a few) are collected after every chunk.
    """

    def __init__(self, paths: DataPaths) -> None:
        self.paths = paths
        self._stack = ExitStack()
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None

    def __enter__(self) -> ChunkWriter:
        self._pool = self._stack.enter_context(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-writer")
        )
        self._stack.enter_context(gc_paused())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self.wait()
        finally:
            self._stack.__exit__(kind, error, trace)

    def submit(
        self, stored: pa.Table, batch_id: str, rows: pa.Table, finished: DataPath | None
    ) -> None:
        """Store a chunk once the previous one is stored (its failure is raised here)."""
        if self._pool is None:
            raise RuntimeError("ChunkWriter used outside its with block")
        self.wait()
        self._last = self._pool.submit(store_chunk, self.paths, stored, batch_id, rows, finished)

    def wait(self) -> None:
        if self._last is not None:
            self._last.result()


@dataclass(frozen=True)
class Chunk:
    """One resume unit of a run: its index and its slice of the queries."""

    index: int
    query_ids: Sequence[str]
    query_inputs: Sequence[Any]

    @property
    def batch_suffix(self) -> str:
        return f"{self.index:04d}"


def run_chunks(run: QueryRun) -> list[Chunk]:
    """The run's queries cut into chunks of run.chunk_size, in query order."""
    return [
        Chunk(
            index,
            run.query_ids[start : start + run.chunk_size],
            run.query_inputs[start : start + run.chunk_size],
        )
        for index, start in enumerate(range(0, len(run.query_ids), run.chunk_size))
    ]


def chunk_path(run: QueryRun, retriever: Retriever, chunk: Chunk) -> DataPath | None:
    """Where the chunk's rows are kept (None without a resume directory)."""
    if run.resume_dir is None:
        return None
    return chunk_file(
        run.resume_dir,
        run.owner_id,
        retriever,
        run.depth,
        chunk.index,
        chunk.query_ids,
        run.schema,
    )


def remove_unused_chunks(directory: DataPath, wanted: set[str]) -> None:
    """Chunk files of another run's queries or retriever definition would never be read again.
    wanted holds the kept files' names (a worker may spell the directory differently)."""
    for file in parquet_files(directory):
        if file.name not in wanted:
            file.unlink(missing_ok=True)


def _chunk_files(run: QueryRun, retriever: Retriever, chunks: list[Chunk]) -> list[DataPath | None]:
    """Each chunk's resume file (None without a resume directory); files no chunk uses are removed."""
    files = [chunk_path(run, retriever, chunk) for chunk in chunks]
    if run.resume_dir is not None:
        remove_unused_chunks(
            run.resume_dir / retriever.config.id, {f.name for f in files if f is not None}
        )
    return files


StoreChunk = Callable[[pa.Table, str, pa.Table, DataPath | None], None]


@dataclass(frozen=True)
class ChunkRun:
    """A chunk just run: its rows, its failures, and the calls the deadline stopped."""

    rows: pa.Table
    failed: int
    late: int


def run_chunk(
    retriever: Retriever,
    run: QueryRun,
    chunk: Chunk,
    store: StoreChunk,
    finished: DataPath | None,
) -> ChunkRun:
    """The chunk's queries through the retriever, handed to store (kept at finished unless late)."""
    executions = search_before(retriever, chunk.query_inputs, run.depth, run.deadline)
    stored = executions_table(executions)
    rows = run.project(query_rows(chunk.query_ids, stored))
    late = sum(e.error_type == ERROR_DEADLINE for e in executions)
    failed = sum(e.status != COMPLETED for e in executions)
    store(stored, f"{run.batch_prefix}-{chunk.batch_suffix}", rows, None if late else finished)
    del executions, stored
    gc.collect(generation=1)
    return ChunkRun(rows, failed, late)


def execute_queries(
    retriever: Retriever,
    run: QueryRun,
    writer: ChunkWriter,
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> pa.Table:
    """Every query through the retriever, as rows of run.schema in query order."""
    total = len(run.query_ids)
    parts: list[pa.Table] = []
    chunks = run_chunks(run)
    for chunk, finished in zip(chunks, _chunk_files(run, retriever, chunks), strict=True):
        done = min((chunk.index + 1) * run.chunk_size, total)
        count = len(chunk.query_ids)
        if finished is not None and finished.is_file():
            parts.append(load_chunk(finished, run.schema))
            if on_chunk:
                on_chunk(ChunkDone(retriever.config.id, done, total, 0, 0, True, count))
            continue
        ran = run_chunk(retriever, run, chunk, writer.submit, finished)
        parts.append(ran.rows)
        if on_chunk:
            on_chunk(
                ChunkDone(retriever.config.id, done, total, ran.failed, ran.late, False, count)
            )
    return pa.concat_tables(parts) if parts else run.schema.empty_table()
