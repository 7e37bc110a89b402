"""The Dagster doors with the data root on S3 (moto's server, loopback), on a real instance: the
request sensor turns an accepted request (and one dropped by hand) into a partition and a run whose
record lands on S3; the run-failure sensor marks a record on S3; the nightly schedule reads
<root>/benchmark_schedule.yaml from S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml
from dagster import (
    DagsterEventType,
    DagsterInstance,
    RunRequest,
    SensorResult,
    SkipReason,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from eval_pipelines.core.benchmarks.request import parse_request
from eval_pipelines.core.benchmarks.submit import accept_request, benchmark_store
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.storage import write_text_atomic
from eval_pipelines.definitions import defs
from eval_pipelines.kinds import BENCHMARKS, KIND_TAG
from eval_pipelines.resources import DataDirResource
from eval_pipelines.schedules.benchmarks import nightly_benchmarks
from eval_pipelines.sensors.requests import request_sensor
from eval_pipelines.sensors.run_failures import failed_run_sensor
from eval_pipelines_tests.schemas import validation_errors
from eval_pipelines_tests.services import upload_world

REQUEST = {
    "benchmark_name": "sensor on s3",
    "baseline_retriever_id": "demo_prod",
    "candidate_retriever_ids": ["demo_better"],
    "session_count": 40,
}


def resources(paths: DataPaths) -> dict:
    return {"data_dir": DataDirResource(path=str(paths.root))}


def test_the_request_sensor_runs_a_request_on_s3_and_its_record_lands_there(
    small_world: DataPaths, s3_root: str, instance: DagsterInstance
) -> None:
    paths = upload_world(small_world, s3_root)
    accepted = accept_request(paths, parse_request(REQUEST, paths))["benchmark_id"]
    dropped = "by_hand_1"
    write_text_atomic(
        json.dumps({**REQUEST, "benchmark_name": "dropped"}),
        paths.root / "benchmarks" / dropped / "request.json",
    )

    result = request_sensor(BENCHMARKS)(
        build_sensor_context(instance=instance, resources=resources(paths))
    )
    assert isinstance(result, SensorResult)
    runs = {run.partition_key: run for run in result.run_requests}
    assert sorted(runs) == sorted([accepted, dropped])
    [added] = result.dynamic_partitions_requests
    assert sorted(added.partition_keys) == sorted([accepted, dropped])

    instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
    run = materialize(
        BENCHMARKS.assets,
        partition_key=accepted,
        instance=instance,
        resources=resources(paths),
        tags=runs[accepted].tags,
        raise_on_error=False,
    )
    assert run.success
    record = benchmark_store(paths).get(accepted)
    assert record["status"] == "completed" and record["session_count"] == 40
    assert validation_errors("get_benchmark.openapi", "BenchmarkResponse", record) == []
    assert (paths.root / "benchmarks" / accepted / "session_scores.parquet").exists()
    assert not (paths.root / "benchmarks" / accepted / "replay_chunks").exists()

    # The next tick finds nothing new: the run's record and the partitions say so, read from S3.
    again = request_sensor(BENCHMARKS)(
        build_sensor_context(instance=instance, resources=resources(paths))
    )
    assert isinstance(again, SkipReason), again


class UnreachableDataDir(DataDirResource):
    """The store stops answering: the run fails before any step body starts."""

    def setup_for_execution(self, context) -> None:
        raise OSError("the bucket does not answer")


def test_the_failure_sensor_and_the_schedule_work_on_s3(
    small_world: DataPaths, s3_root: str, instance: DagsterInstance
) -> None:
    paths = upload_world(small_world, s3_root)
    benchmark_id = accept_request(paths, parse_request(REQUEST, paths))["benchmark_id"]
    instance.add_dynamic_partitions(BENCHMARKS.partitions.name, [benchmark_id])
    failed_run = materialize(
        BENCHMARKS.assets,
        partition_key=benchmark_id,
        instance=instance,
        resources={"data_dir": UnreachableDataDir(path=str(paths.root))},
        tags={KIND_TAG: BENCHMARKS.name},
        raise_on_error=False,
    )
    assert not failed_run.success
    run = instance.get_run_by_id(failed_run.run_id)
    (failure,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    outcome = failed_run_sensor(
        build_run_status_sensor_context(
            sensor_name=failed_run_sensor.name,
            dagster_event=failure.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
            resources=resources(paths),
        )
    )
    assert "record marked failed" in outcome.skip_message
    failed = benchmark_store(paths).get(benchmark_id)
    assert failed["status"] == "failed"
    assert failed["error_message"] == "OSError: the bucket does not answer"

    tick = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    write_text_atomic(
        yaml.safe_dump({"benchmarks": [{**REQUEST, "benchmark_name": "nightly"}]}),
        paths.root / "benchmark_schedule.yaml",
    )
    context = build_schedule_context(
        instance=instance, scheduled_execution_time=tick, resources=resources(paths)
    )
    [scheduled] = nightly_benchmarks(context)
    assert isinstance(scheduled, RunRequest)
    submitted = defs.resolve_job_def("submit_benchmark").execute_in_process(
        run_config=scheduled.run_config, instance=instance, resources=resources(paths)
    )
    nightly = benchmark_store(paths).get(submitted.output_for_node("submit_benchmark_request"))
    assert nightly["benchmark_name"] == "nightly" and nightly["status"] == "pending"
    assert [r["benchmark_name"] for r in benchmark_store(paths).listing().records] == [
        "sensor on s3",
        "nightly",
    ]
