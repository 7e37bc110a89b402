"""The daemon door: with `dagster dev` running, a request submitted by the CLI (no --wait) is picked up
by the request sensor, run once, and its record driven to completed through the lifecycle."""

import json
import shutil
import time
from pathlib import Path

from dagster import DagsterInstance, RunsFilter

from eval_pipelines.core.demo import DemoScale, build_demo_world
from eval_pipelines.core.paths import DataPaths
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.dagster_layer.conftest import dagster_dev

DEADLINE_S = 150


def test_a_cli_request_runs_through_the_daemon(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data")
    build_demo_world(paths, scale=DemoScale.small())
    shutil.rmtree(paths.root / "dagster_home", ignore_errors=True)
    home = paths.root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dagster_dev(paths, home) as dev:
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
        seen = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and dev.poll() is None:
            got = run_cli(paths.root, "benchmark", "get", benchmark_id)
            assert got.returncode == 0, got.stderr[-3000:]
            record = json.loads(got.stdout)
            if not seen or seen[-1] != record["status"]:
                seen.append(record["status"])
            if record["status"] in ("completed", "failed"):
                break
            time.sleep(2)
        # The daemon may start the run before the first look: the statuses seen follow the
        # lifecycle's order (from pending, if caught) and end completed.
        lifecycle = ["pending", "building_sessions", "replaying", "computing_metrics", "completed"]
        assert seen == sorted(seen, key=lifecycle.index), seen
        assert seen[-1] == "completed", (seen, record.get("error_message"))
        assert record["comparison"]["recommendation"]
        with DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_run_records(RunsFilter(tags={"dagster/partition": benchmark_id}))
            assert len(runs) == 1, "exactly one run for the request"
            assert instance.get_dynamic_partitions("benchmark") == [benchmark_id]
