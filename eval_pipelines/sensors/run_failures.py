"""The run-failure sensor: a benchmark or evaluation run that fails or is canceled outside a step
(a dead worker, a blocking check, a cancel) gets its record marked failed with the root cause."""

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_status_sensor,
)

from eval_pipelines.resources import DataDirResource
from eval_pipelines.run_failures import record_run_end
from eval_pipelines.sensors.requests import SENSOR_INTERVAL_S


def run_end_sensor(status: DagsterRunStatus) -> SensorDefinition:
    @run_status_sensor(
        run_status=status,
        name=f"records_of_{status.value.lower()}_runs",
        minimum_interval_seconds=SENSOR_INTERVAL_S,
        monitor_all_code_locations=True,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Marks the record of a {status.value.lower()} benchmark or evaluation run"
        " failed, naming the failing step and its root cause.",
    )
    def _sensor(context: RunStatusSensorContext, data_dir: DataDirResource) -> SkipReason:
        record = record_run_end(context.instance, data_dir.paths, context.dagster_run)
        if record is None:
            return SkipReason(f"run {context.dagster_run.run_id}: its record needed no change")
        return SkipReason(f"run {context.dagster_run.run_id}: record marked failed")

    return _sensor


failed_run_sensor = run_end_sensor(DagsterRunStatus.FAILURE)
canceled_run_sensor = run_end_sensor(DagsterRunStatus.CANCELED)
