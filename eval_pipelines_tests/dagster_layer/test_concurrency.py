"""Four benchmarks and two evaluations at once, each its own Dagster run under the multiprocess executor,
while a user polls `get` / `list` as the runs write their own records and a reader queries the DuckDB
views: nothing locks, nothing is lost or mixed up, every record ends final."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    SensorResult,
    build_sensor_context,
)

from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request as accept_benchmark
from eval_pipelines.core.evaluations.request import parse_evaluation_request
from eval_pipelines.core.evaluations.submit import accept_request as accept_evaluation
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import FINAL_STATUSES, RecordStore
from eval_pipelines.core.warehouse import query, view_definitions
from eval_pipelines.kinds import BENCHMARKS as BENCHMARK_KIND
from eval_pipelines.kinds import EVALUATIONS as EVALUATION_KIND
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines_tests.cli.conftest import CLI
from eval_pipelines_tests.schemas import validation_errors

PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"
DEADLINE_S = 400
CLI_TIMEOUT_S = 120
POLL_INTERVAL_S = 3.0
LIST_EVERY = 3  # polls
SETTLE_ATTEMPTS = 5
JOB_EXECUTE = ("job", "execute", "-m", "eval_pipelines.definitions", "-a", "defs", "-j")

BENCHMARKS = [
    ("concurrent-better", ["demo_better"], 30),
    ("concurrent-worse", ["demo_worse"], 40),
    ("concurrent-copy", ["demo_prod_copy"], 50),
    ("concurrent-two", ["demo_better", "demo_worse"], 35),
]
EVALUATIONS = [("demo_prod", [3, 10]), ("demo_better", [5])]

# Forkserver with the project preloaded: every step still runs in a process of its own, without a
# fresh interpreter importing the project for each one (the suite shares two cores).
MULTIPROCESS_CONFIG = """\
execution:
  config:
    multiprocess:
      max_concurrent: 2
      start_method:
        forkserver:
          preload_modules: [eval_pipelines.definitions]
