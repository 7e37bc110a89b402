"""The two sensors every request kind has: new requests -> partition + run; runs -> records."""

from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from eval_pipelines.core.records import FINAL_STATUSES
from eval_pipelines.lifecycle import KIND_TAG, Lifecycle, latest_run, sync_record
from eval_pipelines.resources import DataDirResource

SENSOR_INTERVAL_S = 5


def request_sensor(lifecycle: Lifecycle, job: Any) -> SensorDefinition:
    """Stored requests without a partition get one partition and one run (run_key = request id)."""

    @sensor(
        name=f"{lifecycle.kind}_request_sensor",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Turns accepted {lifecycle.kind} requests into a partition and a run.",
    )
    def _sensor(
        context: SensorEvaluationContext, data_dir: DataDirResource
    ) -> SensorResult | SkipReason:
        ids = lifecycle.store(data_dir.paths).ids()
        existing = set(context.instance.get_dynamic_partitions(lifecycle.partitions.name))
        new = [record_id for record_id in ids if record_id not in existing]
        if not new:
            return SkipReason(f"no new {lifecycle.kind} requests ({len(ids)} known)")
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=record_id, partition_key=record_id, tags={KIND_TAG: lifecycle.kind}
                )
                for record_id in new
            ],
            dynamic_partitions_requests=[lifecycle.partitions.build_add_request(new)],
            cursor=new[-1],
        )

    return _sensor


def record_sensor(lifecycle: Lifecycle) -> SensorDefinition:
    """Keeps every record in step with its partition's latest run (progress, completion, failure)."""

    @sensor(
        name=f"{lifecycle.kind}_record_sensor",
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Updates {lifecycle.kind} records from their runs' progress.",
    )
    def _sensor(context: SensorEvaluationContext, data_dir: DataDirResource) -> SkipReason:
        paths = data_dir.paths
        store = lifecycle.store(paths)
        changed = 0
        for record_id in store.ids():
            entry = store.entry(record_id)
            if entry is None:
                continue
            run = latest_run(context.instance, lifecycle, record_id)
            settled = entry["record"]["status"] in FINAL_STATUSES and (
                run is None or run.dagster_run.run_id == entry.get("run_id")
            )
            if settled:
                continue
            before = entry["record"]
            if sync_record(context.instance, paths, lifecycle, record_id) != before:
                changed += 1
        return SkipReason(f"updated {changed} {lifecycle.kind} record(s)")

    return _sensor
