"""--wait: run a request's partition in this process, on the project's instance, with no daemon."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import DagsterInstance, materialize

from eval_pipelines.assets.benchmarks import benchmark_assets
from eval_pipelines.core.benchmarks.request import BenchmarkRequest
from eval_pipelines.core.benchmarks.submit import accept_request
from eval_pipelines.core.paths import DataPaths
from eval_pipelines.instance import get_instance
from eval_pipelines.lifecycle import KIND_TAG, sync_record
from eval_pipelines.resources import DataDirResource
from eval_pipelines.sensors.benchmarks import benchmark_lifecycle

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_benchmark_here(
    paths: DataPaths,
    request: BenchmarkRequest,
    benchmark_id: str,
    progress: Callable[[str], None],
    instance: DagsterInstance | None = None,
) -> dict[str, Any]:
    instance = instance or get_instance(paths)
    # The partition exists before the request is stored, so the request sensor never starts a second run.
    instance.add_dynamic_partitions(benchmark_lifecycle.partitions.name, [benchmark_id])
    accept_request(paths, request, benchmark_id)
    progress(f"benchmark {benchmark_id}: running {len(request.pipeline_ids)} pipelines here ...")
    materialize(
        benchmark_assets,
        partition_key=benchmark_id,
        instance=instance,
        resources={"data_dir": DataDirResource(path=str(paths.root))},
        tags={KIND_TAG: benchmark_lifecycle.kind},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    return sync_record(instance, paths, benchmark_lifecycle, benchmark_id)


def refresh_benchmark_record(paths: DataPaths, benchmark_id: str) -> dict[str, Any] | None:
    return sync_record(get_instance(paths), paths, benchmark_lifecycle, benchmark_id)
