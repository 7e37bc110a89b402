"""The run jobs on the Celery executor (issue 16 point 3): a benchmark partition's run on 2 Celery
workers (`dagster-celery worker start`, broker on a loopback Redis, instance on Postgres) completes,
every step ran in one of the workers, and the record equals an in-process run's apart from ids,
timestamps and latency. The executor comes from EVAL_PIPELINES_EXECUTOR; unset, nothing changes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from eval_pipelines.core.deployment import BROKER_ENV, EXECUTOR_ENV, executor_from_env
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.dagster_layer.conftest import PROJECT, stop_process_group
from eval_pipelines_tests.services import (
    comparable,
    configure_instance,
    postgres_server,
    redis_server,
    run_cli_env,
)

BIN = Path(sys.executable).parent
RUN_DEADLINE_S = 180
REQUEST = {
    "benchmark_name": "on celery",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 30,
    "seed": 5,
    "min_coverage": 0,
}


def test_the_run_jobs_keep_dagsters_default_executor_unless_the_environment_names_one() -> None:
    if os.environ.get(EXECUTOR_ENV):
        pytest.skip(f"{EXECUTOR_ENV} is set in this environment")
    from eval_pipelines.definitions import defs

    for job in ("run_benchmark", "run_evaluation"):
        assert defs.resolve_job_def(job).executor_def.name == "multi_or_in_process_executor"
    assert (
        executor_from_env({EXECUTOR_ENV: "celery", BROKER_ENV: "redis://:pw@h:1/0"}).name
        == "celery"
    )
    with pytest.raises(
        InvalidInputError, match=f"{BROKER_ENV}: the celery executor needs a broker"
    ):
        executor_from_env({EXECUTOR_ENV: "celery"})
    with pytest.raises(InvalidInputError, match=f"{EXECUTOR_ENV}: 'dask' is not one of"):
        executor_from_env({EXECUTOR_ENV: "dask"})


def celery_workers(env: dict[str, str], home: Path, logs: Path) -> list[subprocess.Popen]:
    """Two workers, one task at a time each, as `dagster-celery worker start` runs them."""
    return [
        subprocess.Popen(
            [
                str(BIN / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(home / "celery.yaml"),
                "-n",
                name,
                "--loglevel",
                "INFO",
                "--",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            cwd=PROJECT,
            stdout=(logs / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name in ("w1", "w2")
    ]


def test_a_benchmark_run_on_two_celery_workers_completes_with_the_right_record(
    world_copy: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, home = world_copy.root, tmp_path / "home"
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST))
    with postgres_server() as postgres, redis_server(tmp_path / "redis") as redis:
        url = postgres.create_database("celery")
        env = {"DAGSTER_HOME": str(home), "EVAL_PIPELINES_POSTGRES_PASSWORD": postgres.password}
        configure_instance(
            data,
            env,
            *("--storage", "postgres", "--postgres-url", url),
            *("--executor", "celery", "--broker", redis.url()),
        )
        env |= dict(line.split("=", 1) for line in (home / "executor.env").read_text().splitlines())
        full = {**os.environ, **env, "EVAL_PIPELINES_DATA": str(data)}
        full["PATH"] = f"{BIN}{os.pathsep}{full['PATH']}"
        workers = celery_workers(full, home, tmp_path)  # they start while the reference runs
        try:
            reference = run_cli_env(
                data, env, "benchmark", "create", str(request), "--wait", "--json"
            )
            assert reference.returncode == 0, reference.stderr[-3000:]
            accepted = run_cli_env(data, env, "benchmark", "create", str(request), "--json")
            assert accepted.returncode == 0, accepted.stderr
            benchmark_id = json.loads(accepted.stdout)["benchmark_id"]
            tags = {"dagster/partition": benchmark_id, "eval_pipelines/kind": "benchmarks"}
            launched = subprocess.run(
                [
                    str(BIN / "dagster"),
                    "job",
                    "execute",
                    "-m",
                    "eval_pipelines.definitions",
                    "-j",
                    "run_benchmark",
                    "--tags",
                    json.dumps(tags),
                ],
                env=full,
                cwd=PROJECT,
                capture_output=True,
                text=True,
                timeout=RUN_DEADLINE_S,
            )
            assert launched.returncode == 0, launched.stderr[-3000:]
            assert all(worker.poll() is None for worker in workers)
        finally:
            for worker in workers:
                stop_process_group(worker)

        monkeypatch.setitem(os.environ, "EVAL_PIPELINES_POSTGRES_PASSWORD", postgres.password)
        with DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs(RunsFilter(tags={"dagster/partition": benchmark_id}))
            assert run.status == DagsterRunStatus.SUCCESS
            steps_in = {
                entry.step_key: entry.dagster_event.engine_event_data.metadata[
                    "Celery worker"
                ].value
                for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
                if entry.message.startswith("[CeleryExecutor] Executing steps")
            }
            steps = {
                entry.step_key
                for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
            }
        got = run_cli_env(data, env, "benchmark", "get", benchmark_id, "--json")

    host = socket.gethostname()
    assert steps and steps_in.keys() == steps
    assert set(steps_in.values()) <= {f"w1@{host}", f"w2@{host}"}
    record = json.loads(got.stdout)
    assert record["status"] == "completed"
    assert comparable(record) == comparable(json.loads(reference.stdout))
