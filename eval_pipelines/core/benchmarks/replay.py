"""Replay sampled sessions' queries through the baseline and every candidate.

One failing call fails that session for that retriever only (its status and error type are kept);
every call is stored as an execution, so any replayed ranking can be inspected later. The queries
run through core/retrieval/query_runner.py (chunks, deadline, resume); this module sizes the
deadline and turns the runner's rows into the replay table.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pyarrow as pa

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPath, DataPaths
from eval_pipelines.core.progress import Progress, ProgressOutput
from eval_pipelines.core.retrieval.config import RetrieverConfig
from eval_pipelines.core.retrieval.dask_engine import run_on_dask
from eval_pipelines.core.retrieval.engines import LOCAL_ENGINE, ReplayEngine
from eval_pipelines.core.retrieval.execution import Execution, Retriever
from eval_pipelines.core.retrieval.execution_store import executions_table
from eval_pipelines.core.retrieval.query_runner import (
    ERROR_DEADLINE,
    LATENCIES_TYPE,
    ChunkDone,
    ChunkWriter,
    Deadline,
    QueryRun,
    execute_queries,
    query_rows,
    ranking_inputs,
    worst_call_s,
)
from eval_pipelines.core.retrieval.query_runner import chunk_file as _chunk_file
from eval_pipelines.core.retrieval.registry import load_retriever_registry, open_retrievers
from eval_pipelines.core.storage import remove_tree

__all__ = [
    "CHUNK_SIZE",
    "CHUNK_SIZE_ENV",
    "ERROR_DEADLINE",
    "REPLAYS_SCHEMA",
    "Replayed",
    "chunk_file",
    "chunk_size",
    "default_replay_deadline_s",
    "discard_replay_chunks",
    "ranking_inputs",
    "replay",
    "replay_rows",
    "replay_sessions",
    "worst_call_s",
]

CHUNK_SIZE = 1000
CHUNK_SIZE_ENV = "EVAL_PIPELINES_REPLAY_CHUNK_SIZE"
# The default deadline lets every remote call time out twice (calls spread over its concurrency),
# gives a local pipeline LOCAL_QUERY_BUDGET_S per query, and is never under MIN_DEADLINE_S.
TIMEOUTS_PER_CALL = 2
LOCAL_QUERY_BUDGET_S = 0.1
MIN_DEADLINE_S = 60.0

REPLAYS_SCHEMA = pa.schema(
    [
        ("benchmark_id", pa.string()),
        ("execution_id", pa.string()),
        ("retriever_id", pa.string()),
        ("replay_execution_id", pa.string()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error", pa.string()),
        ("ranking", pa.list_(pa.string())),
        ("latency_ms", pa.float64()),
        # A typed map<stage, ms> (LATENCIES_TYPE); the name is kept from when it was JSON text.
        ("stage_latencies", LATENCIES_TYPE),
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


def default_replay_deadline_s(session_count: int, configs: Sequence[RetrieverConfig]) -> float:
    """A deadline a healthy replay never meets, derived from sessions x retrievers x timeout / concurrency."""
    budget = 0.0
    for config in configs:
        if config.http is None:
            budget += session_count * LOCAL_QUERY_BUDGET_S
        else:
            rounds = math.ceil(session_count / config.http.concurrency)
            budget += TIMEOUTS_PER_CALL * rounds * config.http.timeout_s
    return max(MIN_DEADLINE_S, budget)


def chunk_file(
    resume_dir: DataPath,
    benchmark_id: str,
    retriever: Retriever,
    depth: int,
    chunk: int,
    session_execution_ids: Sequence[str],
) -> DataPath:
    """Where a finished chunk of replay rows is kept (the query runner's file for REPLAYS_SCHEMA)."""
    return _chunk_file(
        resume_dir, benchmark_id, retriever, depth, chunk, session_execution_ids, REPLAYS_SCHEMA
    )


def replay_table(benchmark_id: str, rows: pa.Table) -> pa.Table:
    """The query runner's rows as REPLAYS_SCHEMA: a query is a logged session."""
    return pa.table(
        {
            "benchmark_id": pa.repeat(benchmark_id, rows.num_rows),
            "execution_id": rows.column("query_id"),
            "retriever_id": rows.column("retriever_id"),
            "replay_execution_id": rows.column("execution_id"),
            "status": rows.column("status"),
            "error_type": rows.column("error_type"),
            "error": rows.column("error"),
            "ranking": rows.column("ranking"),
            "latency_ms": rows.column("latency_ms"),
            "stage_latencies": rows.column("stage_latencies"),
        },
        schema=REPLAYS_SCHEMA,
    )


def replay_rows(
    benchmark_id: str,
    session_execution_ids: Sequence[str],
    executions: Sequence[Execution],
    stored: pa.Table | None = None,
) -> pa.Table:
    """Replay rows of executions, from their stored table when the caller has it already."""
    if stored is None:
        stored = executions_table(executions)
    return replay_table(benchmark_id, query_rows(session_execution_ids, stored))


def discard_replay_chunks(resume_dir: DataPath) -> None:
    """Once a replay's rows are stored whole, its chunks would only serve a later run stale rows."""
    remove_tree(resume_dir)


def _chunk_reporter(
    tracker: Progress, deadline_s: float, retriever_ids: list[str]
) -> Callable[[ChunkDone], None]:
    """Each chunk into the step's one tracker, naming the retriever at work and the calls the
    deadline stopped so far."""
    late = 0

    def report(chunk: ChunkDone) -> None:
        nonlocal late
        late += chunk.late
        position = f"{retriever_ids.index(chunk.retriever_id) + 1}/{len(retriever_ids)}"
        detail = f"now {chunk.retriever_id} ({position})"
        if late:
            detail += f", {late:,} past the {deadline_s:g} s deadline"
        tracker.advance(chunk.count, failed=chunk.failed, resumed=chunk.resumed, detail=detail)

    return report


@dataclass(frozen=True)
class Replayed:
    """A replay's rows, and where it ran (the record's settings.replay_engine)."""

    table: pa.Table
    engine: dict[str, Any]


def replay(
    paths: DataPaths,
    benchmark_id: str,
    sessions: pa.Table,
    retriever_ids: Sequence[str],
    depth: int,
    progress: ProgressOutput | Callable[[str], None] | None = None,
    *,
    resume_dir: DataPath | None = None,
    deadline_s: float | None = None,
    engine: ReplayEngine = LOCAL_ENGINE,
) -> Replayed:
    """Every (session, retriever) replay as one row of REPLAYS_SCHEMA, sessions in sample order.

    progress: one progress line for the whole step (every retriever's replays, the current one
    named); chunks resumed from an earlier run count as done at once and are said as resumed.
    resume_dir: where finished chunks are kept and, on a re-run, loaded (None keeps none).
    deadline_s: the whole replay's deadline (default: default_replay_deadline_s). A chunk with
    deadline failures is not kept, so a re-run calls those sessions again.
    engine: where the chunks run; a Dask engine's rows equal the local engine's.
    """
    session_execution_ids = sessions.column("execution_id").to_pylist()
    query_inputs = [json.loads(q) for q in sessions.column("query_input").to_pylist()]
    configs = load_retriever_registry(paths).require(list(retriever_ids))
    if deadline_s is None:
        deadline_s = default_replay_deadline_s(
            len(query_inputs), [configs[r] for r in retriever_ids]
        )
    run = QueryRun(
        owner_id=benchmark_id,
        batch_prefix=f"benchmark-{benchmark_id}",
        query_ids=session_execution_ids,
        query_inputs=query_inputs,
        chunk_size=chunk_size(),
        depth=depth,
        resume_dir=resume_dir,
        schema=REPLAYS_SCHEMA,
        project=partial(replay_table, benchmark_id),
    )
    output = ProgressOutput.of(progress)
    if engine.is_local:
        table = _replay_here(paths, run, retriever_ids, deadline_s, output)
        return Replayed(table, engine.describe())
    total = len(query_inputs) * len(retriever_ids)
    with output.track(f"replay {benchmark_id}", "replays", total) as tracker:
        report = _chunk_reporter(tracker, deadline_s, list(retriever_ids))
        run = replace(run, deadline=Deadline.after(deadline_s))
        fanned = run_on_dask(paths, run, {r: configs[r] for r in retriever_ids}, engine, report)
    parts = [fanned.tables[r] for r in retriever_ids]
    table = pa.concat_tables(parts) if parts else REPLAYS_SCHEMA.empty_table()
    return Replayed(table, fanned.engine)


def _replay_here(
    paths: DataPaths,
    run: QueryRun,
    retriever_ids: Sequence[str],
    deadline_s: float,
    output: ProgressOutput,
) -> pa.Table:
    """The local engine: retrievers opened in this process (the deadline starts once they are),
    chunks stored on a writer thread."""
    parts: list[pa.Table] = []
    total = len(run.query_ids) * len(retriever_ids)
    with (
        open_retrievers(paths, list(retriever_ids)) as retrievers,
        ChunkWriter(paths) as writer,
    ):
        run = replace(run, deadline=Deadline.after(deadline_s))
        with output.track(f"replay {run.owner_id}", "replays", total) as tracker:
            report = _chunk_reporter(tracker, deadline_s, list(retriever_ids))
            for retriever_id in retriever_ids:
                parts.append(execute_queries(retrievers[retriever_id], run, writer, report))
    return pa.concat_tables(parts) if parts else REPLAYS_SCHEMA.empty_table()


def replay_sessions(
    paths: DataPaths,
    benchmark_id: str,
    sessions: pa.Table,
    retriever_ids: Sequence[str],
    depth: int,
    progress: ProgressOutput | Callable[[str], None] | None = None,
    *,
    resume_dir: DataPath | None = None,
    deadline_s: float | None = None,
    engine: ReplayEngine = LOCAL_ENGINE,
) -> pa.Table:
    """replay's rows alone, for callers that do not record where it ran."""
    return replay(
        paths,
        benchmark_id,
        sessions,
        retriever_ids,
        depth,
        progress,
        resume_dir=resume_dir,
        deadline_s=deadline_s,
        engine=engine,
    ).table
