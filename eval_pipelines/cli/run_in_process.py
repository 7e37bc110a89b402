"""--wait: run a request's partition in this process, on the project's instance, with no daemon.

A run started here is tagged with this process, so when the process is killed or crashes, its
run (which no daemon watches) can be marked failed instead of showing progress forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dagster import AssetsDefinition, DagsterInstance, materialize

from eval_pipelines.core.errors import InvalidInputError
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.processes import this_process
from eval_pipelines.core.run_lock import AlreadyRunning, run_lock
from eval_pipelines.instance import get_instance
from eval_pipelines.lifecycle import (
    KIND_TAG,
    Lifecycle,
    accept_with_partition,
    latest_run,
    sync_record,
)
from eval_pipelines.resources import DataDirResource
from eval_pipelines.run_launcher import PROCESS_TAG, fail_dead_run

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def fail_abandoned_run(instance: DagsterInstance, lifecycle: Lifecycle, record_id: str) -> bool:
    """Mark the partition's latest run failed if its worker process has certainly ended unfinished
    (the same check Dagster's run monitoring makes through the project's run launcher)."""
    run_record = latest_run(instance, lifecycle, record_id)
    return run_record is not None and fail_dead_run(instance, run_record.dagster_run)


def accept_here(
    paths: DataPaths, lifecycle: Lifecycle, record_id: str, accept: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Accept a request without running it (the daemon's request sensor will), its partition first."""
    return accept_with_partition(get_instance(paths), lifecycle.partitions, record_id, accept)


def run_here(
    paths: DataPaths,
    lifecycle: Lifecycle,
    assets: Sequence[AssetsDefinition],
    record_id: str,
    accept: Callable[[], Any] | None,
    instance: DagsterInstance | None = None,
    check: Callable[[DagsterInstance], None] | None = None,
) -> dict[str, Any]:
    """Under the request's run lock: check it may run (re-runs), accept it with its partition
    (new requests), materialize it here and sync its record.

    The lock is held until the record is final, so a second rerun is refused instead of replaying
    everything again, and the request sensor never starts a run of a request running here.
    """
    instance = instance or get_instance(paths)
    folder = lifecycle.store(paths).folder(record_id)
    with run_lock(folder, f"{lifecycle.kind[:-1]} {record_id}"):
        if check is not None:
            check(instance)
        if accept is not None:
            accept_with_partition(instance, lifecycle.partitions, record_id, accept)
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


def refresh_records(
    paths: DataPaths, lifecycle: Lifecycle, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Listed records brought up to date with their partitions' latest runs (a partition may have
    been materialized from the UI or Dagster's CLI since); as stored when no instance exists yet."""
    if not (paths.dagster_home / "dagster.yaml").is_file():
        return records
    instance = get_instance(paths)
    id_field = f"{lifecycle.kind[:-1]}_id"
    return [sync_record(instance, paths, lifecycle, r[id_field]) or r for r in records]


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

    if benchmark_lifecycle.store(paths).get(benchmark_id) is None:
        raise InvalidInputError(f"benchmark_id: no benchmark {benchmark_id!r}")

    def may_run_again(instance: DagsterInstance) -> None:
        fail_abandoned_run(instance, benchmark_lifecycle, benchmark_id)
        record = sync_record(instance, paths, benchmark_lifecycle, benchmark_id) or {}
        latest = latest_run(instance, benchmark_lifecycle, benchmark_id)
        if latest is not None and not latest.dagster_run.is_finished:
            raise AlreadyRunning(
                f"benchmark_id: {benchmark_id} is still running (Dagster run"
                f" {latest.dagster_run.run_id}, {latest.dagster_run.status.value}); wait for it"
                " to end"
            )
        if record.get("status") == "completed":
            raise InvalidInputError(
                f"benchmark_id: {benchmark_id} has completed; create a new benchmark to replay again"
            )

    progress(f"benchmark {benchmark_id}: running again here, resuming finished replay chunks ...")
    return run_here(
        paths, benchmark_lifecycle, benchmark_assets, benchmark_id, None, instance, may_run_again
    )


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