"""
benchmark_request_sensor = request_sensor(BENCHMARK_KIND)
evaluation_request_sensor = request_sensor(EVALUATION_KIND)
LOCK_SYMPTOMS = ("database is locked", "could not set lock", "conflicting lock", "held its lock")


def lock_symptoms(text: str) -> list[str]:
    lowered = text.lower()
    return [symptom for symptom in LOCK_SYMPTOMS if symptom in lowered]


@pytest.fixture
def world(world_copy: DataPaths) -> tuple[DataPaths, dict[str, str]]:
    """A private small demo world, its Dagster home, and the environment every process here gets."""
    paths = world_copy
    home = paths.root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return paths, {**os.environ, "EVAL_PIPELINES_DATA": str(paths.root), "DAGSTER_HOME": str(home)}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    assert result.returncode == 0 and not lock_symptoms(result.stderr), result.stderr[-3000:]
    return result


def submit_all(paths: DataPaths) -> tuple[dict[str, dict], dict[str, dict]]:
    """Accept the six requests at once (the path the CLI and the launchpad share); pending records by id."""
    benchmark_requests = [
        {
            "benchmark_name": name,
            "baseline_retriever_id": "demo_prod",
            "candidate_retriever_ids": candidates,
            "session_count": sessions,
        }
        for name, candidates, sessions in BENCHMARKS
    ]
    evaluation_requests = [
        {
            "retriever_id": retriever,
            "dataset_name": "demo-judgments",
            "evaluation_config": {"k_values": k},
        }
        for retriever, k in EVALUATIONS
    ]
    with ThreadPoolExecutor(len(BENCHMARKS) + len(EVALUATIONS)) as pool:
        benchmark_records = pool.map(
            lambda r: accept_benchmark(paths, parse_request(r, paths)), benchmark_requests
        )
        evaluation_records = pool.map(
            lambda r: accept_evaluation(paths, parse_evaluation_request(r, paths)),
            evaluation_requests,
        )
        benchmarks = {r["benchmark_id"]: r for r in benchmark_records}
        evaluations = {r["evaluation_id"]: r for r in evaluation_records}
    assert len(benchmarks) == len(BENCHMARKS) and len(evaluations) == len(EVALUATIONS)
    return benchmarks, evaluations


def launch_runs(
    instance: DagsterInstance, paths: DataPaths, env: dict[str, str], workdir: Path
) -> dict[str, subprocess.Popen]:
    """What the daemon does: evaluate each request sensor, add its partitions, launch each run in a
    process of its own (`dagster job execute`, the multiprocess executor)."""
    config = workdir / "multiprocess.yaml"
    config.write_text(MULTIPROCESS_CONFIG)
    resources = {"data_dir": DataDirResource(path=str(paths.root))}
    runners = {}
    for sensor, job in (
        (benchmark_request_sensor, "run_benchmark"),
        (evaluation_request_sensor, "run_evaluation"),
    ):
        result = sensor(build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, SensorResult)
        for add in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
        for request in result.run_requests:
            tags = {**request.tags, "dagster/partition": request.partition_key}
            with (workdir / f"{request.partition_key}.log").open("w") as log:
                runners[request.partition_key] = subprocess.Popen(
                    [
                        str(DAGSTER),
                        *JOB_EXECUTE,
                        job,
                        "-c",
                        str(config),
                        "--tags",
                        json.dumps(tags),
                    ],
                    cwd=PROJECT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
    return runners


def check_record(kind: str, record: dict, submitted: dict) -> None:
    """The record is the one asked for (id and request fields) and valid in whatever state it is in."""
    if kind == "benchmark":
        keys = ("benchmark_id", "benchmark_name", "baseline_retriever_id", "session_count")
        keys += ("candidate_retriever_ids", "created_at")
        errors = validation_errors("get_benchmark.openapi", "BenchmarkResponse", record)
    else:
        keys = ("evaluation_id", "retriever_id", "dataset_name", "config", "created_at")
        errors = validation_errors("get_evaluation.openapi", "EvaluationRecord", record)
    assert {k: record[k] for k in keys} == {k: submitted[k] for k in keys}
    assert errors == [], (record[f"{kind}_id"], record["status"], errors)


def check_warehouse(paths: DataPaths, submitted: dict[str, dict]) -> dict[str, Any]:
    """Query the views while runs write under them: every partition visible is whole and its own."""
    seen: dict[str, Any] = {}
    views = set(view_definitions(paths))
    if "benchmark_replays" in views:
        rows = query(
            paths,
            "SELECT benchmark_id, list(DISTINCT retriever_id ORDER BY retriever_id) AS pipelines, "
            "count(*) AS calls, count(DISTINCT execution_id) AS sessions "
            "FROM benchmark_replays GROUP BY benchmark_id",
        ).to_pylist()
        for row in rows:
            request = submitted[row["benchmark_id"]]
            pipelines = [request["baseline_retriever_id"], *request["candidate_retriever_ids"]]
            assert row["pipelines"] == sorted(pipelines), row
            assert row["sessions"] == request["session_count"], row
            assert row["calls"] == row["sessions"] * len(pipelines), row
        seen["replays"] = {row["benchmark_id"] for row in rows}
    if {"evaluation_runs", "executions"} <= views:
        rows = query(
            paths,
            "SELECT evaluation_id, list(DISTINCT retriever_id) AS retrievers "
            "FROM evaluation_runs LEFT JOIN executions USING (execution_id) GROUP BY evaluation_id",
        ).to_pylist()
        for row in rows:
            assert row["retrievers"] == [submitted[row["evaluation_id"]]["retriever_id"]], row
        seen["evaluation_runs"] = {row["evaluation_id"] for row in rows}
    return seen


def test_four_benchmarks_and_two_evaluations_at_once(
    world: tuple[DataPaths, dict[str, str]], tmp_path: Path
) -> None:
    paths, env = world
    benchmarks, evaluations = submit_all(paths)
    submitted = {**benchmarks, **evaluations}
    kinds = {**dict.fromkeys(benchmarks, "benchmark"), **dict.fromkeys(evaluations, "evaluation")}
    latest = dict(submitted)
    statuses = {record_id: [record["status"]] for record_id, record in submitted.items()}

    def observe(record: dict, kind: str) -> None:
        record_id = record[f"{kind}_id"]
        check_record(kind, record, submitted[record_id])
        latest[record_id] = record
        if statuses[record_id][-1] != record["status"]:
            statuses[record_id].append(record["status"])

    def list_all(kind: str) -> None:
        listed = json.loads(cli(env, kind, "list", "--json").stdout)
        expected = sorted(i for i, k in kinds.items() if k == kind)
        assert sorted(r[f"{kind}_id"] for r in listed) == expected, "every request is listed"
        for record in listed:
            observe(record, kind)

    polled_while_running = 0
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runners = launch_runs(instance, paths, env, tmp_path)
        assert sorted(runners) == sorted(submitted), "one run per request"
        deadline = time.monotonic() + DEADLINE_S
        try:
            for poll in range(10_000):
                if all(runner.poll() is not None for runner in runners.values()):
                    break
                record_id = list(kinds)[poll % len(kinds)]
                observe(
                    json.loads(cli(env, kinds[record_id], "get", record_id).stdout),
                    kinds[record_id],
                )
                if poll % LIST_EVERY == LIST_EVERY - 1:
                    list_all(kinds[record_id])
                polled_while_running += any(runner.poll() is None for runner in runners.values())
                check_warehouse(paths, submitted)
                assert time.monotonic() < deadline, statuses
                time.sleep(POLL_INTERVAL_S)
        finally:
            for runner in runners.values():
                if runner.poll() is None:
                    os.killpg(runner.pid, signal.SIGKILL)
                runner.wait(timeout=30)
        for _ in range(SETTLE_ATTEMPTS):
            for kind in ("benchmark", "evaluation"):
                list_all(kind)
            if all(history[-1] in FINAL_STATUSES for history in statuses.values()):
                break
            time.sleep(1)

        assert polled_while_running >= 2, "the reader ran alongside the runs"
        for record_id, runner in runners.items():
            output = (tmp_path / f"{record_id}.log").read_text()
            assert runner.returncode == 0, output[-4000:]
            assert not lock_symptoms(output), (record_id, lock_symptoms(output))
            [run] = instance.get_run_records(RunsFilter(tags={"dagster/partition": record_id}))
            assert run.dagster_run.status == DagsterRunStatus.SUCCESS
            engine = instance.all_logs(
                run.dagster_run.run_id, of_type=DagsterEventType.ENGINE_EVENT
            )
            assert any("multiprocess executor" in (e.message or "") for e in engine)
            entry = RecordStore(paths, f"{kinds[record_id]}s").entry(record_id)
            assert entry["run_id"] == run.dagster_run.run_id, "the record follows its own run"
            assert entry["record"] == latest[record_id], "what the CLI printed is what is stored"

    for record_id, kind in kinds.items():
        final = latest[record_id]
        assert final["status"] == "completed", (record_id, statuses[record_id], final)
        assert not FINAL_STATUSES & set(statuses[record_id][:-1]), statuses[record_id]
        if kind == "benchmark":
            pipelines = [final["baseline_retriever_id"], *final["candidate_retriever_ids"]]
            assert [r["retriever_id"] for r in final["results"]] == pipelines
        else:
            cutoffs = [str(k) for k in final["config"]["k_values"]]
            assert sorted(final["metrics_by_k"], key=int) == cutoffs
    visible = check_warehouse(paths, submitted)
    assert visible == {"replays": set(benchmarks), "evaluation_runs": set(evaluations)}
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        in_file = {
            row[0]
            for row in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
        assert in_file == set(view_definitions(paths)), "the last rebuild saw every table"
        replayed = con.execute(
            "SELECT count(DISTINCT benchmark_id) FROM benchmark_replays"
        ).fetchone()
        assert replayed == (len(benchmarks),)
    for record_id in benchmarks:
        sessions = pq.read_metadata(paths.root / "benchmarks" / record_id / "sessions.parquet")
        assert sessions.num_rows == submitted[record_id]["session_count"]


def test_a_late_writer_cannot_undo_a_final_record(tmp_path: Path) -> None:
    """A syncer that looked at the run before it ended saves after one that saw it end."""
    store = RecordStore(DataPaths(tmp_path / "data"), "benchmarks")
    running = {"benchmark_id": "bench_x", "status": "replaying"}
    completed = {"benchmark_id": "bench_x", "status": "completed"}
    store.save("bench_x", running, "run-1")
    assert store.save("bench_x", completed, "run-1") == completed
    assert store.save("bench_x", running, "run-1") == completed
    assert store.entry("bench_x") == {"record": completed, "run_id": "run-1"}
    assert store.save("bench_x", running, "run-2") == running, "a new run starts afresh"
    assert store.get("bench_x") == running
