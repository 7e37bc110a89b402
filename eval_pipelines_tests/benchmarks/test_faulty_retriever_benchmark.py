"""Benchmarks of an http candidate whose engine fails on purpose, run through Dagster as
`benchmark create --wait` runs them: failed sessions and their error types are counted exactly,
never scored or paired, transient faults cost nothing but a retry, and a dead engine ends the run.

Extends dagster_layer/test_benchmark_lifecycle.py (HTTP 500 for a subset of queries) to every kind
of fault, transient faults, the metrics and pairing, and an engine that is down entirely.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from dagster import DagsterInstance

from eval_pipelines.cli.run_in_process import run_benchmark_here
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import new_benchmark_id
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.execution import Retriever
from eval_pipelines.core.retrieval.registry import open_retrievers
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.fault_server import (
    CLIENT_ERROR_TYPE,
    DROP,
    HTTP_429,
    HTTP_500,
    MALFORMED_JSON,
    MISSING_IDS,
    RETRIED_KINDS,
    STALL,
    Fault,
    FaultPlan,
    FaultRule,
    fault_server,
)
from eval_pipelines_tests.loopback import free_port
from eval_pipelines_tests.schemas import validation_errors

BASELINE, BETTER, FLAKY = "demo_prod", "demo_better", "flaky_better"
SESSIONS = 200
MAX_RETRIES = 2
# Shares of query texts: 10% fail on every attempt, another 10% only on their first request.
PERMANENT = {HTTP_500: 0.02, HTTP_429: 0.02, DROP: 0.02, STALL: 0.01, MALFORMED_JSON: 0.015}
PERMANENT |= {MISSING_IDS: 0.015}
TRANSIENT = {HTTP_500: 0.03, HTTP_429: 0.02, DROP: 0.03, STALL: 0.02}
PLAN = FaultPlan(
    rules=[
        *(
            FaultRule(share, Fault(kind, retry_after="1" if kind == HTTP_429 else None))
            for kind, share in PERMANENT.items()
        ),
        *(
            FaultRule(share, Fault(kind, failures=1, retry_after="1" if kind == HTTP_429 else None))
            for kind, share in TRANSIENT.items()
        ),
    ],
    seed=32,  # on this sample: 20 of 200 sessions fail, 12 recover, every kind of fault occurs
)


def write_http_retriever(paths: DataPaths, retriever_id: str, url: str, **options: Any) -> None:
    config = {
        "id": retriever_id,
        "kind": "http",
        "http": {
            "url": url,
            "timeout_s": 2.0,
            "max_retries": MAX_RETRIES,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "concurrency": 8,
            **options,
        },
    }
    (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(yaml.safe_dump(config))


def answer_with(retriever: Retriever) -> Any:
    def answer(query_input: dict[str, Any], limit: int | None) -> list[tuple[str, float]]:
        execution = retriever.search(query_input, limit)
        return [(d.document_id, d.score) for d in execution.documents]

    return answer


def benchmark_table(paths: DataPaths, benchmark_id: str, name: str) -> pa.Table:
    return pq.read_table(paths.root / "benchmarks" / benchmark_id / f"{name}.parquet")


def rows_by_session(table: pa.Table, retriever_id: str) -> dict[str, dict[str, Any]]:
    return {r["execution_id"]: r for r in table.to_pylist() if r["retriever_id"] == retriever_id}


def test_failing_calls_fail_exactly_their_sessions_and_are_never_scored(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    with (
        open_retrievers(world_copy, [BETTER]) as engines,
        fault_server(PLAN, answer_with(engines[BETTER])) as server,
    ):
        write_http_retriever(world_copy, FLAKY, server.url)
        request = parse_request(
            {
                "benchmark_name": "faulty candidate",
                "baseline_retriever_id": BASELINE,
                "candidate_retriever_ids": [FLAKY, BETTER],
                "session_count": SESSIONS,
            },
            world_copy,
        )
        benchmark_id = new_benchmark_id()
        record = run_benchmark_here(world_copy, request, benchmark_id, lambda _: None, instance)
        attempts = dict(server.attempts)
    assert record["status"] == "completed", record.get("error_message")
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", record) == []

    sessions = benchmark_table(world_copy, benchmark_id, "sessions")
    texts = dict(
        zip(
            sessions.column("execution_id").to_pylist(),
            sessions.column("query_text").to_pylist(),
            strict=True,
        )
    )
    faults = {session: PLAN.fault_for(text) for session, text in texts.items()}
    failing = {s for s, f in faults.items() if f is not None and f.permanent}
    recovering = {s for s, f in faults.items() if f is not None and not f.permanent}
    assert len(texts) == SESSIONS
    coverage = "the sample changed: pick a PLAN.seed under which every kind of fault occurs"
    assert {faults[s].kind for s in failing} == set(PERMANENT), coverage
    assert {faults[s].kind for s in recovering} == set(TRANSIENT), coverage

    results = {r["retriever_id"]: r for r in record["results"]}
    assert results[FLAKY]["failed_sessions"] == len(failing)
    assert results[FLAKY]["error_summary"] == dict(
        Counter(CLIENT_ERROR_TYPE[faults[s].kind] for s in failing)
    )
    for reliable in (BASELINE, BETTER):
        assert (results[reliable]["failed_sessions"], results[reliable]["error_summary"]) == (0, {})

    scores = benchmark_table(world_copy, benchmark_id, "session_scores")
    flaky, better, baseline = (rows_by_session(scores, p) for p in (FLAKY, BETTER, BASELINE))
    assert {s for s, r in flaky.items() if r["status"] != "completed"} == failing
    for session in failing:
        assert flaky[session]["error_type"] == CLIENT_ERROR_TYPE[faults[session].kind]
        assert flaky[session]["ndcg_at_10"] is None
    replays = benchmark_table(world_copy, benchmark_id, "replays")
    flaky_rankings = rows_by_session(replays, FLAKY)
    better_rankings = rows_by_session(replays, BETTER)
    for session in texts.keys() - failing:
        assert flaky_rankings[session]["ranking"] == better_rankings[session]["ranking"]

    # The engine saw exactly the requests the retry rules allow (a drop on a reused keep-alive
    # connection is sent again once on a new one, so drops may be seen up to twice as often).
    occurrences = Counter(texts.values())
    for text, count in occurrences.items():
        fault = PLAN.fault_for(text)
        if fault is None:
            assert attempts[text] == count, text
        elif not fault.permanent:
            assert attempts[text] == count + 1, text
        elif fault.kind not in RETRIED_KINDS:
            assert attempts[text] == count, text
        elif fault.kind == DROP:
            assert count * (MAX_RETRIES + 1) <= attempts[text] <= 2 * count * (MAX_RETRIES + 1)
        else:
            assert attempts[text] == count * (MAX_RETRIES + 1), text

    # The candidate's metrics are demo_better's over exactly the sessions the candidate replayed,
    # under both estimators (the record's metrics are the counterfactual ones; the logged order's
    # are beside them).
    usable = [s for s in texts.keys() - failing if flaky[s]["interacted_count"] > 0]
    assert record["comparison"]["estimator"]["used"] == "counterfactual"
    for prefix, block in (("", "metrics_logged_order"), ("cf_", "metrics")):
        for k in ("5", "10"):
            expected = sum(better[s][f"{prefix}ndcg_at_{k}"] for s in usable) / len(usable)
            assert math.isclose(results[FLAKY][block]["ndcg_at_k"][k], expected, rel_tol=1e-9)
            expected = sum(better[s][f"{prefix}recall_at_{k}"] for s in usable) / len(usable)
            assert math.isclose(results[FLAKY][block]["recall_at_k"][k], expected, rel_tol=1e-9)

    comparisons = {c["candidate_retriever_id"]: c for c in record["comparison"]["comparisons"]}
    assert comparisons[FLAKY]["paired_sessions"] == SESSIONS - len(failing) == len(usable)
    assert comparisons[BETTER]["paired_sessions"] == SESSIONS
    for prefix, found in (
        ("", comparisons[FLAKY]["logged_order"]["ndcg_delta"]["10"]),
        ("cf_", comparisons[FLAKY]["ndcg_delta"]["10"]),
    ):
        column = f"{prefix}ndcg_at_10"
        delta = sum(better[s][column] - baseline[s][column] for s in usable) / len(usable)
        assert math.isclose(found, delta, rel_tol=1e-9)


def test_a_dead_engine_yields_a_result_with_every_session_failed(world_copy: DataPaths) -> None:
    port = free_port()
    write_http_retriever(world_copy, "dead", f"http://127.0.0.1:{port}/search", max_retries=3)
    created = run_cli(
        world_copy.root,
        "benchmark",
        "create",
        "--name",
        "dead engine",
        "--baseline",
        BASELINE,
        "--candidate",
        "dead",
        "--sessions",
        "60",
        "--wait",
        timeout=240,
    )
    # Completed, but with no verdict for its only candidate: exit 3, so a CI job can gate on it.
    assert created.returncode == 3, created.stderr[-4000:]
    record = json.loads(created.stdout)
    assert record["status"] == "completed"
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", record) == []
    results = {r["retriever_id"]: r for r in record["results"]}
    assert results["dead"]["failed_sessions"] == 60
    assert results["dead"]["error_summary"] == {"connection_error": 60}
    assert results[BASELINE]["failed_sessions"] == 0
    [comparison] = record["comparison"]["comparisons"]
    assert comparison["paired_sessions"] == 0
    assert comparison["p_value"] is None
    assert not record["comparison"]["recommendation"].startswith("Promote dead")
    assert any("dead" in w and "connection_error" in w for w in record["warnings"])

    replays = benchmark_table(world_copy, record["benchmark_id"], "replays")
    dead = [r for r in replays.to_pylist() if r["retriever_id"] == "dead"]
    assert len(dead) == 60
    assert all(f"127.0.0.1:{port}: connection refused" in r["error"] for r in dead)
    executions = pq.read_table(world_copy.root / "executions" / "dead")
    assert executions.num_rows == 60
    assert sum(executions.column("attempts").to_pylist()) < 60 * (3 + 1)
