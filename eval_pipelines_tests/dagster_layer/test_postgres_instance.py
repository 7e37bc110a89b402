"""A benchmark on an instance whose storage is Postgres (issue 16 point 3): written by
`instance config`, migrated by `instance migrate`, run by the real CLI; its run is in Postgres and
its record equals a SQLite instance's apart from ids, timestamps and latency."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster_postgres import PostgresRunStorage

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS, KIND_TAG
from eval_pipelines_tests.conftest import copy_world
from eval_pipelines_tests.services import (
    Postgres,
    comparable,
    configure_instance,
    postgres_server,
    run_cli_env,
)

REQUEST = {
    "benchmark_name": "on postgres",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 30,
    "seed": 11,
    "min_coverage": 0,
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


def benchmark_record(data: Path, env: dict[str, str], request: Path) -> dict:
    created = run_cli_env(data, env, "benchmark", "create", str(request), "--wait", "--json")
    assert created.returncode == 0, created.stderr[-3000:]
    return json.loads(created.stdout)


def test_a_benchmark_on_a_postgres_instance_records_what_a_sqlite_one_does(
    small_world: DataPaths, postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST))
    on_sqlite = copy_world(small_world, tmp_path / "sqlite").root
    on_postgres = copy_world(small_world, tmp_path / "postgres").root
    home = tmp_path / "postgres_home"
    url = postgres.create_database("benchmarks")
    env = {"DAGSTER_HOME": str(home), "EVAL_PIPELINES_POSTGRES_PASSWORD": postgres.password}
    configure_instance(on_postgres, env, "--storage", "postgres", "--postgres-url", url)
    written = (home / "dagster.yaml").read_text()
    record = benchmark_record(on_postgres, env, request)
    assert (home / "dagster.yaml").read_text() == written, "the CLI added nothing to it"
    monkeypatch.setitem(os.environ, "EVAL_PIPELINES_POSTGRES_PASSWORD", postgres.password)
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        runs = instance.get_runs(RunsFilter(tags={"dagster/partition": record["benchmark_id"]}))
        assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS]
        assert runs[0].tags["eval_pipelines/kind"] == "benchmarks"
    assert not (home / "history").exists(), "no SQLite run storage beside Postgres"

    reference = benchmark_record(
        on_sqlite, {"DAGSTER_HOME": str(tmp_path / "sqlite_home")}, request
    )
    assert record["status"] == reference["status"] == "completed"
    assert comparable(record) == comparable(reference)


def test_the_queue_starts_one_benchmark_at_a_time_with_a_limit_of_1(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster's own dequeue decision (the daemon's) on the instance `instance config` wrote."""
    home = tmp_path / "home"
    env = {"DAGSTER_HOME": str(home), "EVAL_PIPELINES_POSTGRES_PASSWORD": postgres.password}
    url = postgres.create_database("queue")
    configure_instance(
        tmp_path / "data",
        env,
        *("--storage", "postgres", "--postgres-url", url, "--run-coordinator", "queued"),
        *("--benchmark-limit", "1", "--evaluation-limit", "2"),
    )
    monkeypatch.setitem(os.environ, "EVAL_PIPELINES_POSTGRES_PASSWORD", postgres.password)
    location = RegisteredCodeLocationOrigin("eval_pipelines.definitions")

    def add(kind: str, status: DagsterRunStatus) -> str:
        run_id = str(uuid.uuid4())
        job = f"run_{kind.removesuffix('s')}"
        repository = RemoteRepositoryOrigin(location, "__repository__")
        instance.add_run(
            DagsterRun(
                job,
                run_id,
                status=status,
                tags={KIND_TAG: kind},
                remote_job_origin=RemoteJobOrigin(repository, job),
            )
        )
        return run_id

    with DagsterInstance.from_config(str(home)) as instance:
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)

        def dequeued() -> set[str]:
            config = instance.get_concurrency_config()
            return {run.run_id for run in daemon._get_runs_to_dequeue(instance, config, None)}

        benchmarks = [add(BENCHMARKS.name, DagsterRunStatus.QUEUED) for _ in range(2)]
        evaluations = [add(EVALUATIONS.name, DagsterRunStatus.QUEUED) for _ in range(2)]
        first = dequeued()
        assert len(first & set(benchmarks)) == 1
        assert set(evaluations) <= first
        add(BENCHMARKS.name, DagsterRunStatus.STARTED)
        assert not dequeued() & set(benchmarks)
