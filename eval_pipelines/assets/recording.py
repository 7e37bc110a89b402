"""Each asset step of a request kind records itself: its stage on start, the root cause if it
fails, and `incomplete` when it is the last step its run makes before the final stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from dagster import AssetExecutionContext, DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import RecordStore
from eval_pipelines.core.run_records import RunRecords, root_cause
from eval_pipelines.resources import DataDirResource


class Step(NamedTuple):
    """What a partition's asset step works with."""

    paths: DataPaths
    record_id: str
    store: RecordStore


def planned_steps(instance: DagsterInstance, run: DagsterRun) -> set[str]:
    """The steps a run executes (a UI selection or `--select` plans a subset)."""
    if run.execution_plan_snapshot_id is None:
        return set()
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return set(plan.step_keys_to_execute)


@contextmanager
def recorded_step(
    context: AssetExecutionContext, records: RunRecords, data_dir: DataDirResource
) -> Iterator[Step]:
    paths = data_dir.paths
    step, record_id, run_id = context.op_def.name, context.partition_key, context.run.run_id
    records.stage_started(paths, record_id, step, run_id)
    try:
        yield Step(paths, record_id, records.store(paths))
    except Exception as exc:
        records.failed(paths, record_id, f"{step}: {root_cause(exc)}", run_id)
        raise
    missing = records.step_stopped_early(step, planned_steps(context.instance, context.run))
    if missing:
        records.incomplete(paths, record_id, run_id, missing)
