"""Issue 16's whole deployment at once: the demo (its world, benchmark and evaluations) with the data
root on S3 (moto's server, loopback), the Dagster instance on Postgres and replay on a 2-worker Dask
cluster gives the records a local run gives, apart from ids, timestamps, latency and where the replay
ran. Nothing that belongs on a machine (DAGSTER_HOME, the DuckDB warehouse) lands in the bucket, and
no lease or temporary object is left behind."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from eval_pipelines.core.retrieval.engines import ENGINE_ENV, SCHEDULER_ENV
from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.services import (
    comparable,
    configure_instance,
    postgres_server,
    run_cli_env,
)

PASSWORD_ENV = "EVAL_PIPELINES_POSTGRES_PASSWORD"


def records(result: CliResult, key: str) -> dict[str, dict]:
    """Records listed as JSON, keyed by what stays the same between two runs of the demo. The local
    world is shared with tests that add records to it later, so the oldest per key is the demo's."""
    assert result.returncode == 0, result.stderr[-3000:]
    oldest: dict[str, dict] = {}
    for record in sorted(json.loads(result.stdout), key=lambda r: r["created_at"]):
        oldest.setdefault(str(record[key]), record)
    return oldest


def stable(record: dict) -> object:
    settings = {k: v for k, v in record.get("settings", {}).items() if k != "replay_engine"}
    volatile = {"evaluation_id": None, "run_id": None, "updated_at": None}
    return comparable({**record, "settings": settings, **volatile})


def test_the_demo_on_s3_postgres_and_dask_equals_a_local_run(
    small_demo: tuple[Path, CliResult], s3_root: str, s3_service, tmp_path: Path, monkeypatch
) -> None:
    local_dir, _ = small_demo
    home = tmp_path / "dagster_home"
    with postgres_server() as postgres:
        url = postgres.create_database("deployment")
        env = {"DAGSTER_HOME": str(home), PASSWORD_ENV: postgres.password}
        configure_instance(s3_root, env, "--storage", "postgres", "--postgres-url", url)
        env |= {ENGINE_ENV: "dask", SCHEDULER_ENV: "local-cluster:2"}

        demo = run_cli_env(s3_root, env, "demo", "--small", timeout=900)
        assert demo.returncode == 0, demo.stderr[-5000:]

        remote_benchmarks = records(
            run_cli_env(s3_root, env, "benchmark", "list", "--json"), "benchmark_name"
        )
        remote_evaluations = records(
            run_cli_env(s3_root, env, "evaluation", "list", "--json"), "retriever_id"
        )
        datasets = run_cli_env(s3_root, env, "dataset", "list", "--json")
        monkeypatch.setenv(PASSWORD_ENV, postgres.password)
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_run_records(RunsFilter())
            partitions = {run.dagster_run.tags.get("dagster/partition") for run in runs}
            statuses = {run.dagster_run.status for run in runs}
    local_benchmarks = records(run_cli(local_dir, "benchmark", "list", "--json"), "benchmark_name")
    local_evaluations = records(run_cli(local_dir, "evaluation", "list", "--json"), "retriever_id")

    assert len(remote_benchmarks) == 1 and remote_benchmarks.keys() <= local_benchmarks.keys()
    assert len(remote_evaluations) == 3 and remote_evaluations.keys() <= local_evaluations.keys()
    for name, record in remote_benchmarks.items():
        assert record["status"] == "completed"
        engine = record["settings"]["replay_engine"]
        assert engine["engine"] == "dask" and len(engine["workers"]) == 2, engine
        assert stable(record) == stable(local_benchmarks[name])
    for retriever, record in remote_evaluations.items():
        assert record["status"] == "completed"
        assert stable(record) == stable(local_evaluations[retriever])

    # the runs are in Postgres: one per record, all successful
    ids = {r["benchmark_id"] for r in remote_benchmarks.values()}
    ids |= {r["evaluation_id"] for r in remote_evaluations.values()}
    assert ids <= partitions and statuses == {DagsterRunStatus.SUCCESS}, (partitions, statuses)
    assert not (home / "history").exists(), "no SQLite run storage"

    assert datasets.returncode == 0, datasets.stderr
    (judgments,) = json.loads(datasets.stdout)
    assert judgments["source_files"] == [f"{s3_root}/demo/datasets/demo-judgments.jsonl"], judgments

    keys = s3_service.keys(s3_root.split("/")[2])
    assert not [k for k in keys if "dagster_home" in k or k.endswith(".duckdb")]
    assert not [k for k in keys if k.rsplit("/", 1)[-1].startswith(".")], "lease or temporary left"
    local_keys = {
        p.relative_to(local_dir).as_posix()
        for p in local_dir.rglob("*")
        if p.is_file() and "dagster_home" not in p.parts and p.suffix != ".duckdb"
    }
    remote_keys = {k.split("/", 1)[1] for k in keys}
    assert {k.split("/")[0] for k in remote_keys} == {k.split("/")[0] for k in local_keys}
