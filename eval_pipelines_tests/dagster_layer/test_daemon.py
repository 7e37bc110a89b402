"""The daemon door, and a `dagster dev` killed while it runs a benchmark (issue 10.6).

With `dagster dev` running, a request submitted by the CLI (no --wait) is run once by the request
sensor and its record driven to completed. When `dagster dev` is killed mid-run and started again,
Dagster's run monitoring (on in the dagster.yaml the project writes) sees the run's worker is gone
and fails the run, the run-failure sensor marks the record failed naming the step, and `benchmark rerun`
completes it. Real processes throughout: `dagster dev`, the CLI, a loopback engine."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from eval_pipelines.core.benchmarks.submit import benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.dagster_layer.conftest import dagster_dev
from eval_pipelines_tests.search_stub import search_stub

DEADLINE_S = 180
SESSIONS = 40


def wait_for(what: str, condition: Callable[[], object]) -> object:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def the_run(home: Path, benchmark_id: str):
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_run_records(RunsFilter(tags={"dagster/partition": benchmark_id}))
        return runs[0].dagster_run if runs else None


def a_request_runs_through_the_daemon(paths: DataPaths, home: Path) -> None:
    """A CLI request (no --wait) is run once by the request sensor, and `get` follows its record
    through the lifecycle's statuses (from pending, if caught before the run starts) to completed."""
    created = run_cli(
        paths.root,
        "benchmark",
        "create",
        "--name",
        "daemon",
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "40",
    )
    assert created.returncode == 0, created.stderr
    benchmark_id = json.loads(created.stdout)["benchmark_id"]
    seen: list[str] = []

    def finished() -> dict | None:
        got = run_cli(paths.root, "benchmark", "get", benchmark_id)
        assert got.returncode == 0, got.stderr[-3000:]
        record = json.loads(got.stdout)
        if not seen or seen[-1] != record["status"]:
            seen.append(record["status"])
        return record if record["status"] in ("completed", "failed") else None

    record = wait_for("the daemon to run the request", finished)
    lifecycle = ["pending", "building_sessions", "replaying", "computing_metrics", "completed"]
    assert seen == sorted(seen, key=lifecycle.index), seen
    assert record["status"] == "completed", (seen, record["error_message"])
    assert record["comparison"]["recommendation"]
    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_run_records(RunsFilter(tags={"dagster/partition": benchmark_id}))
        assert len(runs) == 1, "exactly one run for the request"
        assert benchmark_id in instance.get_dynamic_partitions("benchmark")


def test_a_run_left_behind_by_a_killed_dagster_dev_is_failed_and_can_be_rerun(
    world_copy: DataPaths,
) -> None:
    slow = threading.Event()
    slow.set()

    def answer(text: str) -> list[tuple[str, float]]:
        if slow.is_set():
            time.sleep(0.5)
        return [("prod_000001", 1.0)]

    with search_stub(answer) as url:
        config = {"id": "slow", "kind": "http", "http": {"url": url, "concurrency": 1}}
        (world_copy.retrievers_dir / "slow.yaml").write_text(yaml.safe_dump(config))
        created = run_cli(
            world_copy.root,
            "benchmark",
            "create",
            "--name",
            "killed daemon",
            "--baseline",
            "demo_prod",
            "--candidate",
            "slow",
            "--sessions",
            str(SESSIONS),
            "--min-coverage",
            "0",  # the stub serves documents the logs never showed: not what is tested here
        )
        assert created.returncode == 0, created.stderr
        benchmark_id = json.loads(created.stdout)["benchmark_id"]

        # The instance config the CLI wrote, with monitoring polled every 2 s instead of 30 s.
        home = world_copy.root / "dagster_home"
        config_file = home / "dagster.yaml"
        written = yaml.safe_load(config_file.read_text())
        assert written["run_monitoring"]["enabled"] is True
        assert written["run_launcher"]["class"] == "WorkerCheckingRunLauncher"
        config_file.write_text(
            config_file.read_text().replace("poll_interval_seconds: 30", "poll_interval_seconds: 2")
        )
        store = benchmark_store(world_copy)

        with dagster_dev(world_copy) as dev:
            wait_for("the run to replay", lambda: store.get(benchmark_id)["status"] == "replaying")
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
        stuck = the_run(home, benchmark_id)
        assert stuck is not None and stuck.status == DagsterRunStatus.STARTED
        assert store.get(benchmark_id)["status"] == "replaying"

        with dagster_dev(world_copy):
            failed_run = wait_for(
                "monitoring to fail the run",
                lambda: (
                    (run := the_run(home, benchmark_id)) is not None
                    and run.status == DagsterRunStatus.FAILURE
                    and run
                ),
            )
            assert failed_run.run_id == stuck.run_id
            record = wait_for(
                "the run-failure sensor to mark the record",
                lambda: (r := store.get(benchmark_id))["status"] == "failed" and r,
            )
            slow.clear()
            a_request_runs_through_the_daemon(world_copy, home)
        assert record["error_message"].startswith("benchmark_replays: its run worker process")
        assert "ended before it finished" in record["error_message"]

        rerun = run_cli(world_copy.root, "benchmark", "rerun", benchmark_id)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert json.loads(rerun.stdout)["status"] == "completed"
