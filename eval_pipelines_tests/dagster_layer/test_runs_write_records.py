"""The run writes its record (issue 12): each step its stage, the last step the completed record, a
failed step its root cause; a run that fails outside any step body is marked by the run-failure
sensor. And the lineage Dagster shows is one graph from the inputs to the records."""

from __future__ import annotations

from collections import defaultdict

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    SkipReason,
    build_run_status_sensor_context,
    materialize,
)

from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.definitions import defs
from eval_pipelines.kinds import BENCHMARKS, KIND_TAG
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.run_failures import failed_run_sensor
from eval_pipelines_tests.schemas import validation_errors

REQUEST = {
    "benchmark_name": "runs write records",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 20,
}
INPUTS = ("interaction_logs", "collections", "retriever_configs", "ground_truth_datasets")
RECORD_WRITERS = ("benchmark_comparison", "evaluation_summary")


class UnreachableDataDir(DataDirResource):
    """A data directory whose mount is gone: the run fails before any step body starts."""

    def setup_for_execution(self, context) -> None:
        raise OSError("the data volume is not mounted")


def test_a_run_failing_outside_every_step_body_is_marked_by_the_failure_sensor(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    record = accept_request(world_copy, parse_request(REQUEST, world_copy))
    benchmark_id = record["benchmark_id"]
    instance.add_dynamic_partitions(BENCHMARKS.partitions.name, [benchmark_id])
    result = materialize(
        BENCHMARKS.assets,
        partition_key=benchmark_id,
        instance=instance,
        resources={"data_dir": UnreachableDataDir(path=str(world_copy.root))},
        tags={KIND_TAG: BENCHMARKS.name},
        raise_on_error=False,
    )
    assert not result.success
    assert benchmark_store(world_copy).get(benchmark_id)["status"] == "pending"  # never reached

    run = instance.get_run_by_id(result.run_id)
    (failure,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name=failed_run_sensor.name,
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"data_dir": DataDirResource(path=str(world_copy.root))},
    )
    outcome = failed_run_sensor(context)
    assert isinstance(outcome, SkipReason) and "record marked failed" in outcome.skip_message
    entry = benchmark_store(world_copy).entry(benchmark_id)
    assert entry["run_id"] == run.run_id
    failed = entry["record"]
    assert failed["status"] == "failed"
    assert failed["error_message"] == "OSError: the data volume is not mounted"
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", failed) == []
    # Evaluated again (the daemon may), the record stays as the run left it.
    again = failed_run_sensor(context)
    assert "needed no change" in again.skip_message
    assert benchmark_store(world_copy).get(benchmark_id) == failed


def _edges() -> dict[AssetKey, set[AssetKey]]:
    graph = defs.resolve_asset_graph()
    return {key: set(graph.get(key).parent_keys) for key in graph.get_all_asset_keys()}


def test_the_asset_lineage_is_one_graph_from_the_inputs_to_the_records() -> None:
    parents = _edges()
    neighbours: dict[AssetKey, set[AssetKey]] = defaultdict(set)
    for child, ups in parents.items():
        for parent in ups:
            neighbours[child].add(parent)
            neighbours[parent].add(child)
    start = next(iter(parents))
    seen, frontier = {start}, [start]
    while frontier:
        for nxt in neighbours[frontier.pop()] - seen:
            seen.add(nxt)
            frontier.append(nxt)
    assert seen == set(parents), (
        f"islands: {sorted(k.to_user_string() for k in set(parents) - seen)}"
    )

    def ancestors(key: AssetKey) -> set[str]:
        found, todo = set(), [key]
        while todo:
            for parent in parents[todo.pop()]:
                if parent.to_user_string() not in found:
                    found.add(parent.to_user_string())
                    todo.append(parent)
        return found

    assert {"interaction_logs", "collections", "retriever_configs"} <= ancestors(
        AssetKey("benchmark_comparison")
    )
    assert {"ground_truth_datasets", "collections", "retriever_configs"} <= ancestors(
        AssetKey("evaluation_summary")
    )
    for name in INPUTS:
        assert parents[AssetKey(name)], f"{name} shows where it comes from"
