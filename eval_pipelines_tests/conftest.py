"""Fixtures shared across test packages."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance

from eval_pipelines.core.demo import DemoScale, build_demo_world
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import CliResult, run_cli
from eval_pipelines_tests.services import S3, s3_server

# The slowest test files (from the `--durations` every `tasks.py test` prints), slowest first. They are
# handed to the two workers first, so no long file starts near the end while the other worker idles.
SLOWEST_FILES = (
    "dagster_layer/test_daemon.py",
    "dagster_layer/test_celery_executor.py",
    "test_benchmark_s3_root.py",
    "dagster_layer/test_concurrency.py",
    "dagster_layer/test_teams_on_postgres.py",
    "dagster_layer/test_demo_on_s3_postgres_dask.py",
    "dagster_layer/test_materialize_any_door.py",
    "cli/test_benchmarks_on_s3.py",
    "dagster_layer/test_benchmark_rerun_s3.py",
    "benchmarks/test_replay_resume.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest files first, the rest in their usual order (the same order in every worker)."""
    rank = {name: number for number, name in enumerate(SLOWEST_FILES)}
    tests = Path(__file__).parent

    def position(item: pytest.Item) -> int:
        relative = Path(item.fspath).relative_to(tests).as_posix()
        return rank.get(relative, len(rank))

    items.sort(key=position)


@pytest.fixture(scope="session")
def full_demo_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataPaths, dict]:
    """The full-scale demo world, built once per test session (about 15 s)."""
    paths = DataPaths(tmp_path_factory.mktemp("full-demo") / "data")
    summary = build_demo_world(paths)
    return paths, summary


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    """A small demo world built once by `eval-pipelines demo --small`, and that run's output."""
    data_dir = tmp_path_factory.mktemp("small-demo") / "data"
    result = run_cli(data_dir, "demo", "--small")
    assert result.returncode == 0, result.stderr[-4000:]
    return data_dir, result


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    """The small demo world, built once per test session; read it, or write to a world_copy."""
    paths = DataPaths(tmp_path_factory.mktemp("small-world") / "data")
    build_demo_world(paths, scale=DemoScale.small())
    return paths


def copy_world(world: DataPaths, root: Path) -> DataPaths:
    """A private copy of a built world at root/data: copying costs a fraction of building one."""
    paths = DataPaths(root / "data")
    shutil.copytree(world.root, paths.root)
    return paths


@pytest.fixture
def world_copy(small_world: DataPaths, tmp_path: Path) -> DataPaths:
    """A private copy, so a test may break it or add benchmarks without touching the others."""
    return copy_world(small_world, tmp_path)


@pytest.fixture(scope="module")
def module_world_copy(
    small_world: DataPaths, tmp_path_factory: pytest.TempPathFactory
) -> DataPaths:
    """One private copy of the small world per module, for module fixtures that add to it or write."""
    return copy_world(small_world, tmp_path_factory.mktemp("module-world"))


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A real Dagster instance with its own DAGSTER_HOME under tmp_path."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        yield instance


@pytest.fixture
def two_http_retrievers(tmp_path) -> DataPaths:
    """A data directory with retrievers `prod` and `cand`: enough for request validation, never called."""
    paths = DataPaths(tmp_path / "data")
    paths.retrievers_dir.mkdir(parents=True)
    for retriever_id in ("prod", "cand"):
        (paths.retrievers_dir / f"{retriever_id}.yaml").write_text(
            yaml.safe_dump(
                {"id": retriever_id, "kind": "http", "http": {"url": "http://127.0.0.1:9/search"}}
            )
        )
    return paths


@pytest.fixture(scope="session")
def s3_service() -> Iterator[S3]:
    """One local S3 server (moto, loopback) per test process; each test takes its own bucket."""
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_root(
    s3_service: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """A fresh bucket's prefix as EVAL_PIPELINES_DATA, with the AWS variables that reach the server
    set for this process and its children, and the local cache under tmp_path."""
    for name, value in s3_service.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EVAL_PIPELINES_CACHE", str(tmp_path / "cache"))
    bucket = f"t{next(_BUCKETS)}-{os.getpid()}"
    root = f"{s3_service.create_bucket(bucket)}/team"
    monkeypatch.setenv("EVAL_PIPELINES_DATA", root)
    return root


_BUCKETS = itertools.count()
