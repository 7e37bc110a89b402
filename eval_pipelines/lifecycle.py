"""How a request's record follows its Dagster run: shared by benchmarks and evaluations.

The record is derived from the instance (runs of the request's partition, and which assets that run
has materialized), so the sensor and an in-process `--wait` reach the same record by the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DynamicPartitionsDefinition,
    RunsFilter,
)
from dagster._core.storage.dagster_run import DagsterRun

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.records import FINAL_STATUSES, RecordStore, utc_timestamp

PARTITION_TAG = "dagster/partition"
KIND_TAG = "eval_pipelines/kind"
FAILED_RUN_STATUSES = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class Lifecycle:
    """What differs between benchmarks and evaluations; everything else here is shared."""

    kind: str
    partitions: DynamicPartitionsDefinition
    # (asset, status shown until it is materialized), in pipeline order
    stages: Sequence[tuple[AssetKey, str]]
    in_progress: Callable[[dict[str, Any], str, str], dict[str, Any]]
    completed: Callable[[DataPaths, str, dict[str, Any], str | None, str], dict[str, Any]]
    failed: Callable[[dict[str, Any], str, str | None, str], dict[str, Any]]

    def store(self, paths: DataPaths) -> RecordStore:
        return RecordStore(paths, self.kind)


def _timestamp(epoch: float | None) -> str | None:
    return utc_timestamp(datetime.fromtimestamp(epoch, UTC)) if epoch else None


def latest_run(instance: DagsterInstance, lifecycle: Lifecycle, record_id: str):
    records = instance.get_run_records(
        RunsFilter(tags={PARTITION_TAG: record_id, KIND_TAG: lifecycle.kind}), limit=1
    )
    return records[0] if records else None


def failure_message(instance: DagsterInstance, run_id: str, status: DagsterRunStatus) -> str:
    """The first step failure's message (what a user needs), else the run's own failure."""
    for event_type in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
        for entry in instance.all_logs(run_id, of_type=event_type):
            event = entry.dagster_event
            # Only a STEP_FAILURE carries step_failure_data; asking a RUN_FAILURE for it raises.
            is_step_failure = (
                event is not None and event.event_type == DagsterEventType.STEP_FAILURE
            )
            data = event.step_failure_data if is_step_failure else None
            if data is not None and data.error is not None:
                error = data.error
                while error.cause is not None:  # Dagster wraps the user's exception; show the cause
                    error = error.cause
                return f"{event.step_key}: {error.message.strip()}"
            if entry.message:
                return entry.message
    return "the run was canceled" if status == DagsterRunStatus.CANCELED else "the run failed"


def stages_done(
    instance: DagsterInstance, run: DagsterRun, lifecycle: Lifecycle, partition: str
) -> set[AssetKey]:
    """Assets this run materialized, plus those it did not select that the partition already has."""
    done = {
        entry.dagster_event.asset_key
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    }
    selected = run.asset_selection
    for key, _ in lifecycle.stages:
        if selected is not None and key not in selected and key not in done:
            earlier = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
            )
            if earlier.records:
                done.add(key)
    return done


def sync_record(
    instance: DagsterInstance, paths: DataPaths, lifecycle: Lifecycle, record_id: str
) -> dict[str, Any] | None:
    """Bring one stored record up to date with its latest run; returns the record (None if unknown)."""
    store = lifecycle.store(paths)
    entry = store.entry(record_id)
    if entry is None:
        return None
    record = entry["record"]
    run_record = latest_run(instance, lifecycle, record_id)
    if run_record is None:
        return record
    run = run_record.dagster_run
    if entry.get("run_id") == run.run_id and record["status"] in FINAL_STATUSES:
        return record
    started_at = _timestamp(run_record.start_time)
    done = stages_done(instance, run, lifecycle, record_id)
    final_asset = lifecycle.stages[-1][0]
    if run.status == DagsterRunStatus.SUCCESS and final_asset in done:
        completed_at = _timestamp(run_record.end_time) or utc_timestamp()
        updated = lifecycle.completed(paths, record_id, record, started_at, completed_at)
    elif run.status in FAILED_RUN_STATUSES:
        completed_at = _timestamp(run_record.end_time) or utc_timestamp()
        message = failure_message(instance, run.run_id, run.status)
        updated = lifecycle.failed(record, message, started_at, completed_at)
    else:  # running, or a run that materialized only part of the pipeline
        status = next(
            (s for key, s in lifecycle.stages if key not in done), lifecycle.stages[-1][1]
        )
        fresh = {**record, "started_at": None} if entry.get("run_id") != run.run_id else record
        updated = lifecycle.in_progress(fresh, status, started_at or utc_timestamp())
    if updated != record or entry.get("run_id") != run.run_id:
        updated = store.save(record_id, updated, run.run_id)
    return updated
