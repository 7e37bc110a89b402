"""Replay fan-out: sessions/s of the local engine against Dask with 1 and 2 worker processes.

Two HTTP retrievers (concurrency 4 each, as a remote engine that limits each client) call the
fixed-latency engine (perf/latency_server.py, 10 ms a call, its own process). The local engine
replays one retriever after another in this process; the Dask engine runs one task per (retriever,
chunk) on loopback LocalClusters started before the clock (long-lived workers, as deployed), each
worker keeping its retrievers open between chunks and writing its chunks and executions itself.
Each contender replays into its own data directory. The check: every call completed, every
contender's rows equal the local engine's (rankings, order, statuses), stored executions = rows.

Speed-ups need more cores than CI has: on 2 cores the driver, the engine and two workers share
them, so a latency-bound replay gains at most from the extra in-flight calls, and a CPU-bound one
(BM25 in process) gains little.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import yaml

from eval_pipelines.core.benchmarks.replay import CHUNK_SIZE_ENV, replay
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.engines import DASK, LOCAL_ENGINE, ReplayEngine, parse_engine
from eval_pipelines.core.storage import write_text_atomic
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders
from perf.latency_server import latency_server
from perf.replay_http import make_sessions

NAME = "replay_fanout"
SESSIONS: dict[str, int] = {"tiny": 120, "small": 1_200, "full": 4_800}
CHUNK_SIZE: dict[str, int] = {"tiny": 30, "small": 150, "full": 300}
PIPELINES: tuple[str, ...] = ("fan_a", "fan_b")
LATENCY_MS = 10.0
CONCURRENCY = 4
DEPTH = 20
WORKERS: tuple[int, ...] = (1, 2)
BENCHMARK_ID = "bench_replay_fanout"
# Two workers keep twice the calls in flight; on 2 cores the target only asks for a gain.
TARGET_SPEEDUP = 1.2
COMPARED = ["execution_id", "retriever_id", "status", "ranking"]


def write_retrievers(paths: DataPaths, base_url: str) -> None:
    for retriever_id in PIPELINES:
        config = {
            "id": retriever_id,
            "kind": "http",
            "http": {
                "url": f"{base_url}/search/{retriever_id}",
                "timeout_s": 5.0,
                "max_retries": 3,
                "concurrency": CONCURRENCY,
                "limit": DEPTH,
            },
        }
        write_text_atomic(yaml.safe_dump(config), paths.retrievers_dir / f"{retriever_id}.yaml")


def check(
    outputs: dict[str, Any], roots: dict[str, DataPaths], sessions: pa.Table
) -> dict[str, Any]:
    """Every contender complete, equal to the local engine's rows, each call stored once."""
    rows = sessions.num_rows * len(PIPELINES)
    local = outputs["local"].table.select(COMPARED)
    checks: dict[str, Any] = {"rows": rows}
    for name, replayed in outputs.items():
        table = replayed.table
        if table.num_rows != rows:
            raise CorrectnessError(f"{name}: {table.num_rows} rows, expected {rows}")
        failed = rows - table.column("status").to_pylist().count("completed")
        if failed:
            raise CorrectnessError(f"{name}: {failed} calls did not complete")
        if not table.select(COMPARED).equals(local):
            raise CorrectnessError(f"{name}: rows differ from the local engine's")
        stored = ds.dataset(roots[name].executions_dir, format="parquet").count_rows()
        if stored != rows:
            raise CorrectnessError(f"{name}: {stored} stored executions, expected {rows}")
        checks[f"{name} engine"] = replayed.engine
    checks["all_completed"] = True
    checks["rows_equal_local"] = True
    return checks


def run(scale: str, repeat: int, workdir: Path, seed: int = 5) -> BenchmarkResult:
    from eval_pipelines.core.retrieval.dask_engine import dask_client

    sessions = make_sessions(SESSIONS[scale], seed)
    names = ["local", *(f"dask {n} worker{'s' if n > 1 else ''}" for n in WORKERS)]
    roots = {name: DataPaths(workdir / name.replace(" ", "_") / "data") for name in names}
    previous = os.environ.get(CHUNK_SIZE_ENV)
    os.environ[CHUNK_SIZE_ENV] = str(CHUNK_SIZE[scale])
    try:
        with latency_server(LATENCY_MS) as base_url, ExitStack() as clusters:
            engines: dict[str, ReplayEngine] = {"local": LOCAL_ENGINE}
            for name, workers in zip(names[1:], WORKERS, strict=True):
                client = clusters.enter_context(
                    dask_client(parse_engine(DASK, f"local-cluster:{workers}"))
                )
                client.wait_for_workers(workers, timeout=60)
                engines[name] = ReplayEngine(DASK, client.scheduler.address)
            for paths in roots.values():
                write_retrievers(paths, base_url)

            def step(name: str) -> Any:
                return lambda: replay(
                    roots[name], BENCHMARK_ID, sessions, PIPELINES, DEPTH, engine=engines[name]
                )

            results, outputs = run_contenders(
                [(name, step(name)) for name in names], repeat, items=sessions.num_rows
            )
    finally:
        if previous is None:
            os.environ.pop(CHUNK_SIZE_ENV, None)
        else:
            os.environ[CHUNK_SIZE_ENV] = previous
    checks = check(outputs, roots, sessions)
    rates = {r.name: r.items_per_second or 0.0 for r in results}
    speedup = rates[names[-1]] / rates["local"] if rates["local"] else 0.0
    return BenchmarkResult(
        name=NAME,
        parameters={
            "sessions": sessions.num_rows,
            "pipelines": len(PIPELINES),
            "calls": sessions.num_rows * len(PIPELINES),
            "chunk_size": CHUNK_SIZE[scale],
            "latency_ms": LATENCY_MS,
            "concurrency_per_retriever": CONCURRENCY,
            "cpu_count": os.cpu_count(),
            "sessions_per_second": rates,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[
            Target(
                f"sessions/s of Dask with {WORKERS[-1]} workers over the local engine",
                speedup,
                TARGET_SPEEDUP,
                higher_is_better=True,
            )
        ],
        notes=[
            "speed-ups need more cores than CI has: on 2 cores the driver, the latency engine and"
            " the workers share them; a replay bound by the engine's latency gains from the calls"
            " each extra worker keeps in flight, a CPU-bound one gains little.",
            "clusters are started before the clock (long-lived workers); each repetition includes"
            " connecting to the scheduler, and the local engine's includes opening its retrievers.",
            f"bound per process = concurrency / latency = {CONCURRENCY} / {LATENCY_MS:g} ms ="
            f" {CONCURRENCY / LATENCY_MS * 1000:,.0f} calls/s; the local engine replays one"
            " retriever after another, each Dask worker runs one chunk at a time.",
        ],
    )
