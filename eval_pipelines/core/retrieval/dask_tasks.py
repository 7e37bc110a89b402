"""What a Dask worker runs: one (retriever, chunk) of a QueryRun, written to the data root by the
worker itself, with only small metadata sent back.

Retrievers are opened once per worker process and kept (a BM25 index or an HTTP pool serves every
chunk after the first), keyed by data root, retriever id and pipeline hash, and reopened when the
retriever's file or its collection changes. The chunk's executions batch and chunk file are named
by the chunk alone, so a chunk run again after its worker was lost replaces them: it is stored and
counted once.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial

import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths, data_root
from eval_pipelines.core.retrieval.collections import load_collection
from eval_pipelines.core.retrieval.config import RetrieverConfig
from eval_pipelines.core.retrieval.execution import Retriever
from eval_pipelines.core.retrieval.pipeline import PipelineRetriever
from eval_pipelines.core.retrieval.query_runner import (
    Chunk,
    Deadline,
    QueryRun,
    chunk_path,
    run_chunk,
    store_chunk,
)
from eval_pipelines.core.retrieval.registry import load_retriever_registry, open_retrievers


@dataclass(frozen=True)
class ChunkTask:
    """One task: the run's settings without its queries, the chunk's queries, and the deadline as
    a wall-clock moment (a monotonic one means nothing on another machine)."""

    data_root: str
    retriever_id: str
    pipeline_hash: str
    run: QueryRun
    chunk: Chunk
    deadline_at: float | None = None
    deadline_s: float = 0.0
    deadline_what: str = "replay"


@dataclass(frozen=True)
class ChunkResult:
    """What a task sends back: where its rows are, its counts, and where it ran.

    rows is set only for a chunk the deadline cut short, which is never kept on disk (a re-run
    must call those queries again) and so cannot be read back from a file.
    """

    retriever_id: str
    chunk: int
    path: str | None
    rows: pa.Table | None
    count: int
    failed: int
    late: int
    resumed: bool
    worker: str
    pid: int
    opened: bool


@dataclass
class _Opened:
    config: RetrieverConfig
    retriever: Retriever
    stack: ExitStack


_opened: dict[tuple[str, str, str], _Opened] = {}
_lock = threading.Lock()


def close_worker_retrievers() -> None:
    """Close every retriever this process keeps (local servers, HTTP pools)."""
    with _lock:
        entries = list(_opened.values())
        _opened.clear()
    for entry in entries:
        entry.stack.close()


atexit.register(close_worker_retrievers)


def _current(paths: DataPaths, entry: _Opened, config: RetrieverConfig) -> bool:
    """Still the retriever the files describe: same definition and, for a pipeline, the same
    collection (load_collection hands back its cached object while the file is unchanged)."""
    if entry.config != config:
        return False
    retriever = entry.retriever
    if isinstance(retriever, PipelineRetriever):
        return load_collection(paths, retriever.collection.name) is retriever.collection
    return True


def worker_retriever(
    paths: DataPaths, retriever_id: str, pipeline_hash: str
) -> tuple[Retriever, bool]:
    """The retriever this process keeps for (data root, id, hash), and whether it was opened now."""
    config = load_retriever_registry(paths).require([retriever_id])[retriever_id]
    if config.pipeline_hash != pipeline_hash:
        raise InvalidInputError(
            f"retriever_id: {retriever_id} changed during the replay (its pipeline_hash is now"
            f" {config.pipeline_hash}, the replay started with {pipeline_hash})"
        )
    key = (str(paths.root), retriever_id, pipeline_hash)
    with _lock:
        entry = _opened.get(key)
        if entry is not None and _current(paths, entry, config):
            return entry.retriever, False
        if entry is not None:
            entry.stack.close()
            del _opened[key]
        stack = ExitStack()
        try:
            retriever = stack.enter_context(open_retrievers(paths, [retriever_id]))[retriever_id]
        except BaseException:
            stack.close()
            raise
        _opened[key] = _Opened(config, retriever, stack)
        return retriever, True


def _where() -> str:
    """This worker's address, or the process when run outside a Dask worker."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"pid:{os.getpid()}"


def _deadline(task: ChunkTask) -> Deadline | None:
    if task.deadline_at is None:
        return None
    left = task.deadline_at - time.time()
    return Deadline(task.deadline_s, time.monotonic() + left, task.deadline_what)


def run_chunk_task(task: ChunkTask) -> ChunkResult:
    """Run one chunk here (or load it when an earlier attempt finished it) and store it."""
    paths = DataPaths(data_root(task.data_root, "data_root of the replay task"))
    retriever, opened = worker_retriever(paths, task.retriever_id, task.pipeline_hash)
    run = replace(task.run, deadline=_deadline(task))
    finished = chunk_path(run, retriever, task.chunk)
    result = partial(
        ChunkResult,
        task.retriever_id,
        task.chunk.index,
        count=len(task.chunk.query_ids),
        worker=_where(),
        pid=os.getpid(),
        opened=opened,
    )
    if finished is not None and finished.is_file():
        return result(str(finished), None, failed=0, late=0, resumed=True)
    ran = run_chunk(retriever, run, task.chunk, partial(store_chunk, paths), finished)
    if ran.late or finished is None:
        return result(None, ran.rows, failed=ran.failed, late=ran.late, resumed=False)
    return result(str(finished), None, failed=ran.failed, late=0, resumed=False)
