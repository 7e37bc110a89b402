"""A QueryRun's chunks fanned out over a Dask cluster, one task per (retriever, chunk).

Workers run dask_tasks.run_chunk_task: each writes its chunk's executions and rows to the data
root and sends back where they are. The driver reports each chunk as it finishes, then reads the
chunk files back in query order, so the table equals the local engine's. A chunk whose worker is
lost is run again by Dask elsewhere (the scheduler's allowed-failures); the record's engine block
says how many were. `distributed` is imported only here, and only when a Dask engine is chosen.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.config import RetrieverConfig
from eval_pipelines.core.retrieval.dask_tasks import ChunkResult, ChunkTask, run_chunk_task
from eval_pipelines.core.retrieval.engines import (
    CONNECT_TIMEOUT_S,
    DASK,
    ReplayEngine,
    check_reachable,
)
from eval_pipelines.core.retrieval.query_runner import (
    ChunkDone,
    QueryRun,
    load_chunk,
    remove_unused_chunks,
    run_chunks,
)
from eval_pipelines.core.storage import remove_tree

LOOPBACK = "127.0.0.1"
# Chunks of a run with no resume directory are still files (workers send no rows back): kept
# under the data root, where every worker writes, and removed when the run ends.
SCRATCH_DIR = "replay_scratch"


@dataclass(frozen=True)
class DaskReplay:
    """Each retriever's rows in query order, and where they ran (the record's engine block)."""

    tables: dict[str, pa.Table]
    engine: dict[str, Any]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InvalidInputError(
            "replay engine dask: the `distributed` package is not installed"
            " (pip install 'eval-pipelines[scale]')"
        ) from None
    return distributed


@contextmanager
def dask_client(engine: ReplayEngine) -> Iterator[Any]:
    """A client of the engine's scheduler, or of a loopback LocalCluster started for the block.

    Every address a started cluster listens on is 127.0.0.1 (scheduler, its HTTP routes, nannies,
    workers) and it has no dashboard: nothing is reachable from another machine.
    """
    distributed = _distributed()
    if engine.local_workers:
        with (
            distributed.LocalCluster(
                n_workers=engine.local_workers,
                processes=True,
                threads_per_worker=1,
                host=LOOPBACK,
                dashboard_address=None,
                worker_dashboard_address=None,
                # The scheduler serves its HTTP routes (health, metrics) even with no dashboard:
                # on loopback, on a free port (never 8787, which another cluster may hold).
                scheduler_kwargs={"dashboard_address": f"{LOOPBACK}:0"},
                silence_logs=logging.WARNING,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    check_reachable(engine)
    try:
        client = distributed.Client(engine.scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise InvalidInputError(
            f"scheduler_address: {engine.scheduler} did not answer as a Dask scheduler within"
            f" {CONNECT_TIMEOUT_S:g} s ({exc})"
        ) from None
    with client:
        yield client


def _suspicious(keys: Sequence[str], dask_scheduler: Any = None) -> int:
    """On the scheduler: how many of these tasks were running on a worker that died."""
    tasks = dask_scheduler.tasks
    return sum(1 for key in keys if key in tasks and tasks[key].suspicious > 0)


def _retried(client: Any, keys: list[str]) -> int | None:
    """Tasks Dask ran again after losing their worker; None when the scheduler will not say."""
    try:
        return int(client.run_on_scheduler(_suspicious, keys))
    except Exception:  # a scheduler may refuse run_on_scheduler; the count is not needed to run
        return None


def _tasks(paths: DataPaths, run: QueryRun, configs: dict[str, RetrieverConfig]) -> list[ChunkTask]:
    """One task per (retriever, chunk), retrievers in order: the run without its queries, each
    chunk with its own."""
    shipped = replace(run, query_ids=(), query_inputs=(), deadline=None)
    deadline = run.deadline
    at = None if deadline is None else time.time() + deadline.left()
    return [
        ChunkTask(
            str(paths.root),
            retriever_id,
            config.pipeline_hash,
            shipped,
            chunk,
            at,
            deadline.seconds if deadline else 0.0,
            deadline.what if deadline else "replay",
        )
        for retriever_id, config in configs.items()
        for chunk in run_chunks(run)
    ]


def _gather(
    client: Any,
    tasks: list[ChunkTask],
    total: int,
    on_chunk: Callable[[ChunkDone], None] | None,
) -> tuple[list[ChunkResult], int | None]:
    """Every task's result in task order, each reported as it finishes; the rest cancelled on
    the first failure."""
    distributed = _distributed()
    token = uuid.uuid4().hex[:12]
    keys = [
        f"replay-chunk-{t.run.owner_id}-{t.retriever_id}-{t.chunk.index:05d}-{token}" for t in tasks
    ]
    futures = [
        client.submit(run_chunk_task, task, key=key, pure=False)
        for task, key in zip(tasks, keys, strict=True)
    ]
    index = {future.key: position for position, future in enumerate(futures)}
    results: list[ChunkResult | None] = [None] * len(tasks)
    done: dict[str, int] = {}
    try:
        for future in distributed.as_completed(futures):
            result: ChunkResult = future.result()
            results[index[future.key]] = result
            done[result.retriever_id] = done.get(result.retriever_id, 0) + result.count
            if on_chunk:
                on_chunk(
                    ChunkDone(
                        result.retriever_id,
                        done[result.retriever_id],
                        total,
                        result.failed,
                        result.late,
                        result.resumed,
                        result.count,
                    )
                )
        retried = _retried(client, keys)
    except BaseException:
        client.cancel(futures)
        raise
    return [r for r in results if r is not None], retried


def _read_back(
    run: QueryRun, configs: dict[str, RetrieverConfig], results: list[ChunkResult]
) -> dict[str, pa.Table]:
    """Each retriever's chunks read back in chunk order; chunk files no task named are removed."""
    tables: dict[str, pa.Table] = {}
    for retriever_id in configs:
        mine = sorted((r for r in results if r.retriever_id == retriever_id), key=lambda r: r.chunk)
        parts = [
            r.rows if r.rows is not None else load_chunk(str(r.path), run.schema) for r in mine
        ]
        tables[retriever_id] = pa.concat_tables(parts) if parts else run.schema.empty_table()
        if run.resume_dir is not None:
            remove_unused_chunks(
                run.resume_dir / retriever_id, {r.path.rsplit("/", 1)[-1] for r in mine if r.path}
            )
    return tables


def run_on_dask(
    paths: DataPaths,
    run: QueryRun,
    configs: dict[str, RetrieverConfig],
    engine: ReplayEngine,
    on_chunk: Callable[[ChunkDone], None] | None = None,
) -> DaskReplay:
    """Every retriever's queries of run on the engine's cluster, as the local engine returns them."""
    scratch = None
    if run.resume_dir is None:
        scratch = paths.root / SCRATCH_DIR / f"{run.owner_id}-{uuid.uuid4().hex[:12]}"
        run = replace(run, resume_dir=scratch)
    try:
        tasks = _tasks(paths, run, configs)
        with dask_client(engine) as client:
            results, retried = _gather(client, tasks, len(run.query_ids), on_chunk)
            scheduler = str(client.scheduler.address)
        tables = _read_back(run, configs, results)
    finally:
        if scratch is not None:
            remove_tree(scratch)
    block = {
        **engine.describe(),
        "engine": DASK,
        "scheduler": scheduler,
        "workers": sorted({r.worker for r in results}),
        "tasks": len(tasks),
        "retried": retried,
        "retrievers_opened": sum(r.opened for r in results),
    }
    return DaskReplay(tables, block)
