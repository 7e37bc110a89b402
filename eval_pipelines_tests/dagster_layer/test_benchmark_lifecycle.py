"""Requests become partitions and runs, runs become records: sensors evaluated on a real instance."""

import hashlib
import shutil
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context, materialize

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.kinds import BENCHMARKS
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines_tests.schemas import validation_errors
from eval_pipelines_tests.search_stub import search_stub

benchmark_request_sensor = request_sensor(BENCHMARKS)
REQUEST = {
    "benchmark_name": "sensor test",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 50,
}


def resources(paths: DataPaths) -> dict:
    return {"data_dir": DataDirResource(path=str(paths.root))}


def run_requested(instance: DagsterInstance, paths: DataPaths, result: SensorResult) -> bool:
    """Do what the daemon does with the sensor's result: add the partitions, launch each run."""
    for add in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
    outcomes = [
        materialize(
            benchmark_assets,
            partition_key=run.partition_key,
            instance=instance,
            resources=resources(paths),
            tags=run.tags,
            raise_on_error=False,
        ).success
        for run in result.run_requests
    ]
    return all(outcomes)


def test_a_new_request_yields_one_partition_one_run_and_a_completed_record(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    record = accept_request(world_copy, parse_request(REQUEST, world_copy))
    benchmark_id = record["benchmark_id"]
    assert record["status"] == "pending"

    context = build_sensor_context(instance=instance, resources=resources(world_copy))
    result = benchmark_request_sensor(context)
    assert isinstance(result, SensorResult)
    assert [(r.run_key, r.partition_key) for r in result.run_requests] == [
        (benchmark_id, benchmark_id)
    ]
    assert [list(a.partition_keys) for a in result.dynamic_partitions_requests] == [[benchmark_id]]
    assert run_requested(instance, world_copy, result)

    again = benchmark_request_sensor(
        build_sensor_context(
            instance=instance, cursor=result.cursor, resources=resources(world_copy)
        )
    )
    assert isinstance(again, SkipReason)
    assert instance.get_dynamic_partitions("benchmark") == [benchmark_id]
    assert len(instance.get_run_records()) == 1

    final = benchmark_store(world_copy).get(benchmark_id)  # written by the run itself
    assert final["status"] == "completed"
    assert final["started_at"] and final["completed_at"]
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", final) == []


def test_a_failed_run_yields_a_failed_record_with_the_reason(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    record = accept_request(world_copy, parse_request(REQUEST, world_copy))
    shutil.rmtree(world_copy.log_table_dir("executions"))
    context = build_sensor_context(instance=instance, resources=resources(world_copy))
    assert not run_requested(instance, world_copy, benchmark_request_sensor(context))

    failed = benchmark_store(world_copy).get(record["benchmark_id"])
    assert failed["status"] == "failed"
    assert "benchmark_sessions" in failed["error_message"]
    assert "no logged executions" in failed["error_message"]
    assert failed["results"] is None
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", failed) == []


def fails(text: str) -> bool:
    return hashlib.md5(text.encode()).hexdigest()[0] in "01234"


@pytest.fixture
def flaky_server() -> Iterator[str]:
    """Answers 500 for a fixed, known subset of query texts, and one document otherwise."""
    with search_stub(lambda text: None if fails(text) else [("prod_000001", 1.0)]) as url:
        yield url


def test_injected_retriever_errors_fail_sessions_not_the_benchmark(
    world_copy: DataPaths, instance: DagsterInstance, flaky_server: str
) -> None:
    (world_copy.retrievers_dir / "flaky.yaml").write_text(
        yaml.safe_dump(
            {
                "id": "flaky",
                "kind": "http",
                "http": {"url": flaky_server, "max_retries": 0, "timeout_s": 5},
            }
        )
    )
    request = parse_request(
        {**REQUEST, "candidate_retriever_ids": ["flaky"], "session_count": 80}, world_copy
    )
    record = accept_request(world_copy, request)
    context = build_sensor_context(instance=instance, resources=resources(world_copy))
    assert run_requested(instance, world_copy, benchmark_request_sensor(context))
    final = benchmark_store(world_copy).get(record["benchmark_id"])
    assert final["status"] == "completed"
    sampled = pq.read_table(
        world_copy.root / "benchmarks" / record["benchmark_id"] / "sessions.parquet"
    )
    expected_failures = sum(fails(t) for t in sampled.column("query_text").to_pylist())
    assert 0 < expected_failures < sampled.num_rows
    flaky = next(r for r in final["results"] if r["retriever_id"] == "flaky")
    assert flaky["failed_sessions"] == expected_failures
    assert flaky["error_summary"] == {"http_5xx": expected_failures}
    baseline = next(r for r in final["results"] if r["retriever_id"] == "demo_prod")
    assert baseline["failed_sessions"] == 0
    [comparison] = final["comparison"]["comparisons"]
    assert comparison.get("paired_sessions") == sampled.num_rows - expected_failures


def test_the_record_follows_each_asset_and_a_rerun_replaces_it(
    world_copy: DataPaths, instance: DagsterInstance
) -> None:
    record = accept_request(world_copy, parse_request(REQUEST, world_copy))
    benchmark_id = record["benchmark_id"]
    instance.add_dynamic_partitions("benchmark", [benchmark_id])
    tags = {"eval_pipelines/kind": "benchmarks"}
    outcomes = []
    for upto in range(1, len(benchmark_assets) + 1):
        materialize(
            benchmark_assets,
            selection=benchmark_assets[upto - 1 : upto],
            partition_key=benchmark_id,
            instance=instance,
            resources=resources(world_copy),
            tags=tags,
        )
        written = benchmark_store(world_copy).get(benchmark_id)
        outcomes.append((written["status"], written["error_message"]))
    # A run that leaves later assets unmade ends, so the record says what is missing, not progress.
    names = [asset.key.to_user_string() for asset in benchmark_assets]
    for upto, (status, message) in enumerate(outcomes[:-1], start=1):
        assert status == "failed" and message.startswith("incomplete: run ")
        assert f"did not bring {', '.join(names[upto:])} up to date" in message
    assert outcomes[-1] == ("completed", None)

    first = benchmark_store(world_copy).entry(benchmark_id)
    sessions_file = world_copy.root / "benchmarks" / benchmark_id / "sessions.parquet"
    sessions_before = sessions_file.read_bytes()
    materialize(
        benchmark_assets,
        partition_key=benchmark_id,
        instance=instance,
        resources=resources(world_copy),
        tags=tags,
    )
    rerun = benchmark_store(world_copy).get(benchmark_id)
    second = benchmark_store(world_copy).entry(benchmark_id)
    assert second["run_id"] != first["run_id"]
    assert rerun["status"] == "completed"

    def without_latency(results: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "latency"} for r in results]

    assert without_latency(rerun["results"]) == without_latency(first["record"]["results"])
    assert sessions_file.read_bytes() == sessions_before
    assert not [p for p in sessions_file.parent.iterdir() if p.name.startswith(".")]
