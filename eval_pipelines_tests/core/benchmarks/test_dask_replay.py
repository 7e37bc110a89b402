"""Replay on a real loopback Dask cluster: the same rows and record as the local engine, a worker
killed mid-replay costs nothing twice, and nothing listens beyond 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, materialize

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.core.benchmarks.replay import CHUNK_SIZE_ENV, replay
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import benchmark_store, new_benchmark_id
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.dask_engine import dask_client
from eval_pipelines.core.retrieval.engines import DASK, ReplayEngine, parse_engine
from eval_pipelines.core.warehouse import parquet_select
from eval_pipelines.kinds import BENCHMARKS
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.search_stub import search_stub

distributed = pytest.importorskip(
    "distributed", reason="dask distributed is not installed (the `scale` extra)"
)

REQUEST = {
    "benchmark_name": "dask against local",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better", "demo_http"],
    "session_count": 60,
    "seed": 7,
}
# What may differ between two runs of one request: ids, moments, and time spent.
VOLATILE = {"benchmark_id", "created_at", "started_at", "completed_at", "replay_engine"}
MEASURED_LATENCY = re.compile(r"latency [+-]?[\d.,]+ ms")


def stable(value: Any) -> Any:
    """A record without what VOLATILE names and without any latency."""
    if isinstance(value, dict):
        return {
            key: stable(item)
            for key, item in value.items()
            if key not in VOLATILE and "latency" not in key
        }
    if isinstance(value, list):
        return [stable(item) for item in value]
    if isinstance(value, str):
        return MEASURED_LATENCY.sub("latency (measured)", value)
    return value


def run_benchmark(
    paths: DataPaths, instance: DagsterInstance, engine: dict[str, Any] | None
) -> tuple[dict[str, Any], pa.Table]:
    """One benchmark of REQUEST through the assets, on the engine the run's config names."""
    benchmark_id = new_benchmark_id()
    BENCHMARKS.accept_with_partition(instance, paths, parse_request(REQUEST, paths), benchmark_id)
    run_config = {"resources": {"replay_engine": {"config": engine}}} if engine else {}
    result = materialize(
        benchmark_assets,
        partition_key=benchmark_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        run_config=run_config,
        raise_on_error=False,
    )
    assert result.success
    replays = pq.read_table(benchmark_store(paths).folder(benchmark_id) / "replays.parquet")
    return benchmark_store(paths).get(benchmark_id), replays


def test_a_two_worker_cluster_gives_the_local_engines_rows_and_record(
    world_copy: DataPaths, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHUNK_SIZE_ENV, "16")
    local_record, local_rows = run_benchmark(world_copy, instance, None)
    dask_record, dask_rows = run_benchmark(
        world_copy, instance, {"engine": "dask", "scheduler_address": "local-cluster:2"}
    )

    assert local_record["settings"]["replay_engine"] == {"engine": "local"}
    engine = dask_record["settings"]["replay_engine"]
    assert engine["engine"] == "dask" and engine["cluster"] == "local-cluster:2"
    assert engine["scheduler"].startswith("tcp://127.0.0.1:")
    assert engine["tasks"] == 3 * 4  # 3 retrievers x ceil(60 / 16) chunks
    assert engine["retried"] == 0
    assert 1 <= len(engine["workers"]) <= 2
    assert all(w.startswith("tcp://127.0.0.1:") for w in engine["workers"])
    # Opened once per worker process and kept, not once per chunk.
    assert engine["retrievers_opened"] <= 3 * len(engine["workers"]) < engine["tasks"]

    assert stable(dask_record) == stable(local_record)
    assert dask_record["status"] == "completed"
    kept = ["execution_id", "retriever_id", "status", "error_type", "error", "ranking"]
    assert dask_rows.select(kept).equals(local_rows.select(kept))
    assert dask_rows.num_rows == 3 * 60


def slow_answer(text: str) -> list[tuple[str, float]] | None:
    """20 ms a call; "boom" queries fail (HTTP 500), the rest answer a ranking spelling the text."""
    time.sleep(0.02)
    if text.startswith("boom"):
        return None
    return [(f"{text}-{rank}", 10.0 - rank) for rank in range(3)]


def sessions_table(count: int) -> pa.Table:
    texts = [f"boom {i}" if i % 7 == 0 else f"query {i}" for i in range(count)]
    return pa.table(
        {
            "execution_id": [f"logged-{i}" for i in range(count)],
            "query_input": [json.dumps({"text": text}) for text in texts],
        }
    )


