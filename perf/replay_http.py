"""Benchmark 4: replay of sessions x 3 HTTP pipelines against a local engine answering in 20 ms.

The engine (perf/latency_server.py) runs in a child process, so it does not share the GIL with
the client. The measured step is replay_sessions over three http retrievers written as YAML files in
a scratch data directory (concurrency 32 each, depth 100), executions written to Parquet as in a real
replay. Pipelines are replayed one after another, so at most `concurrency` calls are in flight and the
bound is concurrency / latency. The check: every call completed, rows = sessions x pipelines in
session order, stored executions = rows, and sampled rankings equal the engine's own function.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import yaml

from eval_pipelines.core.benchmarks.replay import replay_sessions
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_text_atomic
from perf.harness import BenchmarkResult, CorrectnessError, Target, run_contenders
from perf.latency_server import latency_server, ranking

NAME = "replay_http"
SESSIONS: dict[str, int] = {"tiny": 200, "small": 2_000, "full": 10_000}
MAX_REPEAT: dict[str, int | None] = {"tiny": None, "small": None, "full": 2}
PIPELINES: tuple[str, ...] = ("http_a", "http_b", "http_c")
LATENCY_MS = 20.0
CONCURRENCY = 32
DEPTH = 100
TARGET_SHARE_OF_BOUND = 0.70
CHECKED_ROWS = 300
BENCHMARK_ID = "bench_replay_http"
WORDS: tuple[str, ...] = (
    "red",
    "blue",
    "green",
    "black",
    "white",
    "running",
    "trail",
    "rain",
    "winter",
    "leather",
    "wool",
    "canvas",
    "shoes",
    "boots",
    "jacket",
    "hat",
    "scarf",
    "socks",
    "gloves",
    "bag",
    "backpack",
    "wallet",
    "belt",
    "bottle",
    "mat",
    "goggles",
    "shorts",
    "tights",
    "cap",
    "kids",
    "men",
    "women",
    "waterproof",
    "light",
    "warm",
    "classic",
    "slim",
)


def make_sessions(count: int, seed: int) -> pa.Table:
    """Sessions as benchmark_sessions stores them (execution_id, query_input JSON); texts repeat."""
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(max(count // 3, 1))]
    query_inputs = []
    for _ in range(count):
        query: dict[str, Any] = {"text": rng.choice(texts)}
        if rng.random() < 0.2:
            query["filters"] = {"price": {"lt": rng.choice((25, 50, 100))}}
        query_inputs.append(json.dumps(query, separators=(",", ":")))
    return pa.table(
        {
            "execution_id": [f"sess{number:06d}" for number in range(count)],
            "query_input": query_inputs,
        }
    )


def write_http_retrievers(paths: DataPaths, base_url: str) -> dict[str, str]:
    """One http retriever per pipeline, each on its own route of the engine; returns id -> route."""
    routes = {}
    for retriever_id in PIPELINES:
        route = f"/search/{retriever_id}"
        config = {
            "id": retriever_id,
            "name": f"{retriever_id} (fixed {LATENCY_MS:g} ms engine)",
            "kind": "http",
            "http": {
                "url": base_url + route,
                "timeout_s": 5.0,
                "max_retries": 3,
                "concurrency": CONCURRENCY,
                "limit": DEPTH,
            },
        }
        text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
        write_text_atomic(text, paths.retrievers_dir / f"{retriever_id}.yaml")
        routes[retriever_id] = route
    return routes


def check_replays(
    replays: pa.Table,
    sessions: pa.Table,
    routes: dict[str, str],
    paths: DataPaths,
    seed: int,
) -> dict[str, Any]:
    expected_rows = sessions.num_rows * len(PIPELINES)
    if replays.num_rows != expected_rows:
        raise CorrectnessError(f"{replays.num_rows} replay rows, expected {expected_rows}")
    statuses = pc.value_counts(replays.column("status")).to_pylist()
    failed = {s["values"]: s["counts"] for s in statuses if s["values"] != "completed"}
    if failed:
        errors = pc.unique(pc.drop_null(replays.column("error_type"))).to_pylist()
        raise CorrectnessError(f"calls did not complete: {failed} (error types {errors})")
    session_ids = sessions.column("execution_id").to_pylist()
    for retriever_id in PIPELINES:
        rows = replays.filter(pc.equal(replays.column("retriever_id"), retriever_id))
        if rows.column("execution_id").to_pylist() != session_ids:
            raise CorrectnessError(f"{retriever_id}: replays are not in session order")
    stored = ds.dataset(paths.executions_dir, format="parquet").count_rows()
    if stored != expected_rows:
        raise CorrectnessError(f"{stored} stored executions, expected {expected_rows}")
    texts = [json.loads(q).get("text") or "" for q in sessions.column("query_input").to_pylist()]
    per_pipeline = sessions.num_rows
    for row in random.Random(seed).sample(range(expected_rows), min(CHECKED_ROWS, expected_rows)):
        retriever_id = replays.column("retriever_id")[row].as_py()
        received = replays.column("ranking")[row].as_py()
        expected = ranking(routes[retriever_id], texts[row % per_pipeline], DEPTH)
        if received != expected:
            raise CorrectnessError(f"row {row} ({retriever_id}): ranking differs from the engine's")
    latency = replays.column("latency_ms")
    return {
        "rows": replays.num_rows,
        "all_completed": True,
        "in_session_order": True,
        "stored_executions": stored,
        "rankings_checked": min(CHECKED_ROWS, expected_rows),
        "client_latency_ms_median": round(pc.approximate_median(latency).as_py(), 2),
        "client_latency_ms_max": round(pc.max(latency).as_py(), 2),
    }


def run(scale: str, repeat: int, workdir: Path, seed: int = 4) -> BenchmarkResult:
    paths = DataPaths(workdir / "data")
    sessions = make_sessions(SESSIONS[scale], seed)
    calls = sessions.num_rows * len(PIPELINES)
    cap = MAX_REPEAT[scale]
    timed = repeat if cap is None else min(repeat, cap)
    with latency_server(LATENCY_MS) as base_url:
        routes = write_http_retrievers(paths, base_url)
        results, outputs = run_contenders(
            [
                (
                    "eval-pipelines",
                    lambda: replay_sessions(paths, BENCHMARK_ID, sessions, PIPELINES, DEPTH),
                )
            ],
            timed,
            items=calls,
        )
    checks = check_replays(outputs["eval-pipelines"], sessions, routes, paths, seed)
    bound = CONCURRENCY / (LATENCY_MS / 1000.0)
    rate = results[0].items_per_second or 0.0
    notes = [
        f"bound = concurrency / latency = {CONCURRENCY} / {LATENCY_MS:g} ms = {bound:,.0f} calls/s; "
        "pipelines are replayed one after another, so at most `concurrency` calls are in flight.",
        "each repetition includes opening the retrievers and writing executions to Parquet.",
    ]
    if timed < repeat:
        notes.append(f"timed repetitions capped at {timed} at {scale} scale (asked {repeat}).")
    return BenchmarkResult(
        name=NAME,
        parameters={
            "sessions": sessions.num_rows,
            "pipelines": len(PIPELINES),
            "calls": calls,
            "depth": DEPTH,
            "concurrency": CONCURRENCY,
            "latency_ms": LATENCY_MS,
            "bound_calls_per_second": bound,
            "calls_per_second": rate,
            "share_of_bound": rate / bound,
            "timed_repetitions": timed,
            "seed": seed,
        },
        contenders=results,
        checks=checks,
        targets=[
            Target(
                f"calls/s as a share of the bound ({bound:,.0f}/s)",
                rate / bound,
                TARGET_SHARE_OF_BOUND,
                higher_is_better=True,
            )
        ],
        notes=notes,
    )
