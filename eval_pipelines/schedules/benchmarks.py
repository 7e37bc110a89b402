"""Nightly benchmarks declared in <data>/benchmark_schedule.yaml, submitted like any other request."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from eval_pipelines.core.benchmarks.schedule_file import SCHEDULE_FILE, checked_requests
from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.jobs import submit_benchmark
from eval_pipelines.resources import DataDirResource


@schedule(
    job=submit_benchmark,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Submits the benchmarks declared in <data>/{SCHEDULE_FILE} every night at 02:00 UTC.",
)
def nightly_benchmarks(context: ScheduleEvaluationContext, data_dir: DataDirResource):
    file = data_dir.paths.root / SCHEDULE_FILE
    if not file.is_file():
        return SkipReason(f"no {file}: nothing is scheduled")
    tick = context.scheduled_execution_time
    try:
        requests = checked_requests(file, tick, data_dir.paths)
    except InvalidInputError as exc:
        context.log.error(str(exc))
        return SkipReason(str(exc))
    return [
        RunRequest(
            run_key=f"{index}-{tick.isoformat()}",
            run_config={"ops": {"submit_benchmark_request": {"config": request}}},
            tags={"eval_pipelines/scheduled": tick.isoformat()},
        )
        for index, request in enumerate(requests)
    ]
