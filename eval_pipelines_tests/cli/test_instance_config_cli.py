"""`eval-pipelines instance config|migrate` (issue 16 point 3): the dagster.yaml it writes is one
Dagster loads, with limits on the tag the runs really carry; bad flags exit 2 naming the flag and
write nothing; the Postgres password never leaves its environment variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.run_coordinator import DefaultRunCoordinator, QueuedRunCoordinator

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.instance import checked_instance_yaml
from eval_pipelines.kinds import BENCHMARKS, EVALUATIONS, KIND_TAG
from eval_pipelines.run_launcher import WorkerCheckingRunLauncher
from eval_pipelines_tests.services import Postgres, postgres_server, run_cli_env


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


def test_a_queued_config_loads_in_dagster_with_limits_on_the_runs_kind_tag(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli_env(
        tmp_path / "data",
        {},
        *("instance", "config", "--run-coordinator", "queued", "--max-concurrent-runs", "4"),
        *(
            "--benchmark-limit",
            "1",
            "--evaluation-limit",
            "2",
            "--output",
            str(home / "dagster.yaml"),
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {home / 'dagster.yaml'}"

    with DagsterInstance.from_config(str(home)) as instance:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, WorkerCheckingRunLauncher)
        assert instance.run_monitoring_enabled
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        limits = {
            (limit["key"], limit["value"]): limit["limit"] for limit in queue.tag_concurrency_limits
        }
    # the limits name the tag and values the run jobs' runs really carry
    benchmark_tags = BENCHMARKS.run_tags(BENCHMARKS.parse(_benchmark_request(), None))
    assert limits == {(KIND_TAG, benchmark_tags[KIND_TAG]): 1, (KIND_TAG, EVALUATIONS.name): 2}


def _benchmark_request() -> dict:
    return {
        "benchmark_name": "tags",
        "baseline_retriever_id": "prod",
        "candidate_retriever_ids": ["cand"],
    }


def test_the_default_coordinator_launches_at_once_and_the_file_is_dagsters_own(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    result = run_cli_env(tmp_path / "data", {"DAGSTER_HOME": str(home)}, "instance", "config")
    assert result.returncode == 0, result.stderr
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, DefaultRunCoordinator)
    assert not (home / "executor.env").exists()


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (
            [
                "--storage",
                "mysql",
                "--benchmark-limit",
                "1",
                "--executor",
                "dask",
                "--broker",
                "redis://h:1/0",
                "--password-env",
                "A-B",
            ],
            [
                "--storage: 'mysql' is not one of sqlite, postgres",
                "--benchmark-limit: only applies with --run-coordinator queued",
                "--executor: 'dask' is not one of in_process, multiprocess, celery",
                "--broker: only applies with --executor celery",
                "--password-env: 'A-B' is not a variable name",
            ],
        ),
        (
            [
                "--storage",
                "postgres",
                "--postgres-url",
                "postgresql+psycopg://u@h/db",
                "--run-coordinator",
                "queued",
                "--evaluation-limit",
                "-1",
                "--max-concurrent-runs",
                "-2",
                "--executor",
                "celery",
            ],
            [
                "--postgres-url: scheme 'postgresql+psycopg' (psycopg 3",
                "--evaluation-limit: -1 is below 0",
                "--max-concurrent-runs: -2 is below -1",
                "--broker: the celery executor needs a broker URL",
            ],
        ),
        (
            ["--storage", "postgres", "--executor", "celery", "--broker", "http://h:1"],
            ["--postgres-url: needed with --storage postgres", "--broker: scheme 'http'"],
        ),
        (
            ["--storage", "postgres", "--postgres-url", "postgresql://h/db"],
            ["--postgres-url: names no user"],
        ),
        (
            ["--run-coordinator", "queued", "--benchmark-limit", "one"],
            ["--benchmark-limit: invalid int"],
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_flag_and_write_nothing(
    tmp_path: Path, flags: list[str], named: list[str]
) -> None:
    home = tmp_path / "home"
    result = run_cli_env(
        tmp_path / "data", {}, "instance", "config", *flags, "--output", str(home / "dagster.yaml")
    )
    assert result.returncode == 2, result.stderr
    for problem in named:
        assert problem in result.stderr
    assert result.stdout == ""
    assert not home.exists()


def test_dagsters_schema_is_the_last_word_and_its_errors_name_the_field() -> None:
    text = "run_queue:\n  max_concurrent_runs: many\n"
    with pytest.raises(InvalidInputError, match=r"dagster\.yaml: .*max_concurrent_runs"):
        checked_instance_yaml(text)


def test_a_password_in_the_url_is_refused_without_being_repeated(tmp_path: Path) -> None:
    secret = "hunter2-in-the-url"
    result = run_cli_env(
        tmp_path / "data",
        {},
        *("instance", "config", "--storage", "postgres"),
        *("--postgres-url", f"postgresql://eval:{secret}@127.0.0.1:5432/dagster"),
        *("--output", str(tmp_path / "home" / "dagster.yaml")),
    )
    assert result.returncode == 2
    assert "--postgres-url: holds a password" in result.stderr
    assert secret not in result.stderr + result.stdout
    assert not (tmp_path / "home").exists()


def test_postgres_config_and_migrate_keep_the_password_in_its_variable(
    postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.create_database("config_cli")
    home = tmp_path / "home"
    env = {"DAGSTER_HOME": str(home), "PG_SECRET": postgres.password}
    configured = run_cli_env(
        tmp_path / "data",
        env,
        *("instance", "config", "--storage", "postgres", "--postgres-url", url),
        *("--password-env", "PG_SECRET"),
    )
    assert configured.returncode == 0, configured.stderr
    storage = yaml.safe_load((home / "dagster.yaml").read_text())["storage"]["postgres"]
    assert storage["postgres_db"]["password"] == {"env": "PG_SECRET"}
    assert storage["postgres_db"]["scheme"] == "postgresql+psycopg2"

    migrated = run_cli_env(tmp_path / "data", env, "instance", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "PostgresRunStorage" in migrated.stdout
    without = run_cli_env(tmp_path / "data", {"DAGSTER_HOME": str(home)}, "instance", "migrate")
    assert without.returncode == 2
    assert "$PG_SECRET: not set (storage.postgres.postgres_db.password reads it)" in without.stderr

    outputs = [configured.stdout, configured.stderr, migrated.stdout, migrated.stderr]
    outputs += [without.stdout, without.stderr]
    written = [p.read_bytes().decode("utf-8", "replace") for p in home.rglob("*") if p.is_file()]
    for text in outputs + written:
        assert postgres.password not in text
