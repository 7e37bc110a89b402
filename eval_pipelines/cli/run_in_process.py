"""--wait: run a request's partition in this process, on the project's instance, with no daemon.

A run started here is tagged with this process, so when the process is killed or crashes, its
run (which no daemon watches) can be marked failed instead of showing progress forever.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetsDefinition,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    materialize,
)
from dagster._core.events import DagsterEvent, StepFailureData
from dagster._utils.error import SerializableErrorInfo

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.instance import get_instance
from eval_pipelines.lifecycle import KIND_TAG, Lifecycle, latest_run, sync_record
from eval_pipelines.resources import DataDirResource

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PROCESS_TAG = "eval_pipelines/process"
_PROC = Path("/proc")
_STEP_EVENTS = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
}


def _start_ticks(pid: int) -> str | None:
    """When a live process started (Linux /proc), which a later process reusing its pid does not share."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    state, *fields = stat.rsplit(")", 1)[1].split()
    return None if state in ("Z", "X") else fields[18]


def this_process() -> str:
    """host/pid/start-ticks of the running process (start ticks empty where /proc is absent)."""
    return f"{socket.gethostname()}/{os.getpid()}/{_start_ticks(os.getpid()) or ''}"


def process_ended(identity: str) -> bool:
    """True only when the process is certainly gone: on this host, with its pid free or reused."""
    parts = identity.rsplit("/", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid_text, ticks = parts[1], parts[2]
    if ticks and _PROC.is_dir():
        return _start_ticks(int(pid_text)) != ticks
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _unfinished_steps(instance: DagsterInstance, run_id: str) -> list[str]:
    started: list[str] = []
    ended: set[str] = set()
    for entry in instance.all_logs(run_id, of_type=_STEP_EVENTS):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started.append(event.step_key)
        else:
            ended.add(event.step_key)
    return [key for key in started if key not in ended]


def fail_abandoned_run(instance: DagsterInstance, lifecycle: Lifecycle, record_id: str) -> bool:
    """Mark the partition's latest run failed if the process running it here has ended unfinished.

    The step it was running is marked failed first, as Dagster marks a step whose worker fails its
    health check, so the record names the step that was cut short.
    """
    run_record = latest_run(instance, lifecycle, record_id)
    if run_record is None:
        return False
    run = run_record.dagster_run
    owner = run.tags.get(PROCESS_TAG)
    if run.is_finished or owner is None or not process_ended(owner):
        return False
    message = (
        f"the process running it (pid {owner.rsplit('/', 2)[1]}) ended before it finished"
        " (killed or crashed)"
    )
    for step_key in _unfinished_steps(instance, run.run_id):
        failure = StepFailureData(
            error=SerializableErrorInfo(message=message, stack=[], cls_name=None),
            user_failure_data=None,
        )
        event = DagsterEvent(
            event_type_value=DagsterEventType.STEP_FAILURE.value,
            job_name=run.job_name,
            step_key=step_key,
            event_specific_data=failure,
            message=f'Execution of step "{step_key}" failed: {message}.',
        )
        instance.report_dagster_event(event, run_id=run.run_id, log_level=logging.ERROR)
    instance.report_run_failed(run, f"This run failed: {message}.")
    return True


def run_here(
    paths: DataPaths,
    lifecycle: Lifecycle,
    assets: Sequence[AssetsDefinition],
    record_id: str,
    accept: Callable[[], Any] | None,
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    """Add the partition, then accept the request, then materialize it here and sync its record.

    The partition exists before the request is stored, so the request sensor never starts a second run.
    accept is None for a request accepted earlier (a re-run).
    """
    instance = instance or get_instance(paths)
    instance.add_dynamic_partitions(lifecycle.partitions.name, [record_id])
    if accept is not None:
        accept()
    materialize(
        assets,
        partition_key=record_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        tags={KIND_TAG: lifecycle.kind, PROCESS_TAG: this_process()},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    return sync_record(instance, paths, lifecycle, record_id)


def refresh_record(paths: DataPaths, lifecycle: Lifecycle, record_id: str) -> dict[str, Any] | None:
    instance = get_instance(paths)
    fail_abandoned_run(instance, lifecycle, record_id)
    return sync_record(instance, paths, lifecycle, record_id)


def run_benchmark_here(
    paths: DataPaths,
    request: Any,
    benchmark_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    from eval_pipelines.assets.benchmarks import benchmark_assets
    from eval_pipelines.core.benchmarks.submit import accept_request
    from eval_pipelines.sensors.benchmarks import benchmark_lifecycle

    progress(f"benchmark {benchmark_id}: running {len(request.pipeline_ids)} pipelines here ...")
    return run_here(
        paths,
        benchmark_lifecycle,
        benchmark_assets,
        benchmark_id,
        lambda: accept_request(paths, request, benchmark_id),
        instance,
    )


def rerun_benchmark_here(
    paths: DataPaths,
    benchmark_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    """Run an accepted, unfinished benchmark's partition again here, with its stored request.

    Replay chunks an earlier run finished are loaded, not replayed, so the record equals an
    uninterrupted run's. A benchmark still running or already completed is refused.
    """
    from eval_pipelines.assets.benchmarks import benchmark_assets
    from eval_pipelines.sensors.benchmarks import benchmark_lifecycle

    record = benchmark_lifecycle.store(paths).get(benchmark_id)
    if record is None:
        raise InvalidInputError(f"benchmark_id: no benchmark {benchmark_id!r}")
    instance = instance or get_instance(paths)
    fail_abandoned_run(instance, benchmark_lifecycle, benchmark_id)
    latest = latest_run(instance, benchmark_lifecycle, benchmark_id)
    if latest is not None and not latest.dagster_run.is_finished:
        raise InvalidInputError(
            f"benchmark_id: {benchmark_id} is still running (Dagster run"
            f" {latest.dagster_run.run_id}, {latest.dagster_run.status.value}); wait for it to end"
        )
    succeeded = latest is not None and latest.dagster_run.status == DagsterRunStatus.SUCCESS
    if succeeded or record["status"] == "completed":
        raise InvalidInputError(
            f"benchmark_id: {benchmark_id} has completed; create a new benchmark to replay again"
        )
    progress(f"benchmark {benchmark_id}: running again here, resuming finished replay chunks ...")
    return run_here(paths, benchmark_lifecycle, benchmark_assets, benchmark_id, None, instance)


def run_evaluation_here(
    paths: DataPaths,
    request: Any,
    evaluation_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    from eval_pipelines.assets.evaluations import evaluation_assets
    from eval_pipelines.core.evaluations.submit import accept_request
    from eval_pipelines.sensors.evaluations import evaluation_lifecycle

    progress(
        f"evaluation {evaluation_id}: {request.retriever_id} on {request.dataset_name}, running here ..."
    )
    return run_here(
        paths,
        evaluation_lifecycle,
        evaluation_assets,
        evaluation_id,
        lambda: accept_request(paths, request, evaluation_id),
        instance,
    )