def write_http_retriever(paths: DataPaths, retriever_id: str, url: str) -> None:
    paths.retrievers_dir.mkdir(parents=True, exist_ok=True)
    (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(
        json.dumps(
            {
                "id": retriever_id,
                "kind": "http",
                "http": {"url": url, "max_retries": 0, "concurrency": 1},
            }
        )
    )


def listening(pid: int) -> set[tuple[str, int]]:
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


@pytest.fixture(scope="module")
def started() -> Iterator[tuple[Any, set[tuple[str, int]]]]:
    """A 2-worker loopback LocalCluster started the way the dask engine starts one, and the
    sockets it opened in this process (scheduler, its HTTP routes, nannies)."""
    before = listening(os.getpid())
    with dask_client(parse_engine(DASK, "local-cluster:2")) as client:
        client.wait_for_workers(2, timeout=60)
        yield client, listening(os.getpid()) - before


@pytest.fixture
def cluster(started: tuple[Any, set[tuple[str, int]]]) -> Any:
    return started[0]


def port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_the_cluster_listens_on_loopback_only(started: tuple[Any, set[tuple[str, int]]]) -> None:
    client, here = started
    info = client.scheduler_info()
    workers = info["workers"]
    assert len(workers) == 2
    addresses = [client.scheduler.address, *workers, *(w["nanny"] for w in workers.values())]
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
    # Every socket the cluster listens on, here or in a worker process, is bound to 127.0.0.1,
    # the scheduler's HTTP routes included (on a free port, not the dashboard's 8787).
    assert {port(client.scheduler.address), info["services"]["dashboard"]} <= {p for _, p in here}
    assert {port(w["nanny"]) for w in workers.values()} <= {p for _, p in here}
    assert info["services"]["dashboard"] != 8787
    in_workers = set().union(*(listening(pid) for pid in client.run(os.getpid).values()))
    assert {port(a) for a in workers} <= {p for _, p in in_workers}
    assert {ip for ip, _ in here | in_workers} == {"127.0.0.1"}


def kill_a_busy_worker(client: Any, chunks: Path, killed: list[str]) -> None:
    """Once a first chunk is kept, SIGKILL a worker process that is running a chunk."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(chunks.rglob("*.parquet")):
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])
                return
        time.sleep(0.01)


def test_killing_a_worker_mid_replay_stores_and_counts_every_call_once(
    tmp_path: Path, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = DataPaths(tmp_path / "data")
    monkeypatch.setenv(CHUNK_SIZE_ENV, "6")
    sessions = sessions_table(96)
    chunks = tmp_path / "chunks"
    killed: list[str] = []
    with search_stub(slow_answer) as url:
        for retriever_id in ("base", "cand"):
            write_http_retriever(paths, retriever_id, url)
        killer = threading.Thread(target=kill_a_busy_worker, args=(cluster, chunks, killed))
        killer.start()
        replayed = replay(
            paths,
            "killed",
            sessions,
            ["base", "cand"],
            depth=3,
            resume_dir=chunks,
            engine=ReplayEngine(DASK, cluster.scheduler.address),
        )
        killer.join()

    assert killed, "no worker was busy to kill"
    assert replayed.engine["tasks"] == 2 * 16
    assert replayed.engine["retried"] >= 1
    rows = replayed.table
    assert rows.num_rows == 2 * 96
    assert (
        rows.column("execution_id").to_pylist() == sessions.column("execution_id").to_pylist() * 2
    )
    booms = sum(1 for i in range(96) if i % 7 == 0)
    failed = [r for r in rows.to_pylist() if r["status"] != "completed"]
    assert len(failed) == 2 * booms
    assert {r["error_type"] for r in failed} == {"http_5xx"}

    files = sorted(paths.executions_dir.rglob("*.parquet"))
    stored = duckdb.sql(
        f"SELECT execution_id, count(*) AS n, any_value(status) AS status"
        f" FROM ({parquet_select(files)}) GROUP BY execution_id"
    ).to_arrow_table()
    assert max(stored.column("n").to_pylist()) == 1, "an execution was stored twice"
    assert stored.num_rows == 2 * 96
    assert set(stored.column("execution_id").to_pylist()) == set(
        rows.column("replay_execution_id").to_pylist()
    )
    assert sum(s != "completed" for s in stored.column("status").to_pylist()) == 2 * booms
