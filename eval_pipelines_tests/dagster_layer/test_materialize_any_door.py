"""Whatever materializes a partition (the request sensor, `--wait`, the UI's Materialize button or
`dagster asset materialize`), the record ends up telling the truth (issue 10.7):

- a request accepted by `benchmark create` has its partition at once, so it can be materialized
  without the daemon;
- a failed record re-materialized successfully becomes completed, with the new run's timestamps;
- a re-materialization replays afresh (calls the retrievers again), it does not reuse old replays.
"""

from __future__ import annotations

import json
import os
import subprocess

import pyarrow.parquet as pq
from dagster import DagsterInstance, materialize

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.resources import DataDirResource
from eval_pipelines_tests.cli.conftest import run_cli
from eval_pipelines_tests.dagster_layer.conftest import DAGSTER, PROJECT


def dagster_materialize(paths: DataPaths, partition: str) -> subprocess.CompletedProcess[str]:
    """Dagster's own CLI, as a user runs it beside ours (same DAGSTER_HOME)."""
    env = {
        **os.environ,
        "EVAL_PIPELINES_DATA": str(paths.root),
        "DAGSTER_HOME": str(paths.root / "dagster_home"),
    }
    command = [
        str(DAGSTER),
        "asset",
        "materialize",
        "-m",
        "eval_pipelines.definitions",
        "--select",
        "group:benchmark",
        "--partition",
        partition,
    ]
    return subprocess.run(
        command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )


def get(paths: DataPaths, benchmark_id: str) -> dict:
    result = run_cli(paths.root, "benchmark", "get", benchmark_id)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def replay_calls(paths: DataPaths, benchmark_id: str) -> set[str]:
    """The ids of the retriever calls behind the partition's replays (new calls, new ids)."""
    replays = pq.read_table(paths.root / "benchmarks" / benchmark_id / "replays.parquet")
    return set(replays.column("replay_execution_id").to_pylist())


def test_a_partition_materialized_outside_the_sensor_drives_its_record(
    world_copy: DataPaths,
) -> None:
    created = run_cli(
        world_copy.root,
        "benchmark",
        "create",
        "--name",
        "any door",
        "--baseline",
        "demo_prod",
        "--candidate",
        "demo_better",
        "--sessions",
        "30",
    )
    assert created.returncode == 0, created.stderr
    benchmark_id = json.loads(created.stdout)["benchmark_id"]
    with DagsterInstance.from_config(str(world_copy.root / "dagster_home")) as instance:
        assert instance.get_dynamic_partitions("benchmark") == [benchmark_id]

    # The candidate's file is gone when the partition is materialized: the run fails, and so does
    # the record.
    candidate = world_copy.retrievers_dir / "demo_better.yaml"
    kept = candidate.read_text()
    candidate.unlink()
    failed_run = dagster_materialize(world_copy, benchmark_id)
    assert failed_run.returncode != 0
    failed = get(world_copy, benchmark_id)
    assert failed["status"] == "failed" and failed["results"] is None
    assert "unknown retriever 'demo_better'" in failed["error_message"]

    # Fixed and materialized again: completed, with the timestamps of the run that completed it.
    candidate.write_text(kept)
    first = dagster_materialize(world_copy, benchmark_id)
    assert first.returncode == 0, first.stderr[-3000:]
    listed = run_cli(world_copy.root, "benchmark", "list", "--json")
    assert [r["status"] for r in json.loads(listed.stdout)] == ["completed"], listed.stderr
    completed = get(world_copy, benchmark_id)
    assert completed["status"] == "completed" and completed["error_message"] is None
    assert completed["results"] and completed["comparison"]["comparisons"][0]["p_value"] is not None
    assert completed["started_at"] > failed["completed_at"]
    assert completed["completed_at"] > completed["started_at"]
    first_calls = replay_calls(world_copy, benchmark_id)
    assert len(first_calls) == 2 * 30
    assert not world_copy.benchmark_replay_chunks_dir(benchmark_id).exists()

    # Materialized once more, as the UI's Materialize button does (a run of the selected assets
    # for the partition, without this project's tags): the retrievers are called again (no replay
    # is reused) and the record is the new run's.
    home = world_copy.root / "dagster_home"
    with DagsterInstance.from_config(str(home)) as instance:
        again = materialize(
            benchmark_assets,
            partition_key=benchmark_id,
            instance=instance,
            resources={"data_dir": DataDirResource(path=str(world_copy.root))},
        )
    assert again.success
    assert replay_calls(world_copy, benchmark_id).isdisjoint(first_calls)
    latest = get(world_copy, benchmark_id)
    assert latest["status"] == "completed"
    assert latest["started_at"] > completed["completed_at"]
    assert latest["results"][0]["metrics"] == completed["results"][0]["metrics"]
