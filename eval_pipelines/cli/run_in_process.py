"""--wait: run a request's partition in this process, on the project's instance, with no daemon."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dagster import AssetsDefinition, DagsterInstance, materialize

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.instance import get_instance
from eval_pipelines.lifecycle import KIND_TAG, Lifecycle, sync_record
from eval_pipelines.resources import DataDirResource

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_here(
    paths: DataPaths,
    lifecycle: Lifecycle,
    assets: Sequence[AssetsDefinition],
    record_id: str,
    accept: Callable[[], Any],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    """Add the partition, then accept the request, then materialize it here and sync its record.

    The partition exists before the request is stored, so the request sensor never starts a second run.
    """
    instance = instance or get_instance(paths)
    instance.add_dynamic_partitions(lifecycle.partitions.name, [record_id])
    accept()
    materialize(
        assets,
        partition_key=record_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        tags={KIND_TAG: lifecycle.kind},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    return sync_record(instance, paths, lifecycle, record_id)


def refresh_record(paths: DataPaths, lifecycle: Lifecycle, record_id: str) -> dict[str, Any] | None:
    return sync_record(get_instance(paths), paths, lifecycle, record_id)


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
